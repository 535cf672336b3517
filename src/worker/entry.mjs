// drift-bridge's Worker entry module. scripts/build.sh bundles it with the
// wasm-bindgen glue of the worker's two wasm modules into build/index.js,
// next to build/hot_bg.wasm and build/index_bg.wasm.
//
// Why it exists: through workers-rs, every request pays for converting the
// Request, its Headers and the Response between JavaScript and Rust, for a
// future turned into a promise, and for glue on each call, and all that costs
// more CPU than parsing, translating and hashing the event. So the two hot
// routes are served here, with ONE call into the wasm per request, over bytes:
//
//   POST /webhooks/drift   read the body (413 over MAX_BODY_BYTES) → webhook()
//                          → answer, or first hand the deliveries to the outbox
//   POST /convert          read the body → convert() → answer
//
// The hand-off, the Durable Object work of every webhook with deliveries, is
// served the same way, one synchronous call per step over the object's SQL
// storage, with the awaiting done here: the outbox (`Outbox`: /accept and its
// alarm) and the delivery log's /add (`Destination`).
//
// The two wasm modules (one crate, two features; README, "Architecture"):
//   hot_bg.wasm    those calls (src/worker/hot.rs, outbox.rs, intake.rs),
//                  without workers-rs; started with the isolate, and warmed up
//   index_bg.wasm  workers-rs (src/worker/): everything else that `fetch`
//                  gets (/health, /admin/…, wrong methods, unknown paths,
//                  test routes), the queue consumer, and the delivery log's
//                  other operations (destination.rs), which `Destination`
//                  wraps. It is started on its first use: an isolate that
//                  only takes webhooks and hands them off never instantiates
//                  it.
//
// Panics: both modules are built with panic = "abort", so a panic traps. The
// glue then marks that instance dead and starts a fresh one on the next call
// into it (wasm-bindgen --force-enable-abort-handler; each module registers
// the handler as it starts). Only the requests in flight in that isolate that
// were inside that module fail.

import { DurableObject, env as startupEnv } from "cloudflare:workers";
import hotModule from "./hot_bg.wasm";
import * as hot from "./hot.js";
import workersModule from "./index_bg.wasm";
import * as workersGlue from "./drift_bridge.js";

hot.initSync({ module: hotModule });

/** The workers-rs module's exports, instantiated on the first call. */
let workersStarted = false;
function workers() {
  if (!workersStarted) {
    workersGlue.initSync({ module: workersModule });
    workersStarted = true;
  }
  return workersGlue;
}

const HEADERS = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" };
const SPACE = 0x20;
const NEWLINE = 0x0a;
const decoder = new TextDecoder();
/** The answer when the outbox did not store the hand-off: Drift retries (tests/delivery/entry.test.mjs). */
const UNAVAILABLE =
  '{"error":{"code":"unavailable","message":"the events could not be stored for delivery; try again","path":""}}';

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
        if (path === "/__test/hot-panic") hot.testPanic();
        // Which wasm modules this isolate has started.
        if (path === "/__test/modules") return Response.json({ hot: true, workers: workersStarted });
      }
    }
    return workers().fetch(request, env, ctx);
  },

  queue(batch, env, ctx) {
    return workers().queue(batch, env, ctx);
  },
};

async function webhook(request, env) {
  limit ??= hot.maxBodyBytes(env);
  const body = await readBody(request, limit);
  const token = request.headers.get("x-verification-token");
  const out = hot.webhook(env, body ?? EMPTY, token, Date.now(), body === null);
  if (out[3] === SPACE) return answer(out);
  // "200\n<scope>\n<log>\n<log if refused>\n<body>\n<payload>": 200 only
  // once the outbox has the deliveries.
  const scopeEnd = out.indexOf(NEWLINE, 4);
  const logEnd = out.indexOf(NEWLINE, scopeEnd + 1);
  const refusedEnd = out.indexOf(NEWLINE, logEnd + 1);
  const bodyEnd = out.indexOf(NEWLINE, refusedEnd + 1);
  const scope = decoder.decode(out.subarray(4, scopeEnd));
  let failure;
  try {
    const outbox = env.OUTBOX.get(env.OUTBOX.idFromName(scope));
    const res = await outbox.fetch("https://outbox/accept", { method: "POST", body: out.subarray(bodyEnd + 1) });
    if (res.status === 200) {
      console.log(decoder.decode(out.subarray(scopeEnd + 1, logEnd)));
      return new Response(out.subarray(refusedEnd + 1, bodyEnd), { status: 200, headers: HEADERS });
    }
    failure = `the outbox answered ${res.status}: ${(await res.text()).slice(0, 200)}`;
  } catch (error) {
    failure = String(error?.message ?? error);
  }
  console.error(`hand-off to the outbox ${scope} failed: ${failure}`);
  console.log(decoder.decode(out.subarray(logEnd + 1, refusedEnd)));
  return new Response(UNAVAILABLE, { status: 503, headers: HEADERS });
}

async function convert(request, env, query) {
  limit ??= hot.maxBodyBytes(env);
  const body = await readBody(request, limit);
  return answer(hot.convert(env, body ?? EMPTY, query, Date.now(), body === null));
}

/** "<status> <log>\n<body>" → the log line, if any, and the Response. */
function answer(out) {
  const status = out[0] * 100 + out[1] * 10 + out[2] - 48 * 111;
  const logEnd = out.indexOf(NEWLINE, 4);
  if (logEnd > 4) console.log(decoder.decode(out.subarray(4, logEnd)));
  return new Response(out.subarray(logEnd + 1), { status, headers: HEADERS });
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
 * Runs the hot path once while the isolate starts (on Workers, that overlaps
 * the TLS handshake of the first request), so that the first request finds
 * the configuration read and the code it runs compiled, and writes the
 * isolate's start line. Nothing is handed off or stored. (Running it more
 * often, so that V8 also optimises that code, costs more at start than it
 * saves the first request: bench/README.md, "Cold start".)
 */
function warmUp() {
  try {
    limit = hot.maxBodyBytes(startupEnv);
    // The isolate's start line. Also, the first console.log of an isolate
    // costs milliseconds, which this takes off the first request.
    console.log(hot.warmUp(startupEnv));
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

/**
 * Creates a Durable Object's tables as it starts (`open`: a hot module
 * export). A failure is logged; the object's first statement then fails with
 * the reason, and its caller retries.
 */
function createTables(kind, open, sql) {
  try {
    open(sql);
  } catch (error) {
    console.error(`${kind}: ${error?.message ?? error}`);
  }
}

/**
 * The outbox of a deduplication scope (src/worker/outbox.rs). On the path of
 * every webhook with deliveries, so served like the webhook: each step one
 * synchronous call into the hot path's module over the object's SQL storage;
 * what must be awaited (the alarm, the calls to the delivery logs) is done
 * here. A panic fails the call it happened in (a 500, or an alarm the
 * runtime retries); the next call finds a fresh instance, and this object
 * keeps no state in it.
 */
export class Outbox extends DurableObject {
  /** The alarm as last set here: undefined unknown, null none, else ms. */
  #alarm;

  constructor(ctx, env) {
    super(ctx, env);
    createTables("outbox", hot.outboxOpen, ctx.storage.sql);
  }

  async fetch(request) {
    const [path] = pathAndQuery(request.url);
    try {
      if (path === "/accept") {
        const body = new Uint8Array(await request.arrayBuffer());
        const now = Date.now();
        const reply = hot.outboxAccept(this.env, this.ctx.storage.sql, body, now);
        // Forward at once.
        if (!reply.startsWith('{"accepted":0,')) await this.#schedule(now);
        return new Response(reply);
      }
      if (path === "/stats" && this.env.DRIFT_BRIDGE_TEST_ROUTES === "1") {
        return new Response(hot.outboxStats(this.ctx.storage.sql, await this.ctx.storage.getAlarm()));
      }
      return new Response("unknown outbox operation", { status: 404 });
    } catch (error) {
      return new Response(`outbox ${path}: ${error?.message ?? error}`, { status: 500 });
    }
  }

  /** Forwards what is due to the delivery logs, forgets what left the window, sets the next alarm (or none). */
  async alarm() {
    // The alarm that fired is gone.
    this.#alarm = null;
    const sql = this.ctx.storage.sql;
    const now = Date.now();
    const [more, ...calls] = hot.outboxDue(sql, now);
    for (const [destination, body, ids, tries] of calls) {
      let error = null;
      try {
        const log = this.env.DESTINATION.get(this.env.DESTINATION.idFromName(`destination:${destination}`));
        const res = await log.fetch("https://do/add", { method: "POST", body });
        const text = await res.text();
        if (res.status !== 200) error = text;
      } catch (e) {
        error = String(e?.message ?? e);
      }
      hot.outboxForwarded(sql, destination, ids, tries, error, now);
    }
    // -1: nothing left, and the alarm that fired is gone. (A hand-off
    // accepted while this one awaited left rows, so a time.)
    const next = hot.outboxFinish(this.env, sql, now, more);
    if (next >= 0) await this.#set(next);
  }

  /** Makes sure the alarm fires no later than `when`. */
  async #schedule(when) {
    if (this.#alarm === undefined) this.#alarm = await this.ctx.storage.getAlarm();
    if (this.#alarm === null || this.#alarm > when) await this.#set(when);
  }

  async #set(when) {
    await this.ctx.storage.setAlarm(when);
    this.#alarm = when;
  }
}

/**
 * A destination's delivery log (src/worker/destination.rs). `/add`, the one
 * operation on the path of every webhook with deliveries, is served like the
 * webhook: one call into the hot path's module (src/worker/intake.rs), then
 * the alarm and the queue from here. Every other operation, and the alarm,
 * go to the workers-rs object, made on the first of them. After a panic
 * that wasm instance is replaced, and with it the object: it is made again,
 * from the same state and env, on the next call.
 */
export class Destination extends DurableObject {
  #inner;
  #instance;

  constructor(ctx, env) {
    super(ctx, env);
    createTables("destination", hot.destinationOpen, ctx.storage.sql);
  }

  /** The workers-rs object. */
  #current() {
    // A call into the wasm first: it starts the fresh instance if a panic
    // killed the old one, and instanceId counts the instances.
    const id = workers().__worker_init_state().instanceId;
    if (this.#inner === undefined || this.#instance !== id) {
      this.#inner = new workersGlue.Destination(this.ctx, this.env);
      this.#instance = id;
    }
    return this.#inner;
  }

  async fetch(request) {
    if (pathAndQuery(request.url)[0] !== "/add") return this.#current().fetch(request);
    try {
      const body = new Uint8Array(await request.arrayBuffer());
      const [reply, wake, name, sends] = hot.destinationAdd(this.env, this.ctx.storage.sql, body, Date.now());
      // The alarm first, then the queue, as every operation does.
      if (wake >= 0) {
        const current = await this.ctx.storage.getAlarm();
        if (current === null || current > wake) {
          await this.ctx.storage.setAlarm(wake);
          // The workers-rs object, if any, cached the alarm it last set.
          if (this.#inner !== undefined) this.#current().forgetAlarm();
        }
      }
      await enqueue(this.env, name, sends);
      return new Response(reply);
    } catch (error) {
      return new Response(`destination /add: ${error?.message ?? error}`, { status: 500 });
    }
  }

  alarm() {
    return this.#current().alarm();
  }
}

/**
 * Sends the queue messages, send by send (each within the queue's limits).
 * A refused send leaves its deliveries queued: the delivery log's alarm
 * sends them again after the grace period. (src/worker/bindings.rs,
 * `enqueue`, does the same for the workers-rs module.)
 */
async function enqueue(env, name, sends) {
  const total = sends.reduce((n, batch) => n + batch.length, 0);
  let sent = 0;
  try {
    if (env.DRIFT_BRIDGE_TEST_QUEUE_FAILS === "1") throw new Error("the delivery queue refused the send (DRIFT_BRIDGE_TEST_QUEUE_FAILS)");
    for (const batch of sends) {
      await env.DELIVERIES.sendBatch(batch.map((body) => ({ body, contentType: "json" })));
      sent += batch.length;
    }
  } catch (error) {
    console.error(`destination ${name}: ${total - sent} of ${total} deliveries not queued yet: ${error?.message ?? error}`);
  }
}
