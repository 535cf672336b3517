// The worker part of `make bench`: drift-bridge, the reference JavaScript
// worker (bench/js-worker) and the floor (bench/empty-worker, which reads the
// body and answers 200) side by side in local workerd (Miniflare), each in its
// own workerd process, in the same run, in interleaved rounds.
//
// - CPU per request: utime + stime of the worker's workerd process (all its
//   threads, /proc/<pid>/stat) before and after a load run, divided by the
//   requests it completed. Robust to other load on the machine, unlike
//   latency.
// - Latency: p50, p90 and p99 of every request as measured (bench/load, not
//   wrk: see its source), at concurrency 1 and 16. workerd is pinned to one
//   core and the load generator to another (taskset), so neither steals the
//   other's.
// - With destinations: the same webhook, each request a new event, handed to
//   the outbox Durable Object (drift-bridge's, and the reference's own one).
// - Event size: CPU per webhook for events of 200 B to MAX_BODY_BYTES.
// - Cold start: the first request after a fresh workerd is ready.
//
// Run alone with `BENCH_ONLY=worker node bench/run.mjs`.
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Miniflare } from "miniflare";
import { withoutLog } from "./report.mjs";

export const TOKEN = "bench-token";
export const DRIFT_EXAMPLE = '{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}';
/** Two apps, as in the README: every webhook of the bench is two deliveries. */
export const DESTINATIONS = JSON.stringify([
  { name: "legacy-crm", url: "https://crm.example.com/drift/webhook", types: ["conversation_status_updated"] },
  { name: "push-app", url: "https://app.example.com/hooks/drift", types: ["conversation_push"] },
]);
export const LOAD_CORE = "0";
/** How many times the amplified runs repeat the handler. */
const REPEAT = 21;
export const WORKERD_CORE = "1";
const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

/** The worker's wasm modules in build/: the bridge's, and the operator's (workers-rs). */
export const WORKER_WASM = ["bridge_bg.wasm", "operator_bg.wasm"];

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
export const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** The events of the size curve: Drift's example padded in data.pad. */
export function paddedEvent(bytes) {
  const make = (pad) => `{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789,"pad":"${pad}"}}`;
  return make("x".repeat(Math.max(0, bytes - make("").length)));
}

/** The workerd processes that are children of this process. */
function workerdChildren() {
  const pids = new Set();
  for (const task of readdirSync(`/proc/${process.pid}/task`)) {
    let children = "";
    try {
      children = readFileSync(`/proc/${process.pid}/task/${task}/children`, "utf8");
    } catch {
      continue;
    }
    for (const pid of children.trim().split(/\s+/).filter(Boolean)) {
      try {
        if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "workerd") pids.add(Number(pid));
      } catch {}
    }
  }
  return pids;
}

/** CPU seconds (user + system, all threads) a process has used so far. */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of proc(5), counted from the state, field 3.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Starts a worker in its own workerd, pinned to WORKERD_CORE. */
export async function start(options, bindings = {}) {
  const before = workerdChildren();
  const mf = new Miniflare({
    modules: true,
    compatibilityDate: "2026-04-26",
    host: "127.0.0.1",
    port: 0,
    bindings: { DRIFT_VERIFICATION_TOKEN: TOKEN, ...bindings },
    // Read and drop what workerd prints (log lines).
    handleRuntimeStdio(stdout, stderr) {
      stdout.resume();
      stderr.resume();
    },
    ...options,
  });
  const url = (await mf.ready).href.replace(/\/$/, "");
  const pids = [...workerdChildren()].filter((pid) => !before.has(pid));
  if (pids.length !== 1) throw new Error(`expected one new workerd process, found ${pids.length}`);
  const pid = pids[0];
  execFileSync("taskset", ["-a", "-p", "-c", WORKERD_CORE, String(pid)], { stdio: "ignore" });
  return { mf, url, pid };
}

/** The load generator (bench/load, built by `make bench`). */
export const LOAD_TOOL = new URL("../target/load/release/load", import.meta.url).pathname;

/**
 * One load run against `url` on LOAD_CORE (bench/load: closed-loop keep-alive
 * connections, every request's latency as measured): requests/s, p50/p90/p99
 * in ms, and the workerd's CPU per completed request in µs. Asynchronous, so
 * that this process keeps reading what workerd prints (drift-bridge logs a
 * line per webhook) and workerd never waits on a full pipe.
 */
export async function load(worker, path, { connections = 1, seconds = 5, body = DRIFT_EXAMPLE, vary = false, offset = 0 } = {}) {
  if (!existsSync(LOAD_TOOL)) {
    throw new Error(`${LOAD_TOOL} is missing: \`make bench\` builds it (cargo build --release --manifest-path bench/load/Cargo.toml --target-dir target/load)`);
  }
  const cpuBefore = cpuSeconds(worker.pid);
  const run = await new Promise((resolve, reject) => {
    const child = spawn("taskset", ["-c", LOAD_CORE, LOAD_TOOL, worker.url + path, String(connections), String(seconds)], {
      env: { ...process.env, BENCH_BODY: body, BENCH_TOKEN: TOKEN, BENCH_VARY: vary ? "1" : "0", BENCH_OFFSET: String(offset) },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c) => (stderr += c));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
  const cpu = cpuSeconds(worker.pid) - cpuBefore;
  if (run.status !== 0) throw new Error(`the load run failed: ${run.stderr.trim()}`);
  const r = JSON.parse(run.stdout);
  if (r.non2xx > 0) throw new Error(`${r.non2xx} answers from ${worker.url + path} were not 2xx`);
  return { requests: r.requests, rps: r.rps, p50: r.p50Ms, p90: r.p90Ms, p99: r.p99Ms, stalls: r.stalls, stalledMs: r.stalledMs, cpuMicros: (cpu / r.requests) * 1e6 };
}

/** The system's CPU time so far (all cores), and of idle, in seconds: to tell how busy the machine was. */
function systemCpu() {
  const [, ...fields] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  return { total: total / CLOCK_TICKS, idle: (fields[3] + fields[4]) / CLOCK_TICKS };
}

export async function workerBench({ root, rounds = 7, seconds = 5, sizeSeconds = Math.max(1, Math.round(seconds * 0.6)), log = () => {} }) {
  const wasmRules = [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }];
  const ours = { scriptPath: join(root, "build/index.js"), modulesRules: wasmRules };
  const reference = { scriptPath: join(root, "bench/js-worker/index.js") };
  const floor = { scriptPath: join(root, "bench/empty-worker/index.js") };
  // The queue has no consumer here: what is measured ends with the
  // deliveries' references on the queue.
  const withOutbox = {
    queueProducers: { DELIVERIES: { queueName: "drift-bridge-deliveries" } },
    durableObjects: {
      OUTBOX: { className: "Outbox", useSQLite: true },
      DELIVERY_LOG: { className: "DeliveryLog", useSQLite: true },
      REGISTRY: { className: "Registry", useSQLite: true },
    },
  };
  // As the queue has no consumer, drift-bridge's destination logs would
  // queue every delivery again once RECOVERY_GRACE_SECONDS (300 s) passed
  // without progress, and go on doing so every 300 s, in the background, on
  // the core the measured workers share: that took 10-15% of it, and made the
  // figures of whatever ran then wrong (the reference has no recovery). The
  // longest grace keeps it out of the run.
  const destinationBindings = { DESTINATIONS, RECOVERY_GRACE_SECONDS: "86400" };
  // The objects' SQLite files go on tmpfs when the machine has one. On this
  // machine's disk, the fsync of every commit cost about a third of a
  // hand-off's CPU (by hand on 2026-11-30: 2,509 µs a webhook on disk,
  // 1,810 µs on tmpfs, drift-bridge at concurrency 1), the same in both
  // workers, and it moved by ±30% from round to round; a Durable Object's
  // storage on Workers is not a local file's fsync either.
  const storageRoot = existsSync("/dev/shm") ? mkdtempSync("/dev/shm/drift-bridge-bench-") : undefined;
  const storage = (name) => (storageRoot ? { durableObjectsPersist: join(storageRoot, name) } : {});
  const NAMES = { ours: "drift-bridge (Rust/wasm)", js: "reference JS worker", floor: "empty worker (floor)" };
  // The worker's own work, amplified: a wrapper worker runs the worker's
  // fetch handler REPEAT times per request (on copies of the request), so
  // that (CPU at REPEAT − CPU at 1) / (REPEAT − 1) is one handler's CPU, well
  // above the run-to-run noise of the plumbing around it.
  const amplified = {};
  mkdirSync(join(root, "bench/work"), { recursive: true });
  // The "quiet" ones also make console.log do nothing, in both workers: a
  // webhook's log line is the same in both, and in local workerd it costs
  // more than either worker's own work (bench/README.md).
  const targets = { ours: "../../build/index.js", js: "../js-worker/index.js", floor: "../empty-worker/index.js" };
  for (const [key, target, quiet] of [...Object.entries(targets), ["oursQuiet", targets.ours, true], ["jsQuiet", targets.js, true]]) {
    for (const repeat of [1, REPEAT]) {
      const scriptPath = join(root, `bench/work/repeat-${key}-${repeat}.mjs`);
      writeFileSync(scriptPath, repeater(target, repeat, quiet));
      amplified[`${key}${repeat}`] = { scriptPath, modulesRoot: root, modulesRules: [...wasmRules, { type: "ESModule", include: ["**/*.js"] }] };
    }
  }
  // The amplified runs of each route: /convert writes no log line, so it has no quiet ones.
  const amplifiedRuns = (route) => ["ours", "js", "floor", ...(route === "/webhooks/drift" ? ["oursQuiet", "jsQuiet"] : [])];
  const sizes = [200, 1024, 4096, 16384, 65536];

  log("worker: starting the workers");
  const workers = {
    ours: await start(ours),
    js: await start(reference),
    floor: await start(floor),
    oursDest: await start({ ...ours, ...withOutbox, ...storage("ours") }, destinationBindings),
    jsDest: await start({ ...reference, ...withOutbox, ...storage("js") }, destinationBindings),
  };
  for (const [key, options] of Object.entries(amplified)) workers[key] = await start(options);
  // The control for latency: a plain Node.js HTTP server on the same core,
  // under the same load, that reads the body and answers 200. Its tail is the
  // machine's and the loopback's; what the workers' tails add is workerd's.
  workers.control = await controlServer();
  // Every case: which worker, which path, what load. Each round runs all of
  // them once, in this order, so the workers are interleaved in time.
  const cases = [];
  for (const route of ["/webhooks/drift", "/convert"]) {
    for (const connections of [1, 16]) {
      for (const w of ["ours", "js", "floor"]) cases.push({ key: `${route} c=${connections} ${w}`, worker: w, route, connections, vary: route === "/webhooks/drift" });
    }
  }
  for (const connections of [1, 16]) {
    for (const w of ["oursDest", "jsDest"]) cases.push({ key: `destinations c=${connections} ${w}`, worker: w, route: "/webhooks/drift", connections, vary: true });
  }
  for (const size of sizes) {
    for (const w of ["ours", "js", "floor"]) cases.push({ key: `size ${size} ${w}`, worker: w, route: "/webhooks/drift", connections: 1, body: paddedEvent(size), short: true });
  }
  for (const connections of [1, 16]) cases.push({ key: `control c=${connections}`, worker: "control", route: "/webhooks/drift", connections });
  for (const route of ["/webhooks/drift", "/convert"]) {
    for (const w of amplifiedRuns(route)) {
      for (const repeat of [1, REPEAT]) cases.push({ key: `amplified ${route} ${w}${repeat}`, worker: `${w}${repeat}`, route, connections: 1, short: true });
    }
  }

  let offset = 0;
  const next = () => (offset += 10_000_000);
  log("worker: warming up");
  // The outboxes of the 16 conversations are made here, not in round 1.
  for (const c of cases) await load(workers[c.worker], c.route, { connections: c.connections, seconds: c.worker.endsWith("Dest") ? 3 : 1, body: c.body, vary: c.vary, offset: next() });

  const samples = Object.fromEntries(cases.map((c) => [c.key, []]));
  const machine = { before: systemCpu(), loadavgBefore: readFileSync("/proc/loadavg", "utf8").trim() };
  const pinnedCpu = () => Object.entries(workers).reduce((sum, [key, w]) => sum + (key === "control" ? 0 : cpuSeconds(w.pid)), 0);
  const pinnedBefore = pinnedCpu();
  for (let r = 0; r < rounds; r++) {
    log(`worker: round ${r + 1} of ${rounds}`);
    for (const c of cases) {
      samples[c.key].push(await load(workers[c.worker], c.route, { connections: c.connections, seconds: c.short ? sizeSeconds : seconds, body: c.body, vary: c.vary, offset: next() }));
    }
  }
  const after = systemCpu();
  machine.loadavgAfter = readFileSync("/proc/loadavg", "utf8").trim();
  const wall = after.total - machine.before.total;
  // Everything that was not idle, minus the workerd processes under test: the load generator,
  // and whatever else ran on the machine meanwhile.
  machine.busyShare = round((wall - (after.idle - machine.before.idle)) / wall, 3);
  machine.workerdShare = round((pinnedCpu() - pinnedBefore) / wall, 3);
  delete machine.before;
  for (const w of Object.values(workers)) await w.mf.dispose();
  if (storageRoot) rmSync(storageRoot, { recursive: true, force: true });

  const summary = (key) => {
    const s = samples[key];
    return {
      cpuMicros: round(median(s.map((x) => x.cpuMicros)), 1),
      cpuMicrosAll: s.map((x) => round(x.cpuMicros, 1)),
      rps: Math.round(median(s.map((x) => x.rps))),
      p50ms: round(median(s.map((x) => x.p50)), 3),
      p90ms: round(median(s.map((x) => x.p90)), 3),
      p99ms: round(median(s.map((x) => x.p99)), 3),
      p99msAll: s.map((x) => round(x.p99, 3)),
      // Stretches of 5 ms or more without any answer, per load run (bench/load).
      stalls: median(s.map((x) => x.stalls)),
      stalledMs: round(median(s.map((x) => x.stalledMs)), 1),
      requests: s.reduce((a, x) => a + x.requests, 0),
    };
  };
  const out = { durableObjectStorage: storageRoot ? "tmpfs" : "disk", rounds, secondsPerRun: seconds, secondsPerSizeRun: sizeSeconds, clockTicksPerSecond: CLOCK_TICKS, machine, routes: {}, destinations: {}, sizes: {} };
  for (const route of ["/webhooks/drift", "/convert"]) {
    out.routes[route] = {};
    for (const connections of [1, 16]) {
      out.routes[route][connections] = Object.fromEntries(["ours", "js", "floor"].map((w) => [NAMES[w], summary(`${route} c=${connections} ${w}`)]));
    }
  }
  for (const connections of [1, 16]) {
    out.destinations[connections] = {
      [NAMES.ours]: summary(`destinations c=${connections} oursDest`),
      [NAMES.js]: summary(`destinations c=${connections} jsDest`),
    };
  }
  for (const size of sizes) {
    out.sizes[size] = Object.fromEntries(["ours", "js", "floor"].map((w) => [NAMES[w], summary(`size ${size} ${w}`)]));
  }

  out.control = { 1: summary("control c=1"), 16: summary("control c=16") };
  out.amplified = { repeat: REPEAT };
  for (const route of ["/webhooks/drift", "/convert"]) {
    out.amplified[route] = {};
    for (const w of amplifiedRuns(route)) {
      const one = samples[`amplified ${route} ${w}1`].map((x) => x.cpuMicros);
      const many = samples[`amplified ${route} ${w}${REPEAT}`].map((x) => x.cpuMicros);
      // Per round, then the median: the rounds pair runs made close in time.
      const perHandler = many.map((m, i) => (m - one[i]) / (REPEAT - 1));
      out.amplified[route][w.endsWith("Quiet") ? withoutLog(NAMES[w.slice(0, -5)]) : NAMES[w]] = { handlerMicros: round(median(perHandler), 1), handlerMicrosAll: perHandler.map((x) => round(x, 1)) };
    }
  }

  log("worker: cold starts");
  out.coldStart = {};
  for (const [key, options] of Object.entries({ ours, js: reference, floor })) out.coldStart[NAMES[key]] = await coldStart(options);
  return out;
}

/** The latency control: a Node.js HTTP server pinned to WORKERD_CORE, shaped like what start() answers. */
export async function controlServer() {
  const code = `const http = require("node:http");
const server = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => { res.writeHead(200, { "content-type": "application/json" }); res.end("{}"); });
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));`;
  const child = spawn("taskset", ["-c", WORKERD_CORE, process.execPath, "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise((resolve, reject) => {
    child.on("error", reject);
    child.stdout.setEncoding("utf8").once("data", (d) => resolve(Number(d.trim())));
  });
  // taskset execs node: the child is the server.
  return { url: `http://127.0.0.1:${port}`, pid: child.pid, mf: { dispose: async () => child.kill() } };
}

/** A worker module that runs `target`'s fetch handler `repeat` times per request; `quiet`: with console.log doing nothing. */
function repeater(target, repeat, quiet = false) {
  return `// Generated by bench/worker.mjs: ${target}'s fetch handler, ${repeat} times per request${quiet ? ", console.log doing nothing" : ""}.
import target from ${JSON.stringify(target)};
${quiet ? "console.log = () => {};\n" : ""}export default {
  async fetch(request, env, ctx) {
    const body = await request.arrayBuffer();
    let response;
    for (let i = 0; i < ${repeat}; i++) {
      if (response) await response.arrayBuffer();
      response = await target.fetch(new Request(request, { body }), env, ctx);
    }
    return response;
  },
};
`;
}

/** POSTs Drift's example to `url`'s /webhooks/drift and reads the answer (which must be 200): how long it took, in ms. */
export async function postExample(url) {
  const t = performance.now();
  const res = await fetch(`${url}/webhooks/drift`, { method: "POST", headers: { "x-verification-token": TOKEN }, body: DRIFT_EXAMPLE });
  await res.text();
  if (res.status !== 200) throw new Error(`${url}/webhooks/drift answered ${res.status}`);
  return performance.now() - t;
}

/** The first request after a fresh workerd is ready, 7 times. */
async function coldStart(options, times = 7) {
  const runs = [];
  for (let i = 0; i < times; i++) {
    const t = performance.now();
    const worker = await start(options);
    const ready = performance.now();
    const first = await postExample(worker.url);
    runs.push({ total: ready - t + first, first, second: await postExample(worker.url) });
    await worker.mf.dispose();
  }
  return {
    startToFirstResponseMs: round(median(runs.map((x) => x.total)), 1),
    firstRequestMs: round(median(runs.map((x) => x.first)), 2),
    secondRequestMs: round(median(runs.map((x) => x.second)), 2),
  };
}
