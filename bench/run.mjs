// Measures drift-bridge side by side with what a user would pick instead, on
// this machine, in one run, and writes bench/results.json and bench/README.md.
//
//   make bench            (installs GNU time, jq, Chromium and perf if missing, builds
//                         drift-bridge and the load generator bench/load, runs this)
//
// Environment: BENCH_LINES (default 1000000), BENCH_RUNS (3), BENCH_SECONDS (5,
// per load run of the workers), BENCH_ROUNDS (7, interleaved rounds of the
// workers). BENCH_ONLY=worker measures the workers only (bench/worker.mjs) and
// writes bench/work/results.json and bench/work/README.md instead.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, totalmem, release } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { workerBench } from "./worker.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WORK = join(ROOT, "bench/work");
const LINES = Number(process.env.BENCH_LINES ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const ONLY_WORKER = process.env.BENCH_ONLY === "worker";

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
    rustc: version("rustc"), node: process.version, jq: version("jq"),
    wrangler: JSON.parse(readFileSync(join(ROOT, "node_modules/wrangler/package.json"))).version,
    workerd: JSON.parse(readFileSync(join(ROOT, "node_modules/workerd/package.json"))).version,
    chromium: version("chromium"),
  },
  settings: { lines: LINES, runs: RUNS, secondsPerLoad: SECONDS, rounds: ROUNDS, statistic: "median" },
};

if (!ONLY_WORKER) {
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
}

// ---------------------------------------------------------------- sizes
const size = (path) => ({ bytes: statSync(join(ROOT, path)).size, gzip: gzipSync(readFileSync(join(ROOT, path)), { level: 9 }).length });
const { BRIDGE, OPERATOR } = await import("./report.mjs");
results.size = {
  [BRIDGE]: size("build/bridge_bg.wasm"),
  [OPERATOR]: size("build/operator_bg.wasm"),
  "worker JS: entry module and glue (build/index.js)": size("build/index.js"),
  "browser wasm (www/pkg/drift_bridge_bg.wasm)": size("www/pkg/drift_bridge_bg.wasm"),
  "browser JS glue (www/pkg/drift_bridge.js)": size("www/pkg/drift_bridge.js"),
};

// ---------------------------------------------------------------- workers in workerd
results.worker = await workerBench({ root: ROOT, rounds: ROUNDS, seconds: SECONDS, log });
results.coldStart = results.worker.coldStart;
delete results.worker.coldStart;

// ---------------------------------------------------------------- where a webhook's CPU goes
const { coldStartBare, profileBench } = await import("./profile.mjs");
results.profile = await profileBench({ log });
// ---------------------------------------------------------------- cold start without Miniflare
results.coldStart.bare = await coldStartBare({ log });

// ---------------------------------------------------------------- what a webhook costs
if (!ONLY_WORKER) {
  const { unitsBench } = await import("./units.mjs");
  results.units = await unitsBench({ log });
}

// ---------------------------------------------------------------- playground in Chromium
if (!ONLY_WORKER) try {
  const { playground } = await import("./playground.mjs");
  results.playground = await playground(ROOT);
  results.coldStart.workerWasmCompileMs = results.playground.workerWasmCompileMs;
} catch (e) {
  log(`playground measurement skipped: ${e.message}`);
  results.playground = { skipped: e.message };
}

const out = ONLY_WORKER ? WORK : join(ROOT, "bench");
writeFileSync(join(out, "results.json"), JSON.stringify(results, null, 2) + "\n");
const { report } = await import("./report.mjs");
writeFileSync(join(out, "README.md"), report(results));
log(`wrote ${join(out, "results.json")} and ${join(out, "README.md")}`);
