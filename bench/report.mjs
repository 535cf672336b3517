// Renders bench/results.json as the Markdown of bench/README.md.
const fmt = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : String(n));
const kb = (b) => `${(b / 1000).toFixed(1)} KB`;
const ratio = (a, b) => (b ? (a / b).toFixed(2) : "–");

export function report(r) {
  const out = [];
  const line = (s = "") => out.push(s);
  line("# Benchmarks");
  line();
  line("Measured by `make bench` (bench/run.mjs) on one machine, in one run; the raw figures are in");
  line("[results.json](results.json). Medians of the runs given; nothing here is asserted by the test suite.");
  line();
  line(`- Machine: ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, Linux ${r.machine.kernel}`);
  line(`- Tools: ${r.versions.rustc}; Node ${r.versions.node}; ${r.versions.jq}; ${r.versions.wrk}; wrangler ${r.versions.wrangler}; workerd ${r.versions.workerd}; ${r.versions.chromium}`);
  line(`- Date: ${r.date}; runs per figure: ${r.settings.runs}; load runs: ${r.settings.secondsPerLoad} s each`);
  line(`- Input: ${fmt(r.input.lines)} generated Drift events (bench/gen.mjs: ~45% inactive/manual push, 30% push, 15% status updates, 10% other types), ${fmt(r.input.bytes)} bytes, ${r.input.averageLineBytes} bytes per line on average`);
  line();
  line("## Core");
  line();
  line(`Native, one thread, ${fmt(r.core.events)} events in memory, ${r.core.runs} runs: **${fmt(r.core.translations_per_second_median)} translations/s** (${r.core.mb_per_second_median} MB/s; min ${fmt(r.core.min)}, max ${fmt(r.core.max)}).`);
  line();
  line("## CLI against jq and Node.js");
  line();
  line(`The same ${fmt(r.input.lines)}-line file through each, output written to ${r.cli.outputDirectory ?? "bench/work"}; outputs checked identical (Node: byte for byte, ids included; jq: byte for byte with the ids taken out, as jq has no SHA-256). drift-bridge reads and translates on one thread and writes on a second; jq and Node use one.`);
  line();
  line("| tool | wall time | lines/s | peak memory | peak memory on 100k lines | time vs drift-bridge |");
  line("|---|---:|---:|---:|---:|---:|");
  const ours = r.cli["drift-bridge convert"];
  for (const [name, c] of Object.entries(r.cli)) {
    if (!c?.seconds) continue;
    line(`| \`${name}\` | ${c.seconds} s | ${fmt(c.linesPerSecond)} | ${c.peakMiB} MiB | ${c.peakMiBOn100k} MiB | ${ratio(c.seconds, ours.seconds)}× |`);
  }
  line();
  line("## Worker under load");
  line();
  line("Each worker runs alone in local workerd (Miniflare), loaded by `wrk -t1` from a second process on loopback, with Drift's published example as the body. Ratios are drift-bridge over the other (below 1 is better for latency).");
  for (const [route, workers] of Object.entries(r.worker)) {
    line();
    line(`### POST ${route}`);
    line();
    line("| worker | concurrency | requests/s | p50 | p99 |");
    line("|---|---:|---:|---:|---:|");
    for (const [name, byC] of Object.entries(workers)) {
      for (const [c, m] of Object.entries(byC)) line(`| ${name} | ${c} | ${fmt(m.rps)} | ${m.p50ms} ms | ${m.p99ms} ms |`);
    }
    const names = Object.keys(workers);
    line();
    line("| concurrency | p50 vs JS | p99 vs JS | p50 vs empty | p99 vs empty | req/s vs JS |");
    line("|---:|---:|---:|---:|---:|---:|");
    for (const c of Object.keys(workers[names[0]])) {
      const [d, js, empty] = names.map((n) => workers[n][c]);
      line(`| ${c} | ${ratio(d.p50ms, js.p50ms)} | ${ratio(d.p99ms, js.p99ms)} | ${ratio(d.p50ms, empty.p50ms)} | ${ratio(d.p99ms, empty.p99ms)} | ${ratio(d.rps, js.rps)} |`);
    }
  }
  line();
  line("CPU time per request: local workerd does not report it, so it is not given.");
  line();
  line("## Size and start");
  line();
  line("| artifact | raw | gzip -9 |");
  line("|---|---:|---:|");
  for (const [name, s] of Object.entries(r.size)) line(`| ${name} | ${kb(s.bytes)} | ${kb(s.gzip)} |`);
  line();
  line("| cold start | drift-bridge | reference JS | empty |");
  line("|---|---:|---:|---:|");
  const cs = r.coldStart;
  const names = Object.keys(cs).filter((k) => typeof cs[k] === "object");
  line(`| new workerd process to first response | ${names.map((n) => `${cs[n].startToFirstResponseMs} ms`).join(" | ")} |`);
  line(`| first request after the runtime is ready | ${names.map((n) => `${cs[n].firstRequestMs} ms`).join(" | ")} |`);
  line();
  line(`Worker wasm compilation (V8, as in workerd): ${cs.workerWasmCompileMs} ms.`);
  line();
  line("## Playground");
  line();
  if (r.playground?.skipped) line(`Not measured: ${r.playground.skipped}`);
  else {
    line(`Headless Chromium, page served locally: wasm download + instantiation ${r.playground.initMs} ms; page load to first result ${r.playground.firstConversionMs} ms; one conversion (Drift's example, ${fmt(r.playground.iterations)} iterations) ${r.playground.convertMicros} µs.`);
    const b = r.playground.batch5000;
    if (b) line(`A paste of 5,000 events (NDJSON) to its result on screen: ${b.inputToResultMs} ms (Chromium laying out the text area ${b.waitMs} ms, the core ${b.convertMs} ms, showing the first 100 ${b.renderMs} ms; median of ${b.runs}).`);
  }
  line();
  line("## Targets");
  line();
  for (const t of targets(r)) line(`- ${t.met ? "✅" : "❌"} ${t.text}`);
  line();
  return out.join("\n");
}

export function targets(r) {
  const list = [];
  const ours = r.cli["drift-bridge convert"];
  const jq = r.cli["jq -c -f bench/jq/convert.jq"];
  const node = r.cli["node bench/node/convert.mjs"];
  list.push({ met: jq.seconds / ours.seconds >= 10, text: `CLI at least 10× faster than jq: ${ratio(jq.seconds, ours.seconds)}×` });
  list.push({ met: node.seconds / ours.seconds >= 2, text: `CLI at least 2× faster than Node: ${ratio(node.seconds, ours.seconds)}×` });
  list.push({ met: ours.peakMiB <= ours.peakMiBOn100k * 1.5 + 2, text: `CLI memory flat in the file's size: ${ours.peakMiBOn100k} MiB on 100k lines, ${ours.peakMiB} MiB on ${r.input.lines.toLocaleString("en-US")}` });
  for (const [route, workers] of Object.entries(r.worker)) {
    const [d, js, empty] = Object.values(workers);
    const cs = Object.keys(d);
    const atOrBelowJs = cs.every((c) => d[c].p50ms <= js[c].p50ms && d[c].p99ms <= js[c].p99ms);
    const nearEmpty = cs.every((c) => d[c].p50ms <= empty[c].p50ms * 1.1 && d[c].p99ms <= empty[c].p99ms * 1.1);
    list.push({ met: atOrBelowJs, text: `${route}: p50 and p99 at or below the JS reference at every concurrency (${cs.map((c) => `c=${c}: ${ratio(d[c].p50ms, js[c].p50ms)}/${ratio(d[c].p99ms, js[c].p99ms)}`).join(", ")})` });
    list.push({ met: nearEmpty, text: `${route}: within 10% of the empty worker (${cs.map((c) => `c=${c}: ${ratio(d[c].p50ms, empty[c].p50ms)}/${ratio(d[c].p99ms, empty[c].p99ms)}`).join(", ")})` });
  }
  const wasm = r.size["worker wasm (build/index_bg.wasm)"].bytes;
  list.push({ met: wasm <= 250_000, text: `worker wasm at most 250 KB raw after wasm-opt: ${kb(wasm)}` });
  const ours2 = r.coldStart["drift-bridge (Rust/wasm)"];
  list.push({ met: ours2.firstRequestMs < 5, text: `cold start under 5 ms: first request ${ours2.firstRequestMs} ms, wasm compile ${r.coldStart.workerWasmCompileMs} ms (a fresh workerd process takes ${ours2.startToFirstResponseMs} ms, ${r.coldStart["empty worker (floor)"].startToFirstResponseMs} ms for the empty worker)` });
  return list;
}
