// POST /convert: the stateless converter (no secret needed).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  DRIFT_EXAMPLE,
  TOKEN,
  event,
  expectError,
  expectJson,
  expectMethodNotAllowed,
  jsonText,
  post,
  request,
  startWorker,
} from "./support.mjs";

const INACTIVE_TYPES = ["conversation_inactive", "conversation_push", "conversation_status_updated"];

/** The raw text of a 200 answer. */
async function ok(res) {
  const text = await jsonText(res);
  assert.equal(res.status, 200, text);
  return text;
}

/** The outbound types of a `{"events":[…]}` result. */
const types = (result) => result.events.map((e) => e.event.type);

describe("/convert", () => {
  let mf;
  before(async () => {
    mf = await startWorker({ DRIFT_VERIFICATION_TOKEN: TOKEN });
  });
  after(() => mf?.dispose());

  test("Drift's example, legacy=always: exact events", async () => {
    const text = await ok(await post(mf, "/convert?legacy=always", DRIFT_EXAMPLE));
    assert.equal(
      text,
      '{"events":[' +
        '{"id":"b624515312c8ce89","event":{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}},' +
        '{"id":"c0b44147a772c080","event":{"orgId":1,"type":"conversation_push","data":{"lastUpdated":1591813767000,"conversationId":123456789}}},' +
        '{"id":"945d7df49ee99b50","event":{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":123456789,"status":"closed","changedAt":1591813767000}}}' +
        "]}",
    );
  });

  test("needs no token, and a wrong one does not matter", async () => {
    const plain = await ok(await post(mf, "/convert?legacy=always", DRIFT_EXAMPLE));
    const wrong = await ok(await post(mf, "/convert?legacy=always", DRIFT_EXAMPLE, { token: "wrong" }));
    assert.equal(wrong, plain);
  });

  test("legacy=never: no legacy close", async () => {
    const body = JSON.parse(await ok(await post(mf, "/convert?legacy=never", DRIFT_EXAMPLE)));
    assert.deepEqual(types(body), ["conversation_inactive", "conversation_push"]);
  });

  test("numbers are kept digit for digit in the raw text", async () => {
    const inbound =
      '{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":12345678901234567890,"score":1.10,"big":1E+400,"tiny":-0.0}}';
    const text = await ok(await post(mf, "/convert?legacy=always", inbound));
    // The inbound event comes back unchanged, the push copy with only its type changed.
    assert.ok(text.includes(`"event":${inbound}}`), text);
    assert.ok(text.includes(`"event":${inbound.replace("conversation_inactive", "conversation_push")}}`), text);
    // The legacy close carries the conversation id as written.
    assert.ok(
      text.includes('"data":{"conversationId":12345678901234567890,"status":"closed","changedAt":1591813767000}'),
      text,
    );
    assert.equal(text.split("12345678901234567890").length - 1, 3, text);
    assert.equal(text.split('"score":1.10').length - 1, 2, text);
    // What JSON.parse would have made of them, to be sure the check can fail.
    assert.ok(!text.includes("12345678901234567000"));
    assert.ok(!/"score":1\.1[,}]/.test(text));
  });

  test("numbers survive a pretty-printed event too", async () => {
    const pretty = '{\n  "orgId": 1,\n  "type": "conversation_push",\n  "data": {\n    "lastUpdated": 1591813767000,\n    "conversationId": 12345678901234567890,\n    "score": 1.10\n  }\n}\n';
    const text = await ok(await post(mf, "/convert?legacy=never", pretty));
    assert.ok(text.includes('"conversationId":12345678901234567890,"score":1.10'), text);
    assert.equal(JSON.parse(text).events.length, 1);
  });

  test("a JSON array: one result per item, errors' paths prefixed with the index", async () => {
    const bad = event("conversation_push", { lastUpdated: 1591813767000, conversationId: "7" });
    const body = JSON.parse(await ok(await post(mf, "/convert?legacy=always", `[${DRIFT_EXAMPLE},${bad},42]`)));
    assert.deepEqual(Object.keys(body), ["results"]);
    assert.equal(body.results.length, 3);
    assert.deepEqual(Object.keys(body.results[0]), ["events"]);
    assert.deepEqual(types(body.results[0]), INACTIVE_TYPES);
    assert.equal(body.results[0].events[0].id, "b624515312c8ce89");
    assert.deepEqual(Object.keys(body.results[1]), ["error"]);
    assert.equal(body.results[1].error.code, "invalid_event");
    assert.equal(body.results[1].error.path, "[1].data.conversationId");
    assert.equal(typeof body.results[1].error.message, "string");
    assert.equal(body.results[2].error.code, "invalid_event");
    assert.equal(body.results[2].error.path, "[2]");
  });

  test("an array of good events gives the same events as one by one", async () => {
    const single = JSON.parse(await ok(await post(mf, "/convert?legacy=always", DRIFT_EXAMPLE)));
    const many = JSON.parse(await ok(await post(mf, "/convert?legacy=always", `[${DRIFT_EXAMPLE},${DRIFT_EXAMPLE}]`)));
    assert.deepEqual(many, { results: [single, single] });
  });

  test("NDJSON: one result per non-blank line", async () => {
    const bad = event("conversation_inactive", { lastUpdated: 1591813767000, conversationId: "x" });
    const push = event("conversation_push", { lastUpdated: 1591813767000, conversationId: 9 });
    const body = JSON.parse(await ok(await post(mf, "/convert?legacy=always", `${DRIFT_EXAMPLE}\n\n${bad}\n   \n${push}\n`)));
    assert.deepEqual(Object.keys(body), ["results"]);
    assert.equal(body.results.length, 3);
    assert.deepEqual(types(body.results[0]), INACTIVE_TYPES);
    assert.equal(body.results[1].error.code, "invalid_event");
    assert.equal(body.results[1].error.path, "[1].data.conversationId");
    assert.deepEqual(types(body.results[2]), ["conversation_push", "conversation_status_updated"]);
  });

  test("NDJSON with CRLF line ends", async () => {
    const body = JSON.parse(await ok(await post(mf, "/convert?legacy=always", `${DRIFT_EXAMPLE}\r\n${DRIFT_EXAMPLE}\r\n`)));
    assert.equal(body.results.length, 2);
    for (const result of body.results) assert.deepEqual(types(result), INACTIVE_TYPES);
  });

  test("NDJSON with a broken line: an invalid_json result in its slot, the others translated", async () => {
    const body = JSON.parse(await ok(await post(mf, "/convert?legacy=always", `${DRIFT_EXAMPLE}\n{not json\n${DRIFT_EXAMPLE}`)));
    assert.equal(body.results.length, 3);
    assert.deepEqual(types(body.results[0]), INACTIVE_TYPES);
    assert.equal(body.results[1].error.code, "invalid_json");
    assert.match(body.results[1].error.path, /^\[1\]/);
    assert.deepEqual(types(body.results[2]), INACTIVE_TYPES);
  });

  test("one bad event: 400 with the core error", async () => {
    const bad = event("conversation_inactive", { lastUpdated: 1591813767000, conversationId: "123" });
    await expectError(await post(mf, "/convert?legacy=always", bad), 400, "invalid_event", "data.conversationId");
    await expectError(await post(mf, "/convert", '{"orgId":1,"type":'), 400, "invalid_json");
    await expectError(await post(mf, "/convert", event("conversation_push", {})), 400, "invalid_event", "data.conversationId");
    await expectError(await post(mf, "/convert", '{"orgId":1,"orgId":2,"type":"x"}'), 400, "duplicate_key", "orgId");
  });

  // A one-line body with data after the event is one bad event, not NDJSON.
  test("one line with data after the event: 400 invalid_json, not a batch", async () => {
    await expectError(await post(mf, "/convert", `${DRIFT_EXAMPLE} x`), 400, "invalid_json", "");
    await expectError(await post(mf, "/convert", DRIFT_EXAMPLE + DRIFT_EXAMPLE), 400, "invalid_json", "");
  });

  describe("legacy=timeline: a legacy close only in [2020-06-01, 2020-10-01)", () => {
    for (const [lastUpdated, legacy] of [
      [1590969599999, false],
      [1590969600000, true],
      [1601510399999, true],
      [1601510400000, false],
    ]) {
      test(`lastUpdated ${lastUpdated} (${new Date(lastUpdated).toISOString()}): ${legacy ? "close" : "no close"}`, async () => {
        const inbound = event("conversation_inactive", { lastUpdated, conversationId: 42 });
        const body = JSON.parse(await ok(await post(mf, "/convert?legacy=timeline", inbound)));
        assert.deepEqual(types(body), legacy ? INACTIVE_TYPES : INACTIVE_TYPES.slice(0, 2));
        if (legacy) {
          assert.deepEqual(body.events[2].event, {
            orgId: 1,
            type: "conversation_status_updated",
            data: { conversationId: 42, status: "closed", changedAt: lastUpdated },
          });
        }
      });
    }
  });

  test("now= stands in for a missing lastUpdated", async () => {
    const inbound = event("conversation_inactive", { conversationId: 42 });
    const inside = JSON.parse(await ok(await post(mf, "/convert?legacy=timeline&now=1590969600000", inbound)));
    assert.deepEqual(types(inside), INACTIVE_TYPES);
    assert.equal(inside.events[2].event.data.changedAt, 1590969600000);
    const before = JSON.parse(await ok(await post(mf, "/convert?legacy=timeline&now=1590969599999", inbound)));
    assert.deepEqual(types(before), INACTIVE_TYPES.slice(0, 2));
  });

  test("legacy=sometimes: 400 invalid_parameter at legacy", async () => {
    await expectError(await post(mf, "/convert?legacy=sometimes", DRIFT_EXAMPLE), 400, "invalid_parameter", "legacy");
  });

  test("now=abc: 400 invalid_parameter at now", async () => {
    await expectError(await post(mf, "/convert?now=abc", DRIFT_EXAMPLE), 400, "invalid_parameter", "now");
  });

  test("GET and other methods: 405 with Allow: POST", async () => {
    for (const method of ["GET", "PUT"]) {
      assert.equal(await expectMethodNotAllowed(await request(mf, "/convert?legacy=always", { method })), "POST");
    }
  });
});

describe("nesting deeper than 64 levels", () => {
  let mf;
  before(async () => { mf = await startWorker({}); });
  after(async () => { await mf?.dispose(); });
  test("is a bad request (400 too_large), not a big one (413)", async () => {
    const deep = `{"orgId":1,"type":"x","data":${"[".repeat(100)}${"]".repeat(100)}}`;
    await expectError(await post(mf, "/convert", deep), 400, "too_large", "data" + "[0]".repeat(63));
  });
});
