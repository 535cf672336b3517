// How many deliveries a second one destination sustains: the built worker in
// local workerd (Miniflare) with its queues and Durable Objects, and one
// destination, a loopback app that answers 200 at once. Every delivery of one
// app goes through that app's delivery log (one Durable Object), so that
// object is the design's per-destination ceiling.
//
// Two phases, so that the delivery side is measured apart from the webhooks:
//   1. the destination is paused and webhooks for distinct conversations are
//      posted from several connections (webhooks a second: each new
//      conversation is a new outbox, which local workerd creates slowly);
//   2. it is resumed with DRAIN_PER_SECOND at its maximum, and the backlog is
//      timed until the app has every delivery (deliveries a second).
//
//   node bench/destination.mjs [deliveries=2000] [connections=16] [app delay ms=0]
//
// The app answers at once, or after the delay: an app across the internet
// takes tens of milliseconds, which is what a batch's deliveries going side
// by side rather than one after another is for.
//
// Writes bench/destination.json and prints a summary. bench/units.mjs runs it
// for the worker as it was, too (`destinationBench`).
import { createServer } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TOKEN = "bench-token";
const ADMIN = "bench-admin-token-0123456789abcdef0123";

/**
 * Deliveries a second to one app for the worker built in `build`, whose
 * Durable Object classes `objects` names by binding.
 */
export async function destinationBench({
  build = join(ROOT, "build"),
  objects = { OUTBOX: "Outbox", DELIVERY_LOG: "DeliveryLog", REGISTRY: "Registry" },
  total = 2000,
  connections = 16,
  appDelayMs = 0,
  log = () => {},
} = {}) {
  let received = 0;
  let lastAt = 0;
  const app = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
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
  await new Promise((resolve) => app.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${app.address().port}/hook`;
  const persist = mkdtempSync(join(tmpdir(), "drift-bridge-bench-"));
  const mf = new Miniflare({
    rootPath: build,
    scriptPath: join(build, "index.js"),
    modules: true,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    compatibilityDate: "2026-04-26",
    bindings: {
      DRIFT_VERIFICATION_TOKEN: TOKEN,
      ADMIN_TOKEN: ADMIN,
      DRAIN_PER_SECOND: "1000",
      DESTINATIONS: JSON.stringify([{ name: "one", url, types: ["conversation_push"] }]),
    },
    queueProducers: { DELIVERIES: { queueName: "drift-bridge-deliveries" } },
    // As in wrangler.toml.
    queueConsumers: {
      "drift-bridge-deliveries": { maxBatchSize: 10, maxBatchTimeout: 1, maxRetries: 11, deadLetterQueue: "drift-bridge-dead-letters" },
      "drift-bridge-dead-letters": { maxBatchSize: 10, maxBatchTimeout: 1 },
    },
    durableObjects: Object.fromEntries(Object.entries(objects).map(([binding, className]) => [binding, { className, useSQLite: true }])),
    durableObjectsPersist: process.env.BENCH_PERSIST ? persist : undefined,
    // Drain its output (one JSON log line per webhook and attempt): a full pipe would stall workerd.
    handleRuntimeStdio(stdout, stderr) {
      stdout.resume();
      stderr.resume();
    },
  });
  await mf.ready;
  const adminCall = async (path, method = "GET") => {
    const res = await mf.dispatchFetch(`http://bridge.test${path}`, { method, headers: { authorization: `Bearer ${ADMIN}` } });
    return res.json();
  };
  await adminCall("/admin/destinations/one/pause", "POST");
  const event = (n) =>
    JSON.stringify({ orgId: 1, type: "conversation_inactive", data: { lastUpdated: 1591813767000, conversationId: 1_000_000 + n } });
  let next = 0;
  let refused = 0;
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
        await res.arrayBuffer();
        if (res.status !== 200) refused++;
        if (n % 500 === 0) log(`posted ${n} (${res.status})`);
      }
    }),
  );
  const acceptedAt = performance.now();
  const deadline = Date.now() + 600_000;
  for (let h; (h = (await adminCall("/admin/destinations")).destinations[0]).held < total - refused && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 250));
  }
  const firstAt = performance.now();
  await adminCall("/admin/destinations/one/resume", "POST");
  while (received < total - refused && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const seconds = (lastAt - firstAt) / 1000;
  await mf.dispose();
  app.close();
  rmSync(persist, { recursive: true, force: true });
  return {
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model, cores: cpus().length },
    deliveries: total,
    connections,
    appDelayMs,
    webhooksPerSecond: Math.round(total / ((acceptedAt - started) / 1000)),
    delivered: received,
    refused,
    seconds: Math.round(seconds * 100) / 100,
    deliveriesPerSecond: Math.round(received / seconds),
    queue: "max_batch_size 10, max_batch_timeout 1 s (as wrangler.toml)",
    method: "paused while the webhooks came in, then resumed with DRAIN_PER_SECOND=1000; deliveries a second = backlog / time from the resume to the last delivery",
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const result = await destinationBench({
    total: Number(process.argv[2] ?? 2000),
    connections: Number(process.argv[3] ?? 16),
    appDelayMs: Number(process.argv[4] ?? 0),
    log: process.env.BENCH_VERBOSE ? (...a) => console.error(...a) : () => {},
  });
  console.log(JSON.stringify(result, null, 2));
  writeFileSync(join(ROOT, "bench/destination.json"), JSON.stringify(result, null, 2) + "\n");
}
