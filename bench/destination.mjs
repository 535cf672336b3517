// How many deliveries a second one destination takes: the built worker in
// local workerd (Miniflare) with its Durable Objects (and its queues, if it
// has any), and one destination, a loopback app that answers 200 at once.
// Every delivery of one app goes through that app's delivery log (one Durable
// Object), so that object is the design's per-destination ceiling.
//
// Two modes, each for a worker with or without a delivery queue; neither
// assumes anything of the worker beyond its HTTP routes (/webhooks/drift,
// /admin/destinations and its pause and resume) and the bindings passed here.
//
// "drain" (the catch-up), two phases, so that the delivery side is measured
// apart from the webhooks:
//   1. the destination is paused and webhooks for distinct conversations are
//      posted from several connections (webhooks a second: each new
//      conversation is a new outbox, which local workerd creates slowly);
//   2. it is resumed with DRAIN_PER_SECOND at its maximum, and the backlog is
//      timed until the app has every delivery (deliveries a second).
//
// "sustained" (the steady stream): the destination is not paused; the same
// webhooks are posted from the same connections as fast as the worker takes
// them, and the app notes when each delivery arrives. Deliveries a second are
// the distinct deliveries after the first, over the time from the first
// arrival to the last; latency is from each webhook's 200 (its answer read)
// to its delivery's arrival, 0 when the delivery arrived before the answer
// was read. A delivery a second cannot outrun the webhooks a second (one
// delivery per webhook): where the two are close, taking webhooks is the limit.
//
//   node bench/destination.mjs [deliveries=2000] [connections=16] [app delay ms=0] [drain|sustained] [DRAIN_PER_SECOND=1000] [proxy|direct]
//
// "proxy" (the default) runs the worker as Miniflare and `wrangler dev` do:
// every request to an app passes through a second, JavaScript worker in the
// same workerd thread, which takes out the CF-Connecting-IP header. "direct"
// turns that off (stripCfConnectingIp: false), as on the platform, which has
// no such worker: the log's own cost per delivery.
//
// The app answers at once, or after the delay: an app across the internet
// takes tens of milliseconds, which is what a batch's deliveries going side
// by side rather than one after another is for.
//
// Writes bench/destination.json and prints a summary. bench/units.mjs runs it
// for the worker as it was, too (`destinationBench`), in both modes.
import { createServer } from "node:http";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TOKEN = "bench-token";
const ADMIN = "bench-admin-token-0123456789abcdef0123";

/**
 * The delivery queue's Miniflare options as wrangler.toml declared them at
 * 287fb35 and since (max_batch_size 10, max_batch_timeout 1 s, 11 retries,
 * then the dead-letter queue): for a worker known to use the queue whose
 * wrangler.toml does not say how.
 */
export const QUEUES = {
  queueProducers: { DELIVERIES: { queueName: "drift-bridge-deliveries" } },
  queueConsumers: {
    "drift-bridge-deliveries": { maxBatchSize: 10, maxBatchTimeout: 1, maxRetries: 11, deadLetterQueue: "drift-bridge-dead-letters" },
    "drift-bridge-dead-letters": { maxBatchSize: 10, maxBatchTimeout: 1 },
  },
};

/**
 * The `[[name]]` tables of a wrangler.toml, each as an object of its
 * `key = value` lines (strings, numbers and booleans; anything else is kept
 * as its text). Enough for the few tables read here, not a TOML parser.
 */
export function tomlTables(text, name) {
  const tables = [];
  let table = null;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/^((?:[^"#]|"(?:[^"\\]|\\.)*")*)#.*$/, "$1").trim();
    if (line === "") continue;
    if (line.startsWith("[")) {
      table = line === `[[${name}]]` ? {} : null;
      if (table) tables.push(table);
      continue;
    }
    const kv = /^([A-Za-z0-9_-]+)\s*=\s*(.+)$/.exec(line);
    if (!table || !kv) continue;
    const v = kv[2];
    table[kv[1]] = /^"(?:[^"\\]|\\.)*"$/.test(v) ? JSON.parse(v) : /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v === "true" ? true : v === "false" ? false : v;
  }
  return tables;
}

/**
 * What a checkout's worker needs of Miniflare, read from its wrangler.toml
 * and its build: the Durable Object classes by binding
 * (`[[durable_objects.bindings]]`), and whether it uses a delivery queue.
 *
 * The queue: wrangler.toml's `[[queues.producers]]` is what a deploy binds,
 * so it is the first witness; the build is the second, since build/ may be
 * older or newer than the wrangler.toml beside it while the worker is being
 * rewritten: a worker whose build/index.js still names `DELIVERIES` gets the
 * queue too. Erring that way is safe and the other is not: a queue the
 * worker never sends to costs nothing (no message, no consumer batch, no
 * operation counted), while a queue it does send to but was not given fails
 * its deliveries. The queues' settings come from wrangler.toml when it
 * declares them, else from QUEUES (as wrangler.toml had them).
 */
export function workerConfig(root) {
  const toml = readFileSync(join(root, "wrangler.toml"), "utf8");
  const objects = Object.fromEntries(tomlTables(toml, "durable_objects.bindings").filter((b) => b.name && b.class_name && !b.script_name).map((b) => [b.name, b.class_name]));
  const producers = tomlTables(toml, "queues.producers").filter((p) => p.binding && p.queue);
  const consumers = tomlTables(toml, "queues.consumers").filter((c) => c.queue);
  const index = join(root, "build/index.js");
  const built = existsSync(index) && /\bDELIVERIES\b/.test(readFileSync(index, "utf8"));
  const queue = producers.length > 0 || built;
  let queues;
  if (producers.length > 0) {
    queues = {
      queueProducers: Object.fromEntries(producers.map((p) => [p.binding, { queueName: p.queue }])),
      queueConsumers: Object.fromEntries(
        consumers.map((c) => [
          c.queue,
          Object.fromEntries(
            Object.entries({ maxBatchSize: c.max_batch_size, maxBatchTimeout: c.max_batch_timeout, maxRetries: c.max_retries, deadLetterQueue: c.dead_letter_queue }).filter(([, v]) => v !== undefined),
          ),
        ]),
      ),
    };
  } else if (queue) queues = QUEUES;
  return { objects, queue, queues, why: producers.length > 0 ? "wrangler.toml declares [[queues.producers]]" : built ? "build/index.js names DELIVERIES" : "neither wrangler.toml nor build/index.js names a queue" };
}

/** The Miniflare options of a variant's queues: none when it does not use one. */
export function queueOptions({ queue, queues }) {
  return queue ? (queues ?? QUEUES) : {};
}

const pct = (xs, p) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const round2 = (x) => (x === null ? null : Math.round(x * 100) / 100);

/** p50, p90, p99 and the largest of latencies in ms, and how many. */
export function percentiles(latencies) {
  return { p50: round2(pct(latencies, 50)), p90: round2(pct(latencies, 90)), p99: round2(pct(latencies, 99)), max: round2(pct(latencies, 100)), measured: latencies.length };
}

/**
 * Deliveries a second to one app for the worker built in `build`, whose
 * Durable Object classes `objects` names by binding and which uses the
 * delivery queue if `queue` (Miniflare's options for it in `queues`); when
 * not given, they are read from the checkout around `build` (workerConfig).
 * `mode`: "drain" or "sustained" (above).
 */
export async function destinationBench({
  build = join(ROOT, "build"),
  objects,
  queue,
  queues,
  mode = "drain",
  total = 2000,
  connections = 16,
  appDelayMs = 0,
  drainPerSecond = 1000,
  outboundProxy = true,
  log = () => {},
} = {}) {
  if (mode !== "drain" && mode !== "sustained") throw new Error(`mode: drain or sustained, not ${mode}`);
  if (objects === undefined || queue === undefined) {
    const found = workerConfig(dirname(build));
    objects ??= found.objects;
    if (queue === undefined) [queue, queues] = [found.queue, queues ?? found.queues];
  }
  let received = 0;
  let lastAt = 0;
  // Requests at the app as they arrive (received counts them as answered, after any delay).
  let requests = 0;
  // Each delivery's first arrival, by webhook-id, when the request was read (before any delay).
  const arrivals = new Map();
  const app = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      requests++;
      const id = req.headers["webhook-id"];
      if (id !== undefined && !arrivals.has(id)) arrivals.set(id, performance.now());
      const answer = () => {
        received++;
        lastAt = performance.now();
        res.writeHead(200);
        res.end();
      };
      if (appDelayMs > 0) setTimeout(answer, appDelayMs);
      else answer();
    });
  });
  // TCP connections the worker opened to the app.
  let appConnections = 0;
  app.on("connection", () => appConnections++);
  await new Promise((resolve) => app.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${app.address().port}/hook`;
  const persist = mkdtempSync(join(tmpdir(), "drift-bridge-bench-"));
  const mf = new Miniflare({
    rootPath: build,
    scriptPath: join(build, "index.js"),
    modules: true,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    compatibilityDate: "2026-04-26",
    stripCfConnectingIp: outboundProxy,
    bindings: {
      DRIFT_VERIFICATION_TOKEN: TOKEN,
      ADMIN_TOKEN: ADMIN,
      DRAIN_PER_SECOND: String(drainPerSecond),
      DESTINATIONS: JSON.stringify([{ name: "one", url, types: ["conversation_push"] }]),
    },
    // As in the worker's wrangler.toml; none for a worker without a queue.
    ...queueOptions({ queue, queues }),
    durableObjects: Object.fromEntries(Object.entries(objects).map(([binding, className]) => [binding, { className, useSQLite: true }])),
    durableObjectsPersist: process.env.BENCH_PERSIST ? persist : undefined,
    // Drain its output (one JSON log line per webhook and attempt): a full pipe would stall workerd.
    handleRuntimeStdio(stdout, stderr) {
      stdout.resume();
      stderr.resume();
    },
  });
  try {
    await mf.ready;
    const adminCall = async (path, method = "GET") => {
      const res = await mf.dispatchFetch(`http://bridge.test${path}`, { method, headers: { authorization: `Bearer ${ADMIN}` } });
      return res.json();
    };
    if (mode === "drain") await adminCall("/admin/destinations/one/pause", "POST");
    const event = (n) =>
      JSON.stringify({ orgId: 1, type: "conversation_inactive", data: { lastUpdated: 1591813767000, conversationId: 1_000_000 + n } });
    let next = 0;
    let refused = 0;
    // When each webhook's answer was read, by the id of its conversation_push (the app's one delivery).
    const answered = new Map();
    const started = performance.now();
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (next < total) {
          const n = next++;
          const res = await mf.dispatchFetch("http://bridge.test/webhooks/drift", {
            method: "POST",
            headers: { "content-type": "application/json", "x-verification-token": TOKEN },
            body: event(n),
          });
          const text = await res.text();
          const at = performance.now();
          if (res.status !== 200) refused++;
          else for (const e of JSON.parse(text).events ?? []) if (e.type === "conversation_push") answered.set(e.id, at);
          if (n % 500 === 0) log(`posted ${n} (${res.status})`);
        }
      }),
    );
    const acceptedAt = performance.now();
    const expected = total - refused;
    const deadline = Date.now() + 600_000;
    const common = {
      date: new Date().toISOString(),
      machine: { cpu: cpus()[0]?.model, cores: cpus().length },
      mode,
      deliveries: total,
      connections,
      outbound: outboundProxy ? "through Miniflare's proxy worker" : "direct",
      appDelayMs,
      webhooksPerSecond: Math.round(total / ((acceptedAt - started) / 1000)),
    };
    // The queue's consumers as Miniflare ran them (from the worker's wrangler.toml), or null: no queue.
    const queueUsed = queue ? queueOptions({ queue, queues }).queueConsumers : null;
    if (mode === "drain") {
      for (; (await adminCall("/admin/destinations")).destinations[0].held < expected && Date.now() < deadline; ) {
        await new Promise((r) => setTimeout(r, 250));
      }
      const firstAt = performance.now();
      await adminCall("/admin/destinations/one/resume", "POST");
      while (received < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const seconds = (lastAt - firstAt) / 1000;
      return {
        ...common,
        delivered: received,
        refused,
        seconds: Math.round(seconds * 100) / 100,
        deliveriesPerSecond: Math.round(received / seconds),
        appConnections,
        queue: queueUsed,
        method: `paused while the webhooks came in, then resumed with DRAIN_PER_SECOND=${drainPerSecond}; deliveries a second = backlog / time from the resume to the last delivery`,
      };
    }
    // Sustained: every delivery, or the deadline.
    if (answered.size === 0) throw new Error(`no webhook was answered with a conversation_push event (${refused} of ${total} refused)`);
    while ([...answered.keys()].some((id) => !arrivals.has(id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const times = [...answered.keys()].filter((id) => arrivals.has(id)).map((id) => arrivals.get(id));
    const [first, last] = [Math.min(...times), Math.max(...times)];
    const seconds = (last - first) / 1000;
    // A delivery may arrive before its webhook's answer is read (a worker that answers and posts at once): 0, not left out.
    const latencies = [...answered].filter(([id]) => arrivals.has(id)).map(([id, at]) => Math.max(0, arrivals.get(id) - at));
    const early = [...answered].filter(([id, at]) => arrivals.has(id) && arrivals.get(id) < at).length;
    // The span split at the last answer: what arrived while webhooks were still being taken, and the tail after.
    const during = times.filter((t) => t <= acceptedAt).length;
    const window = (acceptedAt - first) / 1000;
    return {
      ...common,
      delivered: times.length,
      missing: answered.size - times.length,
      duplicateRequests: requests - arrivals.size,
      refused,
      seconds: Math.round(seconds * 100) / 100,
      deliveriesPerSecond: times.length > 1 ? Math.round((times.length - 1) / seconds) : null,
      appConnections,
      postingSeconds: Math.round((acceptedAt - started) / 10) / 100,
      lastDeliveryAfterLastAnswerMs: Math.round(last - acceptedAt),
      // Deliveries a second while webhooks were still being taken: those after the first up to the last answer, over that time.
      whilePosting: { deliveries: during, perSecond: during > 1 && window > 0 ? Math.round((during - 1) / window) : null },
      afterLastAnswer: { deliveries: times.length - during },
      latencyMs: { ...percentiles(latencies), beforeTheAnswer: early },
      queue: queueUsed,
      method:
        `not paused; ${total} webhooks for distinct conversations from ${connections} connections as fast as they were taken (DRAIN_PER_SECOND=1000 as in the drain); ` +
        "deliveries a second = (distinct deliveries - 1) / time from the first delivery's arrival at the app to the last's; " +
        "whilePosting: the same up to the last webhook's answer (deliveries after it: afterLastAnswer); " +
        "latency = from each webhook's answer read to its delivery's arrival, 0 where the delivery arrived first (beforeTheAnswer counts them)",
    };
  } finally {
    await mf.dispose();
    app.close();
    rmSync(persist, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const result = await destinationBench({
    total: Number(process.argv[2] ?? 2000),
    connections: Number(process.argv[3] ?? 16),
    appDelayMs: Number(process.argv[4] ?? 0),
    mode: process.argv[5] ?? "drain",
    drainPerSecond: Number(process.argv[6] ?? 1000),
    outboundProxy: (process.argv[7] ?? "proxy") !== "direct",
    log: process.env.BENCH_VERBOSE ? (...a) => console.error(...a) : () => {},
  });
  console.log(JSON.stringify(result, null, 2));
  writeFileSync(join(ROOT, "bench/destination.json"), JSON.stringify(result, null, 2) + "\n");
}
