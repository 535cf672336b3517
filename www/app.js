// The drift-bridge playground: the worker's Rust core, compiled to wasm,
// converting Drift events in the page. Plain ES modules, no framework.
//
// Event JSON stays text from end to end (the core hands over compact and
// pretty strings), so integers above 2^53 are shown and copied digit for digit.
//
// The input may be what POST /convert accepts: one event, a JSON array of
// events, or newline-delimited events. The core converts it once per edit
// (convertBatch); a batch is shown grouped by inbound event, a page of groups
// at a time, so a paste of thousands of events stays quick.

import init, { convert, convertBatch, convertBody, version } from "./pkg/drift_bridge.js";
import { SAMPLES } from "./samples.js";
import {
  readEventTime, setEventTime, msFromRaw, msForDate, isoDate, locatePath, Lines,
} from "./event-text.js";
import { drawTimeline, inBroadcast } from "./timeline.js";
import { MAX_LINK_CHARS, decodeState, encodeState } from "./permalink.js";

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
  openFile: $("open-file"),
  file: $("file"),
  copyLink: $("copy-link"),
  linkStatus: $("link-status"),
  tools: $("result-tools"),
  download: $("download"),
  onlyRejected: $("only-rejected"),
  onlyRejectedField: $("only-rejected-field"),
  indent: $("indent"),
  indentField: $("indent-field"),
  more: $("more"),
  showMore: $("show-more"),
  shown: $("shown"),
};

const DEBOUNCE_MS = 90;
/** Inbound events shown at first, and added by each "Show more". */
const PAGE = 100;
/** Larger files are better served by the CLI than by a text area. */
const MAX_FILE_BYTES = 32 * 1024 * 1024;
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
  last: null, // { input, options, result: { form, items, counts } }
  marker: null,
  batchSize: 0, // inbound events of the batch on screen; 0 for a single event
  compareSeq: 0,
  inputAt: null, // when the first edit not yet converted happened
  pinned: null, // { input, now } from a permalink: its `now` holds while the input is the link's
  batch: null, // { result, input, groups (the items listed), list, shown } while a batch is on screen
  lines: null, // Lines of the input, when an error needed them
  linkSeq: 0,
  linkDate: null, // a permalink's date, applied once the core is ready
};

// For tests and benchmarks: timings, and whether the page has caught up with the input.
const playground = {
  version: null,
  wasmReadyMs: null,
  firstConversionMs: null,
  conversions: 0,
  timing: null, // the last conversion: { waitMs, convertMs, renderMs, inputToResultMs, inbound, outbound }
  get pending() { return state.pending; },
  get last() {
    const last = state.last;
    return last && {
      input: last.input,
      options: { ...last.options },
      form: last.result.form,
      ok: last.result.counts.rejected === 0,
      counts: { ...last.result.counts },
    };
  },
  convert: (input, options) => convert(input, options),
  convertBatch: (input, options) => JSON.parse(convertBatch(input, options)),
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

els.event.addEventListener("input", (e) => {
  if (els.sample.value !== "custom") {
    els.sample.value = "custom";
    els.sampleNote.textContent = "Edited. Pick a sample to start over.";
  }
  fitTextarea();
  // A paste or a drop is one edit: convert at once rather than after a pause.
  schedule(/^insertFrom(Paste|Drop)$/.test(e.inputType ?? "") ? 0 : DEBOUNCE_MS);
});

/** Grows the text area with its content, within limits; a manual resize wins. */
function fitTextarea() {
  const ta = els.event;
  if (ta.dataset.resized) return;
  const max = Math.max(320, Math.round(window.innerHeight * 0.6));
  if (manyLines(ta.value, 200)) {
    // Surely taller than the limit: skip laying out thousands of lines to measure them.
    ta.style.height = ta.dataset.fit = `${max}px`;
    return;
  }
  ta.style.height = "0px"; // measure the content, not the rows
  ta.style.height = ta.dataset.fit = `${Math.min(max, ta.scrollHeight + 2)}px`;
}
function manyLines(text, n) {
  for (let i = text.indexOf("\n"), count = 1; i >= 0; i = text.indexOf("\n", i + 1)) {
    if (++count >= n) return true;
  }
  return false;
}
els.event.addEventListener("pointerup", () => {
  // A drag of the resize handle leaves a height we did not set.
  if (els.event.style.height !== els.event.dataset.fit) els.event.dataset.resized = "1";
});

function schedule(delay = DEBOUNCE_MS) {
  if (!state.pending || state.inputAt == null) state.inputAt = performance.now();
  state.pending = true;
  clearTimeout(state.timer);
  state.timer = setTimeout(convertNow, delay);
}

/** Converts the text area's input once and shows the result. */
function convertNow() {
  clearTimeout(state.timer);
  const input = els.event.value;
  // One `now` per conversion: it stands in for a missing lastUpdated, and the
  // edge comparison sends the very same value. A permalink brings its own.
  const now = state.pinned && state.pinned.input === input ? state.pinned.now : Date.now();
  const options = { legacy: state.policy, now };
  if (!state.ready) {
    syncDate(input, now);
    state.pending = true; // converted as soon as the core is ready
    return;
  }
  const started = performance.now();
  let result;
  try {
    result = JSON.parse(convertBatch(input, options));
  } catch (e) {
    const error = { code: "internal", message: String(e?.message ?? e), path: "" };
    result = { form: "one", items: [{ index: 0, line: 1, start: 0, end: input.length, error }] };
  }
  const converted = performance.now();
  result.counts = count(result.items);
  state.last = { input, options, result };
  state.pending = false;
  playground.conversions++;
  if (result.form === "one") syncDate(input, now);
  else batchDates(result);
  render(result, input);
  const rendered = performance.now();
  playground.timing = {
    // From the input event to the conversion: the debounce (none for a paste) and the browser's own work on the text area.
    waitMs: state.inputAt == null ? null : round(started - state.inputAt),
    convertMs: round(converted - started),
    renderMs: round(rendered - converted),
    inputToResultMs: state.inputAt == null ? null : round(rendered - state.inputAt),
    inbound: result.counts.in,
    outbound: result.counts.out,
  };
  state.inputAt = null;
  resetCompare();
}

function count(items) {
  let out = 0;
  let rejected = 0;
  for (const item of items) {
    if (item.events) out += item.events.length;
    else rejected++;
  }
  return { in: items.length, out, rejected };
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

els.date.addEventListener("input", () => applyDate(els.date.value));

/** Writes a date picked in the control into the event's text. */
function applyDate(value) {
  if (!value || state.last?.result.form === "array" || state.last?.result.form === "ndjson") return;
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
}

const pad = (n) => String(n).padStart(2, "0");
function utcTime(ms) {
  const d = new Date(ms);
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
}

/** Shows the event's time in the date control, the timeline and the notes. */
function syncDate(input, now) {
  state.batchSize = 0;
  els.date.disabled = false;
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

/** A batch: each event keeps its own date, so the date control rests. */
function batchDates(result) {
  state.batchSize = result.items.length;
  state.marker = null;
  state.type = null;
  els.date.value = "";
  els.date.disabled = true;
  const kind = result.form === "array" ? "JSON array" : "newline-delimited batch";
  els.dateDetail.textContent = `A ${kind}: each event keeps its own data.lastUpdated (or changedAt). The date control edits a single event.`;
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
  if (state.batchSize) {
    status = state.policy === "timeline"
      ? "A batch: under Timeline, each inactive, manual push and push event yields a legacy close when its own date is inside the window."
      : "A batch: the timeline marks the date of a single event only.";
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
  state.batch = null;
  state.lines = null;
  const { counts } = result;
  els.download.disabled = counts.out === 0;
  els.tools.hidden = false;
  if (counts.rejected) els.event.setAttribute("aria-invalid", "true");
  else els.event.removeAttribute("aria-invalid");
  if (result.form !== "one") {
    renderBatch(result, input);
    return;
  }
  delete els.results.dataset.form;
  els.onlyRejectedField.hidden = true;
  els.indentField.hidden = true;
  els.more.hidden = true;
  const [item] = result.items;
  if (item.events) {
    els.results.dataset.state = "ok";
    const list = document.createElement("ol");
    list.className = "cards";
    item.events.forEach((event, index) => list.append(card(event, index, item.events)));
    els.results.append(list);
    const n = item.events.length;
    setSummary(`${n} outbound event${n === 1 ? "" : "s"}`, `: ${item.events.map((e) => e.type).join(", ")}`, "ok");
  } else {
    els.results.dataset.state = "error";
    els.results.append(errorCard(item.error, input, null));
    const where = item.error.path ? ` at ${item.error.path}` : "";
    setSummary(`Rejected: ${item.error.code}${where}`, `. ${item.error.message}`, "error");
  }
}

const plural = (n, word) => `${n.toLocaleString("en-US")} ${word}${n === 1 ? "" : "s"}`;

/** A batch: the count line, then the inbound events a page at a time, each with its outbound events or its error. */
function renderBatch(result, input) {
  const { counts } = result;
  els.results.dataset.state = counts.rejected ? "partial" : "ok";
  els.results.dataset.form = result.form;
  setSummary(
    `${plural(counts.in, "event")} in, ${plural(counts.out, "event")} out, ${counts.rejected.toLocaleString("en-US")} rejected`,
    result.form === "array" ? " (a JSON array)" : " (newline-delimited)",
    counts.rejected ? "error" : "ok",
  );
  els.indentField.hidden = counts.out === 0;
  els.onlyRejectedField.hidden = counts.rejected === 0 || counts.rejected === counts.in;
  els.onlyRejected.nextElementSibling.textContent = `Only the ${plural(counts.rejected, "rejected event")}`;
  const only = els.onlyRejected.checked && !els.onlyRejectedField.hidden;
  const groups = only ? result.items.filter((item) => item.error) : result.items;
  const list = document.createElement("ol");
  list.className = "groups";
  list.setAttribute("aria-label", only ? "Rejected inbound events" : "Inbound events");
  els.results.append(list);
  if (counts.in === 0) {
    const p = document.createElement("p");
    p.className = "note empty";
    p.textContent = "An empty batch: no events in, none out.";
    els.results.append(p);
  }
  state.batch = { result, input, groups, list, shown: 0 };
  showGroups(PAGE);
}

/** Appends the next `n` groups of the batch on screen. */
function showGroups(n) {
  const batch = state.batch;
  const { groups, result, input, list } = batch;
  const from = batch.shown;
  const to = Math.min(groups.length, from + n);
  const frag = document.createDocumentFragment();
  for (let i = from; i < to; i++) frag.append(group(groups[i], result, input));
  list.append(frag);
  batch.shown = to;
  const left = groups.length - to;
  els.more.hidden = groups.length <= PAGE;
  els.showMore.hidden = left === 0;
  els.showMore.textContent = `Show ${Math.min(PAGE, left).toLocaleString("en-US")} more`;
  const what = groups === result.items ? "inbound events" : "rejected events";
  els.shown.textContent = `Showing ${to.toLocaleString("en-US")} of ${groups.length.toLocaleString("en-US")} ${what}.`;
  return from < to ? list.children[from] : null;
}

els.showMore.addEventListener("click", () => {
  const first = showGroups(PAGE);
  // Keyboard users continue where the new groups begin.
  first?.querySelector(".group-title")?.focus();
});

for (const box of [els.onlyRejected, els.indent]) {
  box.addEventListener("change", () => {
    if (state.last) render(state.last.result, state.last.input);
  });
}

/** How a batch names an inbound event: by line for NDJSON, by index for an array. */
function groupName(item, form) {
  return form === "ndjson" ? `Line ${item.line}` : `Item [${item.index}]`;
}

function group(item, result, input) {
  const li = document.createElement("li");
  li.className = "group";
  li.dataset.index = String(item.index);
  li.dataset.line = String(item.line);
  li.dataset.ok = item.events ? "true" : "false";
  const titleId = `group-${item.index}-title`;
  li.setAttribute("aria-labelledby", titleId);

  const head = document.createElement("div");
  head.className = "group-head";
  const title = document.createElement("h3");
  title.className = "group-title";
  title.id = titleId;
  title.tabIndex = -1;
  title.textContent = groupName(item, result.form);
  const meta = document.createElement("span");
  meta.className = "group-meta";
  const where = result.form === "ndjson" ? `event ${item.index + 1}` : `line ${item.line}`;
  meta.textContent = item.events
    ? `${where} · ${plural(item.events.length, "outbound event")}`
    : `${where} · rejected`;
  head.append(title, meta);
  li.append(head);

  if (item.events) {
    const cards = document.createElement("ol");
    cards.className = "cards";
    const context = { group: item.index, name: groupName(item, result.form) };
    item.events.forEach((event, index) => cards.append(card(event, index, item.events, context)));
    li.append(cards);
  } else {
    li.append(errorCard(item.error, input, { item, form: result.form }));
  }
  return li;
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

function card(event, index, all, context = null) {
  const li = document.createElement("li");
  li.className = "card";
  const r = role(event, index);
  li.dataset.type = event.type;
  li.dataset.id = event.id;
  li.dataset.json = event.json;
  li.dataset.role = r.kind;
  li.dataset.kind = typeClass(event.type);
  const titleId = context ? `card-${context.group}-${index}-title` : `card-${index}-title`;
  li.setAttribute("aria-labelledby", titleId);

  const head = document.createElement("div");
  head.className = "card-head";
  const step = document.createElement("span");
  step.className = "step";
  step.textContent = String(index + 1);
  step.setAttribute("aria-hidden", "true");

  const titles = document.createElement("div");
  titles.className = "card-titles";
  const h3 = document.createElement(context ? "h4" : "h3");
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
  const of = context ? `${index + 1} of ${all.length}, ${context.name}` : `${index + 1} of ${all.length}`;
  copy.setAttribute("aria-label", `Copy ${event.type} (${of}) as JSON`);
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
  // A batch shows each event on its one compact line (as the CLI prints it), unless indented.
  const compact = context && !els.indent.checked;
  pre.className = compact ? "json json-compact" : "json";
  pre.tabIndex = 0; // scrollable by keyboard on narrow screens
  pre.setAttribute("aria-label", `${event.type} JSON`);
  const codeBlock = document.createElement("code");
  codeBlock.append(highlight(compact ? event.json : event.pretty));
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

/** The lines of the input on screen, built once per conversion and only when an error needs them. */
function linesOf(input) {
  if (!state.lines || state.lines.text !== input) state.lines = new Lines(input);
  return state.lines;
}

/**
 * An error, where it is and what it says. `at` is { item, form } for an event
 * of a batch: its path is shown as the CLI shows it for a line of NDJSON
 * (without the "[i]" of /convert's path) and whole for an array.
 */
function errorCard(error, input, at) {
  const box = document.createElement("div");
  box.className = "error-card";
  box.dataset.code = error.code;
  box.dataset.path = error.path ?? "";
  if (error.line != null) box.dataset.line = String(error.line);
  if (error.column != null) box.dataset.column = String(error.column);

  // The path inside the event itself, for a batch.
  const inner = at ? (error.path ?? "").replace(/^\[\d+\]\.?/, "") : error.path;
  const shownPath = at?.form === "ndjson" ? inner : error.path;

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
  if (shownPath) {
    const p = document.createElement("code");
    p.className = "error-path";
    p.textContent = shownPath;
    where.append("at ", p);
  } else {
    where.append(at ? "at the top level of the event" : "at the top level");
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
    const start = linesOf(input).offset(error.line, error.column);
    span = { start, end: Math.min(input.length, start + 1) };
  } else if (at) {
    // Look the path up in the event's own text: quick, however long the batch.
    const own = locatePath(input.slice(at.item.start, at.item.end), inner);
    span = own ? { start: at.item.start + own.start, end: at.item.start + own.end } : { start: at.item.start, end: at.item.start + 1 };
  } else if (error.path !== undefined && error.code !== "internal" && error.code !== "invalid_options") {
    span = locatePath(input, error.path);
  }
  if (span && input.length) {
    box.append(excerpt(input, span));
    const go = document.createElement("button");
    go.type = "button";
    go.className = "button button-small";
    const { line, column } = linesOf(input).lineColumn(span.start);
    go.textContent = `Show line ${line}, column ${column} in the input`;
    go.addEventListener("click", () => select(span));
    box.append(go);
  }
  return box;
}

function excerpt(input, span) {
  const lines = linesOf(input);
  const { line, column } = lines.lineColumn(span.start);
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
    row.append(gutter, clip(lines.line(l)), "\n");
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
  const { line } = linesOf(ta.value).lineColumn(span.start);
  const lineHeight = parseFloat(getComputedStyle(ta).lineHeight) || 20;
  ta.scrollTop = Math.max(0, (line - 3) * lineHeight);
}

// ------------------------------------------------------------- download --

/** Every outbound event as the CLI prints it: one {"id","event"} record a line. */
function outboundNdjson() {
  const lines = [];
  for (const item of state.last?.result.items ?? []) {
    for (const event of item.events ?? []) lines.push(event.record);
  }
  return lines.length ? `${lines.join("\n")}\n` : "";
}
playground.outboundNdjson = outboundNdjson;

els.download.addEventListener("click", () => {
  if (state.pending) convertNow();
  const text = outboundNdjson();
  const url = URL.createObjectURL(new Blob([text], { type: "application/x-ndjson" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = "drift-bridge-outbound.ndjson";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  const n = state.last.result.counts.out;
  els.summary.querySelector(".sr-only")?.replaceChildren(`. Downloaded ${plural(n, "outbound event")} as NDJSON.`);
});

// ------------------------------------------------------------ file input --

async function loadFile(file) {
  if (!file) return;
  if (file.size > MAX_FILE_BYTES) {
    els.sampleNote.textContent = `${file.name} is ${(file.size / 1048576).toFixed(1)} MB; the playground takes files up to ${MAX_FILE_BYTES / 1048576} MB. For bigger ones, use drift-bridge convert.`;
    return;
  }
  let text;
  try {
    text = await file.text();
  } catch (e) {
    els.sampleNote.textContent = `Could not read ${file.name}: ${e?.message ?? e}`;
    return;
  }
  els.event.value = text;
  els.sample.value = "custom";
  const size = file.size < 10_240 ? `${file.size} bytes` : `${Math.round(file.size / 1024).toLocaleString("en-US")} KB`;
  els.sampleNote.textContent = `Loaded ${file.name} (${size}).`;
  fitTextarea();
  state.inputAt = performance.now();
  convertNow();
}

els.openFile.addEventListener("click", () => els.file.click());
els.file.addEventListener("change", () => {
  loadFile(els.file.files[0]);
  els.file.value = ""; // the same file again is a change too
});

// Drop a file anywhere on the page. Dragged text still drops into the text area as usual.
const carriesFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes("Files");
let dragDepth = 0;
document.addEventListener("dragenter", (e) => {
  if (!carriesFiles(e)) return;
  dragDepth++;
  document.documentElement.dataset.dragging = "true";
});
document.addEventListener("dragleave", (e) => {
  if (!carriesFiles(e)) return;
  if (--dragDepth <= 0) {
    dragDepth = 0;
    delete document.documentElement.dataset.dragging;
  }
});
document.addEventListener("dragover", (e) => {
  if (!carriesFiles(e)) return;
  e.preventDefault();
  e.dataTransfer.dropEffect = "copy";
});
document.addEventListener("drop", (e) => {
  dragDepth = 0;
  delete document.documentElement.dataset.dragging;
  if (!carriesFiles(e)) return;
  e.preventDefault();
  loadFile(e.dataTransfer.files[0]);
});

// ------------------------------------------------------------- permalink --

els.copyLink.addEventListener("click", async () => {
  if (state.pending || !state.last) convertNow();
  const seq = ++state.linkSeq;
  const { input, options } = state.last;
  els.linkStatus.replaceChildren("Making the link…");
  const fragment = await encodeState({ input, legacy: options.legacy, date: els.date.value || null, now: options.now });
  if (seq !== state.linkSeq) return;
  const link = `${location.origin}${location.pathname}${location.search}#${fragment}`;
  const kb = (chars) => `${Math.ceil(chars / 1024).toLocaleString("en-US")} KB`;
  if (link.length > MAX_LINK_CHARS) {
    els.linkStatus.dataset.kind = "error";
    els.linkStatus.replaceChildren(`No link: it would be ${kb(link.length)}, and links over ${kb(MAX_LINK_CHARS)} get cut off by browsers and chat apps. Share the input as a file instead.`);
    return;
  }
  history.replaceState(null, "", link);
  state.pinned = { input, now: options.now };
  const ok = await copyText(link);
  if (seq !== state.linkSeq) return;
  els.linkStatus.dataset.kind = ok ? "ok" : "error";
  if (ok) {
    els.linkStatus.replaceChildren(`Link copied (${kb(link.length)}). The input travels in the link after the #, which browsers never send to a server.`);
  } else {
    // No clipboard: offer the link to copy by hand.
    const field = document.createElement("input");
    field.type = "text";
    field.readOnly = true;
    field.value = link;
    field.className = "link-field";
    field.setAttribute("aria-label", "Link to this input");
    els.linkStatus.replaceChildren("Copying failed; copy the link from here: ", field);
    field.select();
  }
});

/** Restores the page from a permalink in the fragment, if there is one. */
async function restoreFromLink() {
  const restored = await decodeState(location.hash);
  if (!restored) return false;
  if (restored.error) {
    loadSample("inactive");
    els.sampleNote.textContent = restored.error;
    return true;
  }
  els.event.value = restored.input;
  els.sample.value = "custom";
  els.sampleNote.textContent = "Opened from a link.";
  state.policy = restored.legacy;
  for (const radio of els.policyInputs) radio.checked = radio.value === restored.legacy;
  els.policyHint.textContent = POLICY_HINTS[state.policy];
  state.pinned = restored.now == null ? null : { input: restored.input, now: restored.now };
  state.linkDate = restored.date;
  fitTextarea();
  convertNow();
  if (state.ready) applyLinkDate();
  return true;
}

/** The date the link was made with: normally the event's own already, else written into it. */
function applyLinkDate() {
  const date = state.linkDate;
  state.linkDate = null;
  if (date && state.last?.result.form === "one" && els.date.value !== date) applyDate(date);
}
window.addEventListener("hashchange", () => restoreFromLink());

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

// A permalink wins over the first sample; decoding it may take a moment.
const hasLink = /(^#|&)[zt]=/.test(location.hash);
if (!hasLink) loadSample("inactive");
const linked = hasLink ? restoreFromLink().then((ok) => ok || loadSample("inactive")) : null;
performance.mark("app-ui-ready");

const wasmReady = coreReady.then(() => {
  performance.mark("wasm-ready");
  playground.wasmReadyMs = round(performance.now());
});
const started = Promise.all([wasmReady, linked]).then(() => {
  playground.version = version();
  els.coreVersion.textContent = `v${playground.version} · wasm${wasmSize()}`;
  state.ready = true;
  convertNow();
  performance.mark("first-conversion");
  performance.measure("playground:first-conversion", { start: 0, end: "first-conversion" });
  playground.firstConversionMs = round(performance.now());
  els.firstConversion.textContent = `${Math.round(playground.firstConversionMs)} ms after navigation`;
  if (state.linkDate) applyLinkDate();
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
