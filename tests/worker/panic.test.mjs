// A panic inside the wasm (POST /__test/panic, enabled by
// DRIFT_BRIDGE_TEST_ROUTES=1) fails that request only: the same worker keeps
// answering correctly afterwards.

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

/** POSTs to the panic route; resolves to a description of how it failed. */
async function panicOnce(mf) {
  let res;
  try {
    res = await post(mf, "/__test/panic", "{}");
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

describe("panic recovery (DRIFT_BRIDGE_TEST_ROUTES=1)", () => {
  let mf;
  before(async () => {
    mf = await startWorker({ DRIFT_VERIFICATION_TOKEN: TOKEN, DRIFT_BRIDGE_TEST_ROUTES: "1" });
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
});
