// Where a webhook's CPU goes, part of `make bench` (run alone with
// `node bench/profile.mjs`): the empty worker, the reference JS worker and
// drift-bridge each in a bare workerd (the binary Miniflare runs, without
// Miniflare's entry worker and proxy in front), under load at concurrency 1,
// sampled by `perf record -g` with V8's perf map (--perf-basic-prof), so
// that JavaScript and wasm frames are named. What is in a frame and below it
// is divided by the requests served: µs per request for each part.
//
// Linux perf is needed (Debian: linux-perf); without it this part is skipped
// with the reason.
//
// Also here, as it needs the same bare workerd: the cold start without
// Miniflare (`coldStartBare`), the first and second request after a fresh
// workerd process is listening.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { connect } from "node:net";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import workerd from "workerd";
import { LOAD_CORE, TOKEN, WORKERD_CORE, WORKER_WASM, load, median, postExample, round } from "./worker.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WORK = join(ROOT, "bench/work/profile");
const PORT = 18_391;

/** The parts, each a frame whose samples (it and what it called) are counted. */
const PARTS = [
  ["wasm (all of drift-bridge's Rust)", /^JS:.*-\d+-(turbofan|liftoff)$/],
  ["console.log", /^workerd::Worker::handleLog$/],
  ["new Response", /^workerd::api::Response::constructor$/],
  ["reading the body (arrayBuffer, json)", /^workerd::api::Body::(arrayBuffer|json|text)$/],
  ["crypto.subtle.digest", /^workerd::api::SubtleCrypto::digest$/],
  ["garbage collection", /^v8::internal::Heap::CollectGarbage$/],
  ["kernel (syscalls: sockets, pipes)", /^entry_SYSCALL_64_after_hwframe$/],
];

const WORKERS = {
  floor: { name: "empty worker (floor)", modules: [["floor.js", "esModule", "bench/empty-worker/index.js"]] },
  js: { name: "reference JS worker", modules: [["js.js", "esModule", "bench/js-worker/index.js"]] },
  ours: { name: "drift-bridge (Rust/wasm)", modules: [["index.js", "esModule", "build/index.js"], ...WORKER_WASM.map((name) => [name, "wasm", `build/${name}`])] },
};

function config(key, w, v8Flags) {
  const modules = w.modules.map(([name, kind]) => `(name = "${name}", ${kind} = embed "${key}-${name}")`).join(", ");
  return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .worker) ],
  sockets = [ (name = "http", address = "127.0.0.1:${PORT}", http = (), service = "main") ],
  v8Flags = ${JSON.stringify(v8Flags)},
);
const worker :Workerd.Worker = (
  modules = [ ${modules} ],
  compatibilityDate = "2026-04-26",
  bindings = [ (name = "DRIFT_VERIFICATION_TOKEN", text = "${TOKEN}") ],
);
`;
}

/**
 * Waits until workerd listens, without sending a request: a request would
 * run the worker's code, and the cold start measures the first one.
 */
async function waitForPort() {
  for (let i = 0; i < 200; i++) {
    const open = await new Promise((resolve) => {
      const socket = connect(PORT, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("workerd did not start");
}

/** Starts `w` alone in a bare workerd pinned to WORKERD_CORE, with `v8Flags`. */
async function serve(key, w, v8Flags) {
  for (const [name, , path] of w.modules) copyFileSync(join(ROOT, path), join(WORK, `${key}-${name}`));
  writeFileSync(join(WORK, `${key}.capnp`), config(key, w, v8Flags));
  // Its output goes nowhere: a pipe nobody reads would stall it.
  // taskset execs workerd: the child is the server.
  const server = spawn("taskset", ["-c", WORKERD_CORE, workerd.default ?? workerd, "serve", `${key}.capnp`], { cwd: WORK, stdio: "ignore" });
  const closed = new Promise((resolve) => server.on("close", resolve));
  const stop = () => {
    server.kill();
    return closed;
  };
  try {
    await waitForPort();
  } catch (e) {
    await stop();
    throw e;
  }
  return { url: `http://127.0.0.1:${PORT}`, pid: server.pid, stop };
}

/** Profiles one worker: µs per request of each part. */
async function profile(key, w, seconds) {
  const target = await serve(key, w, ["--perf-basic-prof"]);
  try {
    await load(target, "/webhooks/drift", { seconds: 2, vary: true }); // warm: compiled, optimised
    const data = join(WORK, `${key}.data`);
    const perf = spawn("perf", ["record", "-F", "4999", "-g", "-p", String(target.pid), "-o", data, "--", "sleep", String(seconds + 1)], { stdio: "ignore" });
    await new Promise((r) => setTimeout(r, 300));
    const { requests } = await load(target, "/webhooks/drift", { seconds, vary: true });
    await new Promise((resolve) => perf.on("close", resolve));
    const report = execFileSync("perf", ["report", "-i", data, "--children", "--sort", "sym", "-g", "none", "--stdio"], { encoding: "utf8", maxBuffer: 1 << 28, stdio: ["ignore", "pipe", "ignore"] });
    const events = Number(/Event count \(approx\.\): (\d+)/.exec(report)[1]);
    const rows = [...report.matchAll(/^\s+([\d.]+)%\s+([\d.]+)%\s+\[.\]\s+(.*?)\s*$/gm)].map((m) => ({ children: Number(m[1]), self: Number(m[2]), sym: m[3] }));
    const total = events / 1000 / requests; // cpu-clock events are nanoseconds
    const micros = (share) => Math.round(((share * total) / 100) * 10) / 10;
    const parts = {};
    for (const [part, pattern] of PARTS) {
      // wasm: the self time of every wasm function; the rest: the frame and
      // everything below it.
      parts[part] = pattern.source.startsWith("^JS:")
        ? micros(rows.filter((r) => pattern.test(r.sym)).reduce((sum, r) => sum + r.self, 0))
        : micros(Math.max(0, ...rows.filter((r) => pattern.test(r.sym)).map((r) => r.children)));
    }
    return { requests, seconds, cpuMicrosPerRequest: Math.round(total * 10) / 10, parts };
  } finally {
    await target.stop();
  }
}

export async function profileBench({ rounds = 3, seconds = 4, log = () => {} } = {}) {
  if (spawnSync("perf", ["--version"]).status !== 0) return { skipped: "Linux perf is not installed (Debian: linux-perf)" };
  const probe = spawnSync("perf", ["record", "-o", "/dev/null", "--", "true"], { encoding: "utf8" });
  if (probe.status !== 0) return { skipped: `perf cannot record here: ${(probe.stderr || "").trim().split("\n")[0]}` };
  mkdirSync(WORK, { recursive: true });
  // Interleaved rounds, then the median of each figure: this machine's speed
  // moves by tens of percent from one run to the next.
  const runs = Object.fromEntries(Object.keys(WORKERS).map((key) => [key, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [key, w] of Object.entries(WORKERS)) {
      log(`profile: round ${r + 1} of ${rounds}, ${w.name}`);
      runs[key].push(await profile(key, w, seconds));
    }
  }
  const out = { method: `bare workerd, bench/load at concurrency 1 on core ${LOAD_CORE}, workerd on core ${WORKERD_CORE}, perf record -F 4999 -g, ${rounds} interleaved rounds of ${seconds} s, medians`, rounds, workers: {} };
  for (const [key, w] of Object.entries(WORKERS)) {
    const all = runs[key];
    out.workers[w.name] = {
      requests: all.reduce((sum, x) => sum + x.requests, 0),
      cpuMicrosPerRequest: median(all.map((x) => x.cpuMicrosPerRequest)),
      cpuMicrosAll: all.map((x) => x.cpuMicrosPerRequest),
      parts: Object.fromEntries(PARTS.map(([part]) => [part, median(all.map((x) => x.parts[part]))])),
    };
  }
  return out;
}

/**
 * The cold start in a bare workerd: for each worker, `times` fresh workerd
 * processes (interleaved), each timed on its first and second POST of Drift's
 * example to /webhooks/drift once it listens (workerd loads its workers
 * before it listens). Medians, in ms.
 */
export async function coldStartBare({ times = 9, log = () => {} } = {}) {
  mkdirSync(WORK, { recursive: true });
  const runs = Object.fromEntries(Object.keys(WORKERS).map((key) => [key, []]));
  for (let i = 0; i < times; i++) {
    log(`cold start in a bare workerd: round ${i + 1} of ${times}`);
    for (const [key, w] of Object.entries(WORKERS)) {
      const target = await serve(`cold-${key}`, w, []);
      try {
        const first = await postExample(target.url);
        runs[key].push({ first, second: await postExample(target.url) });
      } finally {
        await target.stop();
      }
    }
  }
  const out = { method: `bare workerd on core ${WORKERD_CORE}, ${times} fresh processes per worker, interleaved, medians`, times, workers: {} };
  for (const [key, w] of Object.entries(WORKERS)) {
    out.workers[w.name] = {
      firstRequestMs: round(median(runs[key].map((x) => x.first))),
      secondRequestMs: round(median(runs[key].map((x) => x.second))),
      firstRequestMsAll: runs[key].map((x) => round(x.first)),
    };
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await profileBench({ log: (m) => console.error(m) });
  writeFileSync(join(ROOT, "bench/work/profile.json"), JSON.stringify(result, null, 2) + "\n");
  console.log(JSON.stringify(result, null, 2));
}
