// GET /health, unknown paths, and the panic route's absence by default.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { TOKEN, expectError, expectJson, expectMethodNotAllowed, post, request, startWorker } from "./support.mjs";

describe("routes with a complete configuration", () => {
  let mf;
  before(async () => {
    mf = await startWorker({ DRIFT_VERIFICATION_TOKEN: TOKEN });
  });
  after(() => mf?.dispose());

  test("GET /health: 200 ok, configured, no problems", async () => {
    const res = await request(mf, "/health");
    const body = await expectJson(res, 200);
    assert.equal(body.status, "ok");
    assert.equal(body.version, "0.1.0");
    assert.equal(body.configured, true);
    assert.deepEqual(Object.keys(body), ["status", "version", "configured", "problems"], "nothing more in public");
    assert.equal(body.problems, 0);
  });

  test("GET /health never shows the secret", async () => {
    const res = await request(mf, "/health");
    assert.equal(res.status, 200);
    assert.ok(!(await res.text()).includes(TOKEN));
  });

  test("POST /health: 405 with an Allow that includes GET", async () => {
    for (const method of ["POST", "PUT", "DELETE"]) {
      const allow = await expectMethodNotAllowed(await request(mf, "/health", { method, body: method === "POST" ? "{}" : undefined }));
      assert.ok(allow.split(",").map((m) => m.trim()).includes("GET"), `${method}: Allow: ${allow}`);
    }
  });

  test("unknown paths: 404 not_found", async () => {
    for (const [method, path] of [
      ["GET", "/"],
      ["GET", "/nope"],
      ["POST", "/nope"],
      ["POST", "/webhooks/drift/extra"],
      ["POST", "/webhooks"],
      ["GET", "/health/x"],
      ["POST", "/convertx"],
    ]) {
      const res = await request(mf, path, { method, body: method === "POST" ? "{}" : undefined });
      await expectError(res, 404, "not_found", "");
    }
  });

  test("POST /__test/panic on the production entry: 404", async () => {
    await expectError(await post(mf, "/__test/panic", "{}"), 404, "not_found", "");
    // The route did not panic: the worker answers as before.
    const health = await request(mf, "/health");
    assert.equal(health.status, 200);
    await health.body?.cancel();
    assert.ok(!mf.logs().includes("deliberate panic"), mf.logs());
  });
});
