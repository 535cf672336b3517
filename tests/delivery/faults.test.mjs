// Reliable delivery through faults: the built worker in workerd with local
// Durable Objects, delivering to real receivers on loopback.
// Each test asserts what each receiver got: every event, accepted once, with
// a valid signature, and what ended in the dead-letter store.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import {
  receiver, freePort, persistDir, removeDir, startWorker, webhook, admin, until, quiet,
  verifySignature, INACTIVE, conversation, TOKEN,
} from "./support.mjs";

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A worker and a persistence folder, torn down after the suite. */
async function bridge(destinations, options = {}) {
  const persist = options.persist ?? persistDir();
  const mf = await startWorker({ destinations, persist, ...options });
  cleanups.push(async () => { await mf.dispose().catch(() => {}); });
  if (!options.persist) cleanups.push(() => removeDir(persist));
  return mf;
}

async function app(behave, port) {
  const r = await receiver(behave, port);
  cleanups.push(() => r.close());
  return r;
}

const types = (requests) => requests.map((r) => JSON.parse(r.body).type);

test("two apps, a legacy one and a push one: each gets exactly its events, signed, with its token handling", async () => {
  const legacy = await app(() => 200);
  const push = await app(() => 200);
  const mf = await bridge([
    { name: "legacy-crm", url: legacy.url, types: ["conversation_status_updated"] },
    { name: "push-app", url: push.url, types: ["conversation_push"], token: "strip", signingSecret: "SIGNING_SECRET" },
  ]);
  const res = await webhook(mf, INACTIVE);
  assert.equal(res.status, 200, res.body);
  const ids = Object.fromEntries(JSON.parse(res.body).events.map((e) => [e.type, e.id]));

  await until(() => legacy.accepted().length === 1 && push.accepted().length === 1, 10000, "both deliveries");
  await quiet(500);
  assert.deepEqual(types(legacy.requests), ["conversation_status_updated"]);
  assert.deepEqual(types(push.requests), ["conversation_push"]);

  const close = legacy.requests[0];
  assert.equal(
    close.body,
    `{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":123456789,"status":"closed","changedAt":1591813767000},"token":"${TOKEN}"}`,
    "token kept by default, digits exact",
  );
  assert.equal(close.headers["webhook-id"], ids.conversation_status_updated);
  assert.equal(close.headers["content-type"], "application/json");
  assert.match(close.headers["user-agent"], /^drift-bridge\/0\.1\.0/);
  assert.match(close.headers["webhook-timestamp"], /^\d{10}$/);
  assert.equal(close.headers["webhook-signature"], undefined, "no secret, no signature");

  const p = push.requests[0];
  assert.equal(p.body, `{"orgId":1,"type":"conversation_push","data":{"lastUpdated":1591813767000,"conversationId":123456789}}`, "token stripped");
  assert.equal(p.headers["webhook-id"], ids.conversation_push);
  assert.ok(verifySignature(p), "valid Standard Webhooks signature");
  assert.ok(!verifySignature({ ...p, body: p.body + " " }), "the check can fail");
});

test("token replaced by the destination's own secret", async () => {
  const r = await app(() => 200);
  const mf = await bridge([{ name: "app", url: r.url, types: ["conversation_inactive"], token: "replace", tokenSecret: "APP_TOKEN" }]);
  assert.equal((await webhook(mf, INACTIVE)).status, 200);
  await until(() => r.accepted().length === 1);
  assert.equal(JSON.parse(r.requests[0].body).token, "app-specific-token");
});

test("a receiver that fails its first 2 attempts gets the event once, on the 3rd", async () => {
  const r = await app((attempt) => (attempt <= 2 ? 500 : 200));
  const mf = await bridge([{ name: "flaky", url: r.url, types: ["conversation_push"], signingSecret: "SIGNING_SECRET" }]);
  assert.equal((await webhook(mf, INACTIVE)).status, 200);
  await until(() => r.accepted().length === 1, 10000, "the third attempt");
  await quiet();
  assert.deepEqual(r.requests.map((q) => q.status), [500, 500, 200]);
  assert.equal(new Set(r.requests.map((q) => q.headers["webhook-id"])).size, 1, "one webhook-id for all attempts");
  assert.ok(r.requests.every((q) => verifySignature(q)), "every attempt is signed");
  assert.deepEqual((await admin(mf, "/admin/deliveries?status=failed")).body.deliveries, []);
});

test("a receiver that times out is tried again and accepts once", async () => {
  const r = await app((attempt) => (attempt === 1 ? "hang" : 200));
  const mf = await bridge([{ name: "slow", url: r.url, types: ["conversation_push"] }]);
  assert.equal((await webhook(mf, INACTIVE)).status, 200);
  await until(() => r.accepted().length === 1, 10000, "the retry after the timeout");
  await quiet();
  assert.deepEqual(r.requests.map((q) => q.status), ["hang", 200]);
  assert.equal(r.accepted().length, 1);
});

test("410 Gone stops that message at once and is kept as gone", async () => {
  const r = await app(() => 410);
  const mf = await bridge([{ name: "gone-app", url: r.url, types: ["conversation_push"] }]);
  assert.equal((await webhook(mf, INACTIVE)).status, 200);
  const gone = await until(async () => {
    const list = (await admin(mf, "/admin/deliveries?status=gone")).body.deliveries;
    return list.length === 1 && list;
  }, 10000, "the gone record");
  await quiet();
  assert.equal(r.requests.length, 1, "no retry after 410");
  assert.equal(gone[0].destination, "gone-app");
  assert.equal(gone[0].type, "conversation_push");
  assert.match(gone[0].reason, /410/);
  assert.deepEqual((await admin(mf, "/admin/deliveries?status=failed")).body.deliveries, []);
});

test("a receiver that is down, then comes back, gets the event once", async () => {
  const port = await freePort();
  const destinations = [{ name: "flapping", url: `http://127.0.0.1:${port}/hook`, types: ["conversation_push"] }];
  // Retries after about 1, 3 and 9 seconds: the app comes back after the first.
  const mf = await bridge(destinations, { extra: { RETRY_BASE_SECONDS: "1" } });
  assert.equal((await webhook(mf, INACTIVE)).status, 200);
  await quiet(1200);
  const r = await app(() => 200, port);
  await until(() => r.accepted().length === 1, 20000, "delivery once the app is back");
  await quiet();
  assert.equal(r.requests.length, 1);
  assert.equal(JSON.parse(r.requests[0].body).type, "conversation_push");
});

test("after the last retry the delivery is dead-lettered, listed, and replayed once", async () => {
  let healthy = false;
  const r = await app(() => (healthy ? 200 : 500));
  const mf = await bridge([{ name: "broken", url: r.url, types: ["conversation_push"] }]);
  assert.equal((await webhook(mf, INACTIVE)).status, 200);
  const failed = await until(async () => {
    const list = (await admin(mf, "/admin/deliveries?status=failed")).body.deliveries;
    return list.length === 1 && list;
  }, 15000, "the dead letter");
  // Twelve real attempts, each made by the delivery log itself.
  assert.equal(r.requests.length, 12, "every attempt was made");
  assert.equal(failed[0].destination, "broken");
  assert.equal(failed[0].attempts, 12);
  assert.match(failed[0].reason, /gave up after 12 attempts; last: the app answered 500/);
  assert.equal(failed[0].type, "conversation_push");
  const detail = (await admin(mf, `/admin/deliveries/${failed[0].id}`)).body.delivery;
  assert.equal(detail.body.type, "conversation_push");
  assert.equal(detail.body.token, "[redacted]", "Drift's token never shown");
  assert.deepEqual(detail.attemptLog.map((a) => a.code), Array(12).fill(500));

  const unauthorized = await mf.dispatchFetch("http://bridge.test/admin/deliveries?status=failed");
  assert.equal(unauthorized.status, 401);

  healthy = true;
  const replay = await admin(mf, `/admin/deliveries/${failed[0].id}/replay`, "POST");
  assert.equal(replay.status, 202);
  assert.deepEqual(replay.body, { replayed: failed[0].id, as: `${failed[0].id}.r1` });
  await until(() => r.accepted().length === 1, 10000, "the replayed delivery");
  await quiet();
  assert.equal(r.accepted().length, 1);
  assert.equal(r.accepted()[0].headers["webhook-id"], failed[0].eventId);
  assert.deepEqual((await admin(mf, "/admin/deliveries?status=failed")).body.deliveries, []);
  assert.equal((await admin(mf, "/admin/deliveries?status=replayed")).body.deliveries.length, 1);
  assert.equal((await admin(mf, `/admin/deliveries/${failed[0].id}/replay`, "POST")).status, 409);
  assert.equal((await admin(mf, "/admin/deliveries/nope.broken/replay", "POST")).status, 404);
  const unknown = await admin(mf, "/admin/deliveries/0123456789abcdef.broken/replay", "POST");
  assert.equal(unknown.status, 404);
  assert.match(unknown.body.error.message, /expired or never existed/);
  const delivered = (await admin(mf, "/admin/deliveries?status=delivered")).body.deliveries;
  assert.deepEqual(delivered.map((d) => d.id), [`${failed[0].id}.r1`]);
});

test("Drift sending the same webhook twice, in turn and at once, delivers each event once", async () => {
  const r = await app(() => 200);
  const mf = await bridge([{ name: "all", url: r.url, types: ["*"] }]);
  assert.equal((await webhook(mf, conversation(1))).status, 200);
  assert.equal((await webhook(mf, conversation(1))).status, 200, "a duplicate is answered 200, not delivered");
  // Two copies racing: one may be told 503 busy; Drift retries it.
  const racing = await Promise.all([webhook(mf, conversation(2)), webhook(mf, conversation(2))]);
  for (const res of racing) {
    assert.ok([200, 503].includes(res.status), res.body);
    if (res.status === 503) assert.equal((await webhook(mf, conversation(2))).status, 200);
  }
  await until(() => r.accepted().length === 6, 10000, "3 events x 2 conversations");
  await quiet();
  const seen = r.requests.map((q) => `${JSON.parse(q.body).data.conversationId}/${JSON.parse(q.body).type}`).sort();
  assert.deepEqual(seen, [
    "1/conversation_inactive", "1/conversation_push", "1/conversation_status_updated",
    "2/conversation_inactive", "2/conversation_push", "2/conversation_status_updated",
  ]);
});

test("inactive and push for the same conversation: overlapping subscriptions get each event once", async () => {
  const both = await app(() => 200);
  const legacy = await app(() => 200);
  const mf = await bridge([
    { name: "both", url: both.url, types: ["conversation_inactive", "conversation_push"] },
    { name: "legacy", url: legacy.url, types: ["conversation_status_updated"] },
  ]);
  assert.equal((await webhook(mf, INACTIVE)).status, 200);
  // Drift's own conversation_push for the same conversation and time.
  assert.equal((await webhook(mf, { ...INACTIVE, type: "conversation_push" })).status, 200);
  await until(() => both.accepted().length === 2 && legacy.accepted().length === 1, 10000, "deliveries");
  await quiet();
  assert.deepEqual(types(both.requests).sort(), ["conversation_inactive", "conversation_push"]);
  assert.deepEqual(types(legacy.requests), ["conversation_status_updated"]);
});

test("a worker restart between hand-off and delivery loses nothing", async () => {
  // The app is down while the first life takes the webhook: the delivery is
  // stored in its log and waits for a retry when the worker stops.
  const port = await freePort();
  const destinations = [{ name: "after-restart", url: `http://127.0.0.1:${port}/hook`, types: ["conversation_push"] }];
  const persist = persistDir();
  cleanups.push(() => removeDir(persist));
  const first = await startWorker({ destinations, persist, extra: { RETRY_BASE_SECONDS: "1" } });
  assert.equal((await webhook(first, INACTIVE)).status, 200);
  await quiet(300);
  await first.dispose();
  // Second life, same storage: the log's alarm survives and delivers.
  const r = await app(() => 200, port);
  await bridge(destinations, { persist, extra: { RETRY_BASE_SECONDS: "1" } });
  await until(() => r.accepted().length === 1, 20000, "delivery after the restart");
  await quiet(2500);
  assert.equal(r.requests.length, 1);
  assert.equal(JSON.parse(r.requests[0].body).type, "conversation_push");
});

test("invalid destinations are reported precisely, to the admin only, and nothing is accepted", async () => {
  const mf = await bridge([
    { name: "ok", url: "https://example.com/hook", types: ["*"] },
    { name: "plain", url: "http://example.com/hook", types: ["*"] },
  ]);
  const publicHealth = await (await mf.dispatchFetch("http://bridge.test/health")).json();
  assert.deepEqual(publicHealth, { status: "misconfigured", version: "0.1.0", configured: false, problems: 1 });
  const health = (await admin(mf, "/health")).body;
  assert.deepEqual(health.details.problems, [
    "DESTINATIONS[1].url: must be https (plain http only for loopback: localhost, 127.0.0.0/8, [::1])",
  ]);
  const res = await webhook(mf, INACTIVE);
  assert.equal(res.status, 503);
  assert.equal(JSON.parse(res.body).error.code, "not_configured");
  assert.doesNotMatch(res.body, /example\.com|DESTINATIONS|plain/, "the public learns nothing of the configuration");
});
