// The drift-bridge playground: the worker's Rust core, compiled to wasm,
// converting Drift events in the page. Plain ES modules, no framework.
//
// Event JSON stays text from end to end (the core hands over compact and
// pretty strings), so integers above 2^53 are shown and copied digit for digit.

import init, { convert, convertBody, version } from "./pkg/drift_bridge.js";
import { SAMPLES } from "./samples.js";
import {
  readEventTime, setEventTime, msFromRaw, msForDate, isoDate, locatePath, offsetOf, lineColumnOf,
} from "./event-text.js";
import { drawTimeline, inBroadcast } from "./timeline.js";

performance.mark("app-start");
// Start fetching and compiling the core at once; the page is set up meanwhile.
const coreReady = init();

const $ = (id) => document.getElementById(id);
const els = {
  sample: $("sample"),
  sampleNote: $("sample-note"),
  event: $("event"),
  policyInputs: [...document.querySelectorAll('input[name="legacy"]')],
  policyHint: $("policy-hint"),
  date: $("event-date"),
  dateDetail: $("date-detail"),
  timeline: $("timeline"),
  timelineCanvas: $("timeline-canvas"),
  timelineStatus: $("timeline-status"),
  summary: $("summary"),
  results: $("results"),
  compare: $("compare"),
  compareButton: $("compare-button"),
  compareResult: $("compare-result"),
  edgeNote: $("edge-note"),
  coreVersion: $("core-version"),
  firstConversion: $("first-conversion"),
};

const DEBOUNCE_MS = 90;
const CONVERSATION_TYPES = new Set(["conversation_inactive", "conversation_manual_push", "conversation_push"]);
const POLICY_HINTS = {
  always: "Always (the default): every inactive, manual push and push event also yields a legacy conversation_status_updated close, whatever its date, so apps built on the retired webhook keep working.",
  timeline: "Timeline: only events dated 2020-06-01 up to 2020-09-30 (UTC) also yield a legacy close, as Drift itself re-broadcast them in 2020.",
  never: "Never: no legacy closes, only the replacement events.",
};

const state = {
  policy: "always",
  timer: 0,
  pending: false,
  ready: false,
  last: null, // { input, options, result }
  marker: null,
  compareSeq: 0,
};

// For tests and benchmarks: timings, and whether the page has caught up with the input.
const playground = {
  version: null,
  wasmReadyMs: null,
  firstConversionMs: null,
  conversions: 0,
  get pending() { return state.pending; },
  get last() { return state.last && { input: state.last.input, options: { ...state.last.options }, ok: state.last.result.ok }; },
  convert: (input, options) => convert(input, options),
  convertBody: (input, options) => convertBody(input, options),
};
window.__playground = playground;

// ---------------------------------------------------------------- samples --

for (const sample of SAMPLES) {
  els.sample.append(new Option(sample.label, sample.id));
}

function loadSample(id) {
  const sample = SAMPLES.find((s) => s.id === id);
  if (!sample) return;
  els.sample.value = id;
  els.event.value = sample.text;
  els.sampleNote.textContent = sample.note;
  fitTextarea();
  convertNow();
}

els.sample.addEventListener("change", () => {
  if (els.sample.value !== "custom") loadSample(els.sample.value);
});

// ------------------------------------------------------------- conversion --

els.event.addEventListener("input", () => {
  if (els.sample.value !== "custom") {
    els.sample.value = "custom";
    els.sampleNote.textContent = "Edited. Pick a sample to start over.";
  }
  fitTextarea();
  schedule();
});

/** Grows the text area with its content, within limits; a manual resize wins. */
function fitTextarea() {
  const ta = els.event;
  if (ta.dataset.resized) return;
  ta.style.height = "0px"; // measure the content, not the rows
  const max = Math.max(320, Math.round(window.innerHeight * 0.6));
  ta.style.height = ta.dataset.fit = `${Math.min(max, ta.scrollHeight + 2)}px`;
}
els.event.addEventListener("pointerup", () => {
  // A drag of the resize handle leaves a height we did not set.
  if (els.event.style.height !== els.event.dataset.fit) els.event.dataset.resized = "1";
});

function schedule() {
  state.pending = true;
  clearTimeout(state.timer);
  state.timer = setTimeout(convertNow, DEBOUNCE_MS);
}

function convertNow() {
  clearTimeout(state.timer);
  const input = els.event.value;
  // One `now` per conversion: it stands in for a missing lastUpdated, and the
  // edge comparison sends the very same value.
  const options = { legacy: state.policy, now: Date.now() };
  syncDate(input, options.now);
  if (!state.ready) {
    state.pending = true; // converted as soon as the core is ready
    return;
  }
  let result;
  try {
    result = convert(input, options);
  } catch (e) {
    result = { ok: false, error: { code: "internal", message: String(e?.message ?? e), path: "" } };
  }
  state.last = { input, options, result };
  state.pending = false;
  playground.conversions++;
  render(result, input);
  resetCompare();
}

// ---------------------------------------------------------------- options --

for (const input of els.policyInputs) {
  input.addEventListener("change", () => {
    if (!input.checked) return;
    state.policy = input.value;
    els.policyHint.textContent = POLICY_HINTS[state.policy];
    convertNow();
  });
}
els.policyHint.textContent = POLICY_HINTS[state.policy];

els.date.addEventListener("input", () => {
  const value = els.date.value;
  if (!value) return;
  const current = readEventTime(els.event.value);
  const ms = msForDate(value, msFromRaw(current.raw));
  if (ms == null) return;
  const edit = setEventTime(els.event.value, ms);
  if (edit.error) {
    els.dateDetail.textContent = edit.error;
    return;
  }
  const { scrollTop, scrollLeft } = els.event;
  els.event.value = edit.text;
  els.event.scrollTop = scrollTop;
  els.event.scrollLeft = scrollLeft;
  fitTextarea();
  if (els.sample.value !== "custom") {
    els.sample.value = "custom";
    els.sampleNote.textContent = `Edited: ${edit.field} set to ${isoDate(ms)}. Pick a sample to start over.`;
  }
  convertNow();
});

const pad = (n) => String(n).padStart(2, "0");
function utcTime(ms) {
  const d = new Date(ms);
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
}

/** Shows the event's time in the date control, the timeline and the notes. */
function syncDate(input, now) {
  const where = readEventTime(input);
  const ms = msFromRaw(where.raw);
  const iso = isoDate(ms);
  if (els.date.value !== iso) els.date.value = iso;
  const field = where.field;
  let marker;
  if (ms != null) {
    els.dateDetail.textContent = `${field} ${where.raw} · ${utcTime(ms)}`;
    marker = { ms, label: iso || "far away", now: false };
  } else if (where.start >= 0) {
    els.dateDetail.textContent = `data.${field} is not an integer number of milliseconds`;
    marker = null;
  } else if (CONVERSATION_TYPES.has(where.type) || where.type === "conversation_status_updated") {
    els.dateDetail.textContent = `No data.${field}: the bridge uses the time it receives the event (now).`;
    marker = { ms: now, label: `now · ${isoDate(now)}`, now: true };
  } else {
    els.dateDetail.textContent = where.type ? `No data.${field}; ${where.type} passes through whatever its date.` : "";
    marker = null;
  }
  state.marker = marker;
  state.type = where.type;
  drawMarker();
}

function drawMarker() {
  const marker = state.marker;
  const where = drawTimeline(els.timeline, els.timelineCanvas.clientWidth || 600, marker);
  const desc = els.timeline.querySelector("desc");
  const base = "Replacement events available 2020-04-01; legacy subscription removed from app settings 2020-04-15; legacy broadcast from 2020-06-01 until 2020-10-01.";
  let status = "";
  if (marker) {
    const what = marker.now ? `Now (${isoDate(marker.ms)})` : isoDate(marker.ms) || "The event date";
    const inside = inBroadcast(marker.ms);
    status = `${what} is ${inside ? "inside" : "outside"} Drift's legacy broadcast window (2020-06-01 up to 2020-10-01)`;
    if (!CONVERSATION_TYPES.has(state.type)) {
      status += ". The date only matters for inactive, manual push and push events.";
    } else if (state.policy === "timeline") {
      status += inside ? ", so Timeline adds a legacy close." : ", so Timeline adds no legacy close.";
    } else if (state.policy === "always") {
      status += "; Always adds a legacy close regardless.";
    } else {
      status += "; Never adds no legacy close.";
    }
    if (where === "before" || where === "after") status += ` (Marked at the ${where === "before" ? "left" : "right"} edge: off the drawn range.)`;
  }
  if (!marker && state.type && !CONVERSATION_TYPES.has(state.type)) {
    status = "The date only matters for inactive, manual push and push events.";
  }
  els.timelineStatus.textContent = status;
  if (desc) desc.textContent = status ? `${base} Marked: ${status}` : base;
}

let resizeFrame = 0;
new ResizeObserver(() => {
  cancelAnimationFrame(resizeFrame);
  resizeFrame = requestAnimationFrame(drawMarker);
}).observe(els.timelineCanvas);

// ---------------------------------------------------------------- results --

function render(result, input) {
  els.results.setAttribute("aria-busy", "false");
  els.results.replaceChildren();
  if (result.ok) {
    els.results.dataset.state = "ok";
    els.event.removeAttribute("aria-invalid");
    const list = document.createElement("ol");
    list.className = "cards";
    result.events.forEach((event, index) => list.append(card(event, index, result.events)));
    els.results.append(list);
    const n = result.events.length;
    setSummary(`${n} outbound event${n === 1 ? "" : "s"}`, `: ${result.events.map((e) => e.type).join(", ")}`, "ok");
  } else {
    els.results.dataset.state = "error";
    els.event.setAttribute("aria-invalid", "true");
    els.results.append(errorCard(result.error, input));
    const where = result.error.path ? ` at ${result.error.path}` : "";
    setSummary(`Rejected: ${result.error.code}${where}`, `. ${result.error.message}`, "error");
  }
}

function setSummary(visible, extra, kind) {
  els.summary.dataset.kind = kind;
  const hidden = document.createElement("span");
  hidden.className = "sr-only";
  hidden.textContent = extra;
  els.summary.replaceChildren(document.createTextNode(visible), hidden);
}

function role(event, index) {
  if (index === 0) return { text: "Inbound, unchanged", kind: "inbound" };
  if (event.type === "conversation_status_updated") return { text: "Legacy close", kind: "legacy" };
  return { text: "Derived", kind: "derived" };
}

function card(event, index, all) {
  const li = document.createElement("li");
  li.className = "card";
  const r = role(event, index);
  li.dataset.type = event.type;
  li.dataset.id = event.id;
  li.dataset.json = event.json;
  li.dataset.role = r.kind;
  li.dataset.kind = typeClass(event.type);
  const titleId = `card-${index}-title`;
  li.setAttribute("aria-labelledby", titleId);

  const head = document.createElement("div");
  head.className = "card-head";
  const step = document.createElement("span");
  step.className = "step";
  step.textContent = String(index + 1);
  step.setAttribute("aria-hidden", "true");

  const titles = document.createElement("div");
  titles.className = "card-titles";
  const h3 = document.createElement("h3");
  h3.className = "card-type";
  h3.id = titleId;
  h3.textContent = event.type;
  const meta = document.createElement("p");
  meta.className = "card-meta";
  const tag = document.createElement("span");
  tag.className = `tag tag-${r.kind}`;
  tag.textContent = r.text;
  const id = document.createElement("span");
  id.className = "card-id";
  id.append("id ");
  const code = document.createElement("code");
  code.textContent = event.id;
  id.append(code);
  meta.append(tag, id);
  titles.append(h3, meta);

  const copy = document.createElement("button");
  copy.type = "button";
  copy.className = "button button-small copy";
  copy.setAttribute("aria-label", `Copy ${event.type} (${index + 1} of ${all.length}) as JSON`);
  copy.innerHTML = '<svg viewBox="0 0 20 20" aria-hidden="true" focusable="false"><rect x="7" y="7" width="10" height="10" rx="2" fill="none" stroke="currentColor" stroke-width="1.7"/><path d="M13 4.5V4a1.5 1.5 0 0 0-1.5-1.5h-7A1.5 1.5 0 0 0 3 4v7a1.5 1.5 0 0 0 1.5 1.5H5" fill="none" stroke="currentColor" stroke-width="1.7" stroke-linecap="round"/></svg><span>Copy</span>';
  copy.addEventListener("click", async () => {
    const ok = await copyText(event.json);
    copy.focus();
    const label = copy.querySelector("span");
    label.textContent = ok ? "Copied" : "Copy failed";
    copy.dataset.copied = ok ? "yes" : "no";
    els.summary.querySelector(".sr-only")?.replaceChildren(ok ? `. Copied ${event.type}.` : ". Copy failed.");
    clearTimeout(copy.resetTimer);
    copy.resetTimer = setTimeout(() => {
      label.textContent = "Copy";
      delete copy.dataset.copied;
    }, 1600);
  });

  head.append(step, titles, copy);
  const pre = document.createElement("pre");
  pre.className = "json";
  pre.tabIndex = 0; // scrollable by keyboard on narrow screens
  pre.setAttribute("aria-label", `${event.type} JSON`);
  const codeBlock = document.createElement("code");
  codeBlock.append(highlight(event.pretty));
  pre.append(codeBlock);
  li.append(head, pre);
  return li;
}

function typeClass(type) {
  switch (type) {
    case "conversation_inactive": return "inactive";
    case "conversation_manual_push": return "manual";
    case "conversation_push": return "push";
    case "conversation_status_updated": return "status";
    default: return "other";
  }
}

const TOKEN = /("(?:[^"\\\n]|\\.)*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b/g;

/** Syntax colours for pretty JSON text, built from text nodes (no HTML parsing). */
function highlight(text) {
  const frag = document.createDocumentFragment();
  if (text.length > 200_000) {
    frag.append(text);
    return frag;
  }
  let last = 0;
  for (const m of text.matchAll(TOKEN)) {
    if (m.index > last) frag.append(text.slice(last, m.index));
    const span = document.createElement("span");
    if (m[1] !== undefined) {
      span.className = m[2] ? "j-key" : "j-str";
      span.textContent = m[1];
      frag.append(span);
      if (m[2]) frag.append(m[2]);
    } else {
      span.className = m[3] !== undefined ? "j-num" : "j-lit";
      span.textContent = m[0];
      frag.append(span);
    }
    last = m.index + m[0].length;
  }
  if (last < text.length) frag.append(text.slice(last));
  return frag;
}

async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to the old way
  }
  const scratch = document.createElement("textarea");
  scratch.value = text;
  scratch.setAttribute("readonly", "");
  scratch.style.cssText = "position:fixed;top:0;left:0;opacity:0;pointer-events:none";
  document.body.append(scratch);
  scratch.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  scratch.remove();
  return ok;
}

function errorCard(error, input) {
  const box = document.createElement("div");
  box.className = "error-card";
  box.dataset.code = error.code;
  box.dataset.path = error.path ?? "";
  if (error.line != null) box.dataset.line = String(error.line);
  if (error.column != null) box.dataset.column = String(error.column);

  const head = document.createElement("div");
  head.className = "error-head";
  const icon = document.createElement("span");
  icon.className = "error-icon";
  icon.setAttribute("aria-hidden", "true");
  icon.textContent = "!";
  const code = document.createElement("code");
  code.className = "error-code";
  code.textContent = error.code;
  const where = document.createElement("span");
  where.className = "error-where";
  if (error.path) {
    const p = document.createElement("code");
    p.className = "error-path";
    p.textContent = error.path;
    where.append("at ", p);
  } else {
    where.append("at the top level");
  }
  if (error.line != null) {
    const pos = document.createElement("span");
    pos.className = "error-position";
    pos.textContent = `line ${error.line}, column ${error.column}`;
    where.append(" · ", pos);
  }
  head.append(icon, code, where);

  const message = document.createElement("p");
  message.className = "error-message";
  message.textContent = error.message;
  box.append(head, message);

  // Where in the input: the syntax error's position, or the path's value.
  let span = null;
  if (error.line != null) {
    const start = offsetOf(input, error.line, error.column);
    span = { start, end: Math.min(input.length, start + 1) };
  } else if (error.path !== undefined && error.code !== "internal" && error.code !== "invalid_options") {
    span = locatePath(input, error.path);
  }
  if (span && input.length) {
    box.append(excerpt(input, span));
    const go = document.createElement("button");
    go.type = "button";
    go.className = "button button-small";
    const { line, column } = lineColumnOf(input, span.start);
    go.textContent = `Show line ${line}, column ${column} in the input`;
    go.addEventListener("click", () => select(span));
    box.append(go);
  }
  if (error.code === "invalid_event" && error.path === "" && /found an array/.test(error.message)) {
    const hint = document.createElement("p");
    hint.className = "note";
    hint.textContent = "The playground converts one event at a time; POST /convert also takes a JSON array or newline-delimited events.";
    box.append(hint);
  }
  return box;
}

function excerpt(input, span) {
  const { line, column } = lineColumnOf(input, span.start);
  const lines = input.split("\n");
  const from = Math.max(1, line - 1);
  const width = String(line).length;
  const pre = document.createElement("pre");
  pre.className = "excerpt";
  pre.tabIndex = 0;
  pre.setAttribute("aria-label", `The input around line ${line}, column ${column}`);
  const WINDOW = 56;
  const offsetInLine = column - 1;
  const cut = offsetInLine > WINDOW - 12 ? offsetInLine - (WINDOW - 20) : 0;
  const clip = (s) => {
    let out = s.slice(cut, cut + WINDOW);
    if (cut > 0) out = "…" + out.slice(1);
    if (s.length > cut + WINDOW) out = out.slice(0, -1) + "…";
    return out;
  };
  for (let l = from; l <= line; l++) {
    const row = document.createElement("span");
    row.className = l === line ? "ex-line ex-hit" : "ex-line";
    const gutter = document.createElement("span");
    gutter.className = "ex-gutter";
    gutter.textContent = `${String(l).padStart(width)} │ `;
    row.append(gutter, clip(lines[l - 1] ?? ""), "\n");
    pre.append(row);
  }
  const caretLen = Math.max(1, Math.min(span.end - span.start, WINDOW - (offsetInLine - cut)));
  const gutter = document.createElement("span");
  gutter.className = "ex-gutter";
  gutter.textContent = `${" ".repeat(width)} │ `;
  const caret = document.createElement("span");
  caret.className = "ex-caret";
  caret.textContent = `${" ".repeat(offsetInLine - cut)}${"^".repeat(caretLen)}`;
  pre.append(gutter, caret);
  return pre;
}

function select(span) {
  const ta = els.event;
  ta.focus();
  ta.setSelectionRange(span.start, span.end);
  const { line } = lineColumnOf(ta.value, span.start);
  const lineHeight = parseFloat(getComputedStyle(ta).lineHeight) || 20;
  ta.scrollTop = Math.max(0, (line - 3) * lineHeight);
}

// ---------------------------------------------------------------- the edge --

function resetCompare() {
  state.compareSeq++;
  if (els.compareResult.textContent) {
    els.compareResult.replaceChildren();
    delete els.compareResult.dataset.agree;
  }
  els.compareButton.disabled = false;
}

async function compareWithEdge() {
  if (state.pending || !state.last) convertNow();
  const { input, options } = state.last;
  const seq = ++state.compareSeq;
  const expected = convertBody(input, options);
  const url = `/convert?legacy=${encodeURIComponent(options.legacy)}&now=${options.now}`;
  els.compareButton.disabled = true;
  els.compareResult.dataset.agree = "pending";
  els.compareResult.textContent = "Asking the edge…";
  let status;
  let body;
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: input,
      cache: "no-store",
    });
    status = response.status;
    body = new Uint8Array(await response.arrayBuffer());
  } catch (e) {
    if (seq !== state.compareSeq) return;
    els.compareButton.disabled = false;
    els.compareResult.dataset.agree = "unreachable";
    els.compareResult.textContent = `Could not reach the edge: ${e.message}`;
    return;
  }
  if (seq !== state.compareSeq) return; // the input changed meanwhile
  els.compareButton.disabled = false;
  const mine = new TextEncoder().encode(expected);
  let diff = -1;
  const n = Math.max(mine.length, body.length);
  for (let i = 0; i < n; i++) {
    if (mine[i] !== body[i]) {
      diff = i;
      break;
    }
  }
  const out = [];
  const headline = document.createElement("p");
  headline.className = "compare-headline";
  if (diff < 0) {
    els.compareResult.dataset.agree = "true";
    headline.innerHTML = '<span class="ok-mark" aria-hidden="true">✓</span> ';
    headline.append("Edge and browser agree");
    const detail = document.createElement("p");
    detail.className = "note";
    detail.textContent = `Byte-identical: ${mine.length} bytes, HTTP ${status}.`;
    out.push(headline, detail, requestLine(url));
  } else {
    els.compareResult.dataset.agree = "false";
    headline.innerHTML = '<span class="bad-mark" aria-hidden="true">≠</span> ';
    headline.append(`Edge and browser differ at byte ${diff}`);
    const detail = document.createElement("p");
    detail.className = "note";
    detail.textContent = `HTTP ${status}: the edge sent ${body.length} bytes, the browser computed ${mine.length}.`;
    if (status === 413) detail.textContent += " The edge refuses bodies above its MAX_BODY_BYTES.";
    const decoder = new TextDecoder();
    const around = (bytes) => decoder.decode(bytes.slice(Math.max(0, diff - 40), diff + 60));
    const dl = document.createElement("dl");
    dl.className = "diff";
    for (const [name, bytes] of [["Edge", body], ["Browser", mine]]) {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      const code = document.createElement("code");
      code.textContent = around(bytes);
      dd.append(code);
      dl.append(dt, dd);
    }
    out.push(headline, detail, requestLine(url), dl);
  }
  els.compareResult.replaceChildren(...out);
}

function requestLine(url) {
  const p = document.createElement("p");
  p.className = "note request";
  const code = document.createElement("code");
  // Allow line breaks between the query parameters only.
  `POST ${url}`.split(/(?=[?&])/).forEach((part, i) => {
    if (i > 0) code.append(document.createElement("wbr"));
    code.append(part);
  });
  p.append(code);
  return p;
}

els.compareButton.addEventListener("click", compareWithEdge);

async function probeEdge() {
  if (!/^https?:$/.test(location.protocol)) {
    els.edgeNote.hidden = false;
    els.edgeNote.textContent = "Opened from a file, so there is no edge to compare with. Serve the page with the worker (npx wrangler dev) to compare.";
    return;
  }
  try {
    const response = await fetch("/health", { cache: "no-store" });
    const health = response.ok ? await response.json() : null;
    if (!health || typeof health.version !== "string") throw new Error("not the worker");
    els.compare.hidden = false;
    playground.edgeVersion = health.version;
    if (playground.version && health.version !== playground.version) {
      els.edgeNote.hidden = false;
      els.edgeNote.textContent = `The edge runs drift-bridge ${health.version}, this page ${playground.version}.`;
    }
  } catch {
    els.edgeNote.hidden = false;
    els.edgeNote.textContent = "This server is not the drift-bridge worker, so there is no edge to compare with. Run npx wrangler dev and open http://127.0.0.1:8787/ to compare.";
  }
}

// ------------------------------------------------------------------ start --

loadSample("inactive");
performance.mark("app-ui-ready");

const started = coreReady.then(() => {
  performance.mark("wasm-ready");
  playground.wasmReadyMs = round(performance.now());
  playground.version = version();
  els.coreVersion.textContent = `v${playground.version} · wasm${wasmSize()}`;
  state.ready = true;
  convertNow();
  performance.mark("first-conversion");
  performance.measure("playground:first-conversion", { start: 0, end: "first-conversion" });
  playground.firstConversionMs = round(performance.now());
  els.firstConversion.textContent = `${Math.round(playground.firstConversionMs)} ms after navigation`;
  document.documentElement.dataset.ready = "true";
}).catch((e) => {
  els.results.dataset.state = "fatal";
  els.results.setAttribute("aria-busy", "false");
  setSummary("The WebAssembly core did not load", `: ${e?.message ?? e}`, "error");
  const p = document.createElement("p");
  p.className = "fatal";
  p.textContent = `Could not start the WebAssembly core (${e?.message ?? e}). Serve the www/ folder over HTTP, for example with npx wrangler dev.`;
  els.results.replaceChildren(p);
  throw e;
});
playground.ready = started;
probeEdge();

function round(ms) {
  return Math.round(ms * 10) / 10;
}

function wasmSize() {
  const entry = performance.getEntriesByType("resource").find((e) => e.name.endsWith("drift_bridge_bg.wasm"));
  const bytes = entry?.decodedBodySize || entry?.encodedBodySize;
  return bytes ? ` ${Math.round(bytes / 1024)} KB` : "";
}
