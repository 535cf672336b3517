// An app's outage or its bad answers never wedge its deliveries, in real
// workerd with a loopback app, as a new user would try it (wrangler dev,
// CIRCUIT_FAILURES=3, CIRCUIT_PROBE_SECONDS=1, DRAIN_PER_SECOND=2, the retry
// schedule's default base of 10 s):
// - an app that refuses a few events gets every other one at once;
// - after an outage, the backlog drains while events keep arriving at three
//   times DRAIN_PER_SECOND, and the app is current again;
// - a destination removed from the configuration is not probed, and its
//   deliveries stay listed, marked, until their retention ends.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { receiver, persistDir, removeDir, startWorker, webhook, admin, until, quiet, conversation } from "./support.mjs";

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

// The tests' 400 ms deadline is for tests of timeouts: here an app on a busy
// machine that answers late must not count as one that failed (a timed-out
// request that the app did take is sent again, as it must be).
const SETTINGS = { CIRCUIT_FAILURES: "3", CIRCUIT_PROBE_SECONDS: "1", DRAIN_PER_SECOND: "2", RETRY_BASE_SECONDS: "10", DELIVERY_TIMEOUT_MS: "5000" };

async function bridge(destinations, extra = {}, persist = persistDir()) {
  const mf = await startWorker({ destinations, persist, extra: { ...SETTINGS, ...extra } });
  cleanups.push(async () => { await mf.dispose().catch(() => {}); });
  return { mf, persist };
}

async function app(behave) {
  const r = await receiver(behave);
  cleanups.push(() => r.close());
  return r;
}

const push = (id) => conversation(id, "conversation_push");
const conversationOf = (request) => JSON.parse(request.body).data.conversationId;
const health = async (mf, name) => (await admin(mf, "/admin/destinations")).body.destinations.find((d) => d.name === name);

test("an app that answers 404 to five conversations it does not know gets the 20 it knows within 60 s, at once", async () => {
  const unknown = new Set([101, 102, 103, 104, 105]);
  const r = await app((attempt, req) => (unknown.has(conversationOf(req)) ? 404 : 200));
  const { mf } = await bridge([{ name: "app", url: r.url, types: ["conversation_push"] }]);
  for (const id of unknown) assert.equal((await webhook(mf, push(id))).status, 200);
  await until(() => r.requests.length >= 5, 10000, "the five refused");
  const sent = new Map();
  for (let id = 201; id <= 220; id++) {
    sent.set(id, Date.now());
    assert.equal((await webhook(mf, push(id))).status, 200);
  }
  await until(() => r.accepted().length === 20, 60000, "the 20 known conversations");
  const lags = r.accepted().map((q) => q.at - sent.get(conversationOf(q)));
  console.log(`20 of 20 arrived; the slowest ${Math.max(...lags)} ms after its 200`);
  assert.ok(Math.max(...lags) < 5000, `without delay: ${lags}`);
  const h = await health(mf, "app");
  assert.equal(h.state, "active", "a refused event is that event's problem, not the app's");
  assert.equal(h.consecutiveFailures, 0);
  // The five follow their own schedule: retried, not dropped, not holding anything.
  const five = (await admin(mf, "/admin/deliveries?status=pending")).body.deliveries;
  assert.equal(five.length, 5, JSON.stringify(five));
});

test("after a 40-event outage, with events arriving at 3 x DRAIN_PER_SECOND, the backlog drains before the stream ends and the last events arrive within 5 s", async () => {
  let down = true;
  const r = await app(() => (down ? 503 : 200));
  const { mf } = await bridge([{ name: "app", url: r.url, types: ["conversation_push"] }]);
  const sent = new Map();
  let id = 1000;
  const send = async () => {
    const n = id++;
    sent.set(n, Date.now());
    assert.equal((await webhook(mf, push(n))).status, 200);
  };
  // The outage: 40 events, at 10 a second.
  for (let i = 0; i < 40; i++) {
    await send();
    await quiet(100);
  }
  await until(async () => (await health(mf, "app")).state === "tripped", 15000, "the breaker to trip");
  const outage = [...sent.keys()];
  // The app comes back; events keep coming, 6 a second, for 45 s.
  down = false;
  const streamStart = Date.now();
  while (Date.now() - streamStart < 45_000) {
    const tick = Date.now();
    await send();
    await quiet(Math.max(0, 166 - (Date.now() - tick)));
  }
  const streamEnd = Date.now();
  await until(() => new Set(r.accepted().map(conversationOf)).size === sent.size, 20000, "every event");
  const arrived = new Map(r.accepted().map((q) => [conversationOf(q), q.at]));
  const lastOfBacklog = Math.max(...outage.map((n) => arrived.get(n)));
  console.log(`backlog of ${outage.length} drained ${((lastOfBacklog - streamStart) / 1000).toFixed(1)} s after the app came back; the stream lasted ${((streamEnd - streamStart) / 1000).toFixed(1)} s`);
  assert.ok(lastOfBacklog < streamEnd, "the backlog drained before the stream ended");
  const last = [...sent].slice(-30);
  const lag = Math.max(...last.map(([n, at]) => arrived.get(n) - at));
  console.log(`the last 30 events arrived at most ${lag} ms after their 200`);
  assert.ok(lag <= 5000, `the last events arrive within 5 s of their 200: ${lag} ms`);
  // Each once: the app answered 503 before, so only the 200s count.
  assert.equal(r.accepted().length, sent.size, "every event exactly once");
  assert.equal((await health(mf, "app")).held, 0);
});

test("a destination removed from the configuration is not probed; its deliveries stay listed, marked, until their retention ends", async () => {
  const r = await app(() => 503);
  const other = await app(() => 200);
  const persist = persistDir();
  cleanups.push(() => removeDir(persist));
  const first = await startWorker({
    destinations: [
      { name: "old-app", url: r.url, types: ["conversation_push"] },
      { name: "other", url: other.url, types: ["conversation_push"] },
    ],
    persist,
    extra: SETTINGS,
  });
  for (let n = 1; n <= 4; n++) assert.equal((await webhook(first, push(300 + n))).status, 200);
  await until(async () => (await health(first, "old-app")).state === "tripped", 15000, "the breaker to trip");
  await first.dispose();
  // Redeployed without it.
  const { mf } = await bridge([{ name: "other", url: other.url, types: ["conversation_push"] }], {}, persist);
  await quiet(3000);
  const seen = r.requests.length;
  await quiet(3000);
  assert.equal(r.requests.length, seen, "no more probes");
  // Held ones fail at once; those waiting for a retry when their time comes
  // (they can no longer be sent).
  await until(async () => (await health(mf, "old-app")).counts.failed === 4, 30000, "all four failed");
  const listed = (await admin(mf, "/admin/deliveries?destination=old-app")).body.deliveries;
  assert.equal(listed.length, 4, JSON.stringify(listed));
  for (const d of listed) {
    assert.equal(d.configured, false);
    assert.equal(d.status, "failed");
    assert.match(d.reason, /its app old-app was removed/);
  }
  const all = (await admin(mf, "/admin/deliveries")).body.deliveries;
  assert.equal(all.filter((d) => d.destination === "old-app").length, 4, "listed with the others");
  const destinations = (await admin(mf, "/admin/destinations")).body.destinations;
  const old = destinations.find((d) => d.name === "old-app");
  assert.equal(old.configured, false);
  assert.equal(old.url, undefined, "no URL: it is not in the configuration");
  assert.equal(old.counts.failed, 4);
});
