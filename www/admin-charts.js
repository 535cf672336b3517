// The admin page's pictures of GET /admin/metrics: the model (the answer's
// rows summed per minute or hour, for one app or the whole bridge, with
// latency percentiles estimated from the histogram) and inline SVG drawn by
// this code alone (createElementNS, text nodes only; nothing loaded).
//
// Colours come from CSS custom properties (admin.css, .chart …), so the
// charts follow light and dark mode. A chart's viewBox is as wide as its
// box in CSS pixels (the caller measures it), so its text is drawn at its
// real size on a phone as on a desktop; width="100%" keeps it inside.

const NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes (null/false skipped) and children (strings become text nodes). */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

// --------------------------------------------------------------- model --

/** What a slot (one minute or hour) counts; the metrics' own names. */
const COUNTS = ["accepted", "delivered", "failed", "retried", "held", "attempts", "succeeded"];

/**
 * The metrics answer summed per slot for the destinations named (`names`,
 * or every destination in the answer when null): every event type and
 * every app together. Slots run from `since` (rounded down to the step, as
 * the server rounds it) to `until`; `slots[i]` is null when nothing was
 * counted in it, else its counts, its latency bucket counts, its backlog,
 * and its p50 and p95 (null without attempts).
 */
export function model(answer, names = null) {
  const step = answer.step;
  const start = answer.since - mod(answer.since, step);
  const n = Math.max(1, Math.ceil((answer.until - start) / step));
  const bounds = answer.latencyBucketsMs ?? [];
  const slots = new Array(n).fill(null);
  const slot = (at) => {
    const i = Math.floor((at - start) / step);
    if (i < 0 || i >= n) return null;
    if (!slots[i]) {
      slots[i] = { start: start + i * step, backlog: 0, latency: new Array(bounds.length + 1).fill(0), latencySumMs: 0 };
      for (const c of COUNTS) slots[i][c] = 0;
    }
    return slots[i];
  };
  const wanted = (answer.destinations ?? []).filter((d) => names === null || names.includes(d.name));
  for (const d of wanted) {
    for (const row of d.series ?? []) {
      const s = slot(row.start);
      if (!s) continue;
      for (const c of COUNTS) s[c] += row[c] ?? 0;
      (row.latencyBuckets ?? []).forEach((k, b) => {
        if (b < s.latency.length) s.latency[b] += k;
      });
      s.latencySumMs += row.latencySumMs ?? 0;
    }
    // Each app's backlog: the most it had waiting in the slot. A log records
    // it only when it changes (its operations are what change it), so a slot
    // without a record had what the record before it ended with
    // (`backlogBefore` before the first). For the whole bridge, the sum.
    const records = new Map((d.backlog ?? []).map((b) => [b.start, b]));
    let carried = d.backlogBefore ?? 0;
    for (let i = 0; i < n; i++) {
      const at = start + i * step;
      const r = records.get(at);
      const value = r ? r.backlog ?? 0 : carried;
      if (r) carried = r.last ?? r.backlog ?? 0;
      if (value > 0) slot(at).backlog += value;
    }
  }
  const totals = { backlog: 0, latency: new Array(bounds.length + 1).fill(0) };
  for (const c of COUNTS) totals[c] = 0;
  for (const s of slots) {
    if (!s) continue;
    s.p50 = quantile(s.latency, bounds, 0.5);
    s.p95 = quantile(s.latency, bounds, 0.95);
    for (const c of COUNTS) totals[c] += s[c];
    s.latency.forEach((k, b) => (totals.latency[b] += k));
    totals.backlog = Math.max(totals.backlog, s.backlog);
  }
  totals.p50 = quantile(totals.latency, bounds, 0.5);
  totals.p95 = quantile(totals.latency, bounds, 0.95);
  return { since: answer.since, until: answer.until, step, start, n, bounds, slots, totals, names };
}

const mod = (a, b) => ((a % b) + b) % b;

/**
 * The latency at quantile `q` from bucket counts, as Prometheus'
 * histogram_quantile estimates it: the rank q × total falls in a bucket,
 * and the value is interpolated linearly between that bucket's bounds (the
 * first bucket's lower bound is 0). The last bucket is open (over the
 * last bound): a rank in it answers its lower bound. Null without counts.
 */
export function quantile(buckets, bounds, q) {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (!total) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < buckets.length; i++) {
    const count = buckets[i];
    if (count > 0 && below + count >= rank) {
      const lower = i === 0 ? 0 : bounds[i - 1];
      if (i >= bounds.length) return lower;
      return lower + (bounds[i] - lower) * ((rank - below) / count);
    }
    below += count;
  }
  return bounds.at(-1) ?? null;
}

/** Whether anything happened in a slot worth a row of numbers. */
export function busy(s) {
  return Boolean(s) && (s.accepted || s.delivered || s.failed || s.retried || s.held || s.attempts || s.backlog) > 0;
}

/** The next busy slot from `i` going `direction` (±1), or -1. */
export function nextBusy(m, i, direction) {
  for (let j = i + direction; j >= 0 && j < m.n; j += direction) if (busy(m.slots[j])) return j;
  return -1;
}

// -------------------------------------------------------------- scales --

/** 1, 2 or 5 × 10ⁿ at or over `v` (at least `floor`): the top of an axis. */
export function niceCeil(v, floor = 1) {
  if (!(v > floor)) return floor;
  const power = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * power >= v) return m * power;
  return 10 * power;
}

/** A count on an axis: 950, 1.2k, 15k. */
export function countLabel(v) {
  if (v < 1000) return String(Math.round(v * 100) / 100);
  return `${Math.round(v / 100) / 10}k`;
}

/** A latency: 2.5 ms, 38 ms, 1.2 s. */
export function msLabel(v) {
  if (v === null || v === undefined) return "—";
  if (v >= 1000) return `${Math.round(v / 100) / 10} s`;
  return `${v < 10 ? Math.round(v * 10) / 10 : Math.round(v)} ms`;
}

const TICK_STEPS = [60e3, 5 * 60e3, 10 * 60e3, 15 * 60e3, 30 * 60e3, 3600e3, 2 * 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3, 2 * 86400e3, 7 * 86400e3];
const HOUR_MINUTE = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const DAY = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

/**
 * Ticks for a time axis from `from` to `to`, at most `most` of them, on
 * round times of the viewer's clock (whole hours where the time zone is
 * half an hour off UTC too); a tick at midnight names the day.
 */
export function timeTicks(from, to, most) {
  const every = TICK_STEPS.find((s) => (to - from) / s <= most) ?? TICK_STEPS.at(-1);
  const d = new Date(from);
  if (every < 3600e3) {
    d.setSeconds(0, 0);
    d.setMinutes(Math.floor(d.getMinutes() / (every / 60e3)) * (every / 60e3));
  } else if (every < 86400e3) {
    d.setMinutes(0, 0, 0);
    d.setHours(Math.floor(d.getHours() / (every / 3600e3)) * (every / 3600e3));
  } else {
    d.setHours(0, 0, 0, 0);
  }
  const advance = () => {
    if (every < 3600e3) d.setTime(d.getTime() + every);
    else if (every < 86400e3) d.setHours(d.getHours() + every / 3600e3);
    else d.setDate(d.getDate() + every / 86400e3);
  };
  const ticks = [];
  for (let guard = 0; d.getTime() <= to && guard < 1000; guard++) {
    if (d.getTime() >= from) {
      const midnight = d.getHours() === 0 && d.getMinutes() === 0;
      ticks.push({ at: d.getTime(), label: midnight || every >= 86400e3 ? DAY.format(d) : HOUR_MINUTE.format(d) });
    }
    advance();
  }
  return ticks;
}

// -------------------------------------------------------------- charts --

const PAD = { left: 42, right: 10, top: 10, bottom: 22 };

/** The frame every big chart shares: x and y scales, grid, axes' labels. */
function frame(m, { width, height, yMax, yLabel, integer = false }) {
  const plot = { x0: PAD.left, x1: width - PAD.right, y0: PAD.top, y1: height - PAD.bottom };
  const w = plot.x1 - plot.x0;
  const slotW = w / m.n;
  const x = (i) => plot.x0 + i * slotW;
  const y = (v) => plot.y1 - (v / yMax) * (plot.y1 - plot.y0);
  const grid = svg("g", { class: "grid", "aria-hidden": "true" });
  for (const v of [0, yMax / 2, yMax]) {
    grid.append(svg("line", { x1: plot.x0, x2: plot.x1, y1: y(v), y2: y(v), class: v === 0 ? "axis" : "rule" }));
    // Counts are whole: half of 5 deliveries gets a rule but no label.
    if (!integer || Number.isInteger(v)) {
      grid.append(svg("text", { x: plot.x0 - 6, y: y(v), "text-anchor": "end", "dominant-baseline": "middle" }, yLabel(v)));
    }
  }
  for (const t of timeTicks(m.start, m.start + m.n * m.step, Math.max(2, Math.floor(w / 70)))) {
    const tx = plot.x0 + ((t.at - m.start) / (m.n * m.step)) * w;
    grid.append(
      svg("line", { x1: tx, x2: tx, y1: plot.y1, y2: plot.y1 + 4, class: "axis" }),
      svg("text", { x: tx, y: height - 6, "text-anchor": "middle" }, t.label),
    );
  }
  return { plot, slotW, x, y, grid };
}

/** A band over one slot, moved by the caller to the slot under the pointer or the keyboard. */
function cursorBand(plot) {
  return svg("rect", { class: "cursor", x: plot.x0, y: plot.y0, width: 0, height: plot.y1 - plot.y0, visibility: "hidden", "aria-hidden": "true" });
}

/** Where slot `i` is drawn in a chart (its band). */
export function placeCursor(chart, i) {
  const band = chart.querySelector(".cursor");
  if (!band) return;
  if (i === null || i === undefined || i < 0) {
    band.setAttribute("visibility", "hidden");
    return;
  }
  const { x0, slotW } = chart.__scale;
  const w = Math.max(slotW, 3);
  band.setAttribute("x", x0 + i * slotW + slotW / 2 - w / 2);
  band.setAttribute("width", w);
  band.setAttribute("visibility", "visible");
}

/**
 * The slot under a pointer at `clientX`; an empty slot yields to the
 * nearest busy one within a few pixels, so a lone minute's thin bar is
 * easy to hit.
 */
export function slotAt(chart, m, clientX) {
  const box = chart.getBoundingClientRect();
  const vb = chart.viewBox.baseVal;
  const at = ((clientX - box.left) / box.width) * vb.width;
  const { x0, slotW } = chart.__scale;
  const i = Math.min(m.n - 1, Math.max(0, Math.floor((at - x0) / slotW)));
  if (busy(m.slots[i])) return i;
  const reach = Math.ceil(6 / slotW);
  for (let k = 1; k <= reach; k++) {
    if (busy(m.slots[i - k])) return i - k;
    if (busy(m.slots[i + k])) return i + k;
  }
  return i;
}

function chartRoot(kind, { width, height, label, scale }) {
  const root = svg("svg", {
    class: `chart chart-${kind}`,
    viewBox: `0 0 ${width} ${height}`,
    width: "100%",
    role: "img",
    "aria-label": label,
    tabindex: "0",
    focusable: "true",
    dataset: { kind },
  });
  root.__scale = scale;
  return root;
}

/** Deliveries per slot: delivered, failed and held, stacked. */
export function deliveriesChart(m, { width, height = 170, label, title }) {
  let most = 0;
  for (const s of m.slots) if (s) most = Math.max(most, s.delivered + s.failed + s.held);
  const yMax = niceCeil(most, 4);
  const f = frame(m, { width, height, yMax, yLabel: countLabel, integer: true });
  const root = chartRoot("deliveries", { width, height, label, scale: { x0: f.plot.x0, slotW: f.slotW } });
  const bars = svg("g", { class: "bars" });
  const barW = Math.max(f.slotW > 4 ? f.slotW - 1 : f.slotW, 1.5);
  m.slots.forEach((s, i) => {
    if (!s || s.delivered + s.failed + s.held === 0) return;
    const g = svg("g", { dataset: { slot: i } }, svg("title", {}, title(i, s)));
    let base = 0;
    for (const part of ["delivered", "failed", "held"]) {
      if (!s[part]) continue;
      const top = base + s[part];
      g.append(svg("rect", { class: `s-${part}`, x: f.x(i) + (f.slotW - barW) / 2, y: f.y(top), width: barW, height: Math.max(f.y(base) - f.y(top), 1) }));
      base = top;
    }
    bars.append(g);
  });
  root.append(f.grid, bars, cursorBand(f.plot));
  if (!most) root.append(emptyNote(f.plot, "No deliveries"));
  return root;
}

/** p50 and p95 latency per slot: lines between neighbouring slots, a dot on each. */
export function latencyChart(m, { width, height = 160, label, title }) {
  let most = 0;
  let any = false;
  for (const s of m.slots) {
    if (s && s.p95 !== null) {
      most = Math.max(most, s.p95);
      any = true;
    }
  }
  const yMax = niceCeil(most, 10);
  const f = frame(m, { width, height, yMax, yLabel: msLabel });
  const root = chartRoot("latency", { width, height, label, scale: { x0: f.plot.x0, slotW: f.slotW } });
  const mid = (i) => f.x(i) + f.slotW / 2;
  for (const q of ["p95", "p50"]) {
    // One path, broken wherever a slot had no attempts.
    let d = "";
    let open = false;
    m.slots.forEach((s, i) => {
      if (!s || s[q] === null || s[q] === undefined) {
        open = false;
        return;
      }
      d += `${open ? "L" : "M"}${round(mid(i))} ${round(f.y(s[q]))}`;
      open = true;
    });
    root.append(svg("path", { class: `line s-${q}`, d, fill: "none" }));
  }
  const dots = svg("g", { class: "dots" });
  m.slots.forEach((s, i) => {
    if (!s || s.p50 === null) return;
    dots.append(svg("g", { dataset: { slot: i } },
      svg("title", {}, title(i, s)),
      svg("circle", { class: "s-p95", cx: mid(i), cy: f.y(s.p95), r: 2.5 }),
      svg("circle", { class: "s-p50", cx: mid(i), cy: f.y(s.p50), r: 2.5 }),
    ));
  });
  root.prepend(f.grid);
  root.append(dots, cursorBand(f.plot));
  if (!any) root.append(emptyNote(f.plot, "No attempts"));
  return root;
}

/**
 * The backlog: the most deliveries waiting in each slot, as a step line.
 * A slot without a record had none waiting when its app's log last ran in
 * it (between the log's records, the backlog stayed as the last one ended).
 */
export function backlogChart(m, { width, height = 130, label, title }) {
  let most = 0;
  for (const s of m.slots) if (s) most = Math.max(most, s.backlog);
  const yMax = niceCeil(most, 4);
  const f = frame(m, { width, height, yMax, yLabel: countLabel, integer: true });
  const root = chartRoot("backlog", { width, height, label, scale: { x0: f.plot.x0, slotW: f.slotW } });
  const value = (i) => m.slots[i]?.backlog ?? 0;
  let d = `M${round(f.x(0))} ${round(f.y(value(0)))}`;
  for (let i = 1; i <= m.n; i++) {
    const v = i < m.n ? value(i) : null;
    if (v === value(i - 1)) continue;
    d += `H${round(f.x(i))}`;
    if (v !== null) d += `V${round(f.y(v))}`;
  }
  d += `H${round(f.x(m.n))}`;
  const area = `${d}V${round(f.y(0))}H${round(f.x(0))}Z`;
  const hits = svg("g", { class: "hits" });
  m.slots.forEach((s, i) => {
    if (!s || !s.backlog) return;
    hits.append(svg("rect", { x: f.x(i), y: f.y(s.backlog), width: Math.max(f.slotW, 1), height: f.y(0) - f.y(s.backlog), dataset: { slot: i } },
      svg("title", {}, title(i, s))));
  });
  root.append(f.grid, svg("path", { class: "area s-backlog", d: area }), svg("path", { class: "line s-backlog", d, fill: "none" }), hits, cursorBand(f.plot));
  if (!most) root.append(emptyNote(f.plot, "Nothing waited"));
  return root;
}

/** A small chart for a destination's card: deliveries only, no axes, stretched to its box. */
export function sparkChart(m) {
  const width = 300;
  const height = 40;
  let most = 0;
  for (const s of m.slots) if (s) most = Math.max(most, s.delivered + s.failed + s.held);
  const slotW = width / m.n;
  const barW = Math.max(slotW, 1.2);
  const y = (v) => height - (v / Math.max(most, 1)) * (height - 2);
  const root = svg("svg", { class: "chart spark-chart", viewBox: `0 0 ${width} ${height}`, width: "100%", height, preserveAspectRatio: "none", "aria-hidden": "true", focusable: "false" },
    svg("line", { class: "axis", x1: 0, x2: width, y1: height - 0.5, y2: height - 0.5 }));
  m.slots.forEach((s, i) => {
    if (!s || s.delivered + s.failed + s.held === 0) return;
    let base = 0;
    for (const part of ["delivered", "failed", "held"]) {
      if (!s[part]) continue;
      const top = base + s[part];
      root.append(svg("rect", { class: `s-${part}`, x: i * slotW, y: y(top), width: barW, height: Math.max(y(base) - y(top), 1) }));
      base = top;
    }
  });
  return root;
}

function emptyNote(plot, text) {
  return svg("text", { class: "empty-note", x: (plot.x0 + plot.x1) / 2, y: (plot.y0 + plot.y1) / 2, "text-anchor": "middle", "dominant-baseline": "middle" }, text);
}

const round = (v) => Math.round(v * 10) / 10;
