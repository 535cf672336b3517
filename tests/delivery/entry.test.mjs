// The entry module's hand-off (src/worker/entry.mjs): the webhook's one wasm
// call plans it, the entry posts it to the outbox, and Drift's answer is
// exactly what it was when workers-rs did both. And after a panic, which
// starts a fresh wasm instance, the Durable Objects that lived in the old one
// are made again: a hand-off to an outbox created before the panic still
// works, and delivers.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { receiver, persistDir, removeDir, startWorker, webhook, until, quiet, conversation, INACTIVE } from "./support.mjs";

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

test("a hand-off to an outbox created before a panic works after it", async () => {
  const app = await receiver(() => 200);
  cleanups.push(() => app.close());
  const mf = await bridge([{ name: "push-app", url: app.url, types: ["conversation_push"] }]);

  // The outbox of conversation 7 exists, in the first wasm instance.
  const first = conversation(7);
  assert.equal((await webhook(mf, first)).status, 200);
  await until(() => app.accepted().length === 1, 10000, "the first delivery");

  const panicked = await mf.dispatchFetch("http://bridge.test/__test/panic", { method: "POST", body: "{}" }).catch((e) => e);
  assert.ok(panicked instanceof Error || panicked.status === 500, "the panic route fails");
  await panicked.text?.();

  // A later event of the same conversation: the same outbox, a fresh instance.
  const later = { ...conversation(7), data: { ...first.data, lastUpdated: first.data.lastUpdated + 60000 } };
  const res = await webhook(mf, later);
  assert.equal(res.status, 200, res.body);
  await until(() => app.accepted().length === 2, 10000, "the delivery after the panic");
  await quiet(500);
  assert.deepEqual(
    app.requests.map((r) => JSON.parse(r.body).data.lastUpdated),
    [first.data.lastUpdated, later.data.lastUpdated],
  );
});
