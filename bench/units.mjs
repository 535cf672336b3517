// What a webhook costs on Workers, counted rather than timed: the billable
// units it causes from Drift's POST to the app's 200 and to the end of every
// row's lifetime, for the worker as it is and as it was (BENCH_BEFORE, a git
// revision, built in bench/work/before), with one and with two destinations.
//
// Each worker runs in local workerd (Miniflare) behind a counting wrapper
// (bench/work/<variant>/units.mjs, written here) that imports the built
// worker and counts, in the one isolate that serves it and its objects:
//   - Durable Object requests: every fetch and every alarm, per class;
//   - SQL rows read and written, as the runtime's cursors count them
//     (cursor.rowsRead, cursor.rowsWritten: index entries included);
//   - alarms set: every ctx.storage.setAlarm(), which Workers bills as one
//     row written ("Each setAlarm() is billed as a single row written",
//     Durable Objects pricing; workerd adds one storage write unit per call),
//     inside transactionSync or a transaction too; kept apart from the SQL
//     rows (alarmRowsWritten) and added to the rows written in perWebhook;
//   - alarms deleted: every ctx.storage.deleteAlarm(), counted apart
//     (alarmDeletes) and not priced: neither the pricing nor workerd's
//     billing counts it (DELETE_ALARM_BILLED says which);
//   - queue operations, for a worker with a queue: messages written, read by
//     a consumer, retried, and deleted (acked), each one operation per 64 KB;
//   - Worker invocations: the webhooks and the consumer's batches;
//   - CPU: user + system time of the workerd process (/proc), all of it.
// Loopback apps answer 200 and note when each delivery arrived, so the same
// run gives the latency from the webhook's 200 to the app (0 for a delivery
// that arrived before the webhook's answer was read: a worker may answer and
// deliver at once). The time-based
// settings are shortened (RECOVERY_GRACE_SECONDS 10, the windows and
// retentions 20 s) so that every row's life ends inside the run; all else is
// wrangler.toml's, the queue consumer's settings included (for a worker with
// a queue: variants() says which).
//
// Then the deliveries a second one app takes (bench/destination.mjs), for
// both workers, as a catch-up (paused, then drained) and as a sustained
// stream. Prices are Workers Paid list prices, without the included
// allowances.
//
//   node bench/units.mjs            writes bench/work/units.json
import { execFileSync, execSync } from "node:child_process";
import { createServer } from "node:http";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";
import { QUEUES, destinationBench, percentiles, queueOptions, workerConfig } from "./destination.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WORK = join(ROOT, "bench/work");
const TOKEN = "bench-token";
const ADMIN = "bench-admin-token-0123456789abcdef0123";

/** Workers Paid list prices, in dollars per unit (developers.cloudflare.com, 2026). */
export const PRICES = {
  workerRequest: 0.3e-6,
  cpuMs: 0.02e-6,
  doRequest: 0.15e-6,
  rowRead: 0.001e-6,
  rowWritten: 1.0e-6,
  queueOperation: 0.4e-6,
};

/**
 * Whether a deleteAlarm() is priced as a row written. No: Cloudflare's
 * pricing bills each setAlarm() as one row written and says nothing of
 * deleteAlarm(), and workerd's storage (src/workerd/api/actor-state.c++)
 * adds a write unit in setAlarm() and none in deleteAlarm(). The calls are
 * counted either way (alarmDeletes); true adds them to the rows written.
 */
export const DELETE_ALARM_BILLED = false;

/** A statement that writes the metrics (what counting costs): put into the wrapper as its source, not retyped in a template string, where \b would be a backspace. */
export const METRICS_WRITE = /^(?!\s*SELECT\b)[\s\S]*\bmetrics\b/i;

/**
 * The counting wrapper around a built worker (its index.js next to it),
 * exporting its Durable Object `classes`. Besides the totals it keeps the
 * rows read by each alarm and each object request (the most, and the last
 * ones), and the rows written to the metrics table (what counting costs).
 */
export const wrapper = (classes, entry = "index.js") => `// Written by bench/units.mjs: counts the billable units of the worker beside it.
import * as inner from "./${entry}";
const units = { webhooks: 0, consumerInvocations: 0, requests: {}, alarms: {}, rowsRead: 0, rowsWritten: 0,
  alarmRowsWritten: 0, alarmDeletes: 0, metricsRowsWritten: 0, alarmRowsRead: [], requestRowsRead: [], queue: { written: 0, read: 0, retried: 0 } };
const cursors = new Set();
let patched = false;
function patch(sql) {
  if (patched) return;
  patched = true;
  const proto = Object.getPrototypeOf(sql);
  const exec = proto.exec;
  proto.exec = function (...args) { const c = exec.apply(this, args); cursors.add(c); if (${METRICS_WRITE}.test(args[0])) metrics.add(c); return c; };
}
// Alarms set and deleted, counted on the storage's prototype (as the SQL's
// exec), so that every caller counts: a step's storage.setAlarm() inside
// storage.transactionSync(), and a transaction's txn.setAlarm() too. A call
// counts once it returned (one that throws, e.g. a time <= 0, is not billed).
const alarmProtos = new WeakSet();
function patchAlarms(storage) {
  const proto = storage && Object.getPrototypeOf(storage);
  if (!proto || alarmProtos.has(proto)) return;
  alarmProtos.add(proto);
  const { setAlarm, deleteAlarm, transaction } = proto;
  if (typeof setAlarm === "function") proto.setAlarm = function (...a) { const p = setAlarm.apply(this, a); units.alarmRowsWritten += 1; return p; };
  if (typeof deleteAlarm === "function") proto.deleteAlarm = function (...a) { const p = deleteAlarm.apply(this, a); units.alarmDeletes += 1; return p; };
  if (typeof transaction === "function") proto.transaction = function (fn, ...rest) { return transaction.call(this, (txn) => { patchAlarms(txn); return fn(txn); }, ...rest); };
}
const metrics = new Set();
// Every cursor is read to its end before the code that made it awaits: count
// them as each handler ends; answers the rows read since the last count.
function settle() {
  let read = 0;
  for (const c of cursors) { units.rowsRead += c.rowsRead; units.rowsWritten += c.rowsWritten; read += c.rowsRead; }
  for (const c of metrics) units.metricsRowsWritten += c.rowsWritten;
  cursors.clear();
  metrics.clear();
  return read;
}
const keep = (list, n) => { list.push(n); if (list.length > 200) list.shift(); };
async function counted(fn, list) { settle(); try { return await fn(); } finally { keep(list, settle()); } }
function producer(q) {
  return {
    send: (body, o) => { units.queue.written += 1; return q.send(body, o); },
    sendBatch: (messages, o) => { units.queue.written += messages.length; return q.sendBatch(messages, o); },
  };
}
const wrapped = new WeakMap();
// A worker without a queue has no DELIVERIES: it stays undefined.
function wrapEnv(env) {
  if (!wrapped.has(env)) wrapped.set(env, new Proxy(env, { get: (t, k) => (k === "DELIVERIES" && t.DELIVERIES ? producer(t.DELIVERIES) : Reflect.get(t, k)) }));
  return wrapped.get(env);
}
function bind(target, value) { return typeof value === "function" ? value.bind(target) : value; }
function wrapMessage(m) {
  return new Proxy(m, { get: (t, k) => (k === "retry" ? (...a) => { units.queue.retried += 1; return t.retry(...a); } : bind(t, Reflect.get(t, k))) });
}
function wrapBatch(batch) {
  const messages = batch.messages.map(wrapMessage);
  return new Proxy(batch, { get: (t, k) => {
    if (k === "messages") return messages;
    if (k === "retryAll") return (...a) => { units.queue.retried += messages.length; return t.retryAll(...a); };
    return bind(t, Reflect.get(t, k));
  } });
}
function object(Base, name) {
  if (!Base) return undefined;
  return class extends Base {
    constructor(ctx, env) { patch(ctx.storage.sql); patchAlarms(ctx.storage); super(ctx, wrapEnv(env)); }
    fetch(request) { units.requests[name] = (units.requests[name] ?? 0) + 1; return counted(() => super.fetch(request), units.requestRowsRead); }
    alarm(...a) { units.alarms[name] = (units.alarms[name] ?? 0) + 1; return counted(() => super.alarm(...a), units.alarmRowsRead); }
  };
}
${classes.map((c) => `export const ${c} = object(inner.${c}, "${c}");`).join("\n")}
const handlers = {
  fetch(request, env, ctx) {
    if (new URL(request.url).pathname === "/__units") { settle(); return Response.json(units); }
    if (new URL(request.url).pathname === "/__units/reset") { settle(); units.alarmRowsRead = []; units.requestRowsRead = []; return Response.json({}); }
    units.webhooks += 1;
    return inner.default.fetch(request, wrapEnv(env), ctx);
  },
};
// The consumer, for a worker that has one.
if (typeof inner.default.queue === "function") {
  handlers.queue = function queue(batch, env, ctx) {
    units.consumerInvocations += 1;
    units.queue.read += batch.messages.length;
    return counted(() => inner.default.queue(wrapBatch(batch), wrapEnv(env), ctx), []);
  };
}
export default handlers;
`;

/**
 * Miniflare's options for the built worker in `build` behind the counting
 * wrapper (written beside it), exporting the Durable Object `classes`: the
 * bench and tests/delivery/bounded.test.mjs count the same way. `entry`: the
 * module it wraps (the tests wrap the test entry, test-entry.mjs).
 */
export function countingWorker(build, classes, entry = "index.js") {
  writeFileSync(join(build, "units.mjs"), wrapper(classes, entry));
  return {
    rootPath: build,
    scriptPath: join(build, "units.mjs"),
    modules: true,
    modulesRules: [
      { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
      { type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true },
    ],
    compatibilityDate: "2026-04-26",
  };
}

/**
 * The two workers: `before` built from a revision in a worktree (fb67ba8,
 * the last with the delivery queue, unless BENCH_BEFORE says another),
 * `after` the checkout's build/. Each says its Durable Object classes by
 * binding (`objects`) and whether it uses the delivery queue (`queue`, with
 * Miniflare's options for it in `queues`), as its own wrangler.toml and
 * build have them (destination.mjs, workerConfig: `[[durable_objects.bindings]]`,
 * and a queue when wrangler.toml declares `[[queues.producers]]` or
 * build/index.js still names DELIVERIES).
 */
export function variants({ log, before = process.env.BENCH_BEFORE ?? "fb67ba8" }) {
  const dir = join(WORK, "before");
  const rev = execFileSync("git", ["rev-parse", "--short", before], { cwd: ROOT, encoding: "utf8" }).trim();
  if (!existsSync(join(dir, "build/index.js")) || readFileSync(join(dir, ".bench-rev"), "utf8").trim() !== rev) {
    log(`building the worker at ${rev} in ${dir} (a few minutes, once)`);
    rmSync(dir, { recursive: true, force: true });
    execFileSync("git", ["worktree", "prune"], { cwd: ROOT });
    execFileSync("git", ["worktree", "add", "--force", "--detach", dir, rev], { cwd: ROOT, stdio: "ignore" });
    execSync(`ln -s ${join(ROOT, "node_modules")} ${join(dir, "node_modules")}`);
    execFileSync("bash", ["scripts/build.sh", "worker"], { cwd: dir, stdio: "inherit" });
    writeFileSync(join(dir, ".bench-rev"), rev + "\n");
  }
  const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
  // Its classes and its queue as its own wrangler.toml declared them.
  const { objects, queue, queues } = workerConfig(dir);
  return [
    {
      name: "before",
      label: `drift-bridge at ${rev} (the queue's path)`,
      build: join(dir, "build"),
      objects,
      queue,
      queues,
    },
    current(ROOT, `drift-bridge at ${commit}${dirty() ? " (with changes not committed)" : ""}`),
  ];
}

/** The worker of the checkout at `root` (its build/), as variants() names it "after". */
export function current(root, label) {
  const { objects, queue, queues } = workerConfig(root);
  if (Object.keys(objects).length === 0) throw new Error(`${join(root, "wrangler.toml")} declares no [[durable_objects.bindings]]`);
  return { name: "after", label, build: join(root, "build"), objects, queue, queues };
}

function dirty() {
  return execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: ROOT, encoding: "utf8" }).trim() !== "";
}

/** user + system CPU time of a process, in ms. */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function workerdPid(known) {
  const out = execSync(`ps -o pid=,comm= --ppid ${process.pid}`).toString();
  return out.split("\n").map((l) => l.trim().split(/\s+/)).filter(([pid, comm]) => comm === "workerd" && !known.has(Number(pid))).map(([pid]) => Number(pid))[0];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One run: `webhooks` at `rate` a second to a worker with `destinations` apps. */
async function run(variant, { destinations, webhooks, rate, log }) {
  const arrivals = new Map();
  const apps = [];
  for (let i = 0; i < destinations; i++) {
    const got = new Map();
    arrivals.set(i, got);
    const server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        const id = req.headers["webhook-id"];
        if (!got.has(id)) got.set(id, performance.now());
        res.writeHead(200);
        res.end();
      });
    });
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    apps.push(server);
  }
  const types = ["conversation_push", "conversation_status_updated"];
  const config = apps.map((s, i) => ({ name: `app-${i}`, url: `http://127.0.0.1:${s.address().port}/hook`, types: [types[i]] }));
  const counting = countingWorker(variant.build, Object.values(variant.objects));
  const persist = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "drift-bridge-units-"));
  const known = new Set(execSync(`ps -o pid= --ppid ${process.pid}`).toString().split("\n").map(Number).filter(Boolean));
  const mf = new Miniflare({
    ...counting,
    bindings: {
      DRIFT_VERIFICATION_TOKEN: TOKEN,
      ADMIN_TOKEN: ADMIN,
      DESTINATIONS: JSON.stringify(config),
      RECOVERY_GRACE_SECONDS: "10",
      DEDUP_WINDOW_SECONDS: "20",
      DELIVERY_LOG_SECONDS: "20",
      DEAD_LETTER_RETENTION_SECONDS: "20",
    },
    // As its wrangler.toml; none for a worker without a queue.
    ...queueOptions(variant),
    durableObjects: Object.fromEntries(Object.entries(variant.objects).map(([binding, className]) => [binding, { className, useSQLite: true }])),
    durableObjectsPersist: persist,
    handleRuntimeStdio(stdout, stderr) {
      stdout.resume();
      stderr.setEncoding("utf8");
      stderr.on("data", (chunk) => {
        if (/error|fail/i.test(chunk)) process.stderr.write(chunk);
      });
    },
  });
  await mf.ready;
  const pid = workerdPid(known);
  // Warm up outside the count: one request that starts the isolate.
  await (await mf.dispatchFetch("http://bridge.test/health")).arrayBuffer();
  const start = await (await mf.dispatchFetch("http://bridge.test/__units")).json();
  const cpuStart = cpuMs(pid);
  const answered = new Map();
  const started = performance.now();
  for (let n = 0; n < webhooks; n++) {
    const due = started + (n * 1000) / rate;
    await sleep(Math.max(0, due - performance.now()));
    const body = JSON.stringify({ orgId: 1, type: "conversation_inactive", data: { lastUpdated: 1591813767000 + n, conversationId: 5000 + (n % 16) } });
    const res = await mf.dispatchFetch("http://bridge.test/webhooks/drift", { method: "POST", headers: { "x-verification-token": TOKEN }, body });
    const answer = await res.json();
    if (res.status !== 200) throw new Error(`webhook ${n}: ${res.status} ${JSON.stringify(answer)}`);
    const at = performance.now();
    for (const e of answer.events) answered.set(e.id, { type: e.type, at });
  }
  // Every delivery, then every row's end (the windows and retentions, the grace, and then some).
  const expected = config.map((c) => [...answered].filter(([, e]) => c.types.includes(e.type)).map(([id]) => id));
  const deadline = Date.now() + 120_000;
  while (expected.some((ids, i) => ids.some((id) => !arrivals.get(i).has(id))) && Date.now() < deadline) await sleep(100);
  const delivered = expected.reduce((n, ids, i) => n + ids.filter((id) => arrivals.get(i).has(id)).length, 0);
  log(`${variant.name}, ${destinations} destination(s): ${delivered} deliveries; waiting for every row's end`);
  await sleep(45_000);
  const end = await (await mf.dispatchFetch("http://bridge.test/__units")).json();
  const cpu = cpuMs(pid) - cpuStart;
  // A delivery that arrived before its webhook's answer was read (a worker may
  // answer and deliver at once) counts as 0, not left out; undelivered ones are.
  const pairs = expected.flatMap((ids, i) => ids.filter((id) => arrivals.get(i).has(id)).map((id) => arrivals.get(i).get(id) - answered.get(id).at));
  const latencies = pairs.map((x) => Math.max(0, x));
  await mf.dispose();
  for (const s of apps) s.close();
  rmSync(persist, { recursive: true, force: true });
  const diff = (a, b) =>
    Object.fromEntries(Object.keys(a).filter((k) => !Array.isArray(a[k])).map((k) => [k, typeof a[k] === "object" ? diff(a[k], b[k] ?? {}) : a[k] - (b[k] ?? 0)]));
  const units = diff(end, start);
  return {
    destinations,
    webhooks,
    rate,
    deliveries: delivered,
    expected: expected.flat().length,
    units,
    cpuMs: cpu,
    // ms from the webhook's answer read to the delivery's arrival at the app; `measured` deliveries, `beforeTheAnswer` of them counted as 0.
    latency: { ...percentiles(latencies), beforeTheAnswer: pairs.filter((x) => x < 0).length },
  };
}

/** Per webhook, and priced per million webhooks. */
export function perWebhook(r) {
  const n = r.webhooks;
  const u = r.units;
  const sum = (o) => Object.values(o ?? {}).reduce((a, b) => a + b, 0);
  const doRequests = sum(u.requests) + sum(u.alarms);
  const queueOps = u.queue.written + u.queue.read + (u.queue.read - u.queue.retried);
  // Rows written: the SQL cursors' and one per alarm set (and per alarm deleted, if DELETE_ALARM_BILLED).
  const alarmRows = (u.alarmRowsWritten ?? 0) + (DELETE_ALARM_BILLED ? (u.alarmDeletes ?? 0) : 0);
  const rowsWritten = u.rowsWritten + alarmRows;
  const per = {
    workerInvocations: (u.webhooks + u.consumerInvocations) / n,
    doRequests: doRequests / n,
    doCalls: sum(u.requests) / n,
    doAlarms: sum(u.alarms) / n,
    rowsRead: u.rowsRead / n,
    rowsWritten: rowsWritten / n,
    rowsWrittenPerDelivery: rowsWritten / r.deliveries,
    // Of the rows written: the SQL cursors', and the alarms set (setAlarm).
    sqlRowsWritten: u.rowsWritten / n,
    alarmRowsWritten: alarmRows / n,
    // deleteAlarm calls, priced only if DELETE_ALARM_BILLED (then in alarmRowsWritten too).
    alarmDeletes: (u.alarmDeletes ?? 0) / n,
    // What counting (the metrics) writes, a share of the rows written.
    metricsRowsWritten: (u.metricsRowsWritten ?? 0) / n,
    queueOperations: queueOps / n,
    cpuMs: r.cpuMs / n,
  };
  const dollars = {
    workerInvocations: per.workerInvocations * PRICES.workerRequest * 1e6,
    cpu: per.cpuMs * PRICES.cpuMs * 1e6,
    doRequests: per.doRequests * PRICES.doRequest * 1e6,
    rowsRead: per.rowsRead * PRICES.rowRead * 1e6,
    rowsWritten: per.rowsWritten * PRICES.rowWritten * 1e6,
    queueOperations: per.queueOperations * PRICES.queueOperation * 1e6,
  };
  dollars.total = Object.values(dollars).reduce((a, b) => a + b, 0);
  return { per, dollarsPerMillionWebhooks: dollars };
}

const DESTINATION_ROUNDS = 5;
const DESTINATION = { deliveries: 2000, connections: 16 };
const SLOW_APP = { delayMs: 50, deliveries: 300 };

/** The median run of `runs` by deliveries a second, with every run's figures beside it. */
function median(runs, of) {
  const sorted = [...runs].sort((a, b) => a.deliveriesPerSecond - b.deliveriesPerSecond);
  const m = sorted[Math.floor(sorted.length / 2)];
  const extra = m.mode === "sustained" ? { webhooksPerSecondRuns: runs.map((r) => r.webhooksPerSecond), latencyP50Runs: runs.map((r) => r.latencyMs.p50) } : {};
  return { ...m, runs: runs.map((r) => r.deliveriesPerSecond), ...extra, of };
}

/**
 * Everything: the units of each variant with one and two apps, then one
 * app's deliveries a second. `variants`, `rounds` and the deliveries of the
 * destination runs can be given (a trial with fewer); by default the two
 * workers of variants() and the figures above.
 */
export async function unitsBench({
  log = (...a) => console.error("units:", ...a),
  webhooks = 300,
  rate = 10,
  variants: all = variants({ log }),
  rounds = DESTINATION_ROUNDS,
  destination = DESTINATION,
  slowApp = SLOW_APP,
} = {}) {
  const out = {
    method: "see bench/units.mjs and bench/destination.mjs",
    settings: {
      webhooks,
      rate,
      conversations: 16,
      windows: "RECOVERY_GRACE_SECONDS 10, DEDUP_WINDOW_SECONDS, DELIVERY_LOG_SECONDS and DEAD_LETTER_RETENTION_SECONDS 20",
      // Rows written include one per setAlarm(); deleteAlarm() calls are counted apart and priced only if this is true.
      deleteAlarmBilled: DELETE_ALARM_BILLED,
      destination: { ...destination, rounds },
      slowApp,
    },
    prices: PRICES,
    variants: {},
  };
  for (const variant of all) {
    out.variants[variant.name] = { label: variant.label, objects: variant.objects, queue: variant.queue, runs: [] };
    for (const destinations of [1, 2]) {
      const r = await run(variant, { destinations, webhooks, rate, log });
      r.perWebhook = perWebhook(r);
      out.variants[variant.name].runs.push(r);
      log(`${variant.name}, ${destinations}: ${JSON.stringify(r.perWebhook)}`);
    }
  }
  // One app's deliveries a second swing by a fifth from run to run on these
  // machines: the variants take turns, each round both modes, and each keeps
  // its median per mode. `destination`: the catch-up (paused, then drained);
  // `destinationSustained`: the stream, not paused.
  const bench = (variant, o) => destinationBench({ build: variant.build, objects: variant.objects, queue: variant.queue, queues: variant.queues, connections: destination.connections, log, ...o });
  const runs = Object.fromEntries(all.map((v) => [v.name, { drain: [], sustained: [] }]));
  for (let round = 0; round < rounds; round++) {
    for (const variant of all) {
      for (const mode of ["drain", "sustained"]) {
        const r = await bench(variant, { mode, total: destination.deliveries });
        runs[variant.name][mode].push(r);
        log(`${variant.name}, one app, ${mode}: ${r.deliveriesPerSecond} deliveries/s, ${r.webhooksPerSecond} webhooks/s`);
      }
    }
  }
  const of = `the median of ${rounds} run${rounds === 1 ? "" : "s"}${all.length > 1 ? ", taking turns with the other variant" : ""}`;
  for (const variant of all) {
    out.variants[variant.name].destination = median(runs[variant.name].drain, of);
    out.variants[variant.name].destinationSustained = median(runs[variant.name].sustained, of);
  }
  // An app that takes as long to answer as one across the internet: one run of each mode.
  for (const variant of all) {
    for (const [mode, key] of [["drain", "slowApp"], ["sustained", "slowAppSustained"]]) {
      const r = await bench(variant, { mode, total: slowApp.deliveries, appDelayMs: slowApp.delayMs });
      out.variants[variant.name][key] = r;
      log(`${variant.name}, one app answering in ${slowApp.delayMs} ms, ${mode}: ${r.deliveriesPerSecond} deliveries/s`);
    }
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  mkdirSync(WORK, { recursive: true });
  const result = await unitsBench();
  writeFileSync(join(WORK, "units.json"), JSON.stringify(result, null, 2) + "\n");
  console.log(JSON.stringify(result, null, 2));
}
