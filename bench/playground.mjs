// Playground timings in headless Chromium: page load to first result, wasm
// instantiation, the time of one conversion, and a paste of 5,000 events
// (NDJSON) to its result on screen. The page is served by a plain static file
// server, as any user may serve www/.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";
import { WORKER_WASM } from "./worker.mjs";

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".wasm": "application/wasm", ".svg": "image/svg+xml", ".png": "image/png" };
const EXAMPLE = '{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}';

export async function playground(root, loads = 5, iterations = 2000) {
  const www = join(root, "www");
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)).replace(/^\/+/, "") || "index.html";
    try {
      // The worker's wasm modules too, to time their compilation in a current V8 (Node 20's is too old for them).
      const worker = WORKER_WASM.find((name) => path === `__worker/${name}`);
      const body = await readFile(worker ? join(root, "build", worker) : join(www, path));
      res.writeHead(200, { "content-type": TYPES[extname(path)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${server.address().port}/`;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const first = [], ready = [], convert = [];
    for (let i = 0; i < loads; i++) {
      const context = await browser.newContext(); // a cold cache each time
      const page = await context.newPage();
      await page.goto(url);
      await page.waitForFunction(() => window.__playground?.firstConversionMs != null, null, { timeout: 30000 });
      const t = await page.evaluate(() => ({ first: window.__playground.firstConversionMs, ready: window.__playground.wasmReadyMs, nav: performance.getEntriesByType("navigation")[0]?.responseEnd ?? 0 }));
      first.push(t.first);
      ready.push(t.ready - t.nav);
      convert.push(await page.evaluate(([input, n]) => {
        const p = window.__playground;
        for (let i = 0; i < 100; i++) p.convert(input, { legacy: "always", now: 0 });
        const start = performance.now();
        for (let i = 0; i < n; i++) p.convert(input, { legacy: "always", now: 0 });
        return ((performance.now() - start) / n) * 1000;
      }, [EXAMPLE, iterations]));
      await context.close();
    }
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const round = (x) => Math.round(x * 100) / 100;
    const page = await browser.newPage();
    await page.goto(url);
    const compile = {};
    for (const name of WORKER_WASM) {
      compile[name] = round(await page.evaluate(async (name) => {
        const bytes = await (await fetch(`/__worker/${name}`)).arrayBuffer();
        const times = [];
        for (let i = 0; i < 11; i++) {
          const t = performance.now();
          await WebAssembly.compile(bytes);
          times.push(performance.now() - t);
        }
        return times.sort((a, b) => a - b)[5];
      }, name));
    }
    const batch = await paste5000(page);
    return {
      loads, iterations, firstConversionMs: round(median(first)), initMs: round(median(ready)), convertMicros: round(median(convert)), workerWasmCompileMs: compile,
      batch5000: { runs: batch.length, ...Object.fromEntries(["inputToResultMs", "waitMs", "convertMs", "renderMs"].map((k) => [k, round(median(batch.map((b) => b[k])))])) },
    };
  } finally {
    await browser.close();
    server.close();
  }
}

/** Pastes 5,000 NDJSON events (one input event, as a paste makes) and reads the page's own timing of each run. */
async function paste5000(page, runs = 5) {
  const lines = [];
  for (let i = 0; i < 5000; i++) {
    lines.push(`{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":${1591813767000 + i * 60000},"conversationId":${123456789 + i}}}`);
  }
  const timings = [];
  for (let run = 0; run < runs; run++) {
    for (const text of [EXAMPLE, lines.join("\n")]) {
      await page.evaluate((value) => {
        const ta = document.getElementById("event");
        ta.value = value;
        ta.dispatchEvent(new InputEvent("input", { bubbles: true, inputType: "insertFromPaste" }));
      }, text);
      await page.waitForFunction((value) => !window.__playground.pending && window.__playground.last?.input === value, text, { timeout: 60000 });
    }
    timings.push(await page.evaluate(() => window.__playground.timing));
  }
  return timings;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await playground(new URL("..", import.meta.url).pathname));
}
