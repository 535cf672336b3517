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
};

const state = {
  token: null, // the token in use (also in sessionStorage once the API accepted it)
  destinations: [],
  filters: {},
  next: null, // the log's cursor for "Load more"
  shown: 0,
  shownFrom: new Set(), // the destinations the log has shown a delivery of (see logCursor)
  open: null, // id of the delivery shown
  generation: 0, // bumps on sign-out and new filters, so late answers are dropped
  inflight: 0,
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
  constructor(status, code, message, path = "") {
    super(message);
    this.status = status;
    this.code = code;
    this.path = path;
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
    throw new ApiError(res.status, error.code ?? `http_${res.status}`, error.message ?? `The bridge answered HTTP ${res.status}.`, error.path ?? "");
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
  const [health, log] = await Promise.allSettled([loadDestinations(generation), loadLog({ reset: true, generation })]);
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
}

/** Forgets the token (storage and memory) and clears everything it showed. */
function signOut(message = "") {
  state.generation++;
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  state.destinations = [];
  state.filters = {};
  state.next = null;
  state.open = null;
  els.filters.reset();
  els.destinations.replaceChildren();
  els.rows.replaceChildren();
  els.deliveryBody.replaceChildren();
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
  const jobs = [loadLog({ reset: true, generation }), loadDestinations(generation)];
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
    state.destinations = value.destinations ?? [];
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
  els.destinations.replaceChildren(...list.map(destinationCard));
  if (!list.length) {
    els.destinations.append(h("li", { class: "empty" }, "No destinations: DESTINATIONS is empty, so the bridge delivers nowhere."));
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

  return h("li", { class: "destination", dataset: { name: d.name, state: d.state }, "aria-labelledby": title },
    h("div", { class: "destination-head" },
      h("h3", { id: title }, d.name),
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
      d.signed ? h("span", { class: "tag" }, "signed") : h("span", { class: "tag" }, "unsigned"),
      d.stateSince ? h("span", { class: "muted since" }, `${d.state} since `, when(d.stateSince)) : null,
    ),
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
  );
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

/**
 * The cursor for the log's next page, from the API's `next`. The API
 * writes a destination's log as done ("name:-") when a first page took
 * none of its deliveries, though it has older ones: "Load more" would
 * never show them (a server bug, reported). A log this list has shown
 * nothing of is left out of the cursor instead, which the API reads as
 * "from its newest", as on a first page; its deliveries are all older than
 * those shown, so the merge stays newest first. When `next` is null after
 * a full page, such logs may still hold deliveries: one more page asks.
 */
function logCursor(next, full) {
  const unseen = (name) => !state.shownFrom.has(name);
  if (next === null || next === undefined) {
    if (!full) return null;
    const names = state.destinations.map((d) => d.name).filter((n) => !state.filters.destination || n === state.filters.destination);
    if (!names.some(unseen)) return null;
    const done = names.filter((n) => !unseen(n)).map((n) => `${n}:-`);
    return done.length ? done.join(".") : null;
  }
  const parts = String(next).split(".").filter((part) => {
    const colon = part.lastIndexOf(":");
    return !(part.slice(colon + 1) === "-" && unseen(part.slice(0, colon)));
  });
  // Every log left out: the cursor would say nothing; name the shown ones as done.
  return parts.length ? parts.join(".") : [...state.shownFrom].map((n) => `${n}:-`).join(".") || null;
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
      state.shownFrom.clear();
    }
    els.rows.append(...deliveries.map(row));
    state.shown += deliveries.length;
    for (const d of deliveries) state.shownFrom.add(d.destination);
    state.next = logCursor(value.next ?? null, deliveries.length >= PAGE);
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

let pending = null; // { run, fields }

/**
 * Opens the confirmation: `text` says what will happen; `fields` are extra
 * inputs; `run(form)` does it and returns the message to show. Cancel (or
 * Escape) closes it with nothing done.
 */
function confirmAction({ title, text, confirmLabel, fields = [], run }) {
  els.confirmTitle.textContent = title;
  els.confirmText.replaceChildren(...[text].flat());
  els.confirmFields.replaceChildren(...fields);
  els.confirmOk.textContent = confirmLabel;
  els.confirmOk.disabled = false;
  problem(els.confirmProblem, "");
  pending = { run, label: confirmLabel };
  els.confirm.returnValue = "";
  els.confirm.showModal();
  // The first field, or else Cancel: a stray Enter does nothing it was not asked to.
  (els.confirmFields.querySelector("input") ?? els.confirmCancel).focus();
}

els.confirmCancel.addEventListener("click", () => els.confirm.close("cancel"));

// The one submit button is the confirmation (so Enter in a field confirms too).
els.confirmForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!pending) return;
  const { run, label } = pending;
  els.confirmOk.disabled = true;
  els.confirmOk.textContent = "Working…";
  try {
    const message = await run();
    pending = null;
    els.confirm.close("done");
    notify(message, "ok");
  } catch (error) {
    if (handleAuth(error)) return;
    els.confirmOk.disabled = false;
    els.confirmOk.textContent = label;
    problem(els.confirmProblem, error instanceof FieldError ? error.message : `The bridge said no: ${describe(error)}`);
  }
});

els.confirm.addEventListener("close", () => {
  if (els.confirm.returnValue !== "done") pending = null;
});

class FieldError extends Error {}

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

// ------------------------------------------------------------- testing --

// For the browser tests: whether every request has been answered.
window.__admin = { get pending() { return state.inflight; } };

start();
