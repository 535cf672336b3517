// The entry module's hand-off (src/worker/entry.mjs): the webhook's one wasm
// call plans it, the entry hands each app's share to its delivery log, and
// Drift's answer is exactly what it was when workers-rs did both. After a
// panic, which starts a fresh wasm instance, the Durable Objects go on: they
// keep nothing in the wasm between steps. The webhook and the delivery logs
// never start the operator's module. A delivery log's alarm, which its state
// machine alone sets, is never later than the first thing due. And the
// entry does what each step asks in the order the native tests' runtime
// does (tests/fixtures/trace-basic.json).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, TOKEN, receiver, persistDir, removeDir, startWorker, stats, webhook, until, quiet, conversation, INACTIVE } from "./support.mjs";

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function bridge(destinations, extra = {}) {
  const persist = persistDir();
  cleanups.push(() => removeDir(persist));
  const mf = await startWorker({ destinations, persist, extra });
  cleanups.push(() => mf.dispose());
  return mf;
}

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" };

async function post(mf, event) {
  const res = await mf.dispatchFetch("http://bridge.test/webhooks/drift", { method: "POST", body: JSON.stringify(event) });
  const headers = Object.fromEntries(["content-type", "cache-control"].map((h) => [h, res.headers.get(h)]));
  return { status: res.status, headers, body: await res.text() };
}

test("handed off: 200 with the received ids; a delivery log refusing: 503 unavailable, byte for byte", async () => {
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

  const refused = await post(await bridge(destinations, { TEST_LOG_FAILS: "1" }), INACTIVE);
  assert.deepEqual(refused, {
    status: 503,
    headers: JSON_HEADERS,
    body: '{"error":{"code":"unavailable","message":"the events could not be stored for delivery; try again","path":""}}',
  });
});

// A panic in either wasm module: the operator's (workers-rs, the admin API
// and the registry) or the bridge's (the webhook, every delivery log's step).
for (const [module, route, id] of [["the operator's module", "/__test/panic", 7], ["the bridge's module", "/__test/bridge-panic", 8]]) {
  test(`a hand-off to a delivery log created before a panic in ${module} works after it`, async () => {
    const app = await receiver(() => 200);
    cleanups.push(() => app.close());
    const mf = await bridge([{ name: "push-app", url: app.url, types: ["conversation_push"] }]);

    // The delivery log exists, in the first instances.
    const first = conversation(id);
    assert.equal((await webhook(mf, first)).status, 200);
    await until(() => app.accepted().length === 1, 10000, "the first delivery");

    const panicked = await mf.dispatchFetch(`http://bridge.test${route}`, { method: "POST", body: "{}" }).catch((e) => e);
    assert.ok(panicked instanceof Error || panicked.status === 500, "the panic route fails");
    await panicked.text?.();

    // A later event of the same conversation: the same log, a fresh instance.
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

test("the webhook and the delivery logs run on the bridge's module alone: they never start the operator's", async () => {
  // Apps that never answer (nothing listens there): what runs per webhook is
  // the hand-off, the sends and the retries.
  const destinations = [
    { name: "legacy-crm", url: "http://127.0.0.1:9/drift", types: ["conversation_status_updated"] },
    { name: "push-app", url: "http://127.0.0.1:9/drift", types: ["conversation_push"] },
  ];
  const mf = await bridge(destinations, { LOCAL_DEVELOPMENT: "1" });
  const modules = async () => (await mf.dispatchFetch("http://bridge.test/__test/modules", { method: "POST", body: "" })).json();
  for (const id of [1, 2, 3]) assert.equal((await webhook(mf, conversation(id))).status, 200);
  await quiet(1500);
  // The registry (one object: the delivery logs register with it, and each
  // isolate takes its copy of the apps from it) is the operator's; in local
  // workerd it runs in the same isolate, on Workers where it lives.
  const { users } = await modules();
  assert.deepEqual(users.filter((u) => u !== "registry"), [], "the webhook or a delivery log called the operator's module");
  for (const name of ["legacy-crm", "push-app"]) {
    const log = await stats(mf, "destination", name);
    assert.equal(log.rows, 3, name);
    assert.ok(log.alarm > Date.now(), `${name}: the alarm for the retries is set`);
    assert.equal(log.alarm, log.recordedAlarm, `${name}: the alarm is the one its state machine recorded`);
  }
});

test("a delivery log's alarm is never later than the first thing due: a retry's", async () => {
  // The state machine records the alarm it sets, in the same transaction as
  // the rows that need it, and moves it only earlier (or, in its own alarm,
  // to exactly the next thing due).
  const second = (body) => body.includes('"conversationId":2');
  const app = await receiver((attempt, { body }) => (second(body) && attempt === 1 ? 500 : 200));
  cleanups.push(() => app.close());
  const mf = await bridge([{ name: "app", url: app.url, types: ["conversation_push"] }], {
    DELIVERY_LOG_SECONDS: "3600",
    DEDUP_WINDOW_SECONDS: "3600",
    // The first retry 2.5 to 5 s after the 500 (the tests' default is at once).
    RETRY_BASE_SECONDS: "5",
  });
  assert.equal((await webhook(mf, conversation(1))).status, 200);
  await until(() => app.accepted().length === 1, 5000, "the first delivery");
  assert.equal((await webhook(mf, conversation(2))).status, 200);
  await until(async () => (await stats(mf, "destination", "app")).deliveries.retrying === 1, 4000, "the retry recorded");
  const failedAt = app.requests.find((r) => second(r.body)).at;
  const { alarm, recordedAlarm } = await stats(mf, "destination", "app");
  assert.equal(alarm, recordedAlarm, "the alarm is the one its state machine recorded");
  assert.ok(alarm <= failedAt + 5_000 + 1_000, `the alarm is ${alarm - failedAt} ms after the 500, later than the retry (at most 5 s)`);
  await until(() => app.accepted().length === 2, 10_000, "the retry, from the alarm");
});

test("the entry does what each step asks in the order the native tests' runtime does", async () => {
  // tests/delivery_trace.rs runs the same scenario in the native runtime
  // (tests/support/world.rs); both execute Effects::actions, and both must
  // see the steps of the fixture, as its procedure says.
  const fixture = JSON.parse(readFileSync(join(ROOT, "tests/fixtures/trace-basic.json"), "utf8"));
  const answers = [...fixture.answers];
  const app = await receiver(() => answers.shift() ?? 200);
  cleanups.push(() => app.close());
  const destinations = JSON.parse(fixture.vars.DESTINATIONS).map((d) => ({ ...d, url: app.url }));
  const { DESTINATIONS, ...vars } = fixture.vars;
  // The defaults where the tests' support changes them (the native runtime has the defaults).
  const mf = await bridge(destinations, { RECOVERY_GRACE_SECONDS: "300", DELIVERY_TIMEOUT_MS: "10000", ...vars });
  const [first, second] = fixture.webhooks.map((w) => ({ ...JSON.parse(w), token: TOKEN }));
  assert.equal((await webhook(mf, first)).status, 200);
  await quiet(2000);
  assert.equal((await webhook(mf, second)).status, 200);
  await quiet(10_000);
  const trace = await (await mf.dispatchFetch("http://bridge.test/__test/trace")).json();
  assert.deepEqual(trace, fixture.steps);
});
