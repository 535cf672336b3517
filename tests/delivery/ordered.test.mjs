// "ordered": true in real workerd: a conversation's next event is not sent
// before the one before it settled, through retries and a restart of the
// worker; other conversations go side by side meanwhile. (The property model,
// tests/delivery_model.rs, stops between any two effects; this is the same
// promise end to end.)
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { receiver, persistDir, removeDir, startWorker, webhook, until, quiet, TOKEN } from "./support.mjs";

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A conversation_push of `conversation` at `at`: a new event each time. */
const push = (conversation, at) => ({ orgId: 1, type: "conversation_push", data: { conversationId: conversation, lastUpdated: at }, token: TOKEN });
const of = (r) => JSON.parse(r.body).data;

test("an ordered app gets a conversation's events in order, each after the one before settled; other conversations do not wait", async () => {
  // Conversation 1's first event fails twice; everything else is taken at once.
  const r = await receiver((attempt, { body }) => {
    const d = JSON.parse(body).data;
    return d.conversationId === 1 && d.lastUpdated === 1000 && attempt <= 2 ? 503 : 200;
  });
  cleanups.push(() => r.close());
  const persist = persistDir();
  cleanups.push(() => removeDir(persist));
  const destinations = [{ name: "ordered", url: r.url, types: ["conversation_push"], ordered: true }];
  const extra = { RETRY_BASE_SECONDS: "1", CIRCUIT_FAILURES: "100" };
  let mf = await startWorker({ destinations, persist, extra });
  for (const at of [1000, 2000, 3000]) assert.equal((await webhook(mf, push(1, at))).status, 200);
  for (const at of [1000, 2000]) assert.equal((await webhook(mf, push(2, at))).status, 200);
  // Conversation 2 is not held up by 1's retries.
  await until(() => r.accepted().filter((q) => of(q).conversationId === 2).length === 2, 10000, "conversation 2");
  assert.equal(r.accepted().filter((q) => of(q).conversationId === 1).length, 0, "1's first event is still being retried");
  // A restart while conversation 1 waits: the line survives it. (Answers
  // are reported to the log within REPORT_WITHIN_MS: a stop before that
  // sends those deliveries again, with their webhook-id, as it must.)
  await quiet(1000);
  await mf.dispose();
  mf = await startWorker({ destinations, persist, extra });
  cleanups.push(async () => { await mf.dispose().catch(() => {}); });
  await until(() => r.accepted().filter((q) => of(q).conversationId === 1).length === 3, 30000, "conversation 1, all three");
  await quiet(1000);
  const one = r.requests.filter((q) => of(q).conversationId === 1);
  // Every request for conversation 1, in the order the app saw them: the
  // first event's three attempts, then the second, then the third.
  assert.deepEqual(one.map((q) => [of(q).lastUpdated, q.status]), [[1000, 503], [1000, 503], [1000, 200], [2000, 200], [3000, 200]]);
  // Each sent only once the one before was answered.
  for (let i = 1; i < one.length; i++) assert.ok(one[i].at >= one[i - 1].at, "one at a time");
  assert.deepEqual(r.accepted().filter((q) => of(q).conversationId === 2).map((q) => of(q).lastUpdated), [1000, 2000]);
});
