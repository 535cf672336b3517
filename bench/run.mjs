// Measures drift-bridge side by side with what a user would pick instead, on
// this machine, in one run, and writes bench/results.json and bench/README.md.
//
//   make bench            (installs wrk, GNU time and jq if missing, builds, runs this)
//
// Environment: BENCH_LINES (default 1000000), BENCH_RUNS (3), BENCH_SECONDS (5).
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, totalmem, release } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { Miniflare } from "miniflare";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WORK = join(ROOT, "bench/work");
const LINES = Number(process.env.BENCH_LINES ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = [1, 8, 32];
const TOKEN = "bench-token";
const DRIFT_EXAMPLE = '{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}';

mkdirSync(WORK, { recursive: true });
const log = (...a) => console.error("bench:", ...a);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: "utf8", cwd: ROOT, maxBuffer: 1 << 26, ...opts }).trim();
const version = (cmd, args = ["--version"]) => {
  const run = spawnSync(cmd, args, { encoding: "utf8" });
  return (run.stdout || run.stderr || "not found").trim().split("\n")[0];
};
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

const results = {
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model, cores: cpus().length, memoryGiB: round(totalmem() / 2 ** 30, 1), kernel: release() },
  versions: {
    rustc: version("rustc"), node: process.version, jq: version("jq"), wrk: version("wrk", ["-v"]).replace(/ Copyright.*/, ""),
    wrangler: JSON.parse(readFileSync(join(ROOT, "node_modules/wrangler/package.json"))).version,
    workerd: JSON.parse(readFileSync(join(ROOT, "node_modules/workerd/package.json"))).version,
    chromium: version("chromium"),
  },
  settings: { lines: LINES, runs: RUNS, secondsPerLoad: SECONDS, concurrency: CONCURRENCY, statistic: "median" },
};

// ---------------------------------------------------------------- input
const events = join(WORK, "events.ndjson");
const small = join(WORK, "events-100k.ndjson");
function generate(path, lines) {
  if (existsSync(path) && sh("wc", ["-l", path]).startsWith(`${lines} `)) return;
  log(`generating ${lines} events into ${path}`);
  spawnSync("bash", ["-c", `node bench/gen.mjs ${lines} > ${path}`], { cwd: ROOT, stdio: "inherit" });
}
generate(events, LINES);
generate(small, Math.min(100_000, LINES));
results.input = { lines: LINES, bytes: statSync(events).size, averageLineBytes: round(statSync(events).size / LINES, 1) };

// ---------------------------------------------------------------- core
log("core throughput");
results.core = JSON.parse(sh("cargo", ["bench", "-q", "--bench", "core", "--", events, "7"], { stdio: ["ignore", "pipe", "inherit"] }).split("\n").pop());

// ---------------------------------------------------------------- CLI vs jq vs Node
const cli = join(ROOT, "target/release/drift-bridge");
const tools = {
  "drift-bridge convert": `${cli} convert --now 1700000000000`,
  "node bench/node/convert.mjs": "node bench/node/convert.mjs",
  "jq -c -f bench/jq/convert.jq": "jq -c -f bench/jq/convert.jq",
};
function timed(command, input, output) {
  const run = spawnSync("bash", ["-c", `/usr/bin/time -f '%e %M' ${command} < ${input} > ${output}`], { cwd: ROOT, encoding: "utf8" });
  const [seconds, kib] = run.stderr.trim().split("\n").pop().split(" ").map(Number);
  if (run.status !== 0) throw new Error(`${command} failed: ${run.stderr}`);
  return { seconds, peakMiB: round(kib / 1024, 1) };
}
async function digest(path, stripIds = false) {
  const hash = createHash("sha256");
  let rest = "";
  for await (const chunk of createReadStream(path, { encoding: "utf8" })) {
    const text = rest + chunk;
    const end = text.lastIndexOf("\n") + 1;
    const lines = text.slice(0, end);
    rest = text.slice(end);
    hash.update(stripIds ? lines.replace(/^\{"id":"[0-9a-f]{16}","event":(.*)\}$/gm, "$1") : lines);
  }
  return hash.update(rest).digest("hex");
}
// Outputs go to memory (tmpfs) when there is one, so that the timings compare
// the tools and not the disk's writeback; each is checked, then removed.
const OUT = existsSync("/dev/shm") ? mkdtempSync("/dev/shm/drift-bridge-bench-") : WORK;
results.cli = { outputDirectory: OUT.startsWith("/dev/shm") ? "tmpfs (/dev/shm)" : "bench/work" };
for (const [name, command] of Object.entries(tools)) {
  log(`CLI comparison: ${name}`);
  const out = join(OUT, `out-${name.split(" ")[0].replace(/\W/g, "")}.ndjson`);
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(timed(command, events, out));
  const smallRun = timed(command, small, join(OUT, "out-small.ndjson"));
  results.cli[name] = {
    seconds: median(runs.map((r) => r.seconds)),
    peakMiB: Math.max(...runs.map((r) => r.peakMiB)),
    peakMiBOn100k: smallRun.peakMiB,
    linesPerSecond: Math.round(LINES / median(runs.map((r) => r.seconds))),
    digest: await digest(out, name.startsWith("jq")),
    digestWithoutIds: name.startsWith("jq") ? undefined : await digest(out, true),
  };
  rmSync(out, { force: true });
}
if (OUT !== WORK) rmSync(OUT, { recursive: true, force: true });
const [ours, node, jq] = Object.values(results.cli).filter((c) => typeof c === "object");
results.cli.identical = { node: ours.digest === node.digest, jqWithoutIds: ours.digestWithoutIds === jq.digest };
if (!results.cli.identical.node || !results.cli.identical.jqWithoutIds) throw new Error(`outputs differ: ${JSON.stringify(results.cli.identical)}`);
results.cli.ratios = { jqOverOurs: round(jq.seconds / ours.seconds, 1), nodeOverOurs: round(node.seconds / ours.seconds, 1) };

// ---------------------------------------------------------------- sizes
const size = (path) => ({ bytes: statSync(join(ROOT, path)).size, gzip: gzipSync(readFileSync(join(ROOT, path)), { level: 9 }).length });
results.size = {
  "worker wasm (build/index_bg.wasm)": size("build/index_bg.wasm"),
  "worker JS glue (build/index.js)": size("build/index.js"),
  "browser wasm (www/pkg/drift_bridge_bg.wasm)": size("www/pkg/drift_bridge_bg.wasm"),
  "browser JS glue (www/pkg/drift_bridge.js)": size("www/pkg/drift_bridge.js"),
};
results.coldStart = {};

// ---------------------------------------------------------------- workers under load
const workers = {
  "drift-bridge (Rust/wasm)": { scriptPath: join(ROOT, "build/index.js"), modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }] },
  "reference JS worker": { scriptPath: join(ROOT, "bench/js-worker/index.js") },
  "empty worker (floor)": { scriptPath: join(ROOT, "bench/empty-worker/index.js") },
};
async function start(options, port = 0) {
  const mf = new Miniflare({ modules: true, compatibilityDate: "2026-04-26", host: "127.0.0.1", port, bindings: { DRIFT_VERIFICATION_TOKEN: TOKEN }, ...options });
  const url = await mf.ready;
  return { mf, url: url.href.replace(/\/$/, "") };
}
function wrk(url, connections, body) {
  const run = spawnSync("wrk", ["-t1", `-c${connections}`, `-d${SECONDS}s`, "--latency", "-s", join(ROOT, "bench/wrk-post.lua"), url], {
    encoding: "utf8",
    env: { ...process.env, BENCH_BODY: body, BENCH_TOKEN: TOKEN },
  });
  const ms = (label) => {
    const m = run.stdout.match(new RegExp(`^\\s+${label}\\s+([\\d.]+)(us|ms|s)`, "m"));
    return m ? Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2]] : NaN;
  };
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(run.stdout);
  if (errors) throw new Error(`wrk saw ${errors[1]} non-2xx answers from ${url}`);
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(run.stdout)?.[1]), p50: ms("50%"), p99: ms("99%") };
}
results.worker = {};
for (const route of ["/webhooks/drift", "/convert"]) {
  results.worker[route] = {};
  for (const [name, options] of Object.entries(workers)) {
    const { mf, url } = await start(options);
    wrk(url + route, 8, DRIFT_EXAMPLE); // warm up
    results.worker[route][name] = {};
    for (const c of CONCURRENCY) {
      log(`load: ${name} ${route} at concurrency ${c}`);
      const runs = Array.from({ length: RUNS }, () => wrk(url + route, c, DRIFT_EXAMPLE));
      results.worker[route][name][c] = {
        rps: Math.round(median(runs.map((r) => r.rps))),
        p50ms: round(median(runs.map((r) => r.p50)), 3),
        p99ms: round(median(runs.map((r) => r.p99)), 3),
      };
    }
    await mf.dispose();
  }
}

// ---------------------------------------------------------------- cold start in workerd
async function firstResponse(options) {
  const times = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    const { mf, url } = await start(options);
    const started = performance.now();
    const res = await fetch(url + "/webhooks/drift", { method: "POST", headers: { "x-verification-token": TOKEN }, body: DRIFT_EXAMPLE });
    await res.text();
    times.push({ total: performance.now() - t, firstRequest: performance.now() - started });
    await mf.dispose();
  }
  return { startToFirstResponseMs: round(median(times.map((x) => x.total)), 1), firstRequestMs: round(median(times.map((x) => x.firstRequest)), 2) };
}
for (const [name, options] of Object.entries(workers)) results.coldStart[name] = await firstResponse(options);

// ---------------------------------------------------------------- playground in Chromium
try {
  const { playground } = await import("./playground.mjs");
  results.playground = await playground(ROOT);
  results.coldStart.workerWasmCompileMs = results.playground.workerWasmCompileMs;
} catch (e) {
  log(`playground measurement skipped: ${e.message}`);
  results.playground = { skipped: e.message };
}

writeFileSync(join(ROOT, "bench/results.json"), JSON.stringify(results, null, 2) + "\n");
const { report } = await import("./report.mjs");
writeFileSync(join(ROOT, "bench/README.md"), report(results));
log("wrote bench/results.json and bench/README.md");
