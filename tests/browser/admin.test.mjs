// The admin page (www/admin.html) in real headless Chromium, against the real
// worker under `wrangler dev` (assets, Durable Objects and local queues as
// `make dev` runs them) with an ADMIN_TOKEN and loopback apps: the token
// prompt and where the token lives, a refused token, the admin API turned
// off, destinations' health, the log's filters, one delivery's attempts,
// replay, pause, resume and recover behind their confirmations, a phone, the
// keyboard, and the screenshot in the README. Apps managed at runtime (issue
// 25): adding one (its secret shown once), a refused change's problems at
// their fields, editing, rotating the secret, a test delivery, deleting, and
// the history of changes. The metrics as charts (issue 26): their numbers
// against GET /admin/metrics, at 390 px and in dark mode.
//
//   node --test --test-concurrency=1 tests/browser/admin.test.mjs
//
// The screenshot goes to test-results/admin.png; with
// DRIFT_BRIDGE_SCREENSHOTS=docs it also replaces docs/admin.png.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { RESULTS_DIR, ROOT, launchBrowser, startWorker } from "./harness.mjs";
import crypto from "node:crypto";
import http from "node:http";
import { startWorker as startBareWorker } from "../worker/support.mjs";
import { verifySignature } from "../delivery/support.mjs";

const ADMIN = "admin-browser-test-0123456789abcdef0123";
const DRIFT = "drift-browser-test-token";
const SIGNING = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TOKEN_KEY = "drift-bridge.admin-token";
/** A time zone far from UTC, with a half hour, so "the viewer's time zone" shows. */
const ZONE = "Asia/Kolkata";

let worker;
let browser;
let launching;
let stateDir;
const apps = {};
const contexts = [];
const cleanups = [];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(check, what, ms = 30_000) {
  const start = Date.now();
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** The admin API as the test sees it (not through the page). */
async function api(method, route, body) {
  const res = await fetch(`${worker.url}${route}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text), text };
}

async function webhook(conversationId, type = "conversation_inactive", extra = {}) {
  const res = await fetch(`${worker.url}/webhooks/drift`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-verification-token": DRIFT },
    body: JSON.stringify({ orgId: 1, type, data: { lastUpdated: 1591813767000, conversationId, ...extra }, token: DRIFT }),
  });
  assert.equal(res.status, 200, await res.text());
}

const health = async () => (await api("GET", "/admin/destinations")).body.destinations;
const destination = async (name) => (await health()).find((d) => d.name === name);
async function log(query = "") {
  const rows = [];
  let cursor = null;
  do {
    const page = await api("GET", `/admin/deliveries?limit=200${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    assert.equal(page.status, 200, page.text);
    rows.push(...page.body.deliveries);
    cursor = page.body.next;
  } while (cursor);
  return rows;
}

/**
 * An app on loopback: `answer(conversationId)` gives [status, text] and,
 * optionally, how many ms to wait before answering. Returns its URL and
 * what it received (with the headers and body, to check signatures).
 */
async function app(answer) {
  const received = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const [status, text, delay = 0] = answer(JSON.parse(body).data?.conversationId);
      received.push({ id: req.headers["webhook-id"], status, headers: req.headers, body });
      setTimeout(() => res.writeHead(status, { "content-type": "text/plain" }).end(text), delay);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }));
  return { url: `http://127.0.0.1:${server.address().port}/drift`, received };
}

/** How long the metered app takes to answer, by conversation (ms): one latency bucket each. */
const METERED_DELAYS = [0, 30, 120, 700];

/** The conversations whose push-app deliveries fail (500) or are gone (410). */
const REFUSED = new Set([4102, 4199]);
const GONE = new Set([4103]);

before(async () => {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "drift-bridge-admin-"));
  // Four apps: one that takes everything; one that refuses a few events (dead
  // letters, while the others go through); one that is down (its circuit
  // trips); and one the operator pauses.
  apps.crm = await app(() => [200, "ok"]);
  apps.push = await app((conversation) =>
    REFUSED.has(conversation) ? [500, "upstream database timeout"]
      : GONE.has(conversation) ? [410, "conversation archived"]
        : [202, "accepted"]);
  apps.warehouse = await app(() => [503, "down for maintenance until 14:00 UTC"]);
  apps.analytics = await app(() => [204, ""]);
  // Apps the tests add at runtime: one that takes everything, and one that
  // answers after a delay that depends on the conversation (known latencies
  // for the charts).
  apps.orders = await app(() => [200, "ok"]);
  apps.metered = await app((conversation) => [200, "ok", METERED_DELAYS[conversation % METERED_DELAYS.length]]);
  const destinations = [
    { name: "legacy-crm", url: apps.crm.url, types: ["conversation_status_updated"] },
    { name: "push-app", url: apps.push.url, types: ["conversation_push"], signingSecret: "PUSH_APP_SIGNING_SECRET" },
    { name: "warehouse", url: apps.warehouse.url, types: ["conversation_push"], signingSecret: "PUSH_APP_SIGNING_SECRET" },
    { name: "analytics", url: apps.analytics.url, types: ["*"] },
  ];
  const vars = {
    ADMIN_TOKEN: ADMIN,
    DRIFT_VERIFICATION_TOKEN: DRIFT,
    DESTINATIONS: JSON.stringify(destinations),
    PUSH_APP_SIGNING_SECRET: SIGNING,
    RETRY_BASE_SECONDS: "0",
    DELIVERY_TIMEOUT_MS: "2000",
    // Tripped stays tripped for the whole run: the first probe is 15 minutes away.
    CIRCUIT_PROBE_SECONDS: "900",
  };
  const args = ["--persist-to", stateDir, ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`])];
  // Chromium is kept the moment it is up, so that `after` closes it even when
  // the worker fails to start (a live browser would keep this process alive).
  launching = launchBrowser().then((b) => (browser = b));
  worker = await startWorker({ args });
  await launching;
  console.log(`wrangler dev (build included) ready at ${worker.url} after ${(worker.readyMs / 1000).toFixed(1)} s`);

  // Deliveries of every kind: delivered, failed after every attempt, gone,
  // held behind a tripped circuit, and held behind a pause.
  for (const conversation of [4101, 4102, 4103]) await webhook(conversation);
  await until(async () => (await log("&status=pending")).length === 0 && (await log()).length === 18, "the first deliveries to settle", 120_000);
  assert.equal((await api("POST", "/admin/destinations/analytics/pause")).status, 200);
  for (const conversation of [4104, 4105]) await webhook(conversation, "conversation_manual_push");
  await until(async () => (await log("&status=pending")).length === 0 && (await log()).length === 30, "the next ones to settle", 120_000);
  const states = Object.fromEntries((await health()).map((d) => [d.name, d.state]));
  assert.deepEqual(states, { "legacy-crm": "active", "push-app": "active", warehouse: "tripped", analytics: "paused" });
});

after(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await launching?.catch(() => {});
  await browser?.close();
  await worker?.stop();
  for (const c of cleanups.reverse()) await c();
  if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
});

/**
 * A fresh context (empty storage) and the admin page; page errors, every
 * console line and every request (with its body) recorded.
 */
async function openAdmin({ viewport = { width: 1280, height: 800 }, url = `${worker.url}/admin.html`, mobile = false, permissions = [], colorScheme = "light" } = {}) {
  const context = await browser.newContext({
    viewport, deviceScaleFactor: 1, colorScheme, reducedMotion: "reduce", timezoneId: ZONE,
    ...(mobile ? { isMobile: true, hasTouch: true } : {}),
  });
  contexts.push(context);
  if (permissions.length) await context.grantPermissions(permissions, { origin: worker.url });
  const page = await context.newPage();
  const errors = [];
  const requests = [];
  const consoleLines = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    consoleLines.push(m.text());
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text());
  });
  page.on("request", (r) => requests.push({ url: r.url(), method: r.method(), authorization: r.headers().authorization ?? null, body: r.postData() }));
  await page.goto(url);
  return { page, context, errors, requests, consoleLines };
}

/** Waits until the page has no admin call in flight. */
async function idle(page) {
  await page.waitForFunction(() => window.__admin && window.__admin.pending === 0, null, { timeout: 20_000 });
}

async function signIn(page, token = ADMIN) {
  await page.getByLabel("ADMIN_TOKEN").fill(token);
  await page.getByRole("button", { name: "Open" }).click();
  await idle(page);
}

async function signedIn(options) {
  const opened = await openAdmin(options);
  await signIn(opened.page);
  assert.ok(await opened.page.locator("#dashboard").isVisible(), "the dashboard is shown");
  return opened;
}

/** The log's rows as the page shows them. */
function rows(page) {
  return page.locator("#rows tr").evaluateAll((trs) =>
    trs.map((tr) => ({ id: tr.dataset.id, status: tr.dataset.status, destination: tr.dataset.destination })));
}

async function filter(page, { destination = "", statuses = [], conversation = "" } = {}) {
  await page.getByLabel("Destination", { exact: true }).selectOption(destination);
  for (const box of await page.locator("#f-status input").all()) {
    await box.setChecked(statuses.includes(await box.getAttribute("value")));
  }
  await page.getByLabel("Conversation id").fill(conversation);
  await page.getByRole("button", { name: "Apply" }).click();
  await idle(page);
}

const card = (page, name) => page.locator(`.destination[data-name="${name}"]`);
const dialog = (page) => page.locator("dialog#confirm");

// ------------------------------------------------ apps and metrics helpers --

/** The secrets the page showed for the apps the tests added, by app. */
const created = {};

/**
 * A latency quantile from histogram bucket counts, written here apart from
 * the page's: Prometheus' histogram_quantile (rank q × total, linear within
 * its bucket, 0 as the first bucket's lower bound; the open last bucket
 * answers its lower bound).
 */
function quantile(buckets, bounds, q) {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let cumulative = 0;
  for (const [i, n] of buckets.entries()) {
    if (n > 0 && cumulative + n >= rank) {
      const lower = i === 0 ? 0 : bounds[i - 1];
      return i === bounds.length ? lower : lower + (bounds[i] - lower) * ((rank - cumulative) / n);
    }
    cumulative += n;
  }
  return bounds.at(-1);
}

/**
 * What the charts should show of a metrics answer for some destinations
 * (null: all of them): per minute (or hour) with anything counted, oldest
 * first, every type and app summed, the percentiles from the summed buckets.
 */
function expected(answer, names) {
  const slots = new Map();
  const slot = (start) => {
    if (!slots.has(start)) slots.set(start, { start, accepted: 0, delivered: 0, failed: 0, retried: 0, held: 0, attempts: 0, backlog: 0, latency: new Array(answer.latencyBucketsMs.length + 1).fill(0) });
    return slots.get(start);
  };
  for (const d of answer.destinations.filter((d) => names === null || names.includes(d.name))) {
    for (const row of d.series) {
      const s = slot(row.start);
      for (const k of ["accepted", "delivered", "failed", "retried", "held", "attempts"]) s[k] += row[k];
      row.latencyBuckets.forEach((n, i) => (s.latency[i] += n));
    }
    // Between two records the backlog stayed as the first ended (backlogBefore before the first).
    const step = answer.step;
    const first = answer.since - (((answer.since % step) + step) % step);
    let carried = d.backlogBefore ?? 0;
    for (let at = first; at < answer.until; at += step) {
      const r = d.backlog.find((b) => b.start === at);
      const value = r ? r.backlog : carried;
      if (r) carried = r.last;
      if (value > 0) slot(at).backlog += value;
    }
  }
  return [...slots.values()]
    .filter((s) => s.accepted + s.delivered + s.failed + s.retried + s.held + s.attempts + s.backlog > 0)
    .sort((a, b) => a.start - b.start)
    .map((s) => ({ ...s, p50: quantile(s.latency, answer.latencyBucketsMs, 0.5), p95: quantile(s.latency, answer.latencyBucketsMs, 0.95) }));
}

/** A row of the charts' table, as the page writes its numbers. */
const shownRow = (r) => ({ start: r.start, delivered: r.delivered, failed: r.failed, held: r.held, attempts: r.attempts, p50: r.p50, p95: r.p95, backlog: r.backlog });

/** The charts' table, read from the page. */
function table(page) {
  return page.locator("#metrics-rows tr").evaluateAll((trs) => trs.map((tr) => {
    const n = (k) => (tr.dataset[k] === "" ? null : Number(tr.dataset[k]));
    return { start: n("start"), delivered: n("delivered"), failed: n("failed"), held: n("held"), attempts: n("attempts"), p50: n("p50"), p95: n("p95"), backlog: n("backlog") };
  }));
}

/** A latency as the page writes it: 2.5 ms, 38 ms, 1.2 s. */
function msText(v) {
  if (v >= 1000) return `${Math.round(v / 100) / 10} s`;
  return `${v < 10 ? Math.round(v * 10) / 10 : Math.round(v)} ms`;
}

describe("the admin page served by the worker", () => {
  test("is served from the assets at /admin.html, and the API beside it still answers", async () => {
    const res = await fetch(`${worker.url}/admin.html`);
    assert.equal(res.status, 200, "served (after the assets' redirect to /admin)");
    assert.match(res.headers.get("content-type"), /^text\/html/);
    assert.match(await res.text(), /<title>drift-bridge admin<\/title>/);
    for (const file of ["admin.js", "admin-charts.js", "admin.css", "base.css"]) {
      assert.equal((await fetch(`${worker.url}/${file}`)).status, 200, file);
    }
    const unauthorised = await fetch(`${worker.url}/admin/deliveries`);
    assert.equal(unauthorised.status, 401, "the worker still owns /admin/…");
    // Never framed by another site, never sniffed: the page and the API alike.
    for (const answer of [res, unauthorised]) {
      assert.equal(answer.headers.get("x-frame-options"), "DENY", answer.url);
      assert.match(answer.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/, answer.url);
      assert.equal(answer.headers.get("x-content-type-options"), "nosniff", answer.url);
    }
    const framed = await browser.newPage();
    const host = `<iframe id="f" src="${worker.url}/admin.html"></iframe>`;
    await framed.route("http://attacker.test/", (route) => route.fulfill({ contentType: "text/html", body: host }));
    await framed.goto("http://attacker.test/");
    await framed.waitForTimeout(1000);
    const inside = framed.frames().find((f) => f.url().includes("/admin"));
    const loaded = inside ? await inside.evaluate(() => document.title).catch(() => "") : "";
    assert.notEqual(loaded, "drift-bridge admin", "the browser refused to show it in a frame");
    await framed.close();
  });

  test("asks for the token, keeps it in sessionStorage only and sends it as a Bearer header, never in a URL", async () => {
    const { page, errors, requests, context } = await openAdmin();
    assert.ok(await page.locator("#sign-in").isVisible(), "the token prompt is shown");
    assert.equal(await page.getByLabel("ADMIN_TOKEN").getAttribute("type"), "password");
    assert.ok(!(await page.locator("#dashboard").isVisible()));
    const started = Date.now();
    await signIn(page);
    assert.ok(await page.locator("#dashboard").isVisible());
    console.log(`token to dashboard (health of 4 destinations and the first log page, local worker): ${Date.now() - started} ms`);

    const storage = await page.evaluate((key) => ({
      session: sessionStorage.getItem(key), sessionKeys: sessionStorage.length, local: localStorage.length, cookies: document.cookie,
    }), TOKEN_KEY);
    assert.deepEqual(storage, { session: ADMIN, sessionKeys: 1, local: 0, cookies: "" });
    assert.ok(!page.url().includes(ADMIN), `the URL holds no token: ${page.url()}`);
    assert.deepEqual(await context.cookies(), []);
    const calls = requests.filter((r) => new URL(r.url).pathname.startsWith("/admin/"));
    assert.ok(calls.length >= 2, "the page called the admin API");
    for (const r of requests) assert.ok(!r.url.includes(ADMIN), `no token in ${r.url}`);
    for (const r of calls) assert.equal(r.authorization, `Bearer ${ADMIN}`, `${r.method} ${r.url} carries the token`);
    assert.equal(await page.getByLabel("ADMIN_TOKEN").inputValue(), "", "the field is emptied");

    // A reload in the same tab keeps the session; a new tab (fresh context) asks again.
    await page.reload();
    await idle(page);
    assert.ok(await page.locator("#dashboard").isVisible(), "still open after a reload");
    const other = await openAdmin();
    assert.ok(await other.page.locator("#sign-in").isVisible(), "another session asks for the token");

    // Forget: storage emptied, the data gone from the page, the prompt back.
    await page.getByRole("button", { name: "Forget the token" }).click();
    assert.equal(await page.evaluate(() => sessionStorage.length + localStorage.length), 0);
    assert.ok(await page.locator("#sign-in").isVisible());
    assert.equal(await page.locator("#rows tr").count(), 0, "the log is cleared");
    assert.equal(await page.locator(".destination").count(), 0, "the destinations are cleared");
    assert.match(await page.locator("#notice").innerText(), /forgotten/);
    assert.deepEqual(errors, []);
  });

  test("a wrong token is refused with a clear message and not kept", async () => {
    const { page, errors } = await openAdmin();
    await signIn(page, "not-the-admin-token-0123456789abcdef0123");
    const alert = page.locator("#sign-in-problem");
    assert.ok(await alert.isVisible());
    assert.match(await alert.innerText(), /refused \(401 unauthorized\)/);
    assert.equal(await alert.getAttribute("role"), "alert");
    assert.ok(await page.locator("#sign-in").isVisible(), "asks again");
    assert.ok(!(await page.locator("#dashboard").isVisible()));
    assert.equal(await page.evaluate(() => sessionStorage.length + localStorage.length), 0, "nothing kept");
    assert.equal(await page.getByLabel("ADMIN_TOKEN").getAttribute("aria-invalid"), "true");

    // A token that stops working mid-session (rotated) ends the session the same way.
    await signIn(page);
    await page.evaluate((key) => sessionStorage.setItem(key, "rotated-away-0123456789abcdef0123456789"), TOKEN_KEY);
    await page.reload();
    await idle(page);
    assert.ok(await page.locator("#sign-in").isVisible());
    assert.match(await page.locator("#sign-in-problem").innerText(), /401/);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    assert.deepEqual(errors, []);
  });

  test("shows each destination's health in the API's words", async () => {
    const { page, errors } = await signedIn();
    const api_ = await health();
    assert.deepEqual(
      await page.locator(".destination").evaluateAll((cards) => cards.map((c) => c.dataset.name)),
      api_.map((d) => d.name),
      "one card per destination, in configuration order",
    );
    for (const d of api_) {
      const c = card(page, d.name);
      assert.equal(await c.getAttribute("data-state"), d.state);
      assert.equal(await c.locator(".destination-head .badge").first().innerText(), d.state);
      assert.equal(await c.locator('[data-count="held"]').innerText(), String(d.held));
      assert.equal(await c.locator('[data-count="pending"]').innerText(), String(d.counts.pending));
      for (const status of ["delivered", "failed", "gone", "replayed"]) {
        assert.equal(await c.locator(`.count[data-status="${status}"]`).innerText(), `${status} ${d.counts[status]}`);
      }
      const text = await c.innerText();
      assert.match(text, /LAST HOUR/i);
      assert.match(text, /LAST DAY/i);
      assert.match(text, /p50 .* · p95 /);
      if (d.lastError) assert.ok(text.includes(d.lastError), `${d.name}: its last error is shown`);
    }
    assert.equal(await card(page, "analytics").getAttribute("data-state"), "paused");
    assert.match(await card(page, "push-app").innerText(), /the app answered 500: upstream database timeout/);
    assert.match(await card(page, "warehouse").innerText(), /NEXT PROBE/i);
    assert.deepEqual(errors, []);
  });

  test("an alert's link (#destination=<name>) opens that app: its deliveries, its charts, its card", async () => {
    const { page, errors } = await signedIn({ url: `${worker.url}/admin.html#destination=warehouse` });
    await idle(page);
    assert.equal(await page.locator("#f-destination").inputValue(), "warehouse", "the log filtered to it");
    assert.equal(await page.locator("#m-app").inputValue(), "warehouse", "its charts");
    const destinations = await page.locator("#rows tr").evaluateAll((trs) => [...new Set(trs.map((tr) => tr.dataset.destination))]);
    assert.deepEqual(destinations.filter(Boolean), ["warehouse"]);
    assert.equal(await page.evaluate(() => document.activeElement?.closest(".destination")?.dataset.name), "warehouse", "its card has the focus");
    // Another app's link, in the same tab.
    await page.evaluate(() => (location.hash = "destination=push-app"));
    await page.waitForFunction(() => document.getElementById("f-destination").value === "push-app");
    await idle(page);
    assert.equal(await page.locator("#m-app").inputValue(), "push-app");
    assert.deepEqual(errors, []);
  });

  test("a screenshot for the README: the cards, the last hour's charts, the list filtered to one app, one dead letter open", async () => {
    const { page, errors } = await signedIn({ viewport: { width: 1440, height: 2300 } });
    await filter(page, { destination: "push-app" });
    const [failed] = await log("&destination=push-app&status=failed");
    await page.locator(`#rows tr[data-id="${failed.id}"] button.open`).click();
    await idle(page);
    assert.equal(await page.locator("#delivery table.attempts tbody tr").count(), failed.attempts);
    // The last hour, so the test's few minutes of traffic are bars one can see, one of them pointed at.
    await page.getByLabel("Time", { exact: true }).selectOption("1h");
    await idle(page);
    await page.evaluate(() => window.scrollTo(0, 0));
    const bar = await page.locator("svg.chart-deliveries g[data-slot] rect").last().boundingBox();
    await page.mouse.move(bar.x + bar.width / 2, bar.y + bar.height / 2);
    const file = path.join(RESULTS_DIR, "admin.png");
    await page.screenshot({ path: file });
    assert.ok(fs.statSync(file).size > 20_000, `${file} written`);
    if (process.env.DRIFT_BRIDGE_SCREENSHOTS === "docs") {
      fs.copyFileSync(file, path.join(ROOT, "docs", "admin.png"));
      console.log("screenshot: docs/admin.png updated");
    }
    console.log(`screenshot: ${path.relative(process.cwd(), file)}`);
    assert.deepEqual(errors, []);
  });

  test("the log's filters narrow the list: destination, status, conversation", async () => {
    const { page, errors } = await signedIn();
    const all = await log();
    assert.deepEqual((await rows(page)).map((r) => r.id), all.slice(0, 50).map((r) => r.id), "newest first, as the API lists them");

    await filter(page, { destination: "push-app" });
    const push = await rows(page);
    assert.ok(push.length > 0 && push.length < all.length);
    assert.ok(push.every((r) => r.destination === "push-app"), JSON.stringify(push));
    assert.deepEqual(push.map((r) => r.id), (await log("&destination=push-app")).map((r) => r.id));

    // A destination's "Deliveries" button sets the same filter.
    await card(page, "warehouse").getByRole("button", { name: "Show the deliveries of warehouse" }).click();
    await idle(page);
    assert.equal(await page.getByLabel("Destination", { exact: true }).inputValue(), "warehouse");
    const warehouse = await rows(page);
    assert.ok(warehouse.length > 0 && warehouse.every((r) => r.destination === "warehouse"));
    assert.ok(warehouse.every((r) => r.status === "held"), "held behind its tripped circuit");

    await filter(page, { statuses: ["failed", "gone"] });
    const dead = await rows(page);
    assert.ok(dead.some((r) => r.status === "failed") && dead.some((r) => r.status === "gone"), JSON.stringify(dead));
    assert.ok(dead.every((r) => r.status === "failed" || r.status === "gone"));
    assert.deepEqual(dead.map((r) => r.id), (await log("&status=failed,gone")).map((r) => r.id));

    await filter(page, { conversation: "4102" });
    const one = await rows(page);
    const expected = all.filter((r) => r.scope === "conversation:1:4102").map((r) => r.id);
    assert.ok(expected.length > 0);
    assert.deepEqual(one.map((r) => r.id).sort(), expected.sort());

    await filter(page, { destination: "legacy-crm", statuses: ["delivered"], conversation: "4102" });
    assert.deepEqual((await rows(page)).map((r) => r.destination), ["legacy-crm"]);

    // A bad value: the API's 400 names the field, and the page marks it.
    await filter(page, { conversation: "12ab" });
    assert.equal(await page.getByLabel("Conversation id").getAttribute("aria-invalid"), "true");
    assert.ok(await page.locator("#f-conversation-error").isVisible());
    assert.ok(await page.locator("#log-problem").isVisible());

    await page.getByRole("button", { name: "Clear" }).click();
    await idle(page);
    assert.equal(await page.locator("#rows tr").count(), Math.min(50, all.length));
    assert.deepEqual(errors, []);
  });

  test("times are in the viewer's time zone, with the exact value on hover", async () => {
    const { page } = await signedIn();
    const first = (await log())[0];
    const time = page.locator(`#rows tr[data-id="${first.id}"] time`);
    const iso = new Date(first.at).toISOString();
    assert.equal(await time.getAttribute("datetime"), iso);
    assert.match(await time.getAttribute("title"), new RegExp(`^${iso.replace(/[.]/g, "\\.")}`));
    const local = new Intl.DateTimeFormat("en-US", {
      month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", timeZone: ZONE,
    }).format(first.at);
    assert.equal(await time.innerText(), local, `shown in ${ZONE}`);
  });

  test("opening a delivery shows its attempts and its body, token redacted, as text", async () => {
    // An event with markup in it: shown as text, never parsed as HTML.
    await webhook(4199, "conversation_inactive", { note: '<img src=x onerror="window.__pwned=1">' });
    await until(async () => (await log("&destination=push-app&status=failed&conversation=4199")).length === 1, "the marked-up event to fail", 120_000);
    const [failed] = await log("&destination=push-app&status=failed&conversation=4199");
    const detail = (await api("GET", `/admin/deliveries/${failed.id}`)).body.delivery;

    const { page, errors } = await signedIn();
    await filter(page, { conversation: "4199" });
    await page.locator(`#rows tr[data-id="${failed.id}"] button.open`).click();
    await idle(page);
    const panel = page.locator("#delivery");
    assert.ok(await panel.isVisible());
    assert.match(await page.locator("#delivery-heading").innerText(), new RegExp(failed.id.replace(/[.]/g, "\\.")));
    assert.equal(await page.locator(`#rows tr[data-id="${failed.id}"]`).getAttribute("aria-current"), "true");

    const attempts = await panel.locator("table.attempts tbody tr").evaluateAll((trs) =>
      trs.map((tr) => ({ n: Number(tr.dataset.attempt), text: tr.innerText })));
    assert.equal(attempts.length, detail.attemptLog.length);
    assert.equal(attempts.length, failed.attempts);
    assert.ok(attempts.length > 1, "several attempts");
    for (const [i, a] of attempts.entries()) {
      assert.equal(a.n, detail.attemptLog[i].attempt);
      assert.match(a.text, /HTTP 500/);
      assert.match(a.text, /upstream database timeout/);
      assert.match(a.text, new RegExp(`${detail.attemptLog[i].latencyMs} ms`));
    }
    const body = await panel.locator("pre.json").innerText();
    assert.deepEqual(JSON.parse(body), detail.body, "the body, pretty-printed, as the API gives it");
    assert.ok(body.includes('"token": "[redacted]"') || !body.includes("token"), "Drift's token is redacted");
    assert.ok(!body.includes(DRIFT), "never the token itself");
    assert.ok(body.includes('<img src=x onerror=\\"window.__pwned=1\\">'), "markup shown as text");
    assert.equal(await panel.locator("img").count(), 0, "and never parsed");
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    assert.deepEqual(errors, []);
  });

  test("replay asks first: cancel does nothing, confirm replays", async () => {
    const failed = (await log("&destination=push-app&status=failed")).at(-1);
    assert.ok(failed, "a failed delivery to replay");
    const { page, errors } = await signedIn();
    await filter(page, { destination: "push-app", statuses: ["failed"] });
    await page.locator(`#rows tr[data-id="${failed.id}"] button.open`).click();
    await idle(page);

    await page.getByRole("button", { name: "Replay…" }).click();
    assert.ok(await dialog(page).isVisible(), "a confirmation");
    assert.match(await dialog(page).innerText(), /queued again for push-app/);
    await dialog(page).getByRole("button", { name: "Cancel" }).click();
    assert.ok(!(await dialog(page).isVisible()));
    await idle(page);
    assert.equal((await api("GET", `/admin/deliveries/${failed.id}`)).body.delivery.status, "failed", "cancel replayed nothing");

    // Escape cancels too.
    await page.getByRole("button", { name: "Replay…" }).click();
    await page.keyboard.press("Escape");
    assert.ok(!(await dialog(page).isVisible()));
    await idle(page);
    assert.equal((await api("GET", `/admin/deliveries/${failed.id}`)).body.delivery.status, "failed", "escape replayed nothing");

    await page.getByRole("button", { name: "Replay…" }).click();
    await dialog(page).getByRole("button", { name: "Replay", exact: true }).click();
    await page.waitForFunction(() => !document.getElementById("confirm").open);
    await idle(page);
    const after_ = (await api("GET", `/admin/deliveries/${failed.id}`)).body.delivery;
    assert.equal(after_.status, "replayed");
    assert.equal(after_.replayedAs, `${failed.id}.r1`);
    assert.equal(await page.locator("#notice").innerText(), `${failed.id} queued again as ${failed.id}.r1.`);
    // The panel follows: the original now says replayed and points at its replay.
    await page.waitForFunction((id) => document.querySelector("#delivery-body .badge")?.textContent === "replayed", failed.id);
    assert.ok(await page.getByRole("button", { name: `${failed.id}.r1` }).isVisible());
    assert.equal(await page.getByRole("button", { name: "Replay…" }).count(), 0, "no second replay offered");
    assert.deepEqual(errors, []);
  });

  test("pause and resume ask first, then change the state", async () => {
    const { page, errors } = await signedIn();
    const crm = card(page, "legacy-crm");
    assert.equal(await crm.getAttribute("data-state"), "active");

    await crm.getByRole("button", { name: "Pause…" }).click();
    assert.match(await dialog(page).innerText(), /legacy-crm will get nothing until you resume it/);
    await dialog(page).getByRole("button", { name: "Cancel" }).click();
    await idle(page);
    assert.equal((await destination("legacy-crm")).state, "active", "cancel paused nothing");

    await crm.getByRole("button", { name: "Pause…" }).click();
    await dialog(page).getByRole("button", { name: "Pause legacy-crm" }).click();
    await page.waitForFunction(() => document.querySelector('.destination[data-name="legacy-crm"]')?.dataset.state === "paused");
    assert.equal((await destination("legacy-crm")).state, "paused");
    assert.match(await page.locator("#notice").innerText(), /^legacy-crm is paused; \d+ deliver(y|ies) held\.$/);

    await card(page, "legacy-crm").getByRole("button", { name: "Resume…" }).click();
    await dialog(page).getByRole("button", { name: "Resume legacy-crm" }).click();
    await page.waitForFunction(() => document.querySelector('.destination[data-name="legacy-crm"]')?.dataset.state === "active");
    assert.equal((await destination("legacy-crm")).state, "active");
    assert.match(await page.locator("#notice").innerText(), /^legacy-crm is active; \d+ held deliver(y|ies) draining\.$/);
    assert.deepEqual(errors, []);
  });

  test("recover asks for since and statuses, and says how many deliveries it queued again", async () => {
    // Whatever is still on its way (a replay) settles first, so the count is known.
    await until(async () => (await log("&destination=push-app&status=pending")).length === 0, "push-app to settle", 60_000);
    const failed = (await log("&destination=push-app&status=failed")).map((d) => d.id);
    const expected = failed.length; // all received in the last minutes, so after "since"
    assert.ok(expected > 0, "failed deliveries to recover");
    const since = Date.now() - 86_400_000;
    const { page, errors } = await signedIn();

    await card(page, "push-app").getByRole("button", { name: "Recover…" }).click();
    const box = dialog(page);
    assert.match(await box.innerText(), /queued once more as a replay/);
    const sinceValue = await box.getByLabel("Since").inputValue();
    const shown = new Date(await page.evaluate((v) => new Date(v).getTime(), sinceValue)).getTime();
    assert.ok(Math.abs(shown - since) < 120_000, `since defaults to 24 hours ago (${sinceValue})`);
    assert.ok(await box.getByLabel("failed").isChecked(), "failed by default");
    assert.ok(!(await box.getByLabel("gone").isChecked()));
    await box.getByRole("button", { name: "Cancel" }).click();
    await idle(page);
    assert.deepEqual((await log("&destination=push-app&status=failed")).map((d) => d.id), failed, "cancel recovered nothing");

    await card(page, "push-app").getByRole("button", { name: "Recover…" }).click();
    await box.getByRole("button", { name: "Recover" }).click();
    await page.waitForFunction(() => !document.getElementById("confirm").open);
    await idle(page);
    const notice = await page.locator("#notice").innerText();
    const match = /^(\d+) deliver(?:y|ies) of push-app queued again\.$/.exec(notice);
    assert.ok(match, `the API's answer is shown: ${notice}`);
    assert.equal(Number(match[1]), expected);
    const replayed = await log("&destination=push-app&status=replayed");
    for (const id of failed) assert.ok(replayed.some((d) => d.id === id), `${id} was queued again`);
    assert.deepEqual(errors, []);
  });

  test("works from the keyboard", async () => {
    const { page, errors } = await openAdmin();
    assert.equal(await page.evaluate(() => document.activeElement.id), "token", "the token field has the focus");
    await page.keyboard.type(ADMIN);
    await page.keyboard.press("Enter");
    await idle(page);
    assert.ok(await page.locator("#dashboard").isVisible());
    assert.equal(await page.evaluate(() => document.activeElement.id), "destinations-heading", "focus moves to what opened");

    const first = page.locator("#rows tr button.open").first();
    await first.focus();
    await page.keyboard.press("Enter");
    await idle(page);
    assert.equal(await page.evaluate(() => document.activeElement.id), "delivery-heading", "focus moves to the delivery");
    await page.getByRole("button", { name: "Close" }).focus();
    await page.keyboard.press("Enter");
    assert.ok(!(await page.locator("#delivery").isVisible()));
    assert.equal(await page.evaluate(() => document.activeElement.classList.contains("open")), true, "focus returns to the row");

    await card(page, "legacy-crm").getByRole("button", { name: "Recover…" }).focus();
    await page.keyboard.press("Enter");
    assert.ok(await dialog(page).isVisible());
    assert.equal(await page.evaluate(() => document.activeElement.id), "recover-since", "the dialog takes focus");
    await page.keyboard.press("Escape");
    assert.ok(!(await dialog(page).isVisible()));
    assert.deepEqual(errors, []);
  });

  test("fits a phone: 390 px wide, no sideways scrolling, finger-sized targets", async () => {
    const { page, errors } = await signedIn({ viewport: { width: 390, height: 844 }, mobile: true });
    const width = () => page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.deepEqual(await width(), [390, 390], "the dashboard");
    const small = await page.locator("button:visible, select:visible, input:visible").evaluateAll((controls) =>
      controls.filter((c) => {
        const r = (c.closest("label.check") ?? c).getBoundingClientRect();
        return r.height < 44 && !(c.type === "checkbox");
      }).map((c) => `${c.tagName} ${c.id || c.textContent.trim()} ${(c.closest("label.check") ?? c).getBoundingClientRect().height}px`));
    assert.deepEqual(small, [], "every control is at least 44 px tall");

    await page.locator("#rows tr button.open").first().click();
    await idle(page);
    assert.deepEqual(await width(), [390, 390], "with a delivery open");
    const panel = await page.locator("#delivery").boundingBox();
    assert.ok(panel.width <= 390, "the delivery fits");

    await card(page, "push-app").getByRole("button", { name: "Recover…" }).click();
    const box = await dialog(page).boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= 390, `the confirmation fits (${JSON.stringify(box)})`);
    await page.keyboard.press("Escape");
    await page.screenshot({ path: path.join(RESULTS_DIR, "admin-phone.png"), fullPage: true });
    assert.deepEqual(errors, []);
  });

  // ------------------------------------------------- apps managed at runtime --

  test("adds an app: progress while it is saved, its secret shown once with Copy, then gone", async () => {
    const { page, errors, requests, consoleLines } = await signedIn({ permissions: ["clipboard-read", "clipboard-write"] });
    const before_ = (await api("GET", "/admin/changes?limit=1")).body.changes[0]?.seq ?? 0;
    await page.getByRole("button", { name: "Add an app" }).click();
    assert.ok(await page.locator("#editor").isVisible(), "the form opens");
    assert.equal(await page.evaluate(() => document.activeElement.id), "app-name", "at its first field");
    assert.ok(await page.getByLabel("Sign its deliveries").isChecked(), "signed by default");
    await page.getByLabel("Name").fill("orders");
    await page.getByLabel("URL").fill(apps.orders.url);
    await page.getByLabel("Event types").fill("conversation_status_updated, conversation_push");
    assert.deepEqual(await page.locator("#app-types-chips li").allInnerTexts(), ["conversation_status_updated", "conversation_push"], "the types as chips");
    await page.getByLabel("Drift organisations (orgId)").fill("1");
    await page.getByLabel("Deliveries a second, at most").fill("20");

    const started = Date.now();
    await page.getByRole("button", { name: "Add the app" }).click();
    // The registry answers once every isolate routes by the change: the page says so meanwhile.
    const progress = page.locator("#editor-progress");
    assert.ok(await progress.isVisible(), "progress is shown");
    assert.equal(await progress.innerText(), "Saving… changes reach every isolate within a few seconds.");
    assert.ok(await page.getByLabel("Name").isDisabled(), "the form waits while it is saved");
    await idle(page);
    console.log(`adding an app took ${Date.now() - started} ms (APPS_CACHE_MS + 1 s)`);
    assert.ok(!(await page.locator("#editor").isVisible()), "the form closes");

    const post = requests.find((r) => r.method === "POST" && new URL(r.url).pathname === "/admin/destinations");
    assert.deepEqual(JSON.parse(post.body), {
      name: "orders", url: apps.orders.url, types: ["conversation_status_updated", "conversation_push"], signed: true, orgIds: [1], ratePerSecond: 20,
    });
    const listed = await destination("orders");
    assert.equal(listed.source, "runtime");
    assert.deepEqual([listed.types, listed.orgIds, listed.ratePerSecond, listed.signed, listed.token], [["conversation_status_updated", "conversation_push"], [1], 20, true, "strip"]);
    assert.match(await page.locator("#notice").innerText(), /^orders is added \(version \d+\): it gets Drift's events of its types from now on\.$/);

    // The secret, once, with a Copy button; the focus on it.
    const panel = page.locator("#secret");
    assert.ok(await panel.isVisible());
    assert.equal(await page.evaluate(() => document.activeElement.id), "secret-heading");
    assert.match(await panel.innerText(), /shown once/);
    const secret = await page.locator("#secret-value").innerText();
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/, "a whsec_ secret of 32 bytes");
    created.orders = secret;
    await page.getByRole("button", { name: "Copy" }).click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret, "Copy puts it in the clipboard");
    assert.equal(await panel.locator(".secret-said").innerText(), "Copied to the clipboard.");

    // Never kept anywhere: storage, URL, requests, console.
    const kept = await page.evaluate(() => JSON.stringify({ ...sessionStorage }) + JSON.stringify({ ...localStorage }) + location.href + document.cookie);
    assert.ok(!kept.includes(secret), "not in storage, the URL or a cookie");
    assert.ok(requests.every((r) => !r.url.includes(secret) && !(r.body ?? "").includes(secret)), "never sent anywhere");
    assert.ok(consoleLines.every((line) => !line.includes(secret)), "never logged");

    // The card: managed here, with its own buttons.
    const c = card(page, "orders");
    assert.equal(await c.getAttribute("data-source"), "runtime");
    assert.match(await c.innerText(), /managed here/);
    assert.match(await c.innerText(), /org 1/);
    assert.match(await c.innerText(), /≤ 20\/s/);
    for (const name of ["Edit orders", "Rotate the signing secret of orders…", "Delete orders…", "Send a test delivery to orders"]) {
      assert.ok(await c.getByRole("button", { name }).isVisible(), name);
    }

    // Closed, it is gone from the page; a refresh cannot bring it back.
    await page.getByRole("button", { name: "I have saved it: close" }).click();
    assert.equal(await page.locator("#secret").count(), 0);
    assert.ok(!(await page.content()).includes(secret), "not in the DOM any more");
    assert.equal(await page.evaluate(() => document.activeElement.textContent), "orders", "the focus goes to the app's card");
    await page.getByRole("button", { name: "Refresh" }).click();
    await idle(page);
    assert.ok(!(await page.content()).includes(secret));
    assert.ok((await api("GET", "/admin/changes?limit=1")).body.changes[0].seq > before_, "one change recorded");
    assert.deepEqual(errors, []);
  });

  test("a refused app: each problem beside its field, marked invalid, and nothing created", async () => {
    const { page, errors } = await signedIn();
    const seq = async () => (await api("GET", "/admin/changes?limit=1")).body.changes[0]?.seq ?? 0;
    const seqBefore = await seq();
    await page.getByRole("button", { name: "Add an app" }).click();
    const body = { name: "bad name!", url: "ftp://example.com/x", types: ["conversation_push"], signed: true, orgIds: [1, "abc"], ratePerSecond: 0 };
    await page.getByLabel("Name").fill(body.name);
    await page.getByLabel("URL").fill(body.url);
    await page.getByLabel("Event types").fill("conversation_push");
    await page.getByLabel("Drift organisations (orgId)").fill("1, abc");
    await page.getByLabel("Deliveries a second, at most").fill("0");
    const started = Date.now();
    await page.getByRole("button", { name: "Add the app" }).click();
    await idle(page);
    assert.ok(Date.now() - started < 3_000, "a refusal is answered at once");

    // What the API says of the same body, field by field.
    const refused = await api("POST", "/admin/destinations", body);
    assert.equal(refused.status, 400);
    const problems = refused.body.error.problems;
    assert.deepEqual(problems.map((p) => p.path).sort(), ["name", "orgIds[1]", "ratePerSecond", "url"]);
    const at = { name: "Name", url: "URL", "orgIds[1]": "Drift organisations (orgId)", ratePerSecond: "Deliveries a second, at most" };
    for (const p of problems) {
      const input = page.getByLabel(at[p.path], { exact: true });
      assert.equal(await input.getAttribute("aria-invalid"), "true", `${p.path} is marked`);
      const box = page.locator(`#${await input.getAttribute("id")}-error`);
      assert.ok(await box.isVisible());
      assert.ok((await box.innerText()).includes(p.message), `${p.path}: ${p.message} beside it`);
      assert.ok((await input.getAttribute("aria-describedby")).includes(`${await input.getAttribute("id")}-error`), "and tied to it");
    }
    assert.match(await page.locator("#app-org-ids-error").innerText(), /^“abc”: /, "an item's problem names the item");
    assert.equal(await page.getByLabel("Event types").getAttribute("aria-invalid"), "false");
    assert.equal(await page.evaluate(() => document.activeElement.id), "app-name", "the focus goes to the first problem");
    assert.match(await page.locator("#editor-problem").innerText(), /refused this change \(400 invalid_destination\); nothing was changed\. 4 problems are marked below\./);
    assert.equal(await page.getByLabel("Name").inputValue(), "bad name!", "what was typed stays");

    // A name that is taken: as a runtime app, and as a declared one.
    await page.getByLabel("Name").fill("orders");
    await page.getByLabel("URL").fill(apps.orders.url);
    await page.getByLabel("Drift organisations (orgId)").fill("");
    await page.getByLabel("Deliveries a second, at most").fill("");
    await page.getByRole("button", { name: "Add the app" }).click();
    await idle(page);
    assert.equal(await page.getByLabel("URL").getAttribute("aria-invalid"), "false", "the fixed fields are cleared");
    assert.match(await page.locator("#app-name-error").innerText(), /exists already/);
    assert.match(await page.locator("#editor-problem").innerText(), /409 exists/);
    await page.getByLabel("Name").fill("push-app");
    await page.getByRole("button", { name: "Add the app" }).click();
    await idle(page);
    assert.match(await page.locator("#app-name-error").innerText(), /declared in DESTINATIONS \(wrangler\.toml\)/);

    assert.equal(await seq(), seqBefore, "no change was made");
    assert.equal((await health()).filter((d) => d.name === "bad name!").length, 0);
    await page.getByRole("button", { name: "Cancel" }).click();
    assert.ok(!(await page.locator("#editor").isVisible()));
    assert.equal(await page.evaluate(() => document.activeElement.id), "add-app", "the focus returns");
    assert.deepEqual(errors, []);
  });

  test("edit: the form holds the app's settings, and only what changed is sent", async () => {
    const { page, errors, requests } = await signedIn();
    // Declared apps are changed in wrangler.toml: no edit, rotate or delete.
    const declared = card(page, "push-app");
    assert.match(await declared.innerText(), /declared in wrangler\.toml/);
    for (const name of [/^Edit /, /^Rotate /, /^Delete /]) assert.equal(await declared.getByRole("button", { name }).count(), 0);
    assert.ok(await declared.getByRole("button", { name: "Send a test delivery to push-app" }).isVisible(), "but a test");

    await card(page, "orders").getByRole("button", { name: "Edit orders" }).click();
    assert.equal(await page.locator("#editor-heading").innerText(), "Edit orders");
    assert.equal(await page.getByLabel("Name").inputValue(), "orders");
    assert.ok(await page.getByLabel("Name").evaluate((i) => i.readOnly), "no renaming");
    assert.equal(await page.getByLabel("URL").inputValue(), apps.orders.url);
    assert.equal(await page.getByLabel("Event types").inputValue(), "conversation_status_updated, conversation_push");
    assert.equal(await page.getByLabel("Drift organisations (orgId)").inputValue(), "1");
    assert.equal(await page.getByLabel("Deliveries a second, at most").inputValue(), "20");
    assert.equal(await page.getByLabel("Drift's token in its deliveries").inputValue(), "strip");
    assert.ok(await page.getByLabel("Sign its deliveries").isChecked());

    // A bad URL is refused at its field; the app stays as it was.
    await page.getByLabel("URL").fill("not a url");
    await page.getByRole("button", { name: "Save changes" }).click();
    await idle(page);
    assert.equal(await page.getByLabel("URL").getAttribute("aria-invalid"), "true");
    assert.match(await page.locator("#app-url-error").innerText(), /is not an absolute URL/);
    assert.equal((await destination("orders")).url, apps.orders.url, "nothing changed");

    await page.getByLabel("URL").fill(apps.orders.url);
    await page.getByLabel("Event types").fill("conversation_status_updated");
    await page.getByLabel("Drift organisations (orgId)").fill("");
    await page.getByLabel("Deliveries a second, at most").fill("5");
    await page.getByRole("button", { name: "Save changes" }).click();
    assert.ok(await page.locator("#editor-progress").isVisible(), "progress is shown");
    await idle(page);
    const patch = requests.filter((r) => r.method === "PATCH").at(-1);
    assert.equal(new URL(patch.url).pathname, "/admin/destinations/orders");
    assert.deepEqual(JSON.parse(patch.body), { types: ["conversation_status_updated"], orgIds: null, ratePerSecond: 5 }, "only the changes (null clears)");
    const now = await destination("orders");
    assert.deepEqual([now.types, now.orgIds, now.ratePerSecond, now.url], [["conversation_status_updated"], undefined, 5, apps.orders.url]);
    assert.match(await page.locator("#notice").innerText(), /^orders is changed \(version \d+\)\.$/);
    const text = await card(page, "orders").innerText();
    assert.match(text, /≤ 5\/s/);
    assert.doesNotMatch(text, /org 1/);
    assert.equal(await page.locator("#secret").count(), 0, "no secret: signing was on already");
    assert.deepEqual(errors, []);
  });

  test("rotate asks for the overlap, then shows the new secret once and until when the old one signs", async () => {
    assert.ok(created.orders, "the secret orders was created with");
    const { page, errors } = await signedIn();
    const c = card(page, "orders");
    const seq = async () => (await api("GET", "/admin/changes?limit=1")).body.changes[0].seq;
    const seqBefore = await seq();

    await c.getByRole("button", { name: "Rotate the signing secret of orders…" }).click();
    const box = dialog(page);
    assert.match(await box.innerText(), /two signatures/);
    assert.equal(await box.getByLabel("Overlap, in hours").inputValue(), "24", "a day by default");
    await box.getByRole("button", { name: "Cancel" }).click();
    assert.equal(await seq(), seqBefore, "cancel rotated nothing");

    // Refused: not a number (the page), then out of range (the API, at its field).
    await c.getByRole("button", { name: "Rotate the signing secret of orders…" }).click();
    await box.getByLabel("Overlap, in hours").fill("soon");
    await box.getByRole("button", { name: "Rotate the secret" }).click();
    assert.equal(await box.getByLabel("Overlap, in hours").getAttribute("aria-invalid"), "true");
    assert.match(await page.locator("#rotate-overlap-error").innerText(), /number of hours/);
    await box.getByLabel("Overlap, in hours").fill("-1");
    await box.getByRole("button", { name: "Rotate the secret" }).click();
    await idle(page);
    assert.equal(await box.getByLabel("Overlap, in hours").getAttribute("aria-invalid"), "true");
    assert.equal(await page.locator("#rotate-overlap-error").innerText(), "expected a whole number of seconds from 0 to 2592000");
    assert.match(await page.locator("#confirm-problem").innerText(), /400 invalid_destination\); nothing was changed/);
    assert.equal(await seq(), seqBefore, "nothing rotated");

    await box.getByLabel("Overlap, in hours").fill("2");
    await box.getByRole("button", { name: "Rotate the secret" }).click();
    assert.equal(await page.locator("#confirm-progress").innerText(), "Rotating… changes reach every isolate within a few seconds.");
    await page.keyboard.press("Escape");
    assert.ok(await box.isVisible(), "the dialog stays while the change is on its way");
    await page.waitForFunction(() => !document.getElementById("confirm").open, null, { timeout: 20_000 });
    await idle(page);

    const panel = page.locator("#secret");
    assert.ok(await panel.isVisible(), "the new secret is shown");
    assert.equal(await page.evaluate(() => document.activeElement.id), "secret-heading");
    const secret = await page.locator("#secret-value").innerText();
    assert.match(secret, /^whsec_/);
    assert.notEqual(secret, created.orders);
    const listed = await destination("orders");
    const change = (await api("GET", "/admin/changes?limit=1")).body.changes[0];
    assert.deepEqual([change.action, change.destination, change.detail.overlapSeconds], ["rotate-secret", "orders", 7200]);
    assert.equal(listed.previousSecretExpiresAt, change.detail.previousSecretExpiresAt);
    assert.ok(Math.abs(listed.previousSecretExpiresAt - (Date.now() + 7_200_000)) < 60_000, "two hours from now");
    const end = panel.locator(".overlap time");
    assert.equal(await end.getAttribute("datetime"), new Date(listed.previousSecretExpiresAt).toISOString(), "the overlap's end, exact on hover");
    assert.match(await panel.locator(".overlap").innerText(), /signed with both the new and the previous secret/);
    assert.match(await c.locator(".overlap").innerText(), /previous secret signs too until/, "the card says so too");

    // The secrets are the real ones: a delivery during the overlap carries both signatures.
    const count = apps.orders.received.length;
    await webhook(4301);
    const delivery = await until(() => apps.orders.received.slice(count).find((r) => r.headers["webhook-signature"]), "a signed delivery to orders");
    assert.equal(delivery.headers["webhook-signature"].split(" ").length, 2);
    assert.ok(verifySignature(delivery, secret), "signed with the new secret");
    assert.ok(verifySignature(delivery, created.orders), "and with the previous one");

    // Without a clipboard (refused, or not a secure context) Copy selects the secret, to copy by hand.
    await page.evaluate(() => {
      navigator.clipboard.writeText = () => Promise.reject(new DOMException("denied", "NotAllowedError"));
    });
    await page.getByRole("button", { name: "Copy" }).click();
    assert.equal(await page.evaluate(() => window.getSelection().toString()), secret);
    assert.match(await panel.locator(".secret-said").innerText(), /^Selected: copy it with Ctrl\+C/);

    await page.getByRole("button", { name: "I have saved it: close" }).click();
    assert.ok(!(await page.content()).includes(secret));
    assert.equal(await page.evaluate(() => window.getSelection().toString()), "", "nor in the selection");
    await until(async () => (await log("&status=pending")).length === 0, "the webhook's deliveries to settle", 60_000);
    assert.deepEqual(errors, []);
  });

  test("send a test: the app's status, latency and answer", async () => {
    const { page, errors } = await signedIn();
    await card(page, "orders").getByRole("button", { name: "Send a test delivery to orders" }).click();
    await idle(page);
    const ok = card(page, "orders").locator(".test-box");
    assert.equal(await ok.getAttribute("data-delivered"), "true");
    assert.equal(await ok.getAttribute("data-status"), "200");
    const latency = Number(await ok.getAttribute("data-latency"));
    assert.ok(Number.isInteger(latency) && latency >= 0);
    const text = await ok.innerText();
    assert.match(text, new RegExp(`delivered HTTP 200 in ${latency} ms · conversation_status_updated`));
    const id = /Open (\S+)/.exec(text)[1];
    const kept = (await api("GET", `/admin/deliveries/${id}`)).body.delivery;
    assert.deepEqual([kept.status, kept.destination, kept.attemptLog[0].latencyMs], ["delivered", "orders", latency], "as the log keeps it");
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute("aria-label")), "Send a test delivery to orders", "the focus stays");

    // An app that is down: its status and its answer's words.
    await card(page, "warehouse").getByRole("button", { name: "Send a test delivery to warehouse" }).click();
    await idle(page);
    const bad = card(page, "warehouse").locator(".test-box");
    assert.equal(await bad.getAttribute("data-delivered"), "false");
    assert.equal(await bad.getAttribute("data-status"), "503");
    assert.match(await bad.innerText(), /failed HTTP 503 in \d+ ms/);
    assert.equal(await bad.locator("pre.excerpt").innerText(), "down for maintenance until 14:00 UTC");
    assert.equal(await bad.getAttribute("role"), null);
    assert.equal(await card(page, "warehouse").locator(".test-result").getAttribute("role"), "status", "announced");
    assert.deepEqual(errors, []);
  });

  test("delete asks first and says what happens; then the app gets nothing more", async () => {
    const { page, errors } = await signedIn();
    await card(page, "orders").getByRole("button", { name: "Delete orders…" }).click();
    const box = dialog(page);
    const said = await box.innerText();
    assert.match(said, /orders gets nothing more/);
    assert.match(said, /becomes a dead letter/);
    assert.match(said, /signing secret is forgotten/);
    await box.getByRole("button", { name: "Cancel" }).click();
    assert.equal((await destination("orders")).source, "runtime", "cancel deleted nothing");

    await card(page, "orders").getByRole("button", { name: "Delete orders…" }).click();
    await box.getByRole("button", { name: "Delete orders" }).click();
    assert.equal(await page.locator("#confirm-progress").innerText(), "Deleting… changes reach every isolate within a few seconds.");
    await page.waitForFunction(() => !document.getElementById("confirm").open, null, { timeout: 20_000 });
    await idle(page);
    assert.match(await page.locator("#notice").innerText(), /^orders is deleted \(version \d+\): nothing more is routed to it\.$/);
    const gone = await destination("orders");
    assert.equal(gone.configured, false, "listed while its deliveries are kept, not configured");
    const c = card(page, "orders");
    assert.match(await c.innerText(), /not configured/);
    assert.equal(await c.getByRole("button", { name: /^(Edit|Delete|Rotate|Send a test)/ }).count(), 0);
    const count = apps.orders.received.length;
    await webhook(4302);
    await until(async () => (await log("&status=pending")).length === 0, "the webhook's deliveries to settle", 60_000);
    assert.equal(apps.orders.received.length, count, "nothing more went to it");
    assert.deepEqual(errors, []);
  });

  test("the history lists every change, newest first, page after page", async () => {
    const all = (await api("GET", "/admin/changes?limit=200")).body.changes;
    assert.ok(all.length >= 4, `${all.length} changes`);
    const { page, context, errors } = await openAdmin();
    // Pages of two, from the real API, so that its `next` is followed.
    await context.route(/\/admin\/changes\?/, (route) => {
      const u = new URL(route.request().url());
      u.searchParams.set("limit", "2");
      return route.continue({ url: u.toString() });
    });
    await signIn(page);
    const shown = () => page.locator("#changes-rows tr").evaluateAll((trs) => trs.map((tr) => Number(tr.dataset.seq)));
    assert.deepEqual(await shown(), all.slice(0, 2).map((c) => c.seq));
    const more = page.getByRole("button", { name: "Load older changes" });
    while (await more.isVisible()) {
      await more.click();
      await idle(page);
    }
    assert.deepEqual(await shown(), all.map((c) => c.seq), "every change, newest first, once");

    const by = crypto.createHash("sha256").update(ADMIN).digest("hex").slice(0, 8);
    const row = (c) => page.locator(`#changes-rows tr[data-seq="${c.seq}"]`);
    for (const c of all) {
      const text = await row(c).innerText();
      assert.equal(await row(c).getAttribute("data-action"), c.action);
      assert.ok(text.includes(c.destination) && text.includes(c.action));
      assert.match(text, new RegExp(`${c.by} \\(this token\\)`));
      assert.equal(c.by, by);
      assert.equal(await row(c).locator("td.cell-time time").getAttribute("datetime"), new Date(c.at).toISOString());
    }
    const update = all.find((c) => c.action === "update" && c.destination === "orders");
    assert.match(await row(update).innerText(), /types conversation_status_updated, conversation_push → conversation_status_updated/);
    assert.match(await row(update).innerText(), /ratePerSecond 20 → 5/);
    assert.match(await row(update).innerText(), /orgIds 1 → —/);
    const rotation = all.find((c) => c.action === "rotate-secret");
    assert.match(await row(rotation).innerText(), /overlap 2 h: the previous secret until/);
    assert.doesNotMatch(await page.content(), /whsec_[A-Za-z0-9+/]{16}/, "never a secret");
    assert.deepEqual(errors, []);
  });

  // ------------------------------------------------------ metrics as charts --

  test("the charts' numbers are GET /admin/metrics': per minute, p50 and p95, the backlog, for one app and the bridge", async () => {
    // Known traffic: an app answering after 0, 30, 120 or 700 ms, one delivery a webhook.
    const made = await api("POST", "/admin/destinations", { name: "metered", url: apps.metered.url, types: ["conversation_status_updated"], signed: false });
    assert.equal(made.status, 201, made.text);
    const conversations = [4401, 4402, 4403, 4404, 4405, 4406, 4407, 4408];
    for (const conversation of conversations) await webhook(conversation);
    await until(async () => (await log("&destination=metered&status=delivered")).length === conversations.length && (await log("&status=pending")).length === 0,
      "the metered deliveries", 120_000);

    const { page, errors } = await signedIn();
    const section = page.locator("#metrics");
    assert.equal(await page.locator("#metrics-heading").innerText(), "Last 24 hours", "the last 24 hours by default");
    const asked = await section.evaluate((s) => ({ since: Number(s.dataset.since), until: Number(s.dataset.until), step: Number(s.dataset.step) }));
    assert.equal(asked.step, 60_000, "per minute");
    assert.ok(Math.abs(asked.until - asked.since - 86_400_000) < 1000);
    // The same question to the API, and what the page should make of its answer.
    const answer = (await api("GET", `/admin/metrics?since=${asked.since}&until=${asked.until}&step=minute`)).body;
    const metered = expected(answer, ["metered"]);
    const sum = (rows, k) => rows.reduce((a, r) => a + r[k], 0);
    assert.equal(sum(metered, "delivered"), conversations.length, "the API counted the traffic sent");
    assert.equal(sum(metered, "attempts"), conversations.length);

    // One app: the table under the charts, minute by minute.
    await page.getByLabel("App", { exact: true }).selectOption("metered");
    assert.deepEqual(await table(page), metered.map(shownRow).reverse(), "every busy minute, newest first, as the API counts it");
    const readout = (kind) => page.locator(`#readout-${kind}`);
    assert.match(await readout("deliveries").innerText(), new RegExp(`^Last 24 hours: ${conversations.length} delivered · 0 failed · 0 held$`));
    const all = { latency: new Array(13).fill(0) };
    for (const r of metered) r.latency.forEach((n, b) => (all.latency[b] += n));
    const total50 = quantile(all.latency, answer.latencyBucketsMs, 0.5);
    const total95 = quantile(all.latency, answer.latencyBucketsMs, 0.95);
    assert.equal(Number(await readout("latency").getAttribute("data-p50")), total50);
    assert.equal(Number(await readout("latency").getAttribute("data-p95")), total95);
    assert.ok(total95 > 500 && total95 <= 1000, `p95 ${total95} ms: the 700 ms answers`);

    // The keyboard: the last busy minute, then the one before.
    const chart = page.locator("svg.chart-deliveries");
    assert.equal(await chart.getAttribute("role"), "img");
    assert.match(await chart.getAttribute("aria-label"), new RegExp(`^Deliveries per minute, last 24 hours, metered: ${conversations.length} delivered, 0 failed, 0 held`));
    await chart.focus();
    await page.keyboard.press("End");
    const last = metered.at(-1);
    const check = async (r) => {
      const d = readout("deliveries");
      assert.equal(Number(await d.getAttribute("data-start")), r.start);
      assert.deepEqual([await d.getAttribute("data-delivered"), await d.getAttribute("data-failed"), await d.getAttribute("data-held")], [String(r.delivered), String(r.failed), String(r.held)]);
      const l = readout("latency");
      // (A minute with a backlog but no attempt has no percentile: no attribute.)
      const percentile = async (name) => {
        const text = await l.getAttribute(name);
        return text === null || text === "" ? null : Number(text);
      };
      assert.equal(await percentile("data-p50"), r.p50, "p50 from the buckets");
      assert.equal(await percentile("data-p95"), r.p95, "p95 from the buckets");
      if (r.attempts) assert.match(await l.innerText(), new RegExp(`p50 ${msText(r.p50)} · p95 ${msText(r.p95)} \\(${r.attempts} attempts?\\)`));
      else assert.match(await l.innerText(), /no attempts this minute/);
      assert.equal(Number(await readout("backlog").getAttribute("data-backlog")), r.backlog);
      assert.equal(await d.locator("time").getAttribute("datetime"), new Date(r.start).toISOString(), "the minute, exact on hover");
    };
    await check(last);
    if (metered.length > 1) {
      await page.keyboard.press("ArrowLeft");
      await check(metered.at(-2));
    }
    // The pointer: over the last minute's bar.
    await page.keyboard.press("Escape");
    await chart.blur();
    const bar = page.locator(`svg.chart-deliveries g[data-slot] rect`).last();
    const box = await bar.boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await check(last);
    assert.match(await page.locator("svg.chart-deliveries g[data-slot] title").last().textContent(), new RegExp(`${last.delivered} delivered, 0 failed, 0 held$`), "a title per bar");

    // The whole bridge: every app's minutes summed.
    await page.getByLabel("App", { exact: true }).selectOption("");
    const bridge = expected(answer, null);
    assert.deepEqual(await table(page), bridge.map(shownRow).reverse());
    const totals = (rows) => ({ delivered: sum(rows, "delivered"), failed: sum(rows, "failed"), held: sum(rows, "held") });
    const t = totals(bridge);
    assert.ok(t.failed > 0 && t.held > 0, "the bridge has failures and holds to draw");
    assert.match(await readout("deliveries").innerText(), new RegExp(`^Last 24 hours: ${t.delivered} delivered · ${t.failed} failed · ${t.held} held$`));
    assert.equal(await page.locator("svg.chart-deliveries g[data-slot]").count(), bridge.filter((r) => r.delivered + r.failed + r.held > 0).length, "one bar a busy minute");
    assert.equal(Number(await readout("backlog").getAttribute("data-backlog")), Math.max(...bridge.map((r) => r.backlog)));

    // Each card's small chart: its app's totals.
    for (const d of answer.destinations) {
      const spark = card(page, d.name).locator("button.spark");
      if (!(await card(page, d.name).count())) continue;
      const want = totals(expected(answer, [d.name]));
      assert.deepEqual(await spark.evaluate((b) => ({ delivered: Number(b.dataset.delivered), failed: Number(b.dataset.failed), held: Number(b.dataset.held) })), want, d.name);
      assert.match(await spark.getAttribute("aria-label"), new RegExp(`^${d.name}, last 24 hours: ${want.delivered} delivered, ${want.failed} failed, ${want.held} held`));
    }
    // A card's chart opens its app's charts.
    await card(page, "push-app").locator("button.spark").click();
    assert.equal(await page.getByLabel("App", { exact: true }).inputValue(), "push-app");
    assert.equal(await page.evaluate(() => document.activeElement.dataset.kind), "deliveries", "the focus on its chart");
    assert.deepEqual(await table(page), expected(answer, ["push-app"]).map(shownRow).reverse());

    // Another time: the last 7 days, per hour.
    await page.getByLabel("Time", { exact: true }).selectOption("7d");
    await idle(page);
    assert.equal(await page.locator("#metrics-heading").innerText(), "Last 7 days");
    const week = await section.evaluate((s) => ({ since: Number(s.dataset.since), until: Number(s.dataset.until), step: Number(s.dataset.step) }));
    assert.equal(week.step, 3_600_000);
    const hourly = (await api("GET", `/admin/metrics?since=${week.since}&until=${week.until}&step=hour`)).body;
    assert.deepEqual(await table(page), expected(hourly, ["push-app"]).map(shownRow).reverse());
    await page.screenshot({ path: path.join(RESULTS_DIR, "admin-charts.png"), fullPage: true });
    assert.deepEqual(errors, []);
  });

  test("the charts fit a phone and read in dark mode", async () => {
    const { page, errors } = await signedIn({ viewport: { width: 390, height: 844 }, mobile: true });
    const width = () => page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    await page.locator("#metrics").scrollIntoViewIfNeeded();
    assert.deepEqual(await width(), [390, 390], "no sideways scrolling");
    const charts = await page.locator("svg.chart").evaluateAll((svgs) => svgs.map((s) => {
      const r = s.getBoundingClientRect();
      return { kind: s.dataset.kind ?? "spark", left: r.left, right: r.right, width: r.width, viewBox: s.viewBox.baseVal.width };
    }));
    assert.equal(charts.filter((c) => c.kind !== "spark").length, 3, "deliveries, latency and backlog");
    for (const c of charts) {
      assert.ok(c.left >= 0 && c.right <= 390, `${c.kind} fits (${c.left}–${c.right})`);
      if (c.kind !== "spark") assert.ok(Math.abs(c.viewBox - c.width) <= 1, `${c.kind} is drawn at its size, so its text is (${c.viewBox} for ${c.width} px)`);
    }
    // The numbers' table scrolls inside its box, not the page.
    await page.getByText("The numbers, as a table").click();
    assert.deepEqual(await width(), [390, 390], "with the table open");
    await page.screenshot({ path: path.join(RESULTS_DIR, "admin-charts-phone.png"), fullPage: true });

    // Light, then dark: the series and the text take the dark palette, and stay readable on it.
    const colours = () => page.evaluate(() => {
      const style = (sel, prop) => getComputedStyle(document.querySelector(sel))[prop];
      return {
        delivered: style("svg.chart-deliveries rect.s-delivered", "fill"),
        text: style("svg.chart-deliveries text", "fill"),
        panel: style("#metrics", "backgroundColor"),
        p95: style("svg.chart-latency path.s-p95", "stroke"),
      };
    });
    const light = await colours();
    await page.emulateMedia({ colorScheme: "dark" });
    const dark = await colours();
    for (const k of Object.keys(light)) assert.notEqual(dark[k], light[k], `${k} changes with the colour scheme`);
    const luminance = (rgb) => {
      const [r, g, b] = rgb.match(/\d+(\.\d+)?/g).slice(0, 3).map((v) => Number(v) / 255).map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const contrast = (a, b) => (Math.max(luminance(a), luminance(b)) + 0.05) / (Math.min(luminance(a), luminance(b)) + 0.05);
    for (const scheme of [light, dark]) {
      assert.ok(contrast(scheme.text, scheme.panel) >= 4.5, `axis text readable (${scheme.text} on ${scheme.panel})`);
      assert.ok(contrast(scheme.delivered, scheme.panel) >= 2, `bars stand out (${scheme.delivered} on ${scheme.panel})`);
    }
    await page.locator("#metrics").screenshot({ path: path.join(RESULTS_DIR, "admin-charts-dark.png") });
    assert.deepEqual(errors, []);
  });

  // Last: it adds deliveries, which the tests above do not expect.
  test("Load more pages through the log; the event id, since and until filters narrow it", async () => {
    // Six deliveries a webhook: past the page of 50.
    for (const conversation of [4201, 4202, 4203, 4204, 4205]) await webhook(conversation);
    const before = (await log()).length;
    await until(async () => (await log("&status=pending")).length === 0 && (await log()).length >= 60, "a second page of deliveries", 120_000);
    const all = await log();
    assert.ok(all.length > 50, `${all.length} deliveries (${before} before settling)`);
    const ids = (list) => list.map((r) => r.id);
    const { page, errors } = await signedIn();
    assert.deepEqual(ids(await rows(page)), ids(all.slice(0, 50)), "the first page");
    const more = page.getByRole("button", { name: "Load more" });
    assert.ok(await more.isVisible(), "Load more is offered");
    while (await more.isVisible()) {
      await more.click();
      await idle(page);
    }
    const shown = ids(await rows(page));
    assert.deepEqual(shown, ids(all), "every page in order, newest first");
    assert.equal(new Set(shown).size, shown.length, "nothing twice");

    // An event id, typed in capitals: the page asks for it in lower case.
    const target = all.find((r) => r.scope === "conversation:1:4203");
    await page.getByLabel("Event id").fill(target.eventId.toUpperCase());
    await page.getByRole("button", { name: "Apply" }).click();
    await idle(page);
    const byEvent = ids(await rows(page)).sort();
    assert.ok(byEvent.length > 0);
    assert.deepEqual(byEvent, ids(all.filter((r) => r.eventId === target.eventId)).sort());
    await page.getByLabel("Event id").fill("");

    // Since (inclusive) and until (exclusive), to the second, typed in the
    // viewer's time zone: the first second of this test's deliveries.
    const fresh = all.filter((r) => r.scope.startsWith("conversation:1:420"));
    const second = Math.floor(Math.min(...fresh.map((r) => r.at)) / 1000) * 1000;
    const local = await page.evaluate((ms) => {
      const d = new Date(ms);
      const p = (n, w = 2) => String(n).padStart(w, "0");
      return `${p(d.getFullYear(), 4)}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
    }, second);
    const firstPage = async () => {
      await page.getByRole("button", { name: "Apply" }).click();
      await idle(page);
      return ids(await rows(page));
    };
    await page.getByLabel("Since", { exact: true }).fill(local);
    const since = await firstPage();
    assert.ok(since.length >= fresh.length, `${since.length} since ${local}`);
    assert.deepEqual(since, ids(all.filter((r) => r.at >= second).slice(0, 50)));
    await page.getByLabel("Since", { exact: true }).fill("");
    await page.getByLabel("Until", { exact: true }).fill(local);
    const untilRows = await firstPage();
    assert.ok(untilRows.length > 0);
    assert.deepEqual(untilRows, ids(all.filter((r) => r.at < second).slice(0, 50)));
    assert.deepEqual(errors, []);
  });

});

describe("the admin page when the admin API is off", () => {
  let bare;
  before(async () => {
    // The real worker with no ADMIN_TOKEN, answering the page's /admin/ calls.
    bare = await startBareWorker({ DRIFT_VERIFICATION_TOKEN: DRIFT });
  });
  after(async () => bare?.dispose());

  test("says so instead of asking for the token again", async () => {
    const { page, context, errors } = await openAdmin();
    await context.route(/\/admin\//, async (route) => {
      const request = route.request();
      const res = await bare.dispatchFetch(`http://bridge.test${new URL(request.url()).pathname}`, {
        method: request.method(), headers: request.headers(),
      });
      await route.fulfill({ status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() });
    });
    await signIn(page);
    const alert = page.locator("#sign-in-problem");
    assert.ok(await alert.isVisible());
    assert.match(await alert.innerText(), /admin API is off/);
    assert.match(await alert.innerText(), /ADMIN_TOKEN \(32 characters or more\)/);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, "nothing kept");
    assert.deepEqual(errors, []);
  });
});
