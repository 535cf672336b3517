// A panic inside either wasm module (POST /__test/panic in the workers-rs
// one, POST /__test/bridge-panic in the hot path's, both routes of the test
// entry) fails that request only: the same worker keeps answering correctly
// afterwards.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  DRIFT_EXAMPLE,
  DRIFT_EXAMPLE_RECEIVED,
  TOKEN,
  eventually,
  expectJson,
  post,
  request,
  startWorker,
} from "./support.mjs";

const PANIC_MESSAGE = "deliberate panic from /__test/panic";
const HOT_PANIC_MESSAGE = "deliberate panic from /__test/bridge-panic";

/** POSTs to a panic route; resolves to a description of how it failed. */
async function panicOnce(mf, route = "/__test/panic") {
  let res;
  try {
    res = await post(mf, route, "{}");
  } catch (error) {
    // Miniflare may turn the worker's exception into a thrown error.
    return `threw: ${error?.message ?? error}`;
  }
  const text = await res.text();
  assert.equal(res.status, 500, `the panic route must fail, got ${res.status}: ${text}`);
  return `status 500`;
}

/** The worker answers /health, Drift's example and /convert correctly. */
async function assertHealthy(mf) {
  const health = await expectJson(await request(mf, "/health"), 200);
  assert.equal(health.status, "ok");
  assert.equal(health.configured, true);
  const res = await post(mf, "/webhooks/drift", DRIFT_EXAMPLE, { token: TOKEN });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), DRIFT_EXAMPLE_RECEIVED);
  const converted = await expectJson(await post(mf, "/convert?legacy=never", DRIFT_EXAMPLE), 200);
  assert.deepEqual(
    converted.events.map((e) => e.id),
    ["b624515312c8ce89", "c0b44147a772c080"],
  );
  await expectJson(await post(mf, "/webhooks/drift", DRIFT_EXAMPLE), 401);
}

describe("panic recovery (behind the test entry)", () => {
  let mf;
  before(async () => {
    mf = await startWorker({ DRIFT_VERIFICATION_TOKEN: TOKEN }, { testEntry: true });
  });
  after(() => mf?.dispose());

  test("healthy before the panic", async () => {
    await assertHealthy(mf);
  });

  test("POST /__test/panic fails, and it is the wasm panicking", async (t) => {
    t.diagnostic(await panicOnce(mf));
    await eventually(() => mf.logs().includes(PANIC_MESSAGE), `no "${PANIC_MESSAGE}" in workerd's output:\n${mf.logs()}`);
  });

  test("the same instance answers /health and Drift's example correctly afterwards", async () => {
    await assertHealthy(mf);
  });

  test("the first call after a panic may be the hot path's (the entry module's one wasm call)", async () => {
    await panicOnce(mf);
    const res = await post(mf, "/webhooks/drift", DRIFT_EXAMPLE, { token: TOKEN });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), DRIFT_EXAMPLE_RECEIVED);
    await panicOnce(mf);
    const converted = await expectJson(await post(mf, "/convert?legacy=never", DRIFT_EXAMPLE), 200);
    assert.equal(converted.events.length, 2);
    await assertHealthy(mf);
  });

  test("and again after repeated panics", async () => {
    for (let i = 0; i < 3; i++) {
      await panicOnce(mf);
      await assertHealthy(mf);
    }
    const panics = mf.logs().split(PANIC_MESSAGE).length - 1;
    assert.ok(panics >= 6, `expected 6 panics in the output, found ${panics}`);
  });

  test("a panic in the hot path's module is logged with its message, and fails that request only", async (t) => {
    t.diagnostic(await panicOnce(mf, "/__test/bridge-panic"));
    await eventually(() => mf.logs().includes(HOT_PANIC_MESSAGE), `no "${HOT_PANIC_MESSAGE}" in workerd's output:\n${mf.logs()}`);
    await assertHealthy(mf);
  });

  test("panics in both modules, one after the other, again and again", async () => {
    for (let i = 0; i < 3; i++) {
      await panicOnce(mf, "/__test/bridge-panic");
      await panicOnce(mf);
      await assertHealthy(mf);
      await panicOnce(mf);
      await panicOnce(mf, "/__test/bridge-panic");
      await assertHealthy(mf);
    }
    const panics = mf.logs().split(HOT_PANIC_MESSAGE).length - 1;
    assert.ok(panics >= 7, `expected 7 panics of the hot path's module in the output, found ${panics}`);
  });
});

describe("the production entry has no panic routes", () => {
  let mf;
  before(async () => {
    mf = await startWorker({ DRIFT_VERIFICATION_TOKEN: TOKEN });
  });
  after(() => mf?.dispose());

  test("POST /__test/panic and /__test/bridge-panic are unknown routes", async () => {
    for (const route of ["/__test/panic", "/__test/bridge-panic"]) {
      const body = await expectJson(await post(mf, route, "{}"), 404);
      assert.equal(body.error.code, "not_found");
    }
    assert.ok(!mf.logs().includes("deliberate panic"), "no panic");
  });
});
