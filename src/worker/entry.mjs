// drift-bridge's Worker entry module. scripts/build.sh bundles it with the
// wasm-bindgen glue of the worker's two wasm modules into build/index.js,
// next to build/bridge_bg.wasm and build/operator_bg.wasm.
//
// The entry owns every await; the wasm only decides. Two modules (one crate,
// two features; docs/architecture.md):
//   bridge_bg.wasm    (src/worker/webhook.rs, delivery.rs) started with the
//                     isolate: Drift's webhook, one call per request; every
//                     step of the Outbox and the DeliveryLog, one synchronous
//                     call each over the object's SQL storage.
//   operator_bg.wasm  what runs off the webhook's path (src/worker/mod.rs,
//                     admin.rs, convert.rs, consumer.rs): /health, /admin/…,
//                     /convert, wrong methods and unknown paths through
//                     workers-rs, the Registry's steps, the delivery log's
//                     admin operations, the queue consumer's decisions.
//                     Started on its first use.
// Each module keeps, between calls, only the configuration and its copy of
// the apps (set from the registry's answer, `withApps`).
//
// Every Durable Object runs the same way (`step`): call the state machine
// once, inside transactionSync with the alarm it asks for, so that writes
// and their alarm commit together; then send the queue messages, make the
// calls and run the continuation it names. A step that throws writes
// nothing.
//
// Panics: both modules are built with panic = "abort", so a panic traps. The
// glue then marks that instance dead and starts a fresh one on the next call
// into it (wasm-bindgen --force-enable-abort-handler; each module registers
// the handler as it starts). Only the requests in flight in that isolate that
// were inside that module fail; a fresh instance reads the configuration
// again and is given the apps' copy again before its first call.

import { DurableObject, env as startupEnv } from "cloudflare:workers";
import bridgeModule from "./bridge_bg.wasm";
import * as bridge from "./bridge.js";
import operatorModule from "./operator_bg.wasm";
import * as operatorGlue from "./operator.js";

bridge.initSync({ module: bridgeModule });

/** The operator's module (workers-rs), instantiated on the first call. */
let operatorStarted = false;
/** What called into it (for the tests: the webhook, the outbox and the delivery log never do). */
const operatorUsers = new Set();
function operator(user = "operator") {
  if (!operatorStarted) {
    operatorGlue.initSync({ module: operatorModule });
    operatorStarted = true;
  }
  operatorUsers.add(user);
  return operatorGlue;
}

const HEADERS = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" };
/** The answer when the outbox did not store the hand-off: Drift retries (tests/delivery/entry.test.mjs). */
const UNAVAILABLE =
  '{"error":{"code":"unavailable","message":"the events could not be stored for delivery; try again","path":""}}';
/** The answer when the registry could not be reached: the declared apps' deliveries were stored, the rest need Drift to try again. */
const REGISTRY_UNAVAILABLE =
  '{"error":{"code":"unavailable","message":"the apps managed at runtime could not be confirmed (the registry did not answer); the deliveries to the declared apps are stored; try again","path":""}}';
/** The queue whose messages the delivery consumer gave up on (wrangler.toml `dead_letter_queue`). */
const DEAD_LETTER_QUEUE = "drift-bridge-dead-letters";
/** At most this much of a failing app's answer is read, for the log. */
const EXCERPT_BYTES = 4096;

/** MAX_BODY_BYTES, asked of the wasm once per isolate (the configuration cannot change while it lives). */
let limit;

warmUp();

export default {
  fetch(request, env, ctx) {
    if (request.method === "POST") {
      const [path, query] = pathAndQuery(request.url);
      if (path === "/webhooks/drift") return webhook(request, env);
      if (path === "/convert") return convert(request, env, query);
      if (path.startsWith("/__test/") && env.DRIFT_BRIDGE_TEST_ROUTES === "1") {
        if (path === "/__test/bridge-panic") bridge.testPanic();
        // Which wasm modules this isolate has started.
        if (path === "/__test/modules") return Response.json({ bridge: true, operator: operatorStarted, users: [...operatorUsers].sort() });
      }
    }
    return operatorFetch(request, env, ctx);
  },

  queue(batch, env) {
    return consume(batch, env);
  },
};

/**
 * /health, /admin/…, wrong methods and unknown paths: the operator's, with
 * the apps' current copy. When the registry cannot be reached they are
 * served with the copy this isolate has (the declared apps are always
 * right): /health says so, and what needs the registry itself answers 503.
 */
async function operatorFetch(request, env, ctx) {
  let problem = null;
  try {
    await freshApps(env);
  } catch (error) {
    problem = String(error?.message ?? error);
    console.error(`apps: ${problem}`);
  }
  // A body without Content-Length is read here, held to the same limit as
  // a webhook's, rather than whole by the operator's module.
  if (request.body !== null && request.headers.get("content-length") === null) {
    limit ??= bridge.maxBodyBytes(env);
    const body = await readBody(request, limit);
    if (body === null) {
      const message = `the body is over ${limit} bytes (MAX_BODY_BYTES)`;
      return new Response(JSON.stringify({ error: { code: "too_large", message, path: "" } }), { status: 413, headers: HEADERS });
    }
    request = new Request(request, { body, duplex: "half" });
  }
  const module = withApps(env, operator("routes"));
  module.setRegistryProblem(problem);
  return module.fetch(request, env, ctx);
}

// ------------------------------------------------------------------- the apps

/**
 * The apps managed at runtime (src/delivery/apps.rs): each isolate routes,
 * delivers and signs by a copy of the registry's that is never older than
 * APPS_CACHE_MS. It is refreshed before any use once it is four fifths of
 * that old (one call to the registry, which answers "the same" cheaply), and
 * a copy that cannot be refreshed is not used at all: the request fails
 * (a webhook answers 503, a step or a batch is tried again). The registry
 * answers a change only once every copy taken before it has expired, so a
 * webhook answered 200 after a change's answer is routed by the change.
 */
const apps = { version: -1, text: undefined, takenAt: -Infinity, known: true };
/** APPS_CACHE_MS, asked of the wasm once per isolate. */
let appsLease;

/**
 * Makes sure the copy of the apps may be used. Each request that finds it
 * expiring asks the registry itself: a promise of one request's I/O cannot
 * be awaited by another (workerd refuses I/O across Durable Objects and
 * requests), so concurrent requests do not share one refresh; what a
 * refresh brings is shared.
 */
async function freshApps(env) {
  if (env.REGISTRY === undefined) return; // no registry, no apps but the declared ones
  appsLease ??= bridge.appsLeaseMs(env);
  if (Date.now() - apps.takenAt < appsLease * 0.8) return;
  await refreshApps(env);
}

/**
 * Whether this isolate's copy of the apps is current: refreshed now if it
 * must be; false (and the reason logged) when the registry cannot be
 * reached, in which case the declared apps are still known for sure.
 */
async function appsKnown(env) {
  try {
    await freshApps(env);
    apps.known = true;
  } catch (error) {
    console.error(`apps: the registry could not be reached; going on with the declared apps: ${error?.message ?? error}`);
    apps.known = false;
  }
  return apps.known;
}

async function refreshApps(env) {
  // The copy's age counts from before the question: the registry's answer
  // is at least as new as this moment.
  const takenAt = Date.now();
  const registry = env.REGISTRY.get(env.REGISTRY.idFromName("registry"));
  const res = await registry.fetch("https://do/routes", { method: "POST", body: `{"known":${apps.version}}` });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`the registry answered ${res.status} for the apps: ${text.slice(0, 200)}`);
  // Another request's refresh may have brought a newer copy meanwhile.
  if (takenAt < apps.takenAt) return;
  if (!text.includes('"same":true')) {
    const version = bridge.setApps(env, text);
    if (version < 0) throw new Error("the registry's answer for the apps cannot be read");
    apps.version = version;
    apps.text = text;
  }
  apps.takenAt = takenAt;
}

/** `module` (the bridge's or the operator's wasm) with the current copy of the apps (a fresh instance after a panic has none). */
function withApps(env, module) {
  if (apps.text !== undefined && module.appsVersion() !== apps.version) module.setApps(env, apps.text);
  return module;
}

// ---------------------------------------------------------------- webhooks

async function webhook(request, env) {
  limit ??= bridge.maxBodyBytes(env);
  const body = await readBody(request, limit);
  const token = request.headers.get("x-verification-token");
  let failure;
  try {
    await freshApps(env);
  } catch (error) {
    failure = `the apps could not be confirmed: ${error?.message ?? error}`;
  }
  // One receive time for both routings, so that a second one that routes
  // the same way hands off the same payload, and is not sent again.
  const now = Date.now();
  // Without a current copy of the apps, only the declared apps are routed.
  const route = () => withApps(env, bridge).webhook(env, body ?? EMPTY, token, now, body === null, failure !== undefined);
  let answer = route();
  if (answer.scope === undefined && (failure === undefined || answer.status !== 200)) return respond(answer);
  if (failure !== undefined) {
    // The declared apps' share is stored (they are delivered); the answer is
    // 503 all the same, so that Drift sends it again for the apps managed at
    // runtime (what the declared apps already have is dropped as a repeat).
    if (answer.scope !== undefined) {
      const stored = await accept(env, answer);
      if (stored !== undefined) failure += `; the declared apps' share was not stored either: ${stored}`;
    }
  } else {
    // 200 only once the conversation's outbox has the deliveries.
    try {
      const routedBy = apps.takenAt;
      failure = await accept(env, answer);
      // The copy it was routed by expired meanwhile, and the apps may have
      // changed since: route again, and hand off what the change adds (the
      // delivery logs drop what was already handed off).
      if (failure === undefined && routedBy !== -Infinity && Date.now() - routedBy >= appsLease) {
        const version = apps.version;
        await freshApps(env);
        if (apps.version !== version) {
          const again = route();
          if (again.scope !== undefined && again.payload !== answer.payload) failure = await accept(env, again);
          answer = again;
        }
      }
      if (failure === undefined) return respond(answer);
    } catch (error) {
      failure = String(error?.message ?? error);
    }
  }
  console.error(`hand-off to the outbox ${answer.scope ?? "(none)"} failed: ${failure}`);
  if (answer.refusedLog !== undefined) console.log(answer.refusedLog);
  const registryDown = failure.startsWith("the apps could not be confirmed") && !failure.includes("not stored either");
  return new Response(registryDown ? REGISTRY_UNAVAILABLE : UNAVAILABLE, { status: 503, headers: HEADERS });
}

/** Hands a webhook's deliveries to its conversation's outbox: undefined once stored, else why not. */
async function accept(env, answer) {
  try {
    const outbox = env.OUTBOX.get(env.OUTBOX.idFromName(answer.scope));
    const res = await outbox.fetch("https://do/accept", { method: "POST", body: answer.payload });
    if (res.status === 200) return undefined;
    return `the outbox answered ${res.status}: ${(await res.text()).slice(0, 200)}`;
  } catch (error) {
    return String(error?.message ?? error);
  }
}

/** /convert, in the operator's module: it is no webhook's path. */
async function convert(request, env, query) {
  limit ??= bridge.maxBodyBytes(env);
  const body = await readBody(request, limit);
  return respond(operator("convert").convert(env, body ?? EMPTY, query, Date.now(), body === null));
}

/** An answer of the bridge's module: its log line, then the Response. */
function respond(answer) {
  if (answer.log !== undefined) console.log(answer.log);
  return new Response(answer.body, { status: answer.status, headers: HEADERS });
}

const EMPTY = new Uint8Array(0);

/**
 * The body as bytes, or null once it is known to exceed `limit`: from
 * Content-Length when the request has one, else while reading it.
 */
async function readBody(request, limit) {
  const length = contentLength(request.headers.get("content-length"));
  if (length > limit) return null;
  // With a length, the runtime holds the body to it: read it in one piece.
  if (length >= 0) return new Uint8Array(await request.arrayBuffer());
  if (request.body === null) return EMPTY;
  const reader = request.body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      reader.cancel().catch(() => {});
      return null;
    }
    chunks.push(value);
  }
  return concat(chunks, total);
}

function concat(chunks, total) {
  if (chunks.length === 1) return chunks[0];
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

/** A Content-Length header's value, or -1 when absent or not a number. */
function contentLength(value) {
  if (value === null) return -1;
  const text = value.trim();
  return /^\+?[0-9]+$/.test(text) ? Number(text) : -1;
}

/**
 * Runs the webhook once while the isolate starts (on Workers, that overlaps
 * the TLS handshake of the first request), so that the first request finds
 * the configuration read and the code it runs compiled, and writes the
 * isolate's start line. Nothing is handed off or stored. (Running it more
 * often, so that V8 also optimises that code, costs more at start than it
 * saves the first request: bench/README.md, "Cold start".)
 */
function warmUp() {
  try {
    limit = bridge.maxBodyBytes(startupEnv);
    // The isolate's start line. Also, the first console.log of an isolate
    // costs milliseconds, which this takes off the first request.
    console.log(bridge.warmUp(startupEnv));
  } catch (error) {
    // The first request does it all again.
    console.error(`warm-up failed: ${error?.message ?? error}`);
  }
}

/**
 * The path and the query (without "?") of request.url, which is absolute and
 * normalised: the path starts at the first "/" after "//", and ends at "?"
 * (a "#" never reaches a worker).
 */
function pathAndQuery(url) {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  const query = url.indexOf("?", start);
  return query < 0 ? [url.slice(start), ""] : [url.slice(start, query), url.slice(query + 1)];
}

// ---------------------------------------------------------- Durable Objects

/**
 * Runs one step of an object's state machine and everything it asks for:
 * `call(sql)` is one synchronous call into the bridge's module, run inside
 * transactionSync together with the alarm it asks for; then the log lines,
 * the queue sends and the calls to other objects, whose results go to the
 * continuation `next(then, sql, results)` as one more step. Answers the
 * first step's reply ({status, body}), if any.
 */
async function step(object, call, next) {
  const storage = object.ctx.storage;
  const fx = storage.transactionSync(() => {
    const fx = call(storage.sql);
    if (fx.alarm === null) storage.deleteAlarm();
    else if (fx.alarm !== undefined) storage.setAlarm(fx.alarm);
    return fx;
  });
  if (fx.logs !== undefined) for (const line of fx.logs) (line.error ? console.error : console.log)(line.text);
  if (fx.sends !== undefined) await send(object.env, fx.sends);
  let results;
  if (fx.calls !== undefined) results = await Promise.all(fx.calls.map((c) => callObject(object.env, c)));
  if (fx.posts !== undefined) results = await Promise.all(fx.posts.map(post));
  let reply;
  if (results !== undefined && fx.then !== undefined) reply = await step(object, (sql) => next(fx.then, sql, JSON.stringify(results)), next);
  // A change to the apps is answered once every copy taken before it has expired.
  if (fx.holdUntil !== undefined) await sleep(fx.holdUntil - Date.now());
  return fx.status === undefined ? reply : new Response(fx.body, { status: fx.status, headers: fx.headers });
}

const sleep = (ms) => (ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : undefined);

/**
 * Sends queue messages, batch by batch (each within the queue's limits). A
 * refused send leaves its deliveries where they are: the delivery log's
 * alarm queues them again once the recovery grace period is over.
 */
async function send(env, batches) {
  const total = batches.reduce((n, batch) => n + batch.length, 0);
  let sent = 0;
  try {
    if (env.DRIFT_BRIDGE_TEST_QUEUE_FAILS === "1") throw new Error("the delivery queue refused the send (DRIFT_BRIDGE_TEST_QUEUE_FAILS)");
    for (const batch of batches) {
      await env.DELIVERIES.sendBatch(batch);
      sent += batch.length;
    }
  } catch (error) {
    console.error(`${total - sent} of ${total} deliveries not queued yet (the delivery log queues them again): ${error?.message ?? error}`);
  }
}

/** One call to another object: {ticket, status, body}; status null when the call itself failed. */
async function callObject(env, call) {
  try {
    const namespace = env[call.namespace];
    const res = await namespace.get(namespace.idFromName(call.name)).fetch(`https://do${call.op}`, { method: "POST", body: call.body });
    return { ticket: call.ticket, status: res.status, body: await res.text() };
  } catch (error) {
    return { ticket: call.ticket, status: null, body: String(error?.message ?? error) };
  }
}

/** Runs a request's step; a failure (a storage error, a panic) answers 500 and wrote nothing. */
async function serve(kind, request, run) {
  const [path] = pathAndQuery(request.url);
  try {
    return (await run(path, await request.text())) ?? new Response("", { status: 204 });
  } catch (error) {
    return new Response(`${kind} ${path}: ${error?.message ?? error}`, { status: 500 });
  }
}

/** Creates (or upgrades) an object's tables as it starts, in one transaction. */
function open(kind, ctx, create) {
  try {
    ctx.storage.transactionSync(() => create(ctx.storage.sql));
  } catch (error) {
    // The object's first step then fails with the reason, and its caller retries.
    console.error(`${kind}: cannot create its tables: ${error?.message ?? error}`);
  }
}

/** A random number for the state machine (the jitter of retries). */
const seed = () => (Math.random() * 0x1_0000_0000) >>> 0;

/**
 * The outbox of a deduplication scope (src/delivery/outbox.rs): `/accept`
 * takes a webhook's deliveries; its alarm forwards them to the delivery
 * logs, and the continuation `forwarded` forgets what they took.
 */
export class Outbox extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    open("outbox", ctx, (sql) => bridge.outboxOpen(sql));
  }

  fetch(request) {
    return serve("outbox", request, (path, body) => {
      const env = this.env;
      if (path === "/accept") {
        if (env.DRIFT_BRIDGE_TEST_OUTBOX_FAILS === "1") throw new Error("storage refused the hand-off (DRIFT_BRIDGE_TEST_OUTBOX_FAILS)");
        return step(this, (sql) => bridge.outboxStep(env, sql, "accept", body, Date.now()), this.#next);
      }
      if (path === "/stats" && env.DRIFT_BRIDGE_TEST_ROUTES === "1") return this.#stats();
      return new Response("unknown outbox operation", { status: 404 });
    });
  }

  alarm() {
    return step(this, (sql) => bridge.outboxStep(this.env, sql, "alarm", "", Date.now()), this.#next);
  }

  #next = (then, sql, results) => bridge.outboxStep(this.env, sql, then, results, Date.now());

  async #stats() {
    const fx = bridge.outboxStep(this.env, this.ctx.storage.sql, "stats", "", Date.now());
    const stats = JSON.parse(fx.body);
    stats.alarm = await this.ctx.storage.getAlarm();
    return Response.json(stats);
  }
}

/** The delivery log's operations on the delivery path, served by the bridge's module. */
const DELIVERY_PATH = new Set(["/add", "/attempt", "/settle", "/dead"]);

/**
 * A destination's delivery log (src/delivery/log/): every operation is a
 * path (`/add`, `/attempt`, `/settle`, `/dead`, and the admin API's, which
 * run in the operator's module), the alarm one more, and `called` the
 * continuation of its calls (to the registry; alerts to an outbox).
 */
export class DeliveryLog extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    open("delivery log", ctx, (sql) => bridge.logOpen(env, sql, Date.now()));
  }

  fetch(request) {
    return serve("delivery log", request, async (path, body) => {
      const env = this.env;
      // Whether its app is configured, where it is and how it is signed: by
      // a current copy of the apps, or, when the registry cannot be reached,
      // by the declared apps alone (a runtime app's log then waits).
      const known = await appsKnown(env);
      if (DELIVERY_PATH.has(path)) return step(this, (sql) => withApps(env, bridge).logStep(env, sql, path, body, Date.now(), seed(), known), this.#next);
      if ((path === "/stats" || path === "/fill") && env.DRIFT_BRIDGE_TEST_ROUTES !== "1") return new Response("unknown delivery log operation", { status: 404 });
      // The admin API's operations, in the operator's module.
      const response = await step(this, (sql) => withApps(env, operator("log admin")).logAdmin(env, sql, path, body, Date.now(), seed(), known), this.#admin);
      if (path !== "/stats") return response;
      const stats = JSON.parse(await response.text());
      stats.alarm = await this.ctx.storage.getAlarm();
      return Response.json(stats);
    });
  }

  async alarm() {
    const known = await appsKnown(this.env);
    return step(this, (sql) => withApps(this.env, bridge).logStep(this.env, sql, "alarm", "", Date.now(), seed(), known), this.#next);
  }

  #next = (then, sql, results) => withApps(this.env, bridge).logStep(this.env, sql, then, results, Date.now(), seed(), apps.known);
  #admin = (then, sql, results) => withApps(this.env, operator("log admin")).logAdmin(this.env, sql, then, results, Date.now(), seed(), apps.known);
}

/** The registry (src/delivery/registry.rs): the apps managed at runtime, and the delivery logs that hold deliveries. */
export class Registry extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    open("registry", ctx, (sql) => operator("registry").registryOpen(sql));
  }

  fetch(request) {
    return serve("registry", request, (path, body) => {
      // Random bytes for a signing secret the registry may make.
      const entropy = crypto.getRandomValues(new Uint8Array(32));
      return step(this, (sql) => operator("registry").registryStep(this.env, sql, path, body, Date.now(), entropy));
    });
  }
}

// -------------------------------------------------------------- the consumer

/**
 * A batch of the delivery queue (or of its dead-letter queue): the core
 * groups it per destination (src/delivery/consumer.rs); each destination's
 * share is served on its own, side by side. Every message is acked: the
 * delivery logs own retries and recover what is lost, so the queue's own
 * retries are spent only when this invocation fails as a whole.
 */
async function consume(batch, env) {
  // Where each app is and how it is signed: by a current copy of the apps.
  // Without one (the registry cannot be reached) the batch still goes: the
  // delivery logs hand out only what they can tell is still wanted (the
  // declared apps'), and the dead-letter queue needs no apps at all.
  await appsKnown(env);
  const bodies = batch.messages.map((m) => (typeof m.body === "string" ? m.body : JSON.stringify(m.body)));
  const plan = withApps(env, operator("consumer")).consumerPlan(env, batch.queue === DEAD_LETTER_QUEUE, bodies);
  for (const line of plan.logs) console.error(line);
  await Promise.all(plan.calls.map((group) => deliver(env, group)));
  batch.ackAll();
}

/** One destination's share: ask which may go, POST them, report how each ended. */
async function deliver(env, group) {
  const reply = await callObject(env, group);
  if (reply.status !== 200) {
    console.error(`delivery: ${group.destination} ${group.op} answered ${reply.status ?? "nothing"}: ${reply.body.slice(0, 200)}; its log recovers them`);
    return;
  }
  if (group.op !== "/attempt") return;
  const requests = withApps(env, operator("consumer")).consumerRequests(env, group.destination, reply.body, Date.now());
  if (requests.length === 0) return;
  // Wave by wave, as the log said (side by side, but one conversation's
  // events one after another, and after a failure a scout first); an answer
  // that shows the app in trouble sends the later waves back unattempted.
  const answeredAt = Date.now();
  const seen = [];
  let stopped = false;
  const waves = [...new Set(requests.filter((r) => r.impossible === undefined).map((r) => r.wave))].sort((a, b) => a - b);
  for (const wave of waves) {
    const these = requests.filter((r) => r.impossible === undefined && r.wave === wave);
    if (stopped) {
      for (const r of these) seen.push({ id: r.id, unattempted: true });
      continue;
    }
    // An app with a rate: each request waits for its turn (delayMs after the log's answer).
    const answers = await Promise.all(these.map(async (r) => {
      await sleep(answeredAt + (r.delayMs ?? 0) - Date.now());
      return post(r);
    }));
    seen.push(...answers);
    stopped = answers.some((a) => operator("consumer").stopsBatch(a.status));
  }
  const body = withApps(env, operator("consumer")).consumerSettle(env, group.destination, reply.body, JSON.stringify(seen));
  const settle = { ...group, op: "/settle", body };
  for (let tries = 0; tries < 3; tries++) {
    const res = await callObject(env, settle);
    if (res.status === 200) return;
    console.error(`delivery: ${group.destination} /settle answered ${res.status ?? "nothing"}: ${res.body.slice(0, 200)}`);
  }
}

/**
 * One attempt: a signed POST that never follows redirects, with one deadline
 * for the status and, on a failure, for reading at most 4 KiB of the
 * answer, for the log. What is left of the exchange is dropped.
 */
async function post(r) {
  const started = Date.now();
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, r.timeoutMs);
  const seen = { id: r.id, status: null };
  try {
    const res = await fetch(r.url, { method: "POST", headers: r.headers, body: r.body, redirect: "manual", signal: controller.signal });
    seen.status = res.status;
    seen.location = res.headers.get("location") ?? undefined;
    if (res.status < 200 || res.status > 299) seen.excerpt = await excerpt(res);
  } catch (error) {
    seen.error = timedOut ? `no answer within ${r.timeoutMs} ms` : `network error: ${error?.message ?? error}`;
  } finally {
    clearTimeout(timer);
    controller.abort();
    seen.latencyMs = Date.now() - started;
  }
  return seen;
}

/** Up to EXCERPT_BYTES of an answer's body, as text (the attempt's deadline still runs). */
async function excerpt(res) {
  if (res.body === null) return "";
  const reader = res.body.getReader();
  const chunks = [];
  let total = 0;
  try {
    while (total < EXCERPT_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      total += value.byteLength;
    }
  } catch {
    // The deadline aborted the read: keep what came.
  }
  reader.cancel().catch(() => {});
  return new TextDecoder().decode(concat(chunks, total).subarray(0, EXCERPT_BYTES));
}
