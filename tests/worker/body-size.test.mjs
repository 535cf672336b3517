// MAX_BODY_BYTES: a body of exactly the limit is read, one byte more is 413,
// whether the size is announced (Content-Length) or only found while reading.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Miniflare } from "miniflare";
import {
  ADMIN,
  adminHealth,
  DRIFT_EXAMPLE_RECEIVED,
  TOKEN,
  expectError,
  expectJson,
  jsonText,
  paddedEvent,
  post,
  postStreamed,
  request,
  startWorker,
} from "./support.mjs";

const WEBHOOK = "/webhooks/drift";

// Well over the limit, yet small enough for the client to finish sending
// before the worker's early 413 closes the connection (a body of several
// hundred KB makes undici fail with ECONNRESET instead of reading the 413).
const farOver = (limit) => Math.min(limit * 4, limit + 8192);

describe("harness: what the worker sees of the two ways of sending", () => {
  let echo;
  before(async () => {
    echo = new Miniflare({
      modules: true,
      compatibilityDate: "2026-04-26",
      script: `export default { async fetch(r) {
        const n = (await r.arrayBuffer()).byteLength;
        return Response.json({ length: r.headers.get("content-length"), n });
      } }`,
    });
    await echo.ready;
  });
  after(() => echo?.dispose());

  test("post() announces Content-Length, postStreamed() does not", async () => {
    const body = paddedEvent(3000);
    assert.deepEqual(await (await post(echo, "/", body)).json(), { length: "3000", n: 3000 });
    assert.deepEqual(await (await postStreamed(echo, "/", body, { chunks: 5 })).json(), { length: null, n: 3000 });
  });
});

for (const [label, limit, bindings] of [
  ["MAX_BODY_BYTES=1024", 1024, { MAX_BODY_BYTES: "1024" }],
  ["default MAX_BODY_BYTES (65536)", 65536, {}],
]) {
  describe(label, () => {
    let mf;
    before(async () => {
      mf = await startWorker({ DRIFT_VERIFICATION_TOKEN: TOKEN, ADMIN_TOKEN: ADMIN, ...bindings });
    });
    after(() => mf?.dispose());

    test("/health reports the limit (to the admin)", async () => {
      const body = await adminHealth(mf);
      assert.equal(body.details.maxBodyBytes, limit);
      assert.equal(body.configured, true);
    });

    test(`webhook, Content-Length: ${limit} bytes is accepted`, async () => {
      const res = await post(mf, WEBHOOK, paddedEvent(limit), { token: TOKEN });
      const text = await jsonText(res);
      assert.equal(res.status, 200, text);
      // The pad rides along in data; the ids do not depend on it.
      assert.equal(text, DRIFT_EXAMPLE_RECEIVED);
    });

    test(`webhook, Content-Length: ${limit + 1} bytes is 413 too_large`, async () => {
      await expectError(await post(mf, WEBHOOK, paddedEvent(limit + 1), { token: TOKEN }), 413, "too_large", "");
    });

    test("webhook, Content-Length: far over the limit is 413 too_large", async () => {
      await expectError(await post(mf, WEBHOOK, paddedEvent(farOver(limit)), { token: TOKEN }), 413, "too_large");
    });

    test(`webhook, streamed without Content-Length: ${limit} bytes is accepted`, async () => {
      const res = await postStreamed(mf, WEBHOOK, paddedEvent(limit), { token: TOKEN, chunks: 5 });
      const text = await jsonText(res);
      assert.equal(res.status, 200, text);
      assert.equal(text, DRIFT_EXAMPLE_RECEIVED);
    });

    test(`webhook, streamed without Content-Length: ${limit + 1} bytes is 413 too_large`, async () => {
      // In several chunks, each under the limit: only the running total is over.
      for (const chunks of [1, 5]) {
        const res = await postStreamed(mf, WEBHOOK, paddedEvent(limit + 1), { token: TOKEN, chunks });
        await expectError(res, 413, "too_large", "");
      }
    });

    test("webhook, streamed far over the limit is 413 too_large", async () => {
      const res = await postStreamed(mf, WEBHOOK, paddedEvent(farOver(limit)), { token: TOKEN, chunks: 16 });
      await expectError(res, 413, "too_large");
    });

    test(`/convert: ${limit} bytes accepted, ${limit + 1} is 413, with or without Content-Length`, async () => {
      const ok = await expectJson(await post(mf, "/convert?legacy=never", paddedEvent(limit)), 200);
      assert.equal(ok.events.length, 2);
      await expectError(await post(mf, "/convert", paddedEvent(limit + 1)), 413, "too_large");
      const streamedOk = await expectJson(await postStreamed(mf, "/convert?legacy=never", paddedEvent(limit)), 200);
      assert.deepEqual(streamedOk, ok);
      await expectError(await postStreamed(mf, "/convert", paddedEvent(limit + 1)), 413, "too_large");
    });
  });
}
