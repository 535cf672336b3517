// POST /webhooks/drift: verification, answers and errors.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  DRIFT_EXAMPLE,
  DRIFT_EXAMPLE_RECEIVED,
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

const WEBHOOK = "/webhooks/drift";

/** Drift's example with its token in the body, as Drift sends it. */
function withBodyToken(token, text = DRIFT_EXAMPLE) {
  return text.replace(/}$/, `,"token":${JSON.stringify(token)}}`);
}

const CLOSED =
  '{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":5,"status":"closed","changedAt":1591813767000}}';

describe("webhook with one token", () => {
  let mf;
  before(async () => {
    mf = await startWorker({ DRIFT_VERIFICATION_TOKEN: TOKEN });
  });
  after(() => mf?.dispose());

  test("Drift's example with the header token: exact answer", async () => {
    const res = await post(mf, WEBHOOK, DRIFT_EXAMPLE, { token: TOKEN });
    const text = await jsonText(res);
    assert.equal(res.status, 200, text);
    assert.equal(text, DRIFT_EXAMPLE_RECEIVED);
  });

  test("the answer is the same every time (deterministic ids)", async () => {
    for (let i = 0; i < 2; i++) {
      const res = await post(mf, WEBHOOK, DRIFT_EXAMPLE, { token: TOKEN });
      assert.equal(res.status, 200);
      assert.equal(await res.text(), DRIFT_EXAMPLE_RECEIVED);
    }
  });

  test("token in the body, no header: accepted, same ids", async () => {
    const body = withBodyToken(TOKEN);
    const res = await post(mf, WEBHOOK, body);
    const text = await jsonText(res);
    assert.equal(res.status, 200, text);
    // The ids name the conversation event, not the credential it came with.
    assert.equal(text, DRIFT_EXAMPLE_RECEIVED);
  });

  test("missing token: 401 unauthorized", async () => {
    await expectError(await post(mf, WEBHOOK, DRIFT_EXAMPLE), 401, "unauthorized", "");
  });

  test("a wrong token answers exactly like a missing one", async () => {
    const missing = await post(mf, WEBHOOK, DRIFT_EXAMPLE);
    const { text: missingText } = await expectError(missing, 401, "unauthorized");
    const wrongCases = [
      post(mf, WEBHOOK, DRIFT_EXAMPLE, { token: "not-the-token" }),
      post(mf, WEBHOOK, DRIFT_EXAMPLE, { token: TOKEN + "x" }),
      post(mf, WEBHOOK, DRIFT_EXAMPLE, { token: TOKEN.slice(0, -1) }),
      post(mf, WEBHOOK, withBodyToken("not-the-token")),
      post(mf, WEBHOOK, withBodyToken(TOKEN.toUpperCase())),
    ];
    for (const pending of wrongCases) {
      const res = await pending;
      const { text } = await expectError(res, 401, "unauthorized");
      assert.equal(text, missingText, "no hint whether the token was missing or wrong");
      assert.equal(res.headers.get("content-type"), missing.headers.get("content-type"));
      assert.ok(!text.includes(TOKEN) && !text.includes("not-the-token"), "the answer echoes no token");
    }
  });

  test("a wrong header does not hide a right body token (either one authenticates)", async () => {
    const res = await post(mf, WEBHOOK, withBodyToken(TOKEN), { token: "wrong" });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), DRIFT_EXAMPLE_RECEIVED);
  });

  test("unauthenticated garbage or invalid events: 401, not 400", async () => {
    const bodies = [
      "this is not json",
      "{",
      "",
      event("conversation_inactive", { conversationId: "abc" }),
      `{"token":"x","token":"y"}`,
    ];
    for (const body of bodies) {
      await expectError(await post(mf, WEBHOOK, body), 401, "unauthorized", "");
      await expectError(await post(mf, WEBHOOK, body, { token: "wrong" }), 401, "unauthorized", "");
    }
  });

  test("a body token that is not a string does not authenticate", async () => {
    const body = DRIFT_EXAMPLE.replace(/}$/, `,"token":["${TOKEN}"]}`);
    await expectError(await post(mf, WEBHOOK, body), 401, "unauthorized");
  });

  test("authenticated bad JSON: 400 invalid_json", async () => {
    await expectError(await post(mf, WEBHOOK, '{"orgId":1,', { token: TOKEN }), 400, "invalid_json");
    await expectError(await post(mf, WEBHOOK, "not json", { token: TOKEN }), 400, "invalid_json");
  });

  test("authenticated invalid event: 400 invalid_event at data.conversationId", async () => {
    const bad = event("conversation_inactive", { lastUpdated: 1591813767000, conversationId: "123456789" });
    await expectError(await post(mf, WEBHOOK, bad, { token: TOKEN }), 400, "invalid_event", "data.conversationId");
    // Authenticated by the body token instead.
    await expectError(await post(mf, WEBHOOK, withBodyToken(TOKEN, bad)), 400, "invalid_event", "data.conversationId");
  });

  test("duplicate key with a valid header: 400 duplicate_key", async () => {
    const body = `{"token":"a","token":"${TOKEN}","orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1,"conversationId":2}}`;
    await expectError(await post(mf, WEBHOOK, body, { token: TOKEN }), 400, "duplicate_key", "token");
  });

  test("duplicate token keys never authenticate by themselves", async () => {
    // Whichever of the two a reader would pick, the body is refused.
    for (const body of [
      `{"token":"wrong","token":"${TOKEN}","orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1,"conversationId":2}}`,
      `{"token":"${TOKEN}","token":"wrong","orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1,"conversationId":2}}`,
    ]) {
      await expectError(await post(mf, WEBHOOK, body), 401, "unauthorized");
    }
  });

  test("conversation_status_updated closed: status_updated, manual_push, push", async () => {
    const res = await post(mf, WEBHOOK, CLOSED, { token: TOKEN });
    const body = await expectJson(res, 200);
    assert.deepEqual(Object.keys(body), ["received", "events"]);
    assert.deepEqual(
      body.events.map((e) => e.type),
      ["conversation_status_updated", "conversation_manual_push", "conversation_push"],
    );
    for (const e of body.events) {
      assert.deepEqual(Object.keys(e), ["id", "type"]);
      assert.match(e.id, /^[0-9a-f]{16}$/);
    }
    assert.equal(new Set(body.events.map((e) => e.id)).size, 3, "distinct ids");
    assert.equal(body.received, body.events[0].id, "received is the inbound event's id");

    // The same ids as /convert gives for the same event.
    const converted = await expectJson(await post(mf, "/convert", CLOSED), 200);
    assert.deepEqual(
      body.events.map((e) => e.id),
      converted.events.map((e) => e.id),
    );
  });

  test("conversation_status_updated not closed: only itself", async () => {
    const open = CLOSED.replace('"closed"', '"open"');
    const body = await expectJson(await post(mf, WEBHOOK, open, { token: TOKEN }), 200);
    assert.deepEqual(
      body.events.map((e) => e.type),
      ["conversation_status_updated"],
    );
    assert.equal(body.received, body.events[0].id);
  });

  test("GET and other methods: 405 with Allow: POST", async () => {
    for (const method of ["GET", "PUT", "DELETE"]) {
      const res = await request(mf, WEBHOOK, { method, headers: { "x-verification-token": TOKEN } });
      assert.equal(await expectMethodNotAllowed(res), "POST", method);
    }
  });
});

describe("webhook with two tokens (rotation)", () => {
  let mf;
  before(async () => {
    mf = await startWorker({ DRIFT_VERIFICATION_TOKEN: "old-token,new-token" });
  });
  after(() => mf?.dispose());

  test("both the old and the new token are accepted, in the header or the body", async () => {
    for (const token of ["old-token", "new-token"]) {
      const byHeader = await post(mf, WEBHOOK, DRIFT_EXAMPLE, { token });
      assert.equal(byHeader.status, 200, token);
      assert.equal(await byHeader.text(), DRIFT_EXAMPLE_RECEIVED);
      const byBody = await post(mf, WEBHOOK, withBodyToken(token));
      assert.equal(byBody.status, 200, token);
      assert.equal(await byBody.text(), DRIFT_EXAMPLE_RECEIVED);
    }
  });

  test("a third token, the pair itself, or a part of one: 401", async () => {
    const missing = await expectError(await post(mf, WEBHOOK, DRIFT_EXAMPLE), 401, "unauthorized");
    for (const token of ["third-token", "old-token,new-token", "old", "", " "]) {
      const { text } = await expectError(await post(mf, WEBHOOK, DRIFT_EXAMPLE, { token }), 401, "unauthorized");
      assert.equal(text, missing.text, JSON.stringify(token));
      await expectError(await post(mf, WEBHOOK, withBodyToken(token)), 401, "unauthorized");
    }
  });
});
