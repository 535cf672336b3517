// The operator's page over the admin API (/admin/…): destinations' health,
// the delivery log with its filters, one delivery with its attempts, and the
// few actions an operator takes (replay, pause, resume, recover), each behind
// a confirmation. Plain ES module, no framework, nothing from elsewhere.
//
// The admin token lives in this tab's sessionStorage and nowhere else: never
// localStorage, never a URL; it leaves the page only as an Authorization
// header to this origin. Everything the API answers is rendered as text nodes
// (textContent, never innerHTML), so a hostile event body or error message
// shows as what it is.

import * as charts from "./admin-charts.js";

const TOKEN_KEY = "drift-bridge.admin-token";
/** Delivery statuses, in the API's words and order. */
const STATUSES = ["pending", "held", "delivered", "failed", "gone", "replayed"];
/** Statuses a bulk recovery may take again. */
const RECOVERABLE = ["failed", "gone"];
const PAGE = 50;
const DAY_MS = 86_400_000;

const $ = (id) => document.getElementById(id);
const els = {
  session: $("session"),
  refresh: $("refresh"),
  forget: $("forget"),
  notice: $("notice"),
  signIn: $("sign-in"),
  signInProblem: $("sign-in-problem"),
  tokenForm: $("token-form"),
  token: $("token"),
  tokenSubmit: $("token-submit"),
  dashboard: $("dashboard"),
  destinationsHeading: $("destinations-heading"),
  destinations: $("destinations"),
  destinationsSummary: $("destinations-summary"),
  destinationsProblem: $("destinations-problem"),
  filters: $("filters"),
  fDestination: $("f-destination"),
  fStatus: $("f-status"),
  fConversation: $("f-conversation"),
  fEvent: $("f-event"),
  fSince: $("f-since"),
  fUntil: $("f-until"),
  clear: $("clear"),
  logHeading: $("log-heading"),
  logSummary: $("log-summary"),
  logProblem: $("log-problem"),
  table: $("deliveries"),
  rows: $("rows"),
  logEmpty: $("log-empty"),
  more: $("more"),
  delivery: $("delivery"),
  deliveryHeading: $("delivery-heading"),
  deliveryBody: $("delivery-body"),
  deliveryClose: $("delivery-close"),
  confirm: $("confirm"),
  confirmForm: $("confirm-form"),
  confirmTitle: $("confirm-title"),
  confirmText: $("confirm-text"),
  confirmFields: $("confirm-fields"),
  confirmProblem: $("confirm-problem"),
  confirmOk: $("confirm-ok"),
  confirmCancel: $("confirm-cancel"),
  confirmProgress: $("confirm-progress"),
  addApp: $("add-app"),
  secretSlot: $("secret-slot"),
  editor: $("editor"),
  editorHeading: $("editor-heading"),
  editorNote: $("editor-note"),
  editorProblem: $("editor-problem"),
  editorForm: $("editor-form"),
  editorFields: $("editor-fields"),
  editorProgress: $("editor-progress"),
  editorSubmit: $("editor-submit"),
  editorCancel: $("editor-cancel"),
  typesChips: $("app-types-chips"),
  replacementTokenField: $("app-replacement-token-field"),
  metrics: $("metrics"),
  metricsHeading: $("metrics-heading"),
  metricsSummary: $("metrics-summary"),
  metricsProblem: $("metrics-problem"),
  mApp: $("m-app"),
  mRange: $("m-range"),
  charts: $("charts"),
  metricsCaption: $("metrics-caption"),
  metricsRows: $("metrics-rows"),
  changesSummary: $("changes-summary"),
  changesProblem: $("changes-problem"),
  changesTable: $("changes-table"),
  changesRows: $("changes-rows"),
  changesEmpty: $("changes-empty"),
  changesMore: $("changes-more"),
};

const state = {
  token: null, // the token in use (also in sessionStorage once the API accepted it)
  destinations: [],
  filters: {},
  next: null, // the log's cursor for "Load more"
  shown: 0,
  open: null, // id of the delivery shown
  generation: 0, // bumps on sign-out and new filters, so late answers are dropped
  inflight: 0,
  tests: new Map(), // a destination's last test delivery, by name: { running } | { value } | { error }
  metrics: null, // the last GET /admin/metrics answer
  cursor: null, // the slot the charts point at (hover or keyboard), or null
  cursorAt: null, // that slot's start (ms): the same minute once the metrics are read again
  changesNext: null, // the history's cursor for "Load older changes"
  fingerprint: null, // the first 8 hex digits of the token's SHA-256, as the history's "by" says
};

// ------------------------------------------------------------------ DOM --

/** An element with attributes (null/false skipped) and children (strings become text nodes). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

const TIME = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
const TIME_YEAR = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
});
const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";

const CLOCK = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

/**
 * A <time> in the viewer's time zone, its exact UTC value on hover. With
 * `day` (ms), a time on that same local day shows the clock only.
 */
function when(ms, empty = "never", day = null) {
  if (ms === null || ms === undefined) return h("span", { class: "muted" }, empty);
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) return h("span", { class: "muted" }, String(ms));
  const iso = date.toISOString();
  const sameDay = day !== null && new Date(day).toDateString() === date.toDateString();
  const format = sameDay ? CLOCK : date.getFullYear() === new Date().getFullYear() ? TIME : TIME_YEAR;
  return h("time", { datetime: iso, title: `${iso} (${ms} ms)` }, format.format(date));
}

/** "in 25 s", "3 min ago": for times close to now, next to the exact one. */
function relative(ms) {
  const seconds = Math.round((ms - Date.now()) / 1000);
  const abs = Math.abs(seconds);
  const text = abs < 90 ? `${abs} s` : abs < 5400 ? `${Math.round(abs / 60)} min` : abs < 172_800 ? `${Math.round(abs / 3600)} h` : `${Math.round(abs / 86400)} d`;
  return seconds >= 0 ? `in ${text}` : `${text} ago`;
}

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function badge(word, kind = word) {
  return h("span", { class: `badge badge-${kind}` }, word);
}

/** The status word, and the finer state when it says more (pending · retrying). */
function statusBadge(delivery) {
  const extra = delivery.state && delivery.state !== delivery.status ? h("span", { class: "state-word" }, delivery.state) : null;
  return h("span", { class: "status" }, badge(delivery.status), extra);
}

function show(el, visible) {
  el.hidden = !visible;
}

function problem(el, message) {
  el.textContent = message || "";
  show(el, Boolean(message));
}

function notify(message, kind = "ok") {
  els.notice.textContent = message;
  els.notice.dataset.kind = kind;
  show(els.notice, Boolean(message));
}

function busy(delta) {
  state.inflight += delta;
  document.documentElement.dataset.pending = String(state.inflight);
}

// ------------------------------------------------------------------ API --

class ApiError extends Error {
  constructor(status, code, message, path = "", problems = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.path = path;
    // Every problem with a refused change ({path, message}), the first being `path`'s.
    this.problems = problems.length ? problems : path ? [{ path, message }] : [];
  }
}

/**
 * One admin call. The token goes in the Authorization header only; the
 * answer is returned as parsed JSON and as its text (for lossless bodies).
 */
async function api(method, path, body) {
  const headers = { accept: "application/json", authorization: `Bearer ${state.token}` };
  const init = { method, headers, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  busy(+1);
  try {
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, "unreachable", `The bridge did not answer (${e.message}).`);
    }
    const text = await res.text();
    let value = null;
    try {
      value = JSON.parse(text);
    } catch {
      // not JSON: reported below
    }
    if (res.ok && value) return { status: res.status, value, text };
    const error = value?.error ?? {};
    throw new ApiError(res.status, error.code ?? `http_${res.status}`, error.message ?? `The bridge answered HTTP ${res.status}.`, error.path ?? "", Array.isArray(error.problems) ? error.problems : []);
  } finally {
    busy(-1);
  }
}

const OFF_MESSAGE =
  "The admin API is off: this bridge answered 404 for /admin/. Set ADMIN_TOKEN (32 characters or more) as a secret, then try again.";
const REFUSED_MESSAGE = "This token was refused (401 unauthorized). Paste the bridge's current ADMIN_TOKEN.";

/**
 * A refused token (401) ends the session, wherever it is noticed; so does a
 * 404 from the log's route (`fromLog`), the admin API's oldest: the API is
 * off. Returns true when handled.
 */
function handleAuth(error, fromLog = false) {
  if (!(error instanceof ApiError)) return false;
  if (error.status === 401) {
    signOut(REFUSED_MESSAGE);
    return true;
  }
  if (error.status === 404 && fromLog) {
    signOut(OFF_MESSAGE);
    return true;
  }
  return false;
}

function describe(error) {
  if (!(error instanceof ApiError)) return String(error?.message ?? error);
  return error.status ? `${error.message} (${error.status} ${error.code})` : error.message;
}

// -------------------------------------------------------------- session --

function start() {
  buildStatusFilter();
  $("zone").textContent = ` (${ZONE})`;
  const stored = sessionStorage.getItem(TOKEN_KEY);
  if (stored) {
    state.token = stored;
    openDashboard();
  } else {
    askForToken();
  }
}

function askForToken(message = "") {
  show(els.session, false);
  show(els.dashboard, false);
  show(els.signIn, true);
  problem(els.signInProblem, message);
  els.token.value = "";
  els.token.setAttribute("aria-invalid", message ? "true" : "false");
  els.token.focus();
}

els.tokenForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = els.token.value.trim();
  // An HTTP header carries visible ASCII only (as does any token worth having).
  const wrong = !token ? "Paste the admin token first." : /[^\x21-\x7e]/.test(token) ? "That is not a token: it holds spaces or characters outside visible ASCII." : "";
  if (wrong) {
    problem(els.signInProblem, wrong);
    els.token.focus();
    return;
  }
  state.token = token;
  els.tokenSubmit.disabled = true;
  try {
    await openDashboard({ fresh: true });
  } finally {
    els.tokenSubmit.disabled = false;
  }
});

/** Loads everything with the token in use; keeps it only if the API accepts it. */
async function openDashboard({ fresh = false } = {}) {
  const generation = ++state.generation;
  state.fingerprint = await fingerprint(state.token);
  const [health, log] = await Promise.allSettled([
    loadDestinations(generation),
    loadLog({ reset: true, generation }),
    // The metrics and the history say what they could not read in their own sections.
    loadMetrics(generation).catch(() => {}),
    loadChanges({ reset: true, generation }).catch(() => {}),
  ]);
  if (generation !== state.generation) return;
  if (health.status === "rejected" && handleAuth(health.reason)) return;
  if (log.status === "rejected" && handleAuth(log.reason, true)) return;
  if (fresh) {
    sessionStorage.setItem(TOKEN_KEY, state.token);
    els.token.value = "";
    notify("");
  }
  show(els.signIn, false);
  show(els.session, true);
  show(els.dashboard, true);
  // The form is gone: the top of what it opened takes the focus.
  if (fresh) els.destinationsHeading.focus();
  followLink();
}

/**
 * An alert links to `/admin.html#destination=<name>`: that app's card, its
 * charts and its deliveries. (The hash never holds the token or anything
 * secret; it names an app.)
 */
function followLink() {
  const name = new URLSearchParams(location.hash.slice(1)).get("destination");
  if (!name || !state.destinations.some((d) => d.name === name)) return;
  showLogOf(name);
  if ([...els.mApp.options].some((o) => o.value === name)) chooseApp(name);
  const card = cardOf(name);
  card?.scrollIntoView({ block: "start" });
  card?.querySelector("h3")?.focus({ preventScroll: true });
}

window.addEventListener("hashchange", () => {
  if (state.token && !els.dashboard.hidden) followLink();
});

/** Forgets the token (storage and memory) and clears everything it showed. */
function signOut(message = "") {
  state.generation++;
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  state.destinations = [];
  state.filters = {};
  state.next = null;
  state.open = null;
  state.tests.clear();
  state.metrics = null;
  state.cursor = null;
  state.cursorAt = null;
  state.changesNext = null;
  state.fingerprint = null;
  model = null;
  els.filters.reset();
  els.destinations.replaceChildren();
  els.rows.replaceChildren();
  els.deliveryBody.replaceChildren();
  els.charts.replaceChildren();
  els.metricsRows.replaceChildren();
  els.changesRows.replaceChildren();
  for (const box of [els.destinationsProblem, els.metricsProblem, els.changesProblem, els.logProblem]) problem(box, "");
  hideSecret();
  if (!els.editor.hidden) closeEditor({ focus: false });
  show(els.delivery, false);
  if (els.confirm.open) els.confirm.close("cancel");
  notify("");
  askForToken(message);
}

els.forget.addEventListener("click", () => {
  signOut();
  notify("The token is forgotten: this tab no longer holds it.");
});

els.refresh.addEventListener("click", () => refresh());

async function refresh({ keepDelivery = true } = {}) {
  const generation = state.generation;
  const jobs = [loadLog({ reset: true, generation }), loadDestinations(generation), loadMetrics(generation), loadChanges({ reset: true, generation })];
  if (keepDelivery && state.open) jobs.push(openDelivery(state.open, { focus: false }));
  const results = await Promise.allSettled(jobs);
  for (const [i, r] of results.entries()) if (r.status === "rejected" && handleAuth(r.reason, i === 0)) return;
}

// --------------------------------------------------------- destinations --

async function loadDestinations(generation = state.generation) {
  els.destinations.setAttribute("aria-busy", "true");
  try {
    const { value } = await api("GET", "/admin/destinations");
    if (generation !== state.generation) return;
    state.destinations = incarnationsNamed(value.destinations ?? []);
    problem(els.destinationsProblem, "");
    renderDestinations();
  } catch (error) {
    if (generation !== state.generation) return;
    if (!(error instanceof ApiError && error.status === 401)) {
      problem(els.destinationsProblem, `Could not read the destinations: ${describe(error)}`);
    }
    throw error;
  } finally {
    els.destinations.setAttribute("aria-busy", "false");
  }
}

function renderDestinations() {
  const list = state.destinations;
  const byState = {};
  for (const d of list) byState[d.state] = (byState[d.state] ?? 0) + 1;
  els.destinationsSummary.textContent = list.length
    ? Object.entries(byState).map(([s, n]) => `${n} ${s}`).join(" · ")
    : "none configured";
  els.destinationsSummary.dataset.kind = byState.tripped ? "error" : byState.paused ? "warn" : "ok";
  // A card's control that had the focus has it again once the cards are drawn anew.
  const active = document.activeElement;
  const was = active?.closest?.(".destination") && {
    name: active.closest(".destination").dataset.name,
    tag: active.tagName,
    label: active.getAttribute("aria-label") ?? active.textContent,
  };
  els.destinations.replaceChildren(...list.map(destinationCard));
  if (!list.length) {
    els.destinations.append(h("li", { class: "empty" }, "No apps yet: add one with “Add an app”, or declare them in DESTINATIONS (wrangler.toml)."));
  }
  if (was) {
    const card = cardOf(was.name);
    const same = card && [...card.querySelectorAll("button, h3")].find((el) => el.tagName === was.tag && (el.getAttribute("aria-label") ?? el.textContent) === was.label);
    (same ?? card?.querySelector("h3"))?.focus({ preventScroll: true });
  }
  // The filter's choices follow the configuration.
  const chosen = els.fDestination.value;
  els.fDestination.replaceChildren(new Option("All", ""), ...list.map((d) => new Option(d.name, d.name)));
  els.fDestination.value = list.some((d) => d.name === chosen) ? chosen : "";
}

function percent(ratio) {
  if (ratio === null || ratio === undefined) return "—";
  const p = ratio * 100;
  return `${p === 100 || p === 0 ? p.toFixed(0) : p >= 99 ? p.toFixed(2) : p.toFixed(1)}%`;
}

const ms = (v) => (v === null || v === undefined ? "—" : `${v} ms`);

function window_(label, w) {
  w = w ?? {};
  const ratioKind = w.successRatio === null || w.successRatio === undefined ? "none" : w.successRatio >= 0.99 ? "ok" : w.successRatio >= 0.9 ? "warn" : "error";
  return h("div", { class: "stat stat-window" },
    h("dt", {}, label),
    h("dd", {},
      h("span", { class: `ratio ratio-${ratioKind}` }, percent(w.successRatio)),
      h("span", { class: "muted" }, ` of ${plural(w.attempts ?? 0, "attempt")}`),
      h("span", { class: "latency" }, h("span", {}, `p50 ${ms(w.p50Ms)}`), " · ", h("span", {}, `p95 ${ms(w.p95Ms)}`)),
    ),
  );
}

/** Where an app's settings live: the API's `source`, in the page's words. */
function sourceTag(d) {
  if (d.source === "declared") return h("span", { class: "tag tag-source", dataset: { source: "declared" }, title: "In DESTINATIONS: its settings change there, with a deploy" }, "declared in wrangler.toml");
  if (d.source === "runtime") return h("span", { class: "tag tag-source", dataset: { source: "runtime" } }, "managed here");
  if (d.source === "alerts") return h("span", { class: "tag tag-source", dataset: { source: "alerts" } }, "alert target");
  return null;
}

function destinationCard(d) {
  const counts = d.counts ?? {};
  const title = `destination-${d.name}`;
  const lastError = d.lastError
    ? h("dd", {}, h("span", { class: "error-text" }, d.lastError), d.lastErrorAt ? h("span", { class: "muted" }, " · ", when(d.lastErrorAt)) : null)
    : h("dd", { class: "muted" }, "none");
  const actions = [];
  const configured = d.configured !== false;
  if (configured && d.state !== "paused") actions.push(h("button", { type: "button", class: "button button-small", onclick: () => confirmPause(d) }, "Pause…"));
  if (configured && d.state !== "active") actions.push(h("button", { type: "button", class: "button button-small", onclick: () => confirmResume(d) }, "Resume…"));
  if (configured) actions.push(h("button", { type: "button", class: "button button-small", onclick: () => confirmRecover(d) }, "Recover…"));
  actions.push(h("button", { type: "button", class: "button button-small button-quiet", onclick: () => showLogOf(d.name), "aria-label": `Show the deliveries of ${d.name}` }, "Deliveries"));

  // The app's settings: changed here only for apps managed here; a test
  // delivery for any app (alert targets are not apps Drift's events go to).
  const manage = [];
  const runtime = configured && d.source === "runtime";
  if (runtime) {
    manage.push(h("button", { type: "button", class: "button button-small", onclick: (e) => openEditor(d, e.currentTarget), "aria-label": `Edit ${d.name}` }, "Edit"));
    if (d.signed) manage.push(h("button", { type: "button", class: "button button-small", onclick: () => confirmRotate(d), "aria-label": `Rotate the signing secret of ${d.name}…` }, "Rotate secret…"));
  }
  if (configured && d.source !== "alerts") {
    manage.push(h("button", { type: "button", class: "button button-small", onclick: () => sendTest(d), "aria-label": `Send a test delivery to ${d.name}` }, "Send a test"));
  }
  if (runtime) manage.push(h("button", { type: "button", class: "button button-small button-danger", onclick: () => confirmDelete(d), "aria-label": `Delete ${d.name}…` }, "Delete…"));

  const settings = [
    d.orgIds?.length ? h("span", { class: "tag", title: "Drift organisations (orgId) it gets" }, `org ${d.orgIds.join(", ")}`) : null,
    d.ratePerSecond ? h("span", { class: "tag", title: "its most deliveries a second" }, `≤ ${d.ratePerSecond}/s`) : null,
    d.token && d.token !== (d.signed ? "strip" : "keep") ? h("span", { class: "tag", title: "what its deliveries carry of Drift's token" }, `token ${d.token}`) : null,
  ];
  const overlap = d.previousSecretExpiresAt
    ? h("p", { class: "note overlap" }, "Its previous secret signs too until ", when(d.previousSecretExpiresAt), h("span", { class: "muted" }, ` (${relative(d.previousSecretExpiresAt)})`), ".")
    : null;

  return h("li", { class: "destination", dataset: { name: d.name, state: d.state, source: d.source ?? "" }, "aria-labelledby": title },
    h("div", { class: "destination-head" },
      h("h3", { id: title, tabindex: "-1" }, d.name),
      configured ? badge(d.state) : badge("not configured", "warn"),
      d.draining ? badge("draining", "info") : null,
      d.full ? badge("full", "error") : null,
    ),
    configured
      ? h("p", { class: "destination-url mono" }, d.url)
      : h("p", { class: "destination-url muted" }, "No longer in the configuration: its deliveries are kept until their retention ends."),
    d.refused ? h("p", { class: "error-text" }, `${plural(d.refused, "delivery", "deliveries")} failed at once: the delivery log is over MAX_LOG_BYTES.`) : null,
    h("p", { class: "destination-meta" },
      (d.types ?? []).map((t) => h("code", { class: "type" }, t)),
      configured ? (d.signed ? h("span", { class: "tag" }, "signed") : h("span", { class: "tag" }, "unsigned")) : null,
      settings,
      sourceTag(d),
      d.createdAt ? h("span", { class: "muted since" }, "added ", when(d.createdAt)) : null,
      d.stateSince ? h("span", { class: "muted since" }, `${d.state} since `, when(d.stateSince)) : null,
    ),
    overlap,
    h("div", { class: "spark-slot", dataset: { name: d.name } }, spark(d.name)),
    h("dl", { class: "stats" },
      h("div", { class: "stat stat-kpi" }, h("dt", {}, "Held"), h("dd", { class: "big", dataset: { count: "held" } }, String(d.held ?? counts.held ?? 0))),
      h("div", { class: "stat stat-kpi" }, h("dt", {}, "Pending"), h("dd", { class: "big", dataset: { count: "pending" } }, String(counts.pending ?? 0))),
      h("div", { class: "stat stat-kpi" }, h("dt", {}, "Failures in a row"), h("dd", { class: `big${d.consecutiveFailures ? " bad" : ""}`, dataset: { count: "consecutiveFailures" } }, String(d.consecutiveFailures ?? 0))),
      window_("Last hour", d.lastHour),
      window_("Last day", d.lastDay),
      h("div", { class: "stat stat-wide" }, h("dt", {}, "Last success"), h("dd", {}, when(d.lastSuccessAt))),
      d.state === "tripped" || d.nextProbeAt
        ? h("div", { class: "stat stat-wide" }, h("dt", {}, "Next probe"),
          h("dd", {}, d.nextProbeAt ? [when(d.nextProbeAt), h("span", { class: "muted" }, ` (${relative(d.nextProbeAt)})`)] : h("span", { class: "muted" }, "none scheduled")))
        : null,
      h("div", { class: "stat stat-full" }, h("dt", {}, "Last error"), lastError),
      h("div", { class: "stat stat-full" }, h("dt", {}, "Deliveries kept"),
        h("dd", { class: "counts" }, STATUSES.map((s) => h("span", { class: "count", dataset: { status: s } }, h("span", { class: "muted" }, s), " ", String(counts[s] ?? 0))))),
    ),
    h("div", { class: "actions" }, actions),
    manage.length ? h("div", { class: "actions actions-manage" }, manage) : null,
    h("div", { class: "test-result", role: "status", "aria-live": "polite", dataset: { name: d.name } }, testResult(d.name)),
  );
}

/** A destination's card (its <li>), by name; undefined when it has none. */
function cardOf(name) {
  return [...els.destinations.children].find((li) => li.dataset.name === name);
}

function showLogOf(name) {
  els.fDestination.value = name;
  applyFilters();
}

// ----------------------------------------------------------------- log --

function buildStatusFilter() {
  els.fStatus.replaceChildren(
    ...STATUSES.map((s) =>
      h("label", { class: "check" }, h("input", { type: "checkbox", value: s }), h("span", {}, badge(s))),
    ),
  );
}

/** ms from a datetime-local value, read in the viewer's time zone. */
function msFromLocal(value) {
  if (!value) return null;
  const t = new Date(value).getTime();
  return Number.isNaN(t) ? NaN : t;
}

/** A datetime-local value (viewer's time zone) for ms. */
function localValue(ms) {
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getFullYear(), 4)}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

const FIELD_OF = { destination: els.fDestination, status: els.fStatus, conversation: els.fConversation, event: els.fEvent, since: els.fSince, until: els.fUntil };

function fieldError(path, message) {
  for (const [name, input] of Object.entries(FIELD_OF)) {
    const box = $(`f-${name}-error`);
    const hit = name === path;
    if (input !== els.fStatus) input.setAttribute("aria-invalid", hit ? "true" : "false");
    if (box) problem(box, hit ? message : "");
  }
}

function readFilters() {
  const filters = {};
  if (els.fDestination.value) filters.destination = els.fDestination.value;
  const statuses = [...els.fStatus.querySelectorAll("input:checked")].map((i) => i.value);
  if (statuses.length) filters.status = statuses.join(",");
  const conversation = els.fConversation.value.trim();
  if (conversation) filters.conversation = conversation;
  const eventId = els.fEvent.value.trim().toLowerCase();
  if (eventId) filters.event = eventId;
  for (const [name, input] of [["since", els.fSince], ["until", els.fUntil]]) {
    const value = msFromLocal(input.value);
    if (Number.isNaN(value)) return { error: { path: name, message: "Not a date and time." } };
    if (value !== null) filters[name] = String(value);
  }
  return { filters };
}

function query(filters, cursor) {
  const params = new URLSearchParams(filters);
  params.set("limit", String(PAGE));
  if (cursor) params.set("cursor", cursor);
  return `/admin/deliveries?${params}`;
}

async function loadLog({ reset, generation = state.generation }) {
  const cursor = reset ? null : state.next;
  els.more.disabled = true;
  try {
    const { value } = await api("GET", query(state.filters, cursor));
    if (generation !== state.generation) return;
    const deliveries = value.deliveries ?? [];
    if (reset) {
      els.rows.replaceChildren();
      state.shown = 0;
    }
    els.rows.append(...deliveries.map(row));
    state.shown += deliveries.length;
    state.next = value.next ?? null;
    problem(els.logProblem, "");
    fieldError("", "");
    show(els.more, Boolean(state.next));
    const filtered = Object.keys(state.filters).length > 0;
    els.logEmpty.textContent = filtered
      ? "No deliveries match these filters."
      : "No deliveries yet: each one shows here once Drift's webhook has been taken for a destination.";
    show(els.logEmpty, state.shown === 0);
    show(els.table, state.shown > 0);
    els.logSummary.textContent = `${plural(state.shown, "delivery", "deliveries")}${state.next ? " so far" : ""}${filtered ? " matching" : ""}`;
    markOpenRow();
  } catch (error) {
    if (generation !== state.generation) return;
    if (error instanceof ApiError && error.status === 400 && error.path in FIELD_OF) {
      fieldError(error.path, error.message);
      problem(els.logProblem, `The log refused this filter: ${error.message}`);
    } else if (!(error instanceof ApiError && (error.status === 401 || error.status === 404))) {
      problem(els.logProblem, `Could not read the delivery log: ${describe(error)}`);
    }
    throw error;
  } finally {
    els.more.disabled = false;
  }
}

function row(d) {
  const open = () => openDelivery(d.id);
  const time = when(d.at, "—");
  const cells = [
    h("td", { class: "cell-time", "data-label": "Time" },
      h("button", { type: "button", class: "open", "aria-label": `${time.textContent}: open delivery ${d.id}`, onclick: (e) => { e.stopPropagation(); open(); } }, time)),
    h("td", { class: "cell-destination", "data-label": "Destination" }, d.destination, d.configured === false ? h("span", { class: "muted" }, " (not configured)") : null),
    h("td", { class: "cell-type", "data-label": "Type" }, h("span", {}, h("code", {}, d.type), h("span", { class: "row-id mono" }, d.id))),
    h("td", { class: "cell-status", "data-label": "Status" }, statusBadge(d)),
    h("td", { class: "cell-attempts num", "data-label": "Attempts" }, String(d.attempts ?? 0)),
    h("td", { class: "cell-error", "data-label": "Last error" }, d.lastError ? h("span", { class: "error-text", title: d.lastError }, d.lastError) : h("span", { class: "muted" }, "—")),
  ];
  return h("tr", { dataset: { id: d.id, status: d.status, destination: d.destination }, onclick: open }, cells);
}

function markOpenRow() {
  for (const tr of els.rows.children) {
    if (tr.dataset.id === state.open) tr.setAttribute("aria-current", "true");
    else tr.removeAttribute("aria-current");
  }
}

function applyFilters() {
  const { filters, error } = readFilters();
  if (error) {
    fieldError(error.path, error.message);
    FIELD_OF[error.path]?.focus();
    return;
  }
  state.filters = filters;
  state.next = null;
  loadLog({ reset: true }).catch((e) => handleAuth(e, true));
}

els.filters.addEventListener("submit", (event) => {
  event.preventDefault();
  applyFilters();
});

els.clear.addEventListener("click", () => {
  els.filters.reset();
  fieldError("", "");
  applyFilters();
});

els.more.addEventListener("click", () => {
  loadLog({ reset: false }).catch((e) => handleAuth(e, true));
});

// ------------------------------------------------------------ delivery --

/** JSON.parse that keeps numbers digit for digit (large ids, 1.0) where the browser can. */
function parseExact(text) {
  if (typeof JSON.rawJSON !== "function") return JSON.parse(text);
  return JSON.parse(text, (key, value, context) =>
    typeof value === "number" && context && typeof context.source === "string" && String(value) !== context.source
      ? JSON.rawJSON(context.source)
      : value);
}

/** Pretty JSON as coloured text nodes. */
function prettyJson(value) {
  const out = document.createDocumentFragment();
  const span = (cls, text) => out.append(h("span", { class: cls }, text));
  const walk = (v, indent) => {
    if (v !== null && typeof v === "object" && typeof JSON.isRawJSON === "function" && JSON.isRawJSON(v)) return span("j-num", v.rawJSON);
    if (Array.isArray(v)) {
      if (!v.length) return out.append("[]");
      out.append("[\n");
      v.forEach((item, i) => {
        out.append(indent + "  ");
        walk(item, indent + "  ");
        out.append(i < v.length - 1 ? ",\n" : "\n");
      });
      return out.append(indent + "]");
    }
    if (v !== null && typeof v === "object") {
      const entries = Object.entries(v);
      if (!entries.length) return out.append("{}");
      out.append("{\n");
      entries.forEach(([k, item], i) => {
        out.append(indent + "  ");
        span("j-key", JSON.stringify(k));
        out.append(": ");
        walk(item, indent + "  ");
        out.append(i < entries.length - 1 ? ",\n" : "\n");
      });
      return out.append(indent + "}");
    }
    if (typeof v === "string") return span("j-str", JSON.stringify(v));
    if (typeof v === "number") return span("j-num", String(v));
    return span("j-lit", String(v));
  };
  walk(value, "");
  return out;
}

async function openDelivery(id, { focus = true } = {}) {
  const generation = state.generation;
  state.open = id;
  markOpenRow();
  show(els.delivery, true);
  els.delivery.setAttribute("aria-busy", "true");
  els.deliveryHeading.replaceChildren("Delivery ", h("code", {}, id));
  if (focus) {
    els.deliveryBody.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    els.deliveryHeading.focus();
    els.delivery.scrollIntoView({ block: "nearest" });
  }
  try {
    const { text } = await api("GET", `/admin/deliveries/${encodeURIComponent(id)}`);
    if (generation !== state.generation || state.open !== id) return;
    renderDelivery(parseExact(text).delivery);
  } catch (error) {
    if (generation !== state.generation || state.open !== id) return;
    if (handleAuth(error)) return;
    els.deliveryBody.replaceChildren(h("p", { class: "problem", role: "alert" }, `Could not read ${id}: ${describe(error)}`));
  } finally {
    els.delivery.setAttribute("aria-busy", "false");
  }
}

function renderDelivery(d) {
  const fact = (label, ...value) => h("div", { class: "fact" }, h("dt", {}, label), h("dd", {}, ...value));
  const dead = d.status === "failed" || d.status === "gone";
  const conversation = /^conversation:\d+:(\d+)$/.exec(d.scope ?? "")?.[1];
  const facts = h("dl", { class: "facts-list" },
    fact("Status", statusBadge(d)),
    fact("Destination", d.destination),
    fact("Type", h("code", {}, d.type)),
    fact("Event id", h("code", {}, d.eventId)),
    fact("Scope", h("code", {}, d.scope), conversation ? h("span", { class: "muted" }, ` (conversation ${conversation})`) : null),
    fact("Received", when(d.at)),
    fact("Updated", when(d.updatedAt)),
    fact("Attempts", String(d.attempts ?? 0)),
    d.lastError ? fact("Last error", h("span", { class: "error-text" }, d.lastError)) : null,
    d.reason ? fact("Reason", d.reason) : null,
    d.replayedAs ? fact("Replayed as", h("button", { type: "button", class: "link", onclick: () => openDelivery(d.replayedAs) }, d.replayedAs)) : null,
  );
  const actions = h("div", { class: "actions" });
  if (dead && !d.replayedAs) {
    actions.append(h("button", { type: "button", class: "button button-primary", id: "replay", onclick: () => confirmReplay(d) }, "Replay…"));
  } else if (d.status === "replayed") {
    actions.append(h("p", { class: "note" }, "Already replayed; open the replay above to follow it."));
  }

  const log = d.attemptLog ?? [];
  const attempts = log.length
    ? h("table", { class: "attempts" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col", class: "num" }, "#"), h("th", { scope: "col" }, "Time"), h("th", { scope: "col" }, "Result"), h("th", { scope: "col", class: "num" }, "Latency"))),
      h("tbody", {}, log.map((a) => {
        const ok = a.code !== null && a.code !== undefined && a.code >= 200 && a.code < 300;
        const hasCode = a.code !== null && a.code !== undefined;
        // "the app answered 500: <excerpt>": the code is beside it, so only the app's words.
        const answered = `the app answered ${a.code}`;
        const error = !a.error ? null : hasCode && a.error === answered ? null : hasCode && a.error.startsWith(`${answered}: `) ? a.error.slice(answered.length + 2) : a.error;
        const result = [
          hasCode ? h("span", { class: `code ${ok ? "code-ok" : "code-bad"}` }, `HTTP ${a.code}`) : null,
          error ? h("span", { class: hasCode ? "answer" : "error-text", title: a.error }, error) : null,
        ];
        // A probe (the app was down) tried this delivery without using up one of its attempts.
        return h("tr", { dataset: { attempt: String(a.attempt), probe: a.probe ? "true" : "false" } },
          h("td", { class: "num" }, String(a.attempt), a.probe ? h("span", { class: "tag probe", title: "a probe while the destination was tripped; not charged to the retry budget" }, "probe") : null),
          h("td", {}, when(a.at, "—", d.at)),
          h("td", {}, h("span", { class: "result" }, result)),
          h("td", { class: "num" }, ms(a.latencyMs)),
        );
      })))
    : h("p", { class: "muted" }, "No attempts yet.");

  els.deliveryBody.replaceChildren(
    facts,
    actions,
    h("h3", {}, `Attempts (${log.length})`),
    h("div", { class: "table-wrap" }, attempts),
    h("h3", {}, "Body ", h("span", { class: "muted" }, "as sent, Drift's token redacted")),
    h("pre", { class: "json", tabindex: "0", "aria-label": "Delivery body" }, d.body === undefined ? "—" : prettyJson(d.body)),
  );
}

els.deliveryClose.addEventListener("click", () => {
  const id = state.open;
  state.open = null;
  show(els.delivery, false);
  markOpenRow();
  const tr = [...els.rows.children].find((r) => r.dataset.id === id);
  (tr?.querySelector("button.open") ?? els.logHeading).focus();
});

// ------------------------------------------------------- confirmations --

let pending = null; // { run, label, progress }
let running = false; // a confirmed action is on its way: the dialog stays until it is answered

/**
 * Opens the confirmation: `text` says what will happen; `fields` are extra
 * inputs (one with `data-path` gets the API's error for that path);
 * `run()` does it and returns the message to show, or { message, closed }
 * (`closed` runs once the dialog is closed, to move the focus; not `then`,
 * which would make the answer a thenable that never settles). `progress`
 * is shown while it runs. Cancel (or Escape) closes it with nothing done.
 */
function confirmAction({ title, text, confirmLabel, fields = [], run, progress = "" }) {
  els.confirmTitle.textContent = title;
  els.confirmText.replaceChildren(...[text].flat());
  els.confirmFields.replaceChildren(...fields);
  els.confirmOk.textContent = confirmLabel;
  els.confirmOk.disabled = false;
  problem(els.confirmProblem, "");
  problem(els.confirmProgress, "");
  pending = { run, label: confirmLabel, progress };
  els.confirm.returnValue = "";
  els.confirm.showModal();
  // The first field, or else Cancel: a stray Enter does nothing it was not asked to.
  (els.confirmFields.querySelector("input") ?? els.confirmCancel).focus();
}

els.confirmCancel.addEventListener("click", () => els.confirm.close("cancel"));

// While a change is on its way (a few seconds for the apps' changes), the
// dialog stays: closing it would not take the change back.
els.confirm.addEventListener("cancel", (event) => {
  if (running) event.preventDefault();
});

/** Marks the dialog's field for `path` (or clears every mark, with no error). */
function confirmFieldError(error) {
  const path = error?.path ?? "";
  let placed = false;
  for (const input of els.confirmFields.querySelectorAll("[data-path]")) {
    const hit = Boolean(path) && input.dataset.path === path;
    input.setAttribute("aria-invalid", hit ? "true" : "false");
    const box = $(`${input.id}-error`);
    if (box) problem(box, hit ? error.message : "");
    if (hit) {
      placed = true;
      input.focus();
    }
  }
  return placed;
}

// The one submit button is the confirmation (so Enter in a field confirms too).
els.confirmForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!pending || running) return;
  const { run, label, progress } = pending;
  els.confirmOk.disabled = true;
  els.confirmCancel.disabled = true;
  els.confirmOk.textContent = "Working…";
  problem(els.confirmProblem, "");
  problem(els.confirmProgress, progress);
  confirmFieldError(null);
  running = true;
  try {
    const answer = await run();
    const { message, closed } = typeof answer === "string" ? { message: answer } : answer;
    pending = null;
    els.confirm.close("done");
    notify(message, "ok");
    closed?.();
  } catch (error) {
    if (handleAuth(error)) return;
    els.confirmOk.disabled = false;
    els.confirmOk.textContent = label;
    // An error for one of the dialog's fields is shown beside it.
    const placed = confirmFieldError(error);
    const summary = error instanceof FieldError ? (placed ? "" : error.message)
      : placed ? `The bridge refused this (${error.status} ${error.code}); nothing was changed.`
        : `The bridge said no: ${describe(error)}`;
    problem(els.confirmProblem, summary);
  } finally {
    running = false;
    els.confirmCancel.disabled = false;
    problem(els.confirmProgress, "");
  }
});

els.confirm.addEventListener("close", () => {
  if (els.confirm.returnValue !== "done") pending = null;
});

class FieldError extends Error {
  constructor(message, path = "") {
    super(message);
    this.path = path;
  }
}

const path = (name) => `/admin/destinations/${encodeURIComponent(name)}`;

function confirmPause(d) {
  confirmAction({
    title: `Pause ${d.name}?`,
    text: `${d.name} will get nothing until you resume it: its deliveries are held, in order, without using up any attempt, and sent when you resume it (one held longer than HOLD_RETENTION_SECONDS fails).`,
    confirmLabel: `Pause ${d.name}`,
    run: async () => {
      const { value } = await api("POST", `${path(d.name)}/pause`);
      afterAction();
      return `${value.destination} is ${value.state}; ${plural(value.held ?? 0, "delivery", "deliveries")} held.`;
    },
  });
}

function confirmResume(d) {
  const held = d.held ?? d.counts?.held ?? 0;
  confirmAction({
    title: `Resume ${d.name}?`,
    text: `${d.name} will get deliveries again: ${held ? `its ${plural(held, "held delivery", "held deliveries")} first, oldest first, at a steady pace, then` : "new"} deliveries as they come.${d.state === "tripped" ? " It is tripped: resuming sends again without waiting for the next probe." : ""}`,
    confirmLabel: `Resume ${d.name}`,
    run: async () => {
      const { value } = await api("POST", `${path(d.name)}/resume`);
      afterAction();
      return `${value.destination} is ${value.state}; ${plural(value.draining ?? 0, "held delivery", "held deliveries")} draining.`;
    },
  });
}

function confirmRecover(d) {
  const since = h("input", { type: "datetime-local", id: "recover-since", required: true, step: "60", value: localValue(Date.now() - DAY_MS) });
  const checks = RECOVERABLE.map((s) =>
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "recover-status", value: s, checked: s === "failed" }), h("span", {}, badge(s))));
  const fields = [
    h("div", { class: "field" }, h("label", { class: "label", for: "recover-since" }, "Since (your time zone)"), since),
    h("fieldset", { class: "field" }, h("legend", {}, "Which deliveries"), h("div", { class: "checks" }, checks)),
  ];
  confirmAction({
    title: `Recover ${d.name}?`,
    text: `Every ${d.name} delivery received since the time below with a chosen status is queued once more as a replay (same webhook-id, a fresh retry budget), drained at a steady pace. Each is taken once: a delivery already replayed is not.`,
    confirmLabel: "Recover",
    fields,
    run: async () => {
      const sinceMs = msFromLocal(since.value);
      if (sinceMs === null || Number.isNaN(sinceMs)) throw new FieldError("Choose a date and time for “since”.");
      const status = checks.map((l) => l.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
      if (!status.length) throw new FieldError("Choose failed, gone or both.");
      const { value } = await api("POST", `${path(d.name)}/recover`, { since: sinceMs, status });
      afterAction();
      return value.more
        ? `${plural(value.recovered ?? 0, "delivery", "deliveries")} of ${value.destination} queued again so far; the rest follow, page by page.`
        : `${plural(value.recovered ?? 0, "delivery", "deliveries")} of ${value.destination} queued again.`;
    },
  });
}

function confirmReplay(d) {
  confirmAction({
    title: "Replay this delivery?",
    text: [
      "The ", h("code", {}, d.type), " event ", h("code", {}, d.eventId), ` is queued again for ${d.destination} as a new delivery with the same webhook-id and a fresh retry budget; this one becomes replayed.`,
    ],
    confirmLabel: "Replay",
    run: async () => {
      const { value } = await api("POST", `/admin/deliveries/${encodeURIComponent(d.id)}/replay`);
      state.open = value.replayed;
      afterAction();
      return `${value.replayed} queued again as ${value.as}.`;
    },
  });
}

/** After an action: fresh health, log and delivery. */
function afterAction() {
  refresh().catch(() => {});
}

// ----------------------------------------------------------------- apps --
// Apps managed at runtime (the registry): add, edit, delete, rotate the
// signing secret, send a test, and the history of changes. A change is
// answered only once every isolate of the bridge routes by it (5 to 6 s
// with the default APPS_CACHE_MS), so each one shows its progress; a
// refused one is answered at once, changes nothing, and its problems go
// next to their fields.

/** The editor's inputs by the API's field names (an error's path is one of them, or one with [i]). */
const FIELDS = {
  name: $("app-name"),
  url: $("app-url"),
  types: $("app-types"),
  signed: $("app-signed"),
  token: $("app-token"),
  replacementToken: $("app-replacement-token"),
  orgIds: $("app-org-ids"),
  ratePerSecond: $("app-rate"),
};

const editor = { app: null, opener: null, saving: false }; // app: the destination edited, null when adding

const SAVING = "Saving… changes reach every isolate within a few seconds.";

/** A comma-separated list as its items (blank ones dropped). */
const items = (text) => text.split(/[,\n]/).map((t) => t.trim()).filter(Boolean);

/**
 * A number typed in a field, for the API: digits go as a JSON integer
 * (digit for digit, where the browser can: orgIds may be long); anything
 * else goes as typed, for the API to refuse with its own words at its field.
 */
function integerOrText(text) {
  if (!/^-?\d+$/.test(text)) return text;
  return typeof JSON.rawJSON === "function" ? JSON.rawJSON(text.replace(/^(-?)0+(?=\d)/, "$1")) : Number(text);
}

/** Opens the editor: empty to add an app, or filled with `app`'s settings to change it. */
function openEditor(app = null, opener = els.addApp) {
  if (editor.saving) return;
  editor.app = app;
  editor.opener = opener;
  els.editorForm.reset();
  editorErrors([]);
  const adding = app === null;
  els.editorHeading.textContent = adding ? "Add an app" : `Edit ${app.name}`;
  els.editorNote.textContent = adding
    ? "It gets Drift's events of its types as soon as it is saved, in every isolate of the bridge."
    : "Only what you change is sent; an app cannot be renamed (add one under the new name, then delete this one).";
  els.editorSubmit.textContent = adding ? "Add the app" : "Save changes";
  FIELDS.name.readOnly = !adding;
  // "As the bridge decides" is for a new app; an app has its own setting.
  const byDefault = FIELDS.token.querySelector('option[value=""]');
  byDefault.hidden = byDefault.disabled = !adding;
  if (!adding) {
    FIELDS.name.value = app.name;
    FIELDS.url.value = app.url ?? "";
    FIELDS.types.value = (app.types ?? []).join(", ");
    FIELDS.signed.checked = Boolean(app.signed);
    FIELDS.token.value = app.token ?? "keep";
    // Write-only: the bridge never shows it; empty keeps the one it has.
    FIELDS.replacementToken.value = "";
    FIELDS.orgIds.value = (app.orgIds ?? []).join(", ");
    FIELDS.ratePerSecond.value = app.ratePerSecond ?? "";
  }
  editorChanged();
  show(els.editor, true);
  els.addApp.setAttribute("aria-expanded", "true");
  (adding ? FIELDS.name : FIELDS.url).focus();
  els.editor.scrollIntoView({ block: "nearest" });
}

function closeEditor({ focus = true } = {}) {
  show(els.editor, false);
  els.addApp.setAttribute("aria-expanded", "false");
  editorErrors([]);
  els.editorForm.reset();
  const opener = editor.opener;
  editor.app = null;
  editor.opener = null;
  if (focus) (opener?.isConnected ? opener : els.addApp).focus();
}

/** What the form says, as it would change the app: the types as chips, the secret's name when replacing, a warning when signing goes off. */
function editorChanged() {
  els.typesChips.replaceChildren(...items(FIELDS.types.value).map((t) => h("li", {}, h("code", { class: "type" }, t))));
  show(els.replacementTokenField, FIELDS.token.value === "replace");
  const app = editor.app;
  const hint = $("app-signed-help");
  if (app && app.signed && !FIELDS.signed.checked) {
    hint.textContent = "Turning signing off forgets its secrets: its deliveries are no longer signed.";
  } else if (app && !app.signed && FIELDS.signed.checked) {
    hint.textContent = "Turning signing on makes a whsec_ secret, shown once when you save.";
  } else {
    hint.replaceChildren("Standard Webhooks signatures (", h("code", {}, "webhook-signature"), "), with a ", h("code", {}, "whsec_"), " secret the bridge makes and shows once.");
  }
}

els.editorForm.addEventListener("input", editorChanged);
els.editorForm.addEventListener("change", editorChanged);
els.addApp.addEventListener("click", () => (els.editor.hidden ? openEditor(null, els.addApp) : closeEditor()));
els.editorCancel.addEventListener("click", () => closeEditor());
els.editor.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !editor.saving) closeEditor();
});

/** The body a new app is created with. */
function createBody() {
  const body = { name: FIELDS.name.value.trim(), url: FIELDS.url.value.trim(), types: items(FIELDS.types.value), signed: FIELDS.signed.checked };
  if (FIELDS.token.value) body.token = FIELDS.token.value;
  if (FIELDS.token.value === "replace") body.replacementToken = FIELDS.replacementToken.value;
  const orgs = items(FIELDS.orgIds.value);
  if (orgs.length) body.orgIds = orgs.map(integerOrText);
  const rate = FIELDS.ratePerSecond.value.trim();
  if (rate) body.ratePerSecond = integerOrText(rate);
  return body;
}

/** The fields that differ from the app's (null clears orgIds and ratePerSecond); a replacement token only when one is typed. */
function patchBody(app) {
  const body = {};
  const url = FIELDS.url.value.trim();
  if (url !== (app.url ?? "")) body.url = url;
  const types = items(FIELDS.types.value);
  if (JSON.stringify(types) !== JSON.stringify(app.types ?? [])) body.types = types;
  if (FIELDS.signed.checked !== Boolean(app.signed)) body.signed = FIELDS.signed.checked;
  if (FIELDS.token.value !== (app.token ?? "keep")) body.token = FIELDS.token.value;
  const replacement = FIELDS.replacementToken.value;
  if (FIELDS.token.value === "replace" && replacement) body.replacementToken = replacement;
  const orgs = items(FIELDS.orgIds.value);
  if (orgs.join(",") !== (app.orgIds ?? []).map(String).join(",")) body.orgIds = orgs.length ? orgs.map(integerOrText) : null;
  const rate = FIELDS.ratePerSecond.value.trim();
  if (rate !== String(app.ratePerSecond ?? "")) body.ratePerSecond = rate ? integerOrText(rate) : null;
  return body;
}

/**
 * Shows a refused change's problems: each beside its field (`types[1]` at
 * the types, naming the item), marked aria-invalid; the rest above the
 * form. Returns the first field marked. With no problems, clears them all.
 */
function editorErrors(problems, sent = {}) {
  const byField = new Map();
  const elsewhere = [];
  for (const p of problems) {
    const path = p.path ?? "";
    let field = /^([A-Za-z]+)/.exec(path)?.[1];
    if (field === "tokenSecret") field = "replacementToken";
    if (field && field in FIELDS) {
      const index = /\[(\d+)\]/.exec(path)?.[1];
      const item = index !== undefined ? sent[field]?.[Number(index)] : undefined;
      const text = index !== undefined ? `${item !== undefined ? `“${String(typeof item === "object" && item?.rawJSON ? item.rawJSON : item)}”` : `item ${Number(index) + 1}`}: ${p.message}` : p.message;
      byField.set(field, [...(byField.get(field) ?? []), text]);
    } else {
      elsewhere.push(path ? `${path}: ${p.message}` : p.message);
    }
  }
  let first = null;
  for (const [field, input] of Object.entries(FIELDS)) {
    const messages = byField.get(field);
    input.setAttribute("aria-invalid", messages ? "true" : "false");
    const box = $(`${input.id}-error`);
    box.replaceChildren(...(messages ?? []).flatMap((m, i) => (i ? [h("br"), m] : [m])));
    show(box, Boolean(messages));
    if (messages && !first) first = input;
  }
  const placed = [...byField.values()].reduce((n, list) => n + list.length, 0);
  return { first, elsewhere, placed };
}

els.editorForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (editor.saving) return;
  const app = editor.app;
  const body = app ? patchBody(app) : createBody();
  editorErrors([]);
  problem(els.editorProblem, "");
  if (app && !Object.keys(body).length) {
    problem(els.editorProblem, "Nothing to save: the form says what the app already is.");
    return;
  }
  editor.saving = true;
  els.editorFields.disabled = true;
  els.editorSubmit.disabled = true;
  els.editorCancel.disabled = true;
  problem(els.editorProgress, SAVING);
  let done = null;
  let refused = null;
  try {
    const { value } = app
      ? await api("PATCH", path(app.name), body)
      : await api("POST", "/admin/destinations", body);
    done = value;
  } catch (error) {
    if (handleAuth(error)) return;
    refused = error;
  } finally {
    editor.saving = false;
    els.editorFields.disabled = false;
    els.editorSubmit.disabled = false;
    els.editorCancel.disabled = false;
    problem(els.editorProgress, "");
  }
  if (refused) {
    // The form keeps what was typed; each problem goes beside its field.
    const { first, elsewhere, placed } = editorErrors(refused.problems ?? [], body);
    const what = refused.status === 400 ? "refused this change" : "said no";
    const marked = placed ? ` ${placed === 1 ? "The problem is" : `${placed} problems are`} marked below.` : "";
    const rest = elsewhere.length ? ` ${elsewhere.join(" ")}` : placed ? "" : ` ${refused.message}`;
    problem(els.editorProblem, `The bridge ${what} (${refused.status ? `${refused.status} ${refused.code}` : refused.code}); nothing was changed.${marked}${rest}`);
    (first ?? els.editorHeading).focus();
    return;
  }
  const name = done.destination?.name ?? app?.name ?? body.name;
  closeEditor({ focus: false });
  notify(app ? `${name} is changed (version ${done.version}).` : `${name} is added (version ${done.version}): it gets Drift's events of its types from now on.`);
  if (done.secret) {
    showSecret({ name, secret: done.secret, why: app ? `Signing is on for ${name}` : `${name}'s signing secret` });
  }
  await refresh().catch(() => {});
  if (!done.secret) focusCard(name);
});

/** Moves the focus to a destination's card (its name), once it is drawn. */
function focusCard(name) {
  (cardOf(name)?.querySelector("h3") ?? els.destinationsHeading).focus();
}

// ------------------------------------------------------------- secrets --

/**
 * A secret the bridge just made, shown once: in this panel only (never in
 * storage, a URL or the console), with a Copy button. Dismissing the
 * panel removes it from the page; a later refresh cannot bring it back,
 * since the API never shows a secret again. `previousUntil` (a rotation)
 * says until when the previous secret still signs.
 */
function showSecret({ name, secret, why, previousUntil = undefined }) {
  const value = h("code", { class: "secret-value", id: "secret-value", tabindex: "0", "aria-label": "The new signing secret" }, secret);
  const said = h("p", { class: "note secret-said", role: "status", "aria-live": "polite" });
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value.textContent);
      said.textContent = "Copied to the clipboard.";
    } catch {
      // No clipboard here (permission, or not a secure context): the text is selected for the keyboard's copy.
      const range = document.createRange();
      range.selectNodeContents(value);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      value.focus();
      said.textContent = "Selected: copy it with Ctrl+C (⌘C on a Mac).";
    }
  };
  const overlap = previousUntil === undefined ? null
    : previousUntil
      ? h("p", { class: "overlap" }, "Until ", when(previousUntil), h("span", { class: "muted" }, ` (${relative(previousUntil)})`),
        " every delivery is signed with both the new and the previous secret: switch the app to the new one within that time.")
      : h("p", { class: "overlap" }, "No overlap: from now on deliveries are signed with the new secret only.");
  const panel = h("section", { class: "panel secret", id: "secret", "aria-labelledby": "secret-heading", dataset: { name } },
    h("h3", { id: "secret-heading", tabindex: "-1" }, `${why}: shown once`),
    h("p", {}, "Give it to ", h("strong", {}, name), " to verify the ", h("code", {}, "webhook-signature"), " of its deliveries. The bridge never shows it again, and this page forgets it when you close this panel; lost, rotate it."),
    h("div", { class: "secret-row" },
      value,
      h("button", { type: "button", class: "button button-primary", id: "secret-copy", onclick: copy }, "Copy"),
    ),
    overlap,
    said,
    h("div", { class: "actions" }, h("button", { type: "button", class: "button", id: "secret-done", onclick: () => hideSecret(name) }, "I have saved it: close")),
  );
  els.secretSlot.replaceChildren(panel);
  panel.querySelector("#secret-heading").focus();
  panel.scrollIntoView({ block: "nearest" });
}

/** Removes the secret from the page: the panel and the selection that may hold it. */
function hideSecret(name = null) {
  if (!els.secretSlot.firstChild) return;
  window.getSelection()?.removeAllRanges();
  els.secretSlot.replaceChildren();
  if (name) focusCard(name);
}

// ---------------------------------------------------------------- test --

/** A destination's last test delivery, as its card shows it. */
function testResult(name) {
  const t = state.tests.get(name);
  if (!t) return null;
  if (t.running) return h("p", { class: "test-line muted" }, "Sending Drift's example…");
  if (t.error) return h("p", { class: "test-line error-text" }, `The test could not be sent: ${t.error}`);
  const v = t.value;
  const hasStatus = v.status !== null && v.status !== undefined;
  // "the app answered 500: <excerpt>": the status is beside it, so only the app's words.
  const answered = `the app answered ${v.status}`;
  const error = !v.error || (hasStatus && (v.error === answered || v.error === `${answered}: ${v.excerpt ?? ""}`)) ? null : v.error;
  return h("div", { class: "test-box", dataset: { delivered: String(Boolean(v.delivered)), status: hasStatus ? String(v.status) : "", latency: String(v.latencyMs ?? "") } },
    h("p", { class: "test-line" },
      h("span", { class: "muted" }, "Test: "),
      badge(v.delivered ? "delivered" : "failed"),
      " ",
      hasStatus ? h("span", { class: `code ${v.delivered ? "code-ok" : "code-bad"}` }, `HTTP ${v.status}`) : h("span", { class: "error-text" }, "no answer"),
      h("span", { class: "muted" }, ` in ${ms(v.latencyMs)}`),
      " · ", h("code", {}, v.type),
      v.subscribed === false ? h("span", { class: "muted" }, " (none of its types is in Drift's example: sent anyway)") : null,
      " · ", when(t.at, "—", Date.now()),
    ),
    error ? h("p", { class: "test-line error-text" }, error) : null,
    v.excerpt ? h("pre", { class: "excerpt", "aria-label": "The app's answer" }, v.excerpt) : null,
    v.delivery ? h("button", { type: "button", class: "link", onclick: () => openDelivery(v.delivery) }, `Open ${v.delivery}`) : null,
  );
}

function renderTest(name) {
  for (const box of els.destinations.querySelectorAll(".test-result")) {
    if (box.dataset.name === name) box.replaceChildren(...[testResult(name)].filter(Boolean));
  }
}

/** Sends Drift's example to the app now, and shows what it answered. */
async function sendTest(d) {
  if (state.tests.get(d.name)?.running) return;
  const generation = state.generation;
  state.tests.set(d.name, { running: true });
  renderTest(d.name);
  try {
    const { value } = await api("POST", `${path(d.name)}/test`);
    if (generation !== state.generation) return;
    state.tests.set(d.name, { value, at: Date.now() });
  } catch (error) {
    if (generation !== state.generation || handleAuth(error)) return;
    state.tests.set(d.name, { error: describe(error) });
  }
  renderTest(d.name);
  // The test is kept in the app's log, and counted in its card.
  refresh().catch(() => {});
}

// -------------------------------------------------------- delete, rotate --

/**
 * A removed app whose name is used again is listed apart from the app that
 * has the name now: named by its delivery log's key, `<name>~<incarnation>`,
 * which the API takes wherever it takes a destination's name.
 */
function incarnationsNamed(list) {
  const current = new Set(list.filter((d) => d.configured !== false).map((d) => d.name));
  return list.map((d) => (d.configured === false && d.incarnation && current.has(d.name) ? { ...d, name: `${d.name}~${d.incarnation}` } : d));
}

function confirmDelete(d) {
  confirmAction({
    title: `Delete ${d.name}?`,
    text: [
      `${d.name} gets nothing more: every webhook the bridge answers after this is not routed to it. What it still has on its way or held becomes a dead letter ("its app was removed"), listed apart until its retention ends; an app added later under the same name starts with none of it.`,
      d.signed ? " Its signing secret is forgotten." : "",
      " To have it back, add it again (signed with a new secret).",
    ],
    confirmLabel: `Delete ${d.name}`,
    progress: "Deleting… changes reach every isolate within a few seconds.",
    run: async () => {
      const { value } = await api("DELETE", path(d.name));
      state.tests.delete(d.name);
      await refresh().catch(() => {});
      return { message: `${value.deleted} is deleted (version ${value.version}): nothing more is routed to it.`, closed: () => els.destinationsHeading.focus() };
    },
  });
}

const HOUR_S = 3600;

function confirmRotate(d) {
  const overlap = h("input", { type: "text", inputmode: "decimal", id: "rotate-overlap", value: "24", autocomplete: "off", "data-path": "overlapSeconds", "aria-describedby": "rotate-overlap-help rotate-overlap-error" });
  const fields = [
    h("div", { class: "field" },
      h("label", { class: "label", for: "rotate-overlap" }, "Overlap, in hours"),
      overlap,
      h("p", { class: "hint", id: "rotate-overlap-help" }, "0 to 720 hours (30 days): how long the previous secret still signs."),
      h("p", { class: "field-error", id: "rotate-overlap-error", hidden: true })),
  ];
  const overlapping = d.previousSecretExpiresAt && d.previousSecretExpiresAt > Date.now();
  confirmAction({
    title: `Rotate ${d.name}'s signing secret?`,
    text: [
      "The bridge makes a new secret, shown once. During the overlap every delivery carries two signatures, the new secret's and the previous one's, so the app accepts them with either: switch it to the new secret within that time. Then only the new one signs.",
      overlapping ? [" An overlap is running until ", when(d.previousSecretExpiresAt), ": the older of the two secrets stops at once."] : "",
    ],
    confirmLabel: "Rotate the secret",
    fields,
    progress: "Rotating… changes reach every isolate within a few seconds.",
    run: async () => {
      const text = overlap.value.trim();
      const hours = text === "" ? 24 : Number(text.replace(",", "."));
      if (!Number.isFinite(hours)) throw new FieldError("Write the overlap as a number of hours (24, 0.5, 0).", "overlapSeconds");
      const { value } = await api("POST", `${path(d.name)}/rotate-secret`, { overlapSeconds: Math.round(hours * HOUR_S) });
      // The answer names the app (a string), where create and edit give its object.
      const name = typeof value.destination === "string" ? value.destination : value.destination?.name ?? d.name;
      await refresh().catch(() => {});
      return {
        message: `${name} has a new signing secret (version ${value.version}).`,
        closed: () => showSecret({ name, secret: value.secret, why: `${name}'s new signing secret`, previousUntil: value.previousSecretExpiresAt ?? null }),
      };
    },
  });
}

// ------------------------------------------------------------- history --

const CHANGES_PAGE = 20;

async function loadChanges({ reset, generation = state.generation }) {
  els.changesMore.disabled = true;
  try {
    const params = new URLSearchParams({ limit: String(CHANGES_PAGE) });
    if (!reset && state.changesNext !== null) params.set("before", String(state.changesNext));
    const { value } = await api("GET", `/admin/changes?${params}`);
    if (generation !== state.generation) return;
    if (reset) els.changesRows.replaceChildren();
    els.changesRows.append(...(value.changes ?? []).map(changeRow));
    state.changesNext = value.next ?? null;
    const shown = els.changesRows.children.length;
    show(els.changesMore, state.changesNext !== null);
    show(els.changesEmpty, shown === 0);
    show(els.changesTable, shown > 0);
    els.changesSummary.textContent = shown ? `${plural(shown, "change")}${state.changesNext !== null ? " so far" : ""}` : "";
    problem(els.changesProblem, "");
  } catch (error) {
    if (generation !== state.generation) return;
    if (!(error instanceof ApiError && error.status === 401)) problem(els.changesProblem, `Could not read the changes: ${describe(error)}`);
    throw error;
  } finally {
    els.changesMore.disabled = false;
  }
}

els.changesMore.addEventListener("click", () => loadChanges({ reset: false }).catch((e) => handleAuth(e)));

/** A setting's value as text: lists joined, absent as a dash. */
function settingText(value) {
  if (value === undefined || value === null) return "—";
  if (Array.isArray(value)) return value.join(", ");
  return String(value);
}

const SETTING_NAMES = ["url", "types", "token", "tokenSecret", "signed", "orgIds", "ratePerSecond"];

/** An app's settings, as the history keeps them (never a secret). */
function settingsList(s = {}) {
  return h("span", { class: "settings" }, SETTING_NAMES.filter((k) => s[k] !== undefined).map((k) =>
    h("span", { class: "setting" }, h("span", { class: "muted" }, `${k} `), h("code", {}, settingText(s[k])))));
}

/** An hour count for an overlap in seconds: "24 h", "90 min", "0 s". */
function duration(seconds) {
  if (seconds % 3600 === 0 && seconds) return `${seconds / 3600} h`;
  if (seconds % 60 === 0 && seconds) return `${seconds / 60} min`;
  return `${seconds} s`;
}

function changeDetail(c) {
  const d = c.detail ?? {};
  if (c.action === "update") {
    const from = d.from ?? {};
    const to = d.to ?? {};
    const changed = SETTING_NAMES.filter((k) => JSON.stringify(from[k]) !== JSON.stringify(to[k]));
    if (!changed.length) return h("span", { class: "muted" }, "nothing");
    return h("span", { class: "settings" }, changed.map((k) =>
      h("span", { class: "setting", dataset: { field: k } }, h("span", { class: "muted" }, `${k} `), h("code", {}, settingText(from[k])), " → ", h("code", {}, settingText(to[k])))));
  }
  if (c.action === "rotate-secret") {
    return h("span", {}, d.overlapSeconds
      ? ["overlap ", duration(d.overlapSeconds), d.previousSecretExpiresAt ? [": the previous secret until ", when(d.previousSecretExpiresAt)] : null]
      : "no overlap: the previous secret stopped at once");
  }
  return settingsList(d);
}

function changeRow(c) {
  const mine = state.fingerprint && c.by === state.fingerprint;
  return h("tr", { dataset: { seq: String(c.seq), action: c.action, destination: c.destination } },
    h("td", { class: "cell-time", "data-label": "Time" }, when(c.at, "—")),
    // One child a cell: on a phone each cell is a grid of its label and its content.
    h("td", { "data-label": "Change" }, h("span", {}, h("code", { class: `action action-${c.action}` }, c.action))),
    h("td", { class: "cell-app", "data-label": "App" }, h("span", {}, c.destination)),
    h("td", { class: "cell-what", "data-label": "What" }, changeDetail(c)),
    h("td", { "data-label": "By" }, h("span", {},
      h("code", { title: "the first 8 hex digits of the SHA-256 of the admin token used" }, c.by),
      mine ? h("span", { class: "muted" }, " (this token)") : null)),
    h("td", { class: "num", "data-label": "Version" }, String(c.version)),
  );
}

/** The token's fingerprint, as the history's "by" gives it, to say which changes were made with it. */
async function fingerprint(token) {
  try {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)));
    return [...digest.slice(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join("");
  } catch {
    return null; // no crypto.subtle (not a secure context): the history shows fingerprints only
  }
}

// ------------------------------------------------------------- metrics --
// GET /admin/metrics as pictures: a small chart on each destination's card,
// and a section with three charts (deliveries, latency, backlog) for one
// app or the whole bridge, over a chosen time. Pointing at a chart, or
// focusing it and using the arrow keys, picks a minute (or hour): its
// numbers are in the readout under each chart; every busy minute's numbers
// are also in the table below them.

const RANGES = {
  "1h": { ms: 3_600_000, step: "minute", title: "Last hour", page: 10 },
  "24h": { ms: DAY_MS, step: "minute", title: "Last 24 hours", page: 60 },
  "7d": { ms: 7 * DAY_MS, step: "hour", title: "Last 7 days", page: 24 },
  "30d": { ms: 30 * DAY_MS, step: "hour", title: "Last 30 days", page: 24 },
};
const range = () => RANGES[els.mRange.value] ?? RANGES["24h"];

const SLOT = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

/** A minute's (or hour's) start as a <time>, its exact UTC on hover. */
function whenSlot(ms) {
  const iso = new Date(ms).toISOString();
  return h("time", { datetime: iso, title: `${iso} (${ms} ms)` }, SLOT.format(ms));
}

const count = (n) => String(n ?? 0);

async function loadMetrics(generation = state.generation) {
  const r = range();
  const until = Date.now();
  const params = new URLSearchParams({ since: String(until - r.ms), until: String(until), step: r.step });
  els.charts.setAttribute("aria-busy", "true");
  try {
    const { value } = await api("GET", `/admin/metrics?${params}`);
    if (generation !== state.generation) return;
    state.metrics = { ...value, destinations: incarnationsNamed(value.destinations ?? []) };
    problem(els.metricsProblem, "");
    renderMetrics();
    renderSparks();
  } catch (error) {
    if (generation !== state.generation) return;
    if (!(error instanceof ApiError && error.status === 401)) problem(els.metricsProblem, `Could not read the metrics: ${describe(error)}`);
    throw error;
  } finally {
    els.charts.setAttribute("aria-busy", "false");
  }
}

/** The small chart of a destination's card (null until the metrics are read). */
function spark(name) {
  if (!state.metrics?.destinations?.some((d) => d.name === name)) return null;
  const m = charts.model(state.metrics, [name]);
  const t = m.totals;
  const title = range().title;
  return h("button", {
    type: "button",
    class: "spark",
    dataset: { delivered: t.delivered, failed: t.failed, held: t.held },
    "aria-label": `${name}, ${title.toLowerCase()}: ${t.delivered} delivered, ${t.failed} failed, ${t.held} held. Show its charts`,
    onclick: () => showChartsOf(name),
  },
  charts.sparkChart(m),
  h("span", { class: "spark-caption" }, h("span", { class: "muted" }, `${title}: `), `${t.delivered} delivered · ${t.failed} failed · ${t.held} held`));
}

function renderSparks() {
  for (const slot of els.destinations.querySelectorAll(".spark-slot")) slot.replaceChildren(...[spark(slot.dataset.name)].filter(Boolean));
}

/** Shows the charts of app `name` ("" for the whole bridge), pointing at no slot. */
function chooseApp(name) {
  els.mApp.value = name;
  state.cursor = state.cursorAt = null;
  renderMetrics();
}

function showChartsOf(name) {
  chooseApp(name);
  els.metrics.scrollIntoView({ block: "start" });
  els.charts.querySelector("svg.chart")?.focus({ preventScroll: true });
}

/** The model the charts draw: the metrics of the app chosen, or of them all. */
function currentModel() {
  const app = els.mApp.value;
  return charts.model(state.metrics, app ? [app] : null);
}

let model = null;
let chartsWidth = 0;

function renderMetrics() {
  const answer = state.metrics;
  if (!answer) return;
  // The app selector follows what the metrics cover (every destination with a log).
  const chosen = els.mApp.value;
  const names = (answer.destinations ?? []).map((d) => d.name);
  els.mApp.replaceChildren(new Option("All apps (the whole bridge)", ""), ...names.map((n) => new Option(n, n)));
  els.mApp.value = names.includes(chosen) ? chosen : "";
  const r = range();
  els.metricsHeading.textContent = r.title;
  Object.assign(els.metrics.dataset, { since: answer.since, until: answer.until, step: answer.step, app: els.mApp.value });
  model = currentModel();
  const t = model.totals;
  els.metricsSummary.textContent = `${t.delivered} delivered · ${t.failed} failed · ${t.held} held`;
  els.metricsSummary.dataset.kind = t.failed ? "error" : t.held ? "warn" : "ok";
  // The minute pointed at stays pointed at, wherever it is in the new window.
  const i = state.cursorAt === null ? null : Math.round((state.cursorAt - model.start) / model.step);
  state.cursor = i !== null && i >= 0 && i < model.n ? i : null;
  renderCharts();
  renderTable();
}

/** What one slot says, for the <title> of its bar or dot. */
const slotTitle = {
  deliveries: (i, s) => `${SLOT.format(s.start)}: ${s.delivered} delivered, ${s.failed} failed, ${s.held} held`,
  latency: (i, s) => `${SLOT.format(s.start)}: p50 ${charts.msLabel(s.p50)}, p95 ${charts.msLabel(s.p95)} (${plural(s.attempts, "attempt")})`,
  backlog: (i, s) => `${SLOT.format(s.start)}: ${s.backlog} waiting at most`,
};

function renderCharts() {
  if (!model) return;
  const width = Math.max(260, Math.floor(els.charts.clientWidth || 600));
  chartsWidth = width;
  const who = els.mApp.value || "all apps";
  const r = range();
  const t = model.totals;
  const busiest = model.slots.reduce((best, s) => (s && s.delivered + s.failed + s.held > (best?.delivered ?? 0) + (best?.failed ?? 0) + (best?.held ?? 0) ? s : best), null);
  const figures = [
    {
      kind: "deliveries",
      title: `Deliveries per ${r.step}`,
      legend: [["delivered", "delivered"], ["failed", "failed"], ["held", "held"]],
      draw: charts.deliveriesChart,
      label: `Deliveries per ${r.step}, ${r.title.toLowerCase()}, ${who}: ${t.delivered} delivered, ${t.failed} failed, ${t.held} held${busiest ? `; the busiest ${r.step} ${SLOT.format(busiest.start)} with ${busiest.delivered + busiest.failed + busiest.held}` : ""}.`,
    },
    {
      kind: "latency",
      title: `Latency per ${r.step}`,
      legend: [["p50", "p50"], ["p95", "p95"]],
      draw: charts.latencyChart,
      label: `Latency of attempts per ${r.step}, ${r.title.toLowerCase()}, ${who}: ${t.attempts ? `p50 ${charts.msLabel(t.p50)} and p95 ${charts.msLabel(t.p95)} over ${plural(t.attempts, "attempt")}` : "no attempts"}.`,
    },
    {
      kind: "backlog",
      title: "Backlog",
      legend: [["backlog", "most waiting (pending and held)"]],
      draw: charts.backlogChart,
      label: `Backlog, ${r.title.toLowerCase()}, ${who}: ${t.backlog ? `at most ${t.backlog} deliveries waiting at once` : "nothing waited"}.`,
    },
  ];
  els.charts.replaceChildren(...figures.map((f) => {
    const readout = h("p", { class: "readout", id: `readout-${f.kind}`, "aria-live": "off", dataset: { kind: f.kind } });
    const chart = f.draw(model, { width, label: f.label, title: slotTitle[f.kind] });
    chart.setAttribute("aria-describedby", readout.id);
    wireChart(chart);
    return h("figure", { class: "chart-figure", dataset: { kind: f.kind } },
      h("figcaption", {},
        h("h3", {}, f.title),
        h("ul", { class: "legend" }, f.legend.map(([cls, text]) => h("li", {}, h("span", { class: `swatch s-${cls}`, "aria-hidden": "true" }), text)))),
      chart,
      readout);
  }));
  setCursor(state.cursor);
}

/** Hover, touch and keys on a chart move the cursor every chart shares. */
function wireChart(chart) {
  const pick = (event) => setCursor(charts.slotAt(chart, model, event.clientX));
  chart.addEventListener("pointermove", pick);
  chart.addEventListener("pointerdown", pick);
  chart.addEventListener("pointerleave", () => {
    if (!document.activeElement?.classList?.contains("chart")) setCursor(null);
  });
  chart.addEventListener("focus", () => {
    // Only the focused chart's readout is spoken as it changes.
    for (const r of els.charts.querySelectorAll(".readout")) r.setAttribute("aria-live", r.id === chart.getAttribute("aria-describedby") ? "polite" : "off");
    if (state.cursor === null) setCursor(lastBusy());
  });
  chart.addEventListener("blur", () => {
    for (const r of els.charts.querySelectorAll(".readout")) r.setAttribute("aria-live", "off");
  });
  chart.addEventListener("keydown", (event) => {
    const i = state.cursor ?? lastBusy();
    const page = range().page;
    const moves = {
      ArrowLeft: () => nearest(charts.nextBusy(model, i, -1), i),
      ArrowRight: () => nearest(charts.nextBusy(model, i, 1), i),
      PageUp: () => Math.max(0, i - page),
      PageDown: () => Math.min(model.n - 1, i + page),
      Home: () => nearest(charts.nextBusy(model, -1, 1), 0),
      End: () => lastBusy(),
      Escape: () => null,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    setCursor(moves[event.key]());
  });
}

const nearest = (j, fallback) => (j >= 0 ? j : fallback);
const lastBusy = () => nearest(charts.nextBusy(model, model.n, -1), model.n - 1);

/** Points every chart at slot `i` (or none), and says its numbers under each. */
function setCursor(i) {
  state.cursor = i === undefined ? null : i;
  if (!model) return;
  state.cursorAt = state.cursor === null ? null : model.start + state.cursor * model.step;
  for (const chart of els.charts.querySelectorAll("svg.chart")) charts.placeCursor(chart, state.cursor);
  const s = state.cursor === null ? null : model.slots[state.cursor];
  const start = state.cursorAt;
  const r = range();
  const t = model.totals;
  const put = (kind, data, ...content) => {
    const box = $(`readout-${kind}`);
    if (!box) return;
    for (const key of Object.keys(box.dataset)) if (key !== "kind") delete box.dataset[key];
    Object.assign(box.dataset, data);
    box.replaceChildren(...content);
  };
  if (start === null) {
    put("deliveries", { total: "true", delivered: t.delivered, failed: t.failed, held: t.held },
      h("span", { class: "muted" }, `${r.title}: `), `${t.delivered} delivered · ${t.failed} failed · ${t.held} held`);
    put("latency", { total: "true", p50: t.p50 ?? "", p95: t.p95 ?? "", attempts: t.attempts },
      h("span", { class: "muted" }, `${r.title}: `), t.attempts ? `p50 ${charts.msLabel(t.p50)} · p95 ${charts.msLabel(t.p95)} over ${plural(t.attempts, "attempt")}` : "no attempts");
    put("backlog", { total: "true", backlog: t.backlog },
      h("span", { class: "muted" }, `${r.title}: `), t.backlog ? `at most ${t.backlog} waiting at once` : "nothing waited");
    return;
  }
  const c = s ?? { delivered: 0, failed: 0, held: 0, attempts: 0, p50: null, p95: null, backlog: 0 };
  put("deliveries", { start, delivered: c.delivered, failed: c.failed, held: c.held },
    whenSlot(start), ": ", `${c.delivered} delivered · ${c.failed} failed · ${c.held} held`);
  put("latency", { start, p50: c.p50 ?? "", p95: c.p95 ?? "", attempts: c.attempts },
    whenSlot(start), ": ", c.attempts ? `p50 ${charts.msLabel(c.p50)} · p95 ${charts.msLabel(c.p95)} (${plural(c.attempts, "attempt")})` : `no attempts this ${r.step}`);
  put("backlog", { start, backlog: c.backlog },
    whenSlot(start), ": ", c.backlog ? `${c.backlog} waiting at most` : "nothing waiting recorded");
}

/** Every busy slot's numbers, in the table under the charts. */
function renderTable() {
  const rows = [];
  model.slots.forEach((s) => {
    if (!charts.busy(s)) return;
    rows.push(h("tr", { dataset: { start: s.start, delivered: s.delivered, failed: s.failed, held: s.held, attempts: s.attempts, p50: s.p50 ?? "", p95: s.p95 ?? "", backlog: s.backlog } },
      h("th", { scope: "row" }, whenSlot(s.start)),
      h("td", { class: "num" }, count(s.delivered)),
      h("td", { class: "num" }, count(s.failed)),
      h("td", { class: "num" }, count(s.held)),
      h("td", { class: "num" }, count(s.attempts)),
      h("td", { class: "num" }, charts.msLabel(s.p50)),
      h("td", { class: "num" }, charts.msLabel(s.p95)),
      h("td", { class: "num" }, count(s.backlog)),
    ));
  });
  rows.reverse(); // newest first, as the log
  const r = range();
  els.metricsCaption.textContent = `${r.title}, ${els.mApp.value || "all apps"}: each ${r.step} with deliveries, attempts or a backlog, newest first (${plural(rows.length, "row")}).`;
  els.metricsRows.replaceChildren(...rows);
}

els.mApp.addEventListener("change", () => chooseApp(els.mApp.value));
els.mRange.addEventListener("change", () => {
  state.cursor = state.cursorAt = null;
  loadMetrics().catch((e) => handleAuth(e));
});
$("metrics-controls").addEventListener("submit", (event) => event.preventDefault());

// The charts are drawn at their box's width: again when it changes.
new ResizeObserver(() => {
  const width = Math.floor(els.charts.clientWidth);
  if (model && width && Math.abs(width - chartsWidth) >= 1 && !els.dashboard.hidden) renderCharts();
}).observe(els.charts);

// ------------------------------------------------------------- testing --

// For the browser tests: whether every request has been answered.
window.__admin = { get pending() { return state.inflight; } };

start();
