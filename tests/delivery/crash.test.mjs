// The worker's process killed (SIGKILL) again and again while webhooks
// arrive and deliveries are in flight, started again each time on the same
// persisted state: every event that was answered 200 reaches every app
// subscribed to it. What a kill interrupts is taken up again: an alarm whose
// handler never finished runs again, and a request that was out when the
// process died is sent again by its delivery log once its lease (deadline,
// report window, RECOVERY_GRACE_SECONDS) is over.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execSync } from "node:child_process";
import { receiver, persistDir, removeDir, startWorker, until, TOKEN } from "./support.mjs";

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** The pid of the workerd process Miniflare started (a child of this process). */
function workerdPids() {
  const out = execSync(`ps -o pid=,comm= --ppid ${process.pid}`).toString();
  return out.split("\n").map((l) => l.trim().split(/\s+/)).filter(([, comm]) => comm === "workerd").map(([pid]) => Number(pid));
}

const WANTS = { "push-app": (type) => type === "conversation_push", "all-app": () => true };
const KINDS = ["conversation_inactive", "conversation_manual_push", "conversation_push", "conversation_status_updated"];

function event(n) {
  const type = KINDS[n % KINDS.length];
  const data =
    type === "conversation_status_updated"
      ? { conversationId: 9000 + (n % 7), status: "closed", changedAt: 1591813767000 + n }
      : { conversationId: 9000 + (n % 7), lastUpdated: 1591813767000 + n };
  return JSON.stringify({ orgId: 1, type, data, token: TOKEN });
}

test("SIGKILLed again and again mid-traffic, restarted on the same state: every event answered 200 reaches every app that wants it", async () => {
  const apps = {};
  for (const name of Object.keys(WANTS)) {
    apps[name] = await receiver(() => 200);
    cleanups.push(() => apps[name].close());
  }
  const destinations = Object.keys(WANTS).map((name) => ({ name, url: apps[name].url, types: name === "push-app" ? ["conversation_push"] : ["*"] }));
  const persist = persistDir();
  cleanups.push(() => removeDir(persist));

  /** Every outbound event of every webhook answered 200: [event id, type]. */
  const answered = new Map();
  let n = 0;
  let kills = 0;
  for (let life = 0; life < 5; life++) {
    const before = new Set(workerdPids());
    const mf = await startWorker({ destinations, persist });
    const [pid] = workerdPids().filter((p) => !before.has(p));
    assert.ok(pid, "found workerd's pid");
    const killAt = Date.now() + 700 + Math.floor(Math.random() * 1300);
    // Webhooks, four at a time, until the kill.
    const senders = Array.from({ length: 4 }, async () => {
      while (Date.now() < killAt) {
        const body = event(n++);
        try {
          const res = await mf.dispatchFetch("http://bridge.test/webhooks/drift", { method: "POST", headers: { "content-type": "application/json" }, body });
          const text = await res.text();
          if (res.status === 200) for (const e of JSON.parse(text).events) answered.set(e.id, e.type);
        } catch {
          // Killed under it: not answered 200, so not promised.
        }
      }
    });
    await Promise.all(senders);
    if (life < 4) {
      process.kill(pid, "SIGKILL");
      kills++;
      await mf.dispose().catch(() => {});
    } else {
      // The last life runs on until every promise is kept.
      const expected = (name) => [...answered].filter(([, type]) => WANTS[name](type)).map(([id]) => id);
      for (const name of Object.keys(WANTS)) {
        const want = new Set(expected(name));
        await until(() => {
          const got = new Set(apps[name].accepted().map((r) => r.headers["webhook-id"]));
          return [...want].every((id) => got.has(id));
        }, 90_000, `every event at ${name}`);
        const got = apps[name].accepted().map((r) => r.headers["webhook-id"]);
        assert.ok(got.every((id) => answered.has(id) && WANTS[name](answered.get(id))), `${name} got only what it wants`);
        const twice = got.length - new Set(got).size;
        console.log(`${name}: ${want.size} events promised, all arrived; ${twice} twice (a kill between a POST and its report), each time with its webhook-id`);
      }
      await mf.dispose();
    }
  }
  console.log(`${answered.size} outbound events answered 200 over ${kills} kills`);
  assert.equal(kills, 4);
  assert.ok(answered.size > 50, `enough traffic: ${answered.size}`);
});
