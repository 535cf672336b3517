// Operating the bridge, in real workerd with loopback apps that go down and
// come back: the delivery log and its filters, destination health, the
// circuit breaker and its catch-up, pause and resume, bulk recovery, and
// structured logs.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import {
  receiver, persistDir, removeDir, startWorker, webhook, admin, until, quiet, stats, TOKEN, conversation,
} from "./support.mjs";

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function bridge(destinations, extra = {}) {
  const persist = persistDir();
  const mf = await startWorker({ destinations, persist, extra });
  cleanups.push(async () => { await mf.dispose().catch(() => {}); });
  cleanups.push(() => removeDir(persist));
  return mf;
}

async function app(behave) {
  const r = await receiver(behave);
  cleanups.push(() => r.close());
  return r;
}

async function post(mf, path, body) {
  const { ADMIN } = await import("./support.mjs");
  const res = await mf.dispatchFetch(`http://bridge.test${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

const push = (id) => conversation(id, "conversation_push");
const conversationOf = (request) => JSON.parse(request.body).data.conversationId;
const health = async (mf, name) => (await admin(mf, "/admin/destinations")).body.destinations.find((d) => d.name === name);

test("the delivery log lists every delivery, filters it, and shows one with its attempts", async () => {
  const flaky = await app((attempt) => (attempt <= 2 ? 503 : 200));
  const legacy = await app(() => 200);
  const mf = await bridge([
    { name: "flaky", url: flaky.url, types: ["conversation_push"] },
    { name: "legacy", url: legacy.url, types: ["conversation_status_updated"] },
  ]);
  const before = Date.now();
  for (const id of [11, 12]) assert.equal((await webhook(mf, conversation(id))).status, 200);
  await until(() => flaky.accepted().length === 2 && legacy.accepted().length === 2, 20000, "four deliveries");
  await until(async () => (await admin(mf, "/admin/deliveries?status=delivered")).body.deliveries.length === 4, 5000, "settled");

  const all = (await admin(mf, "/admin/deliveries")).body;
  assert.equal(all.deliveries.length, 4);
  assert.equal(all.next, null);
  const only = async (query) => (await admin(mf, `/admin/deliveries?${query}`)).body.deliveries.map((d) => d.id).sort();
  assert.deepEqual(await only("destination=legacy"), all.deliveries.filter((d) => d.destination === "legacy").map((d) => d.id).sort());
  const conv11 = await only("conversation=11");
  assert.equal(conv11.length, 2);
  const pushOf11 = all.deliveries.find((d) => d.scope === "conversation:1:11" && d.type === "conversation_push");
  assert.deepEqual(await only(`event=${pushOf11.eventId}`), [pushOf11.id]);
  assert.equal((await only(`since=${before}&until=${Date.now() + 1}`)).length, 4);
  assert.equal((await only(`until=${before}`)).length, 0);
  assert.equal((await only("status=failed,gone,held,pending")).length, 0);
  assert.equal((await admin(mf, "/admin/deliveries?conversation=abc")).status, 400);
  assert.equal((await admin(mf, "/admin/deliveries?event=xyz")).status, 400);
  assert.equal((await admin(mf, "/admin/deliveries?since=yesterday")).status, 400);

  const first = all.deliveries.find((d) => d.destination === "flaky");
  assert.equal(first.attempts, 3, "the flaky app took each delivery on its third attempt");
  const detail = (await admin(mf, `/admin/deliveries/${first.id}`)).body.delivery;
  assert.deepEqual(detail.attemptLog.map((a) => a.code), [503, 503, 200]);
  assert.deepEqual(detail.attemptLog.map((a) => a.error), ["the app answered 503: 503", "the app answered 503: 503", null]);
  for (const a of detail.attemptLog) {
    assert.ok(Number.isInteger(a.latencyMs) && a.latencyMs >= 0);
    assert.ok(a.at >= before);
  }
  assert.equal(detail.body.token, "[redacted]");
});

test("Load more pages through every log, also one the first page took nothing from", async () => {
  const older = await app(() => 200);
  const newer = await app(() => 200);
  const mf = await bridge([
    { name: "older", url: older.url, types: ["new_message"] },
    { name: "newer", url: newer.url, types: ["conversation_push"] },
  ]);
  // Three for "older", then three newer ones for "newer".
  for (const id of [1, 2, 3]) assert.equal((await webhook(mf, conversation(id, "new_message"))).status, 200);
  await until(() => older.accepted().length === 3, 20000, "older's three");
  for (const id of [4, 5, 6]) assert.equal((await webhook(mf, push(id))).status, 200);
  await until(() => newer.accepted().length === 3, 20000, "newer's three");
  const pages = [];
  let cursor = null;
  for (let page = 0; page < 10; page++) {
    const body = (await admin(mf, `/admin/deliveries?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`)).body;
    pages.push(body.deliveries.map((d) => d.destination));
    cursor = body.next;
    if (cursor === null) break;
  }
  // (A page that ends exactly at the end may be followed by an empty one.)
  assert.deepEqual(pages.filter((p) => p.length > 0), [["newer", "newer"], ["newer", "older"], ["older", "older"]], "newest first, every delivery of both");
});

test("destination health: state, counts, success ratio, latency percentiles, failures", async () => {
  let down = false;
  const r = await app(() => (down ? 500 : 200));
  const mf = await bridge([{ name: "app", url: r.url, types: ["conversation_push"] }], { RETRY_BASE_SECONDS: "60" });
  for (const id of [21, 22, 23]) assert.equal((await webhook(mf, push(id))).status, 200);
  await until(() => r.accepted().length === 3, 10000, "three deliveries");
  down = true;
  assert.equal((await webhook(mf, push(24))).status, 200);
  await until(async () => (await health(mf, "app")).consecutiveFailures === 1, 10000, "the failure recorded");
  const h = await health(mf, "app");
  assert.equal(h.state, "active");
  assert.equal(h.url, r.url);
  assert.deepEqual(h.counts, { pending: 1, held: 0, delivered: 3, failed: 0, gone: 0, replayed: 0 });
  assert.equal(h.lastHour.attempts, 4);
  assert.equal(h.lastHour.succeeded, 3);
  assert.equal(h.lastHour.successRatio, 0.75);
  assert.ok(Number.isInteger(h.lastHour.p50Ms) && h.lastHour.p95Ms >= h.lastHour.p50Ms, JSON.stringify(h.lastHour));
  assert.deepEqual(h.lastDay, h.lastHour);
  assert.equal(h.lastError, "the app answered 500: 500", "with an excerpt of the answer");
  assert.ok(h.lastSuccessAt <= h.lastErrorAt);
  assert.equal(h.held, 0);
  assert.equal(h.nextProbeAt, null);
});

/**
 * A backlog is released in its original order, `rate` a second: each second's
 * share arrives after the earlier seconds' (a share's own deliveries go side
 * by side, so their order among themselves is the network's).
 */
function assertReleasedInOrder(arrived, rate) {
  const share = new Map([...arrived].sort((a, b) => a - b).map((id, i) => [id, Math.floor(i / rate)]));
  const shares = arrived.map((id) => share.get(id));
  assert.deepEqual(shares, [...shares].sort((a, b) => a - b), `released in order, ${rate} a second: ${arrived}`);
}

test("an app that goes down trips its breaker; the others are not slowed; it gets every event exactly once, in order, when it is back", async () => {
  let down = true;
  const flaky = await app(() => (down ? 503 : 200));
  const steady = await app(() => 200);
  const mf = await bridge(
    [
      { name: "flaky", url: flaky.url, types: ["conversation_push"] },
      { name: "steady", url: steady.url, types: ["conversation_push"] },
    ],
    { CIRCUIT_FAILURES: "3", CIRCUIT_PROBE_SECONDS: "1", DRAIN_PER_SECOND: "5", RETRY_BASE_SECONDS: "1" },
  );
  const sentAt = new Map();
  const ids = Array.from({ length: 12 }, (_, i) => 3000 + i);
  for (const id of ids) {
    sentAt.set(id, Date.now());
    assert.equal((await webhook(mf, push(id))).status, 200);
    await quiet(150);
  }
  await until(async () => (await health(mf, "flaky")).state === "tripped", 15000, "the breaker to trip");
  // The healthy app got every event promptly all along.
  await until(() => steady.accepted().length === ids.length, 10000, "the steady app's deliveries");
  const lags = steady.accepted().map((r) => r.at - sentAt.get(conversationOf(r)));
  console.log(`steady app while the other was down: max lag ${Math.max(...lags)} ms`);
  assert.ok(Math.max(...lags) < 3000, `lags ${lags}`);

  const tripped = await health(mf, "flaky");
  assert.ok(tripped.held > 0, JSON.stringify(tripped));
  assert.ok(tripped.nextProbeAt > 0);
  assert.equal((await admin(mf, "/admin/deliveries?destination=flaky&status=failed")).body.deliveries.length, 0, "never dead-lettered for being down");
  const probesBefore = flaky.requests.length;
  await quiet(2500);
  assert.ok(flaky.requests.length - probesBefore <= 2, "while tripped, only probes go out");

  down = false;
  await until(() => new Set(flaky.accepted().map(conversationOf)).size === ids.length, 30000, "the catch-up");
  await quiet(1500);
  const accepted = flaky.accepted().map(conversationOf);
  assert.equal(accepted.length, ids.length, `each event exactly once: ${accepted}`);
  // The probe that got through goes first (each failed probe tried another
  // held delivery), then the rest of the backlog released in its original
  // order, DRAIN_PER_SECOND (5) a second.
  const [, ...backlog] = accepted;
  assertReleasedInOrder(backlog, 5);
  const back = await health(mf, "flaky");
  assert.equal(back.state, "active");
  assert.equal(back.held, 0);
  assert.equal(back.counts.delivered, ids.length);
  assert.match(mf.logs(), /"kind":"circuit","destination":"flaky","state":"tripped"/);
  assert.match(mf.logs(), /"kind":"circuit","destination":"flaky","state":"active"/);
});

test("one event its app keeps refusing while the app is otherwise healthy follows the retry schedule to a dead letter", async () => {
  const r = await app((attempt, { body }) => (conversationOf({ body }) === 4000 ? 422 : 200));
  const mf = await bridge([{ name: "picky", url: r.url, types: ["conversation_push"] }], { CIRCUIT_FAILURES: "2" });
  assert.equal((await webhook(mf, push(4000))).status, 200);
  for (const id of [4001, 4002, 4003]) assert.equal((await webhook(mf, push(id))).status, 200);
  const failed = await until(async () => {
    const list = (await admin(mf, "/admin/deliveries?status=failed")).body.deliveries;
    return list.length === 1 && list[0];
  }, 15000, "the dead letter");
  assert.equal(failed.attempts, 12, "every attempt of the schedule");
  assert.match(failed.reason, /gave up after 12 attempts; last: the app answered 422/);
  assert.equal((await health(mf, "picky")).state, "active", "never tripped by one event");
  await until(() => r.accepted().length === 3, 10000, "the other events");
});

test("pause holds every delivery; resume drains them in order", async () => {
  const r = await app(() => 200);
  const mf = await bridge([{ name: "app", url: r.url, types: ["conversation_push"] }], { DRAIN_PER_SECOND: "3" });
  const paused = await post(mf, "/admin/destinations/app/pause");
  assert.equal(paused.status, 200);
  assert.equal(paused.body.state, "paused");
  const ids = [5001, 5002, 5003, 5004, 5005, 5006, 5007];
  for (const id of ids) assert.equal((await webhook(mf, push(id))).status, 200);
  await until(async () => (await health(mf, "app")).held === ids.length, 10000, "all held");
  await quiet(1000);
  assert.equal(r.requests.length, 0, "nothing sent while paused");
  assert.equal((await health(mf, "app")).state, "paused");

  const resumed = await post(mf, "/admin/destinations/app/resume");
  assert.deepEqual(resumed.body, { destination: "app", state: "active", draining: ids.length });
  const started = Date.now();
  await until(() => r.accepted().length === ids.length, 15000, "the drain");
  const took = Date.now() - started;
  assertReleasedInOrder(r.accepted().map(conversationOf), 3);
  assert.deepEqual([...r.accepted().map(conversationOf)].sort(), ids);
  assert.ok(took >= 1500, `7 deliveries at 3 a second take more than 2 ticks (${took} ms)`);
  assert.equal((await post(mf, "/admin/destinations/nope/pause")).status, 404);
  assert.equal((await admin(mf, "/admin/destinations/app/pause")).status, 405);
});

test("bulk recovery queues every failed delivery since a time once more, with its original webhook-id", async () => {
  let healthy = false;
  const r = await app(() => (healthy ? 200 : 500));
  // A breaker that never trips here, so that they really fail.
  const mf = await bridge([{ name: "app", url: r.url, types: ["conversation_push"] }], { CIRCUIT_FAILURES: "1000", DRAIN_PER_SECOND: "50" });
  const since = Date.now();
  for (const id of [6001, 6002, 6003]) assert.equal((await webhook(mf, push(id))).status, 200);
  const failed = await until(async () => {
    const list = (await admin(mf, "/admin/deliveries?status=failed")).body.deliveries;
    return list.length === 3 && list;
  }, 20000, "three dead letters");
  healthy = true;
  const bad = await post(mf, "/admin/destinations/app/recover", { since: "yesterday" });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.path, "since");
  const none = await post(mf, "/admin/destinations/app/recover", { since: Date.now() + 60000, status: ["failed"] });
  assert.deepEqual(none.body, { destination: "app", recovered: 0, more: false });
  const recovered = await post(mf, "/admin/destinations/app/recover", { since, status: ["failed"] });
  assert.equal(recovered.status, 202);
  assert.deepEqual(recovered.body, { destination: "app", recovered: 3, more: false });
  await until(() => r.accepted().length === 3, 10000, "the recovered deliveries");
  assert.deepEqual(
    r.accepted().map((q) => q.headers["webhook-id"]).sort(),
    failed.map((d) => d.eventId).sort(),
    "original webhook-ids",
  );
  const again = await post(mf, "/admin/destinations/app/recover", { since, status: ["failed"] });
  assert.equal(again.body.recovered, 0, "recovered once: they are replayed now");
  assert.equal((await admin(mf, "/admin/deliveries?status=replayed")).body.deliveries.length, 3);
});

test("structured logs: one JSON line per webhook and per attempt, no secrets", async () => {
  const r = await app((attempt) => (attempt === 1 ? 500 : 200));
  const mf = await bridge([{ name: "app", url: r.url, types: ["conversation_push"] }]);
  assert.equal((await webhook(mf, push(7001))).status, 200);
  const refused = await mf.dispatchFetch("http://bridge.test/webhooks/drift", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...push(7002), token: "wrong" }),
  });
  assert.equal(refused.status, 401);
  await until(() => r.accepted().length === 1, 10000, "the delivery");
  // The answer is reported to the log within REPORT_WITHIN_MS, and logged then.
  const logged = () => mf.logs().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  await until(() => logged().some((l) => l.kind === "delivery" && l.status === "delivered"), 5000, "the delivered attempt's line");
  await quiet(500);
  const lines = logged();
  const hooks = lines.filter((l) => l.kind === "webhook");
  assert.deepEqual(hooks.map((l) => l.status), [200, 401]);
  assert.equal(hooks[0].type, "conversation_push");
  assert.equal(hooks[0].deliveries, 1);
  assert.match(hooks[0].eventId, /^[0-9a-f]{16}$/);
  const attempts = lines.filter((l) => l.kind === "delivery");
  assert.deepEqual(attempts.map((l) => [l.attempt, l.status, l.code]), [[1, "pending", 500], [2, "delivered", 200]]);
  for (const l of attempts) {
    assert.equal(l.destination, "app");
    assert.ok(Number.isInteger(l.latencyMs));
    assert.match(l.delivery, /^[0-9a-f]{16}\.app$/);
  }
  assert.ok(!mf.logs().includes(TOKEN), "no token in the logs");
});

test("an object with all its rows gone holds no alarm, also after a pause and resume", async () => {
  const r = await app(() => 200);
  const mf = await bridge([{ name: "app", url: r.url, types: ["conversation_push"] }], {
    DEDUP_WINDOW_SECONDS: "1", DELIVERY_LOG_SECONDS: "1",
  });
  await post(mf, "/admin/destinations/app/pause");
  assert.equal((await webhook(mf, push(8001))).status, 200);
  await until(async () => (await health(mf, "app")).held === 1, 5000, "held");
  await post(mf, "/admin/destinations/app/resume");
  await until(() => r.accepted().length === 1, 5000, "delivered");
  // Then only its metrics are left (kept 48 hours by the minute, 30 days by
  // the hour), and the one alarm that forgets them.
  await until(async () => {
    const s = await stats(mf, "destination", "app");
    return s.rows === 0 && (s.alarm === null || s.alarm > Date.now() + 40 * 3600_000);
  }, 10000, "an object without deliveries and no alarm but its metrics'");
});

test("deliveries to an app share its connections, whatever its 2xx answers carry", async () => {
  // Every other answer has a body past what is read of one (64 KiB): its
  // connection is given up, and the next delivery opens another.
  const big = "x".repeat(100 * 1024);
  const r = await app((attempt, { body }) => (JSON.parse(body).data.conversationId % 10 === 0 ? { status: 200, body: big } : 200));
  const mf = await bridge([{ name: "app", url: r.url, types: ["conversation_push"] }]);
  const ids = Array.from({ length: 40 }, (_, i) => 7001 + i);
  for (const id of ids) assert.equal((await webhook(mf, push(id))).status, 200);
  await until(() => r.accepted().length === ids.length, 15000, "every delivery");
  // One connection a delivery was what cancelling each answer cost (a new
  // TCP and, for a real app, TLS handshake every time).
  assert.ok(r.connections() <= 12, `${ids.length} deliveries, one after another, took ${r.connections()} connections`);
  const list = (await admin(mf, "/admin/deliveries?destination=app&limit=100")).body.deliveries;
  assert.equal(list.filter((d) => d.status === "delivered").length, ids.length);
});
