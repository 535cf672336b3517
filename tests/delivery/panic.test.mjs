// A panic starts a fresh wasm instance, and the Outbox Durable Object that
// lived in the old one is made again (src/worker/entry.mjs): hand-offs to an
// outbox created before the panic still work, and deliver, afterwards.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { receiver, persistDir, removeDir, startWorker, webhook, until, quiet, conversation } from "./support.mjs";

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test("a hand-off to an outbox created before a panic works after it", async () => {
  const app = await receiver(() => 200);
  cleanups.push(() => app.close());
  const persist = persistDir();
  cleanups.push(() => removeDir(persist));
  const mf = await startWorker({
    destinations: [{ name: "push-app", url: app.url, types: ["conversation_push"] }],
    persist,
    extra: { DRIFT_BRIDGE_TEST_ROUTES: "1" },
  });
  cleanups.push(() => mf.dispose());

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
