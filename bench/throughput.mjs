// One app's deliveries a second, as its delivery log can take them: the
// worker as it was (bench/units.mjs builds it in bench/work/before) and as
// it is, taking turns, in local workerd (bench/destination.mjs, "drain": a
// backlog held while paused, then resumed with DRAIN_PER_SECOND at each
// worker's own maximum).
//
// Three figures for each, every one a median of ROUNDS runs but the last:
//   - a loopback app that answers at once, with Miniflare's outbound proxy
//     (a second JavaScript worker in the same workerd thread that every
//     request to an app passes through, as under `wrangler dev`);
//   - the same without it (as on the platform, which has no such worker):
//     what the log itself costs;
//   - an app that answers in 50 ms (one run).
// The TCP connections each run opened to the app are kept beside it. Each
// round also measures the floor under them (bench/floor.mjs): what one
// Durable Object in the same workerd sends with none of the bridge in it,
// requests alone and with each answer kept durably, so that the figures can
// be read against what this machine allowed in the same run.
//
//   node bench/throughput.mjs        (about 10 minutes; writes bench/work/throughput.json)
//
// bench/report.mjs renders it from results.json (`throughput`).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { destinationBench } from "./destination.mjs";
import { floorBench } from "./floor.mjs";
import { variants } from "./units.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WORK = join(ROOT, "bench/work");
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DELIVERIES = 4000;
const SLOW = { deliveries: 2000, delayMs: 50 };

/** The largest DRAIN_PER_SECOND each worker takes: 1,000 before 768a1ad, 10,000 since. */
const MAX_DRAIN = { before: 1000, after: 10000 };

const pick = (r) => ({ deliveriesPerSecond: r.deliveriesPerSecond, seconds: r.seconds, appConnections: r.appConnections });

function median(runs) {
  const sorted = [...runs].sort((a, b) => a.deliveriesPerSecond - b.deliveriesPerSecond);
  return { ...sorted[Math.floor(sorted.length / 2)], runs: runs.map((r) => r.deliveriesPerSecond), connectionsRuns: runs.map((r) => r.appConnections) };
}

export async function throughputBench({ log = (...a) => console.error("throughput:", ...a), rounds = ROUNDS } = {}) {
  const all = variants({ log });
  const runs = Object.fromEntries(all.map((v) => [v.name, { proxy: [], direct: [] }]));
  const floors = { fetch: [], durable: [] };
  const bench = (v, o) =>
    destinationBench({ build: v.build, objects: v.objects, queue: v.queue, queues: v.queues, connections: 16, mode: "drain", drainPerSecond: MAX_DRAIN[v.name], log, ...o });
  for (let round = 0; round < rounds; round++) {
    for (const v of all) {
      for (const outbound of ["proxy", "direct"]) {
        const r = await bench(v, { total: DELIVERIES, outboundProxy: outbound === "proxy" });
        runs[v.name][outbound].push(pick(r));
        log(`${v.name}, ${outbound}: ${r.deliveriesPerSecond} deliveries/s over ${r.appConnections} connections`);
      }
    }
    for (const mode of ["fetch", "durable"]) {
      const r = await floorBench({ mode, total: DELIVERIES });
      floors[mode].push(r.requestsPerSecond);
      log(`floor, ${mode}: ${r.requestsPerSecond} requests/s`);
    }
  }
  const middle = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const out = {
    date: new Date().toISOString(),
    deliveries: DELIVERIES,
    method:
      `bench/throughput.mjs: ${DELIVERIES} deliveries held while paused, then resumed with DRAIN_PER_SECOND at each worker's maximum; ` +
      `deliveries a second = backlog / time from the resume to the last delivery; the median of ${rounds} runs, the variants taking turns`,
    variants: {},
    floor: Object.fromEntries(Object.entries(floors).map(([mode, xs]) => [mode, { requestsPerSecond: middle(xs), runs: xs }])),
  };
  for (const v of all) {
    const slow = await bench(v, { total: SLOW.deliveries, appDelayMs: SLOW.delayMs });
    log(`${v.name}, ${SLOW.delayMs} ms app: ${slow.deliveriesPerSecond} deliveries/s over ${slow.appConnections} connections`);
    out.variants[v.name] = {
      label: v.label,
      drainPerSecond: MAX_DRAIN[v.name],
      proxy: median(runs[v.name].proxy),
      direct: median(runs[v.name].direct),
      slowApp: { ...pick(slow), appDelayMs: SLOW.delayMs, deliveries: SLOW.deliveries },
    };
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  mkdirSync(WORK, { recursive: true });
  const result = await throughputBench();
  writeFileSync(join(WORK, "throughput.json"), JSON.stringify(result, null, 2) + "\n");
  console.log(JSON.stringify(result, null, 2));
}
