// drift-bridge's Worker entry module. scripts/build.sh bundles it with the
// wasm-bindgen glue of the worker's two wasm modules into build/index.js,
// next to build/bridge_bg.wasm and build/operator_bg.wasm.
//
// The entry owns every await; the wasm decides. Two modules (one crate,
// two features; docs/architecture.md):
//   bridge_bg.wasm    (src/worker/webhook.rs, delivery.rs) started with the
//                     isolate: Drift's webhook, one call per request; every
//                     step of a DeliveryLog, one synchronous call each over
//                     the object's SQL storage.
//   operator_bg.wasm  what runs off the webhook's path (src/worker/mod.rs,
//                     admin.rs, convert.rs): /health, /openapi.json,
//                     /admin/…, /convert, wrong methods and unknown paths
//                     through workers-rs, the Registry's steps, an old
//                     Outbox's drain, and the delivery log's admin operations (which the bridge's
//                     answers with `elsewhere`). Started on its first use.
// Each module keeps, between calls, only the configuration and its copy of
// the apps (set from the registry's answer, `withApps`).
//
// Every Durable Object runs its steps the same way (`Machine`): one
// synchronous call into its state machine, inside transactionSync with the
// alarm it asks for, answers a list of actions (src/worker/effects.rs, in the
// order src/delivery/effects.rs `Effects::actions` gives); the entry does
// them in that order and nothing else: the log lines, the reply, the
// requests to apps (whose answers come back as one more step, `/sent`), the
// calls to other objects (whose results come back as `/called`). The native
// tests' runtime (tests/support/world.rs) does the same with the same list.
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
/** What called into it (the tests check that a webhook's path never does). */
const operatorUsers = new Set();
function operator(user) {
  if (!operatorStarted) {
    operatorGlue.initSync({ module: operatorModule });
    operatorStarted = true;
  }
  operatorUsers.add(user);
  return operatorGlue;
}

const HEADERS = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" };
/** The answer when a delivery log did not store its share: Drift retries (tests/delivery/entry.test.mjs). */
const UNAVAILABLE =
  '{"error":{"code":"unavailable","message":"the events could not be stored for delivery; try again","path":""}}';
/** The answer when the registry could not be reached: the declared apps' deliveries were stored, the rest need Drift to try again. */
const REGISTRY_UNAVAILABLE =
  '{"error":{"code":"unavailable","message":"the apps managed at runtime could not be confirmed (the registry did not answer); the deliveries to the declared apps are stored; try again","path":""}}';
/** At most this much of a failing app's answer is read, for the log. */
const EXCERPT_BYTES = 4096;
/** Requests to apps one step has open at once (a Workers invocation keeps at most 6 connections). */
const CONNECTIONS = 6;

/** MAX_BODY_BYTES, asked of the wasm once per isolate (the configuration cannot change while it lives). */
let limit;

warmUp();

export default {
  fetch(request, env, ctx) {
    if (request.method === "POST") {
      const [path, query] = pathAndQuery(request.url);
      if (path === "/webhooks/drift") return webhook(request, env);
      if (path === "/convert") return convert(request, env, query);
    }
    return operatorFetch(request, env, ctx);
  },
};

/**
 * For the test entry (tests/delivery/entry-with-faults.mjs), which wraps this
 * one: which modules this isolate started, and a way to make each panic.
 * Nothing here is reachable from a request to the production entry.
 */
export const internals = {
  modules: () => ({ bridge: true, operator: operatorStarted, users: [...operatorUsers].sort() }),
  bridgePanic: () => bridge.testPanic(),
  operatorPanic: () => operator("test").testPanic(),
};

/**
 * /health, /openapi.json, /admin/…, wrong methods and unknown paths: the
 * operator's, with the apps' current copy. When the registry cannot be
 * reached they are served with the copy this isolate has (the declared apps
 * are always right): /health says so, and what needs the registry itself
 * answers 503.
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
  if (request.body !== null && request.headers.get("content-length") === null && request.headers.get("upgrade") === null) {
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
 * (a webhook answers 503), or a delivery log goes on with the declared apps
 * alone. The registry answers a change only once every copy taken before it
 * has expired, so a webhook answered 200 after a change's answer is routed
 * by the change.
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

/**
 * Drift's webhook: verified and translated by the bridge's module, which
 * answers what each app's delivery log is to take (`handoffs`). They are
 * handed over side by side; 200 only once every log stored its share (each
 * sends it on at once), else 503 and Drift sends it again (a log drops what
 * it already has).
 */
async function webhook(request, env) {
  limit ??= bridge.maxBodyBytes(env);
  const body = await readBody(request, limit);
  const token = request.headers.get("x-verification-token");
  let failure;
  // The registry could not be reached, and the declared apps' share (if
  // any) was stored: Drift is told so.
  let registryDown = false;
  try {
    await freshApps(env);
  } catch (error) {
    failure = `the apps could not be confirmed: ${error?.message ?? error}`;
    registryDown = true;
  }
  // One receive time for both routings, so that a second one that routes
  // the same way hands off the same deliveries, which are not sent again.
  const now = Date.now();
  // Without a current copy of the apps, only the declared apps are routed.
  const route = () => withApps(env, bridge).webhook(env, body ?? EMPTY, token, now, body === null, failure !== undefined);
  let answer = route();
  if (answer.handoffs === undefined && (failure === undefined || answer.status !== 200)) return respond(answer);
  if (failure !== undefined) {
    // The declared apps' share is stored (they are delivered); the answer is
    // 503 all the same, so that Drift sends it again for the apps managed at
    // runtime (what the declared apps already have is dropped as a repeat).
    if (answer.handoffs !== undefined) {
      const stored = await handOff(env, answer.handoffs);
      if (stored !== undefined) {
        failure += `; the declared apps' share was not stored either: ${stored}`;
        registryDown = false;
      }
    }
  } else {
    const routedBy = apps.takenAt;
    failure = await handOff(env, answer.handoffs);
    // The copy it was routed by expired meanwhile, and the apps may have
    // changed since: route again, and hand off what the change adds (the
    // delivery logs drop what was already handed off).
    if (failure === undefined && routedBy !== -Infinity && Date.now() - routedBy >= appsLease) {
      const version = apps.version;
      try {
        await freshApps(env);
        if (apps.version !== version) {
          const again = route();
          if (again.handoffs !== undefined) failure = await handOff(env, again.handoffs);
          answer = again;
        }
      } catch (error) {
        failure = String(error?.message ?? error);
      }
    }
    if (failure === undefined) return respond(answer);
  }
  console.error(`hand-off failed: ${failure}`);
  if (answer.refusedLog !== undefined) console.log(answer.refusedLog);
  return new Response(registryDown ? REGISTRY_UNAVAILABLE : UNAVAILABLE, { status: 503, headers: HEADERS });
}

/** Hands each app's share to its delivery log, side by side: undefined once all stored them, else why not. */
async function handOff(env, handoffs) {
  const failures = await Promise.all(
    handoffs.map(async ({ name, body }) => {
      try {
        const log = env.DELIVERY_LOG.get(env.DELIVERY_LOG.idFromName(name));
        const res = await log.fetch("https://do/accept", { method: "POST", body });
        if (res.status === 200) return undefined;
        return `${name} answered ${res.status}: ${(await res.text()).slice(0, 200)}`;
      } catch (error) {
        return `${name}: ${error?.message ?? error}`;
      }
    }),
  );
  const failed = failures.filter((f) => f !== undefined);
  return failed.length === 0 ? undefined : failed.join("; ");
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

const sleep = (ms) => (ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : undefined);

/** A random number for the state machine (the jitter of retries). */
const seed = () => (Math.random() * 0x1_0000_0000) >>> 0;

// ---------------------------------------------------------- Durable Objects

/**
 * What every object shares: steps of its state machine, and the actions
 * they answer, done in order.
 *
 * A step is `this.step(sql, reports, path, body)`, one synchronous call into
 * the wasm, run inside transactionSync together with the alarm it asks for
 * (so that the writes and their alarm commit together; a step that throws
 * writes nothing). Then, in the actions' order:
 * - `log`: a line for `wrangler tail`;
 * - `reply`: the answer to the request (after `holdUntil`, if it says);
 * - `post`: requests to apps, sent at once (`delayMs` after, for an app with
 *   a rate), at most CONNECTIONS of a step's at a time; what each saw is
 *   reported as one more step (`/sent`), together with the others that
 *   answered within `reportWithinMs`, or first thing in the next step;
 * - `call`: calls to other objects, side by side; with `report`, the results
 *   of those with a ticket as one more step (`/called`).
 * A request whose step answers nothing but requests (a test delivery) is
 * answered by the step that reports them, at once.
 */
class Machine extends DurableObject {
  /** What apps answered, not yet reported. */
  #reports = [];
  #flushTimer;
  #flushAt = Infinity;

  constructor(ctx, env, kind, create) {
    super(ctx, env);
    this.kind = kind;
    try {
      ctx.storage.transactionSync(() => create(ctx.storage.sql));
    } catch (error) {
      // The object's first step then fails with the reason, and its caller retries.
      console.error(`${kind}: cannot create its tables: ${error?.message ?? error}`);
    }
  }

  /** A request: its step, and its answer (204 when it has none). */
  async fetch(request) {
    const [path] = pathAndQuery(request.url);
    try {
      const body = await request.text();
      return (await this.serve(path, body, true)) ?? new Response("", { status: 204 });
    } catch (error) {
      return new Response(`${this.kind} ${path}: ${error?.message ?? error}`, { status: 500 });
    }
  }

  async alarm() {
    // Throws when the step cannot run: the runtime tries the alarm again.
    await this.serve("alarm", "", false);
  }

  /** Before a step (a delivery log makes sure of its copy of the apps). */
  async prepare() {}

  /**
   * One step and its actions: the reply, as a Response (undefined for none).
   * What apps answered since the last step goes in first (but not into the
   * step of a call's results, which the native runtime reports alone too).
   */
  async serve(path, body, isRequest) {
    await this.prepare();
    const reports = path === "/called" ? "" : this.#takeReports();
    const storage = this.ctx.storage;
    let actions;
    try {
      actions = storage.transactionSync(() => {
        const actions = this.step(storage.sql, reports, path, body);
        for (const a of actions) {
          if (a.do !== "alarm") continue;
          if (a.at === null) storage.deleteAlarm();
          else storage.setAlarm(a.at);
        }
        return actions;
      });
    } catch (error) {
      // Nothing was written: the reports wait for the next step.
      if (reports !== "") this.#report(JSON.parse(reports), 0);
      throw error;
    }
    let reply;
    let waits;
    for (const a of actions) {
      switch (a.do) {
        case "log":
          (a.error ? console.error : console.log)(a.text);
          break;
        case "reply":
          await sleep((a.holdUntil ?? 0) - Date.now());
          reply = new Response(a.body, { status: a.status, headers: a.headers });
          break;
        case "post":
          if (isRequest && reply === undefined) {
            // Answered by what the app answered: reported at once.
            const seen = await Promise.all(a.posts.map((p) => this.send(p)));
            return this.serve("/sent", JSON.stringify(seen), true);
          }
          waits = this.#post(a);
          break;
        case "call":
          this.#keep(this.#call(a));
          break;
      }
    }
    // An alarm lasts until its requests are answered (and so does the
    // object); a request's answer goes first, its requests after it.
    if (waits !== undefined) {
      if (isRequest) this.#keep(waits);
      else await waits;
    }
    return reply;
  }

  /** Keeps the object running until `promise` settles. */
  #keep(promise) {
    this.ctx.waitUntil(promise.catch((error) => console.error(`${this.kind}: ${error?.message ?? error}`)));
  }

  /** Sends a step's requests, CONNECTIONS at a time; each is reported as it is answered. */
  #post(action) {
    const queue = [...action.posts];
    const started = Date.now();
    const worker = async () => {
      for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
        await sleep(started + (p.delayMs ?? 0) - Date.now());
        this.#report([await this.send(p)], action.reportWithinMs);
      }
    };
    return Promise.all(Array.from({ length: Math.min(CONNECTIONS, queue.length) }, worker));
  }

  /** One request to an app: what was seen of it. */
  send(p) {
    return post(p);
  }

  /** Holds what apps answered for at most `within` ms (0: report it now), then reports it as one step. */
  #report(seen, within) {
    this.#reports.push(...seen);
    const due = Date.now() + within;
    if (due >= this.#flushAt) return;
    clearTimeout(this.#flushTimer);
    this.#flushAt = due;
    this.#flushTimer = setTimeout(() => this.#keep(this.#flush()), within);
  }

  async #flush() {
    this.#flushAt = Infinity;
    this.#flushTimer = undefined;
    if (this.#reports.length === 0) return;
    // The reports go in first (serve takes them), with nothing else.
    await this.serve("/sent", "[]", false);
  }

  #takeReports() {
    if (this.#reports.length === 0) return "";
    const text = JSON.stringify(this.#reports);
    this.#reports = [];
    clearTimeout(this.#flushTimer);
    this.#flushAt = Infinity;
    this.#flushTimer = undefined;
    return text;
  }

  /** Calls other objects, side by side; reports the ticketed results as one step. */
  async #call(action) {
    const results = await Promise.all(action.calls.map((c) => callObject(this.env, c)));
    if (!action.report) return;
    await this.serve("/called", JSON.stringify(results.filter((r) => r.ticket !== undefined)), false);
  }
}

/** One call to another object: {ticket, status, body}; status null when the call itself failed. */
async function callObject(env, call) {
  try {
    const namespace = env[call.namespace];
    const res = await namespace.get(namespace.idFromName(call.name)).fetch(`https://do${call.path}`, { method: "POST", body: call.body });
    return { ticket: call.ticket, status: res.status, body: await res.text() };
  } catch (error) {
    return { ticket: call.ticket, status: null, body: String(error?.message ?? error) };
  }
}

/**
 * One request to an app: a POST that never follows redirects, with one
 * deadline for the status and, on a failure, for reading at most 4 KiB of
 * the answer, for the log. What is left of the exchange is dropped.
 */
async function post(p) {
  const started = Date.now();
  const controller = new AbortController();
  let timedOut = false;
  // Aborted only when the deadline passes: an abort makes an exception with
  // a stack, which cost as much as the rest of a delivery's request.
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(TIMED_OUT);
  }, p.timeoutMs);
  const seen = { ticket: p.ticket, status: null, excerpt: "" };
  try {
    const res = await fetch(p.url, { method: "POST", headers: p.headers, body: p.body, redirect: "manual", signal: controller.signal });
    seen.status = res.status;
    if (res.status >= 200 && res.status <= 299) await readOut(res);
    else {
      // Where a redirect pointed (redirects are not followed: the app is told).
      const location = res.headers.get("location");
      if (location !== null) seen.location = location;
      seen.excerpt = await excerpt(res);
    }
  } catch (error) {
    seen.error = timedOut ? `no answer within ${p.timeoutMs} ms` : `network error: ${error?.message ?? error}`;
  } finally {
    clearTimeout(timer);
    seen.latencyMs = Date.now() - started;
  }
  return seen;
}

/** The reason of a request's abort at its deadline (made once: see post). */
const TIMED_OUT = new Error("timed out");

/** The most of a 2xx answer's body read (and dropped) so that its connection can serve the next request. */
const READ_OUT_BYTES = 64 * 1024;

/**
 * Reads a 2xx answer's body to its end, up to READ_OUT_BYTES (the request's
 * deadline still runs): a connection whose answer was read goes back to the
 * pool, while one cancelled is closed, and the next request opens another,
 * which cost more than the rest of a delivery's request.
 */
async function readOut(res) {
  if (res.body === null) return;
  const length = Number(res.headers.get("content-length") ?? NaN);
  if (length <= READ_OUT_BYTES) {
    // Its size is known and small (an empty answer, mostly): one read.
    await res.arrayBuffer().catch(() => {});
    return;
  }
  const reader = res.body.getReader();
  let total = 0;
  try {
    // Most often one read: the end of an empty body.
    for (let part = await reader.read(); !part.done; part = await reader.read()) {
      total += part.value.byteLength;
      if (total > READ_OUT_BYTES) {
        // Too long to read: given up, with its connection.
        reader.cancel().catch(() => {});
        return;
      }
    }
  } catch {
    // The deadline aborted the read: the answer's status is what counts.
  }
}

/** Up to EXCERPT_BYTES of an answer's body, as text (the request's deadline still runs). */
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

/**
 * An app's delivery log (src/delivery/log/): takes a webhook's deliveries
 * (`/accept`) and sends them at once, keeps them, retries them from its
 * alarm, and answers the admin API. Every step by the bridge's module.
 *
 * An app created with `"listen": true` has no URL: its deliveries go over
 * the WebSocket of `drift-bridge listen` (`/listen`, one listener at a
 * time), and wait, as a paused app's, while none is connected.
 */
export class DeliveryLog extends Machine {
  /** Requests sent to the listener and not answered yet, by ticket. */
  #listening = new Map();

  constructor(ctx, env) {
    super(ctx, env, "delivery log", (sql) => bridge.logOpen(env, sql, Date.now()));
    // The listener's keepalive, answered without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  }

  async fetch(request) {
    const [path, query] = pathAndQuery(request.url);
    if (path === "/listen") return this.#listen(query);
    const res = await super.fetch(request);
    // The app was deleted: its listener is told, and not to connect again.
    if (path === "/end" && res.status < 300) this.#endListeners(4001, "the app was deleted");
    return res;
  }

  #endListeners(code, reason) {
    for (const ws of this.ctx.getWebSockets("listener")) {
      try {
        ws.send(JSON.stringify({ kind: "bye", reason }));
        ws.close(code, reason);
      } catch {
        // Already gone.
      }
    }
  }

  /** Where its app is and how it is signed: by a current copy of the apps, or by the declared apps alone (a runtime app's log then waits). */
  async prepare() {
    this.known = await appsKnown(this.env);
  }

  /** The connected listener's WebSocket, if there is one (one that was replaced may still be closing). */
  #listener() {
    return this.ctx.getWebSockets("listener").filter((ws) => ws.readyState === WebSocket.OPEN).at(-1);
  }

  step(sql, reports, path, body) {
    const now = Date.now();
    const listener = this.#listener() !== undefined;
    const actions = withApps(this.env, bridge).logStep(this.env, sql, reports, path, body, now, seed(), this.known, listener);
    // The admin API's operations are the operator's module's (the bridge's
    // is built without them, and said so having done nothing).
    if (actions.length !== 1 || actions[0].do !== "elsewhere") return actions;
    return withApps(this.env, operator("log admin")).logStep(this.env, sql, reports, path, body, now, seed(), this.known, listener);
  }

  /**
   * `drift-bridge listen` connects (the admin API checked the token): the
   * log says whether its app takes a listener and what waits for it; a
   * listener already there makes way for the new one.
   */
  async #listen(query) {
    const key = new URLSearchParams(query).get("key") ?? "";
    const answer = await this.serve("/listen", JSON.stringify({ destination: key }), true);
    const text = (await answer?.text()) ?? "";
    if (answer?.status !== 200) {
      const status = answer?.status ?? 500;
      const code = { 404: "not_found", 409: "not_a_listener" }[status] ?? "internal";
      return new Response(JSON.stringify({ error: { code, message: text, path: "" } }), { status, headers: HEADERS });
    }
    this.#endListeners(4000, "another drift-bridge listen connected to this app");
    const [client, server] = Object.values(new WebSocketPair());
    this.ctx.acceptWebSocket(server, ["listener"]);
    server.send(text);
    // The step above saw no listener and sent nothing: the alarm's step,
    // now that there is one, drains what was held (after the hello).
    this.ctx.waitUntil(this.alarm().catch((error) => console.error(`delivery log: ${error?.message ?? error}`)));
    return new Response(null, { status: 101, webSocket: client });
  }

  /** A request to the app: over the listener's WebSocket for a listening app. */
  send(p) {
    if (p.listen === undefined) return super.send(p);
    const started = Date.now();
    const ws = this.#listener();
    const seen = (what) => ({ ticket: p.ticket, status: null, excerpt: "", latencyMs: Date.now() - started, ...what });
    if (ws === undefined) return Promise.resolve(seen({ error: "no drift-bridge listen is connected" }));
    return new Promise((resolve) => {
      // The listener has the deadline; this one only ends a wait for a listener that went quiet.
      const timer = setTimeout(() => done(seen({ error: `no answer within ${p.timeoutMs} ms` })), p.timeoutMs + 5000);
      const done = (answer) => {
        clearTimeout(timer);
        this.#listening.delete(p.ticket);
        resolve(answer);
      };
      this.#listening.set(p.ticket, { ws, done, seen });
      const { id, type, conversation, attempt } = p.listen;
      try {
        ws.send(JSON.stringify({ kind: "delivery", ticket: p.ticket, id, type, conversation, attempt, headers: p.headers, body: p.body, timeoutMs: p.timeoutMs }));
      } catch (error) {
        done(seen({ error: `the listener could not be sent it: ${error?.message ?? error}` }));
      }
    });
  }

  /** A listener's answer to a delivery: what the app on its machine answered. */
  webSocketMessage(ws, message) {
    if (typeof message !== "string") return;
    let m;
    try {
      m = JSON.parse(message);
    } catch {
      return;
    }
    const waiting = m?.kind === "answer" ? this.#listening.get(m.ticket) : undefined;
    if (waiting === undefined) return;
    const status = Number.isInteger(m.status) && m.status >= 100 && m.status <= 599 ? m.status : null;
    waiting.done(waiting.seen({
      status,
      ...(typeof m.location === "string" ? { location: m.location } : {}),
      excerpt: typeof m.excerpt === "string" ? m.excerpt.slice(0, EXCERPT_BYTES) : "",
      ...(status === null ? { error: typeof m.error === "string" ? m.error.slice(0, 500) : "no answer" } : {}),
      ...(Number.isFinite(m.latencyMs) ? { latencyMs: Math.max(0, Math.round(m.latencyMs)) } : {}),
    }));
  }

  /** The listener is gone: what it had not answered failed (and is tried again, or waits for the next one). */
  webSocketClose(ws) {
    for (const w of [...this.#listening.values()]) if (w.ws === ws) w.done(w.seen({ error: "the listener disconnected before it answered" }));
    try {
      ws.close(1000, "bye");
    } catch {
      // Already closed.
    }
  }

  webSocketError(ws) {
    this.webSocketClose(ws);
  }
}

/**
 * An outbox of drift-bridge 0.3 (src/delivery/outbox.rs): nothing is handed
 * to one any more; its alarm forwards what it still holds to the delivery
 * logs, and forgets what they took (`/called`).
 */
export class Outbox extends Machine {
  constructor(ctx, env) {
    super(ctx, env, "outbox", (sql) => operator("outbox").outboxOpen(sql));
  }

  step(sql, reports, path, body) {
    return operator("outbox").outboxStep(this.env, sql, path, body, Date.now());
  }
}

/** The registry (src/delivery/registry.rs): the apps managed at runtime, and the delivery logs that hold deliveries. */
export class Registry extends Machine {
  constructor(ctx, env) {
    super(ctx, env, "registry", (sql) => operator("registry").registryOpen(sql));
  }

  step(sql, reports, path, body) {
    // Random bytes for a signing secret or an incarnation the registry may make.
    const entropy = crypto.getRandomValues(new Uint8Array(32));
    return operator("registry").registryStep(this.env, sql, path, body, Date.now(), entropy);
  }
}
