// What local workerd itself allows one Durable Object to deliver, with none
// of the bridge in it: the floor under bench/throughput.mjs's figures, so
// that a figure there can be read against what this machine, this day, lets
// any design reach.
//
// One Durable Object, written here in plain JavaScript, sends `total` POSTs
// (a delivery's size and headers) to a loopback app that answers 200 at
// once, CONCURRENCY at a time (the connections the delivery log keeps open
// for a backlog), reading each answer to its end, with a deadline timer per
// request, as src/worker/entry.mjs does. Two forms:
//
//   - "fetch": the requests alone; what the runtime's own HTTP costs, the
//     ceiling of any design;
//   - "durable": and each answer is kept before it is forgotten, as the
//     delivery log must keep it: the answers that came since the last step
//     are written in one transaction (the state row read and written, at
//     the size of the log's with 64 requests out; one UPDATE … RETURNING of
//     the delivery's row per answer; the alarm set), the requests after it
//     wait for it to be stored (the output gate), and one log line goes out
//     per answer. A log that keeps its promises pays at least this, before
//     any of its own decisions (reading rows, signing, counting, the breaker).
//
// Each run is a fresh Miniflare (direct: no proxy worker in front of the
// requests) warmed by WARM requests, then timed over `total`, as the drain
// of bench/throughput.mjs is the first `total` of a fresh worker.
//
//   node bench/floor.mjs [fetch|durable] [total=4000]
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

const CONCURRENCY = 36;
const WARM = 200;
/** The size of the delivery log's state row with 64 requests out. */
const STATE_BYTES = 4500;

const SCRIPT = `
import { DurableObject } from "cloudflare:workers";

export class Floor extends DurableObject {
  async alarm() {}

  async fetch(request) {
    const q = new URL(request.url).searchParams;
    const [total, durable, target] = [Number(q.get("total")), q.get("durable") === "1", q.get("url")];
    const sql = this.ctx.storage.sql;
    const state = "x".repeat(${STATE_BYTES});
    if (durable) {
      sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
      sql.exec("CREATE TABLE IF NOT EXISTS deliveries (seq INTEGER PRIMARY KEY, status TEXT NOT NULL, history TEXT)");
      this.ctx.storage.transactionSync(() => {
        sql.exec("DELETE FROM deliveries");
        for (let i = 0; i < total; i++) sql.exec("INSERT INTO deliveries VALUES (?, 'sending', NULL)", i);
      });
    }
    let answers = [];
    let flushing = false;
    const step = () => {
      flushing = false;
      const taken = answers;
      answers = [];
      this.ctx.storage.transactionSync(() => {
        sql.exec("SELECT value FROM meta WHERE key = 'state'").toArray();
        for (const a of taken) {
          sql.exec("UPDATE deliveries SET status = 'delivered', history = ? WHERE seq = ? RETURNING *", JSON.stringify({ n: 1, code: a.status, ms: a.ms }), a.seq).toArray();
        }
        sql.exec("INSERT OR REPLACE INTO meta VALUES ('state', ?)", state);
        this.ctx.storage.setAlarm(Date.now() + 60_000);
      });
      for (const a of taken) console.log(JSON.stringify({ kind: "delivery", delivery: "app/" + a.seq, status: "delivered", code: a.status, latencyMs: a.ms }));
    };
    const answered = (a) => {
      if (!durable) return;
      answers.push(a);
      if (!flushing) {
        flushing = true;
        setTimeout(step, 0);
      }
    };
    const body = JSON.stringify({ orgId: 1, type: "conversation_push", data: { lastUpdated: 1591813767000, conversationId: 1000000 } });
    let next = 0;
    const started = Date.now();
    const sender = async () => {
      while (next < total) {
        const seq = next++;
        const sent = Date.now();
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), 10_000);
        const res = await fetch(target, {
          method: "POST",
          body,
          redirect: "manual",
          signal: controller.signal,
          headers: [["content-type", "application/json"], ["user-agent", "drift-bridge"], ["webhook-id", String(seq)], ["webhook-timestamp", "1591813767"], ["webhook-signature", "v1,0000000000000000000000000000000000000000000="]],
        });
        await res.arrayBuffer();
        clearTimeout(timer);
        answered({ seq, status: res.status, ms: Date.now() - sent });
      }
    };
    await Promise.all(Array.from({ length: ${CONCURRENCY} }, sender));
    return new Response(String(Date.now() - started));
  }
}

export default {
  fetch(request, env) {
    return env.FLOOR.get(env.FLOOR.idFromName("floor")).fetch(request);
  },
};
`;

/** Requests a second one object sends (`mode` "fetch" or "durable"), over `total` after a warm-up, in a fresh Miniflare. */
export async function floorBench({ mode = "fetch", total = 4000 } = {}) {
  if (mode !== "fetch" && mode !== "durable") throw new Error(`mode: fetch or durable, not ${mode}`);
  let received = 0;
  const app = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      received++;
      res.writeHead(200);
      res.end();
    });
  });
  await new Promise((resolve) => app.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${app.address().port}/hook`;
  const mf = new Miniflare({
    modules: true,
    script: SCRIPT,
    compatibilityDate: "2026-04-26",
    durableObjects: { FLOOR: { className: "Floor", useSQLite: true } },
    stripCfConnectingIp: false,
    // Drain the log lines: a full pipe would stall workerd.
    handleRuntimeStdio(stdout, stderr) {
      stdout.resume();
      stderr.resume();
    },
  });
  try {
    await mf.ready;
    const run = async (n) => {
      const res = await mf.dispatchFetch(`http://floor.test/?total=${n}&durable=${mode === "durable" ? 1 : 0}&url=${encodeURIComponent(url)}`);
      if (res.status !== 200) throw new Error(`floor: ${res.status} ${await res.text()}`);
      return Number(await res.text());
    };
    await run(WARM);
    const before = received;
    const ms = await run(total);
    if (received - before !== total) throw new Error(`floor: the app got ${received - before} of ${total}`);
    return { mode, total, requestsPerSecond: Math.round((total / Math.max(ms, 1)) * 1000), seconds: ms / 1000 };
  } finally {
    await mf.dispose();
    await new Promise((resolve) => app.close(resolve));
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const r = await floorBench({ mode: process.argv[2] ?? "fetch", total: Number(process.argv[3] ?? 4000) });
  console.log(JSON.stringify(r, null, 2));
}
