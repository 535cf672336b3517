// The entry module's hand-off (src/worker/entry.mjs): the webhook's one wasm
// call plans it, the entry posts it to the outbox, and Drift's answer is
// exactly what it was when workers-rs did both. After a panic, which starts a
// fresh wasm instance, the Durable Objects go on: they keep nothing in the
// wasm between steps. The webhook and the objects never start the operator's
// module. And a delivery log's alarm, which its state machine alone sets, is
// never later than the first thing due.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { receiver, persistDir, removeDir, startWorker, stats, webhook, until, quiet, conversation, INACTIVE } from "./support.mjs";

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function bridge(destinations, extra = {}, consumers = true) {
  const persist = persistDir();
  cleanups.push(() => removeDir(persist));
  const mf = await startWorker({ destinations, persist, extra, consumers });
  cleanups.push(() => mf.dispose());
  return mf;
}

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" };

async function post(mf, event) {
  const res = await mf.dispatchFetch("http://bridge.test/webhooks/drift", { method: "POST", body: JSON.stringify(event) });
  const headers = Object.fromEntries(["content-type", "cache-control"].map((h) => [h, res.headers.get(h)]));
  return { status: res.status, headers, body: await res.text() };
}

test("handed off: 200 with the received ids; the outbox refusing: 503 unavailable, byte for byte", async () => {
  const app = await receiver(() => 200);
  cleanups.push(() => app.close());
  const destinations = [{ name: "push-app", url: app.url, types: ["conversation_push"] }];

  const ok = await post(await bridge(destinations), INACTIVE);
  assert.deepEqual(ok, {
    status: 200,
    headers: JSON_HEADERS,
    body:
      '{"received":"b624515312c8ce89","events":[{"id":"b624515312c8ce89","type":"conversation_inactive"},' +
      '{"id":"c0b44147a772c080","type":"conversation_push"},{"id":"945d7df49ee99b50","type":"conversation_status_updated"}]}',
  });
  await until(() => app.accepted().length === 1, 10000, "the delivery");

  const refused = await post(await bridge(destinations, { DRIFT_BRIDGE_TEST_OUTBOX_FAILS: "1" }), INACTIVE);
  assert.deepEqual(refused, {
    status: 503,
    headers: JSON_HEADERS,
    body: '{"error":{"code":"unavailable","message":"the events could not be stored for delivery; try again","path":""}}',
  });
});

// A panic in either wasm module: the operator's (workers-rs; it also runs the
// consumer's decisions) or the bridge's (the webhook, every object's step).
for (const [module, route, id] of [["the operator's module", "/__test/panic", 7], ["the bridge's module", "/__test/bridge-panic", 8]]) {
  test(`a hand-off to an outbox created before a panic in ${module} works after it`, async () => {
    const app = await receiver(() => 200);
    cleanups.push(() => app.close());
    const mf = await bridge([{ name: "push-app", url: app.url, types: ["conversation_push"] }]);

    // The outbox of the conversation and the delivery log exist, in the first instances.
    const first = conversation(id);
    assert.equal((await webhook(mf, first)).status, 200);
    await until(() => app.accepted().length === 1, 10000, "the first delivery");

    const panicked = await mf.dispatchFetch(`http://bridge.test${route}`, { method: "POST", body: "{}" }).catch((e) => e);
    assert.ok(panicked instanceof Error || panicked.status === 500, "the panic route fails");
    await panicked.text?.();

    // A later event of the same conversation: the same outbox, a fresh instance.
    const later = { ...conversation(id), data: { ...first.data, lastUpdated: first.data.lastUpdated + 60000 } };
    const res = await webhook(mf, later);
    assert.equal(res.status, 200, res.body);
    await until(() => app.accepted().length === 2, 10000, "the delivery after the panic");
    await quiet(500);
    assert.deepEqual(
      app.requests.map((r) => JSON.parse(r.body).data.lastUpdated),
      [first.data.lastUpdated, later.data.lastUpdated],
    );
  });
}

test("the webhook and the Durable Objects run on the bridge's module alone: they never start the operator's", async () => {
  // No queue consumer (its decisions are in the operator's module): what runs
  // per webhook ends with the deliveries on the queue.
  const destinations = [
    { name: "legacy-crm", url: "https://crm.example.com/drift", types: ["conversation_status_updated"] },
    { name: "push-app", url: "https://app.example.com/drift", types: ["conversation_push"] },
  ];
  const mf = await bridge(destinations, {}, false);
  const modules = async () => (await mf.dispatchFetch("http://bridge.test/__test/modules", { method: "POST", body: "" })).json();
  for (const id of [1, 2, 3]) assert.equal((await webhook(mf, conversation(id))).status, 200);
  // The outboxes' alarms forward at once; give them the time to.
  await quiet(1500);
  // The registry (one object: the delivery logs register with it, and each
  // isolate takes its copy of the apps from it) is the operator's; in local
  // workerd it runs in the same isolate, on Workers where it lives.
  const { users } = await modules();
  assert.deepEqual(users.filter((u) => u !== "registry"), [], "the webhook, the outbox or the delivery log called the operator's module");
  // (The stats routes are the operator's: read them last.)
  for (const name of ["legacy-crm", "push-app"]) {
    const log = await stats(mf, "destination", name);
    assert.deepEqual({ deliveries: log.deliveries, rows: log.rows }, { deliveries: { queued: 3 }, rows: 3 }, name);
    assert.ok(log.alarm > Date.now(), `${name}: the recovery alarm is set`);
    assert.equal(log.alarm, log.recordedAlarm, `${name}: the alarm is the one its state machine recorded`);
  }
  for (const id of [1, 2, 3]) {
    assert.deepEqual(await stats(mf, "outbox", `conversation:1:${id}`), { outgoing: 0, deliveries: 0, forwarding: 0, alarm: null });
  }
});

test("a delivery log's alarm is never later than the first thing due: a later retry keeps the earlier recovery alarm", async () => {
  // The state machine records the alarm it sets, in the same transaction as
  // the rows that need it, and moves it only earlier (or, in its own alarm,
  // to exactly the next thing due).
  const GRACE = 8_000;
  const second = (body) => body.includes('"conversationId":2');
  const app = await receiver((attempt, { body }) => (second(body) && attempt === 1 ? 500 : 200));
  cleanups.push(() => app.close());
  const mf = await bridge([{ name: "app", url: app.url, types: ["conversation_push"] }], {
    RECOVERY_GRACE_SECONDS: String(GRACE / 1000),
    DELIVERY_LOG_SECONDS: "3600",
    DEDUP_WINDOW_SECONDS: "3600",
    // The first retry 5 to 10 s after the 500 (the tests' default is at once).
    RETRY_BASE_SECONDS: "10",
  });
  // One delivery, delivered; when its recovery alarm fires, the alarm sets
  // the next: the delivered row's end, an hour away.
  assert.equal((await webhook(mf, conversation(1))).status, 200);
  await until(async () => (await stats(mf, "destination", "app")).alarm > Date.now() + 3000_000, GRACE + 10_000, "the alarm for the delivered row's end");
  // A second delivery: /add sets the alarm to its recovery, GRACE away. The
  // app answers 500, and /settle records a retry due later than that (5 to
  // 10 s, plus GRACE): it must keep the earlier alarm.
  const before = Date.now();
  assert.equal((await webhook(mf, conversation(2))).status, 200);
  await until(async () => (await stats(mf, "destination", "app")).deliveries.retrying === 1, GRACE - 2000, "the retry recorded");
  const { alarm } = await stats(mf, "destination", "app");
  // /add ran between the webhook and the app's first sight of the delivery.
  const received = app.requests.find((r) => second(r.body)).at;
  assert.ok(
    alarm >= before + GRACE && alarm <= received + GRACE,
    `the alarm is ${alarm - before} ms after the second webhook, not its recovery's ${GRACE} (the app had it after ${received - before} ms)`,
  );
});
