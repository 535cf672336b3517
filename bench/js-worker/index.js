// The reference a user would write as a JavaScript Worker: the same
// /webhooks/drift and /convert as drift-bridge, idiomatically (JSON.parse,
// object spreads, JSON.stringify, Web Crypto SHA-256 ids). No streaming size
// checks, no duplicate-key or digit-exact handling: the plain version.
//
// With DESTINATIONS it also hands the events off the way drift-bridge does
// (delivery design v2), with the same tables and steps: one payload per
// webhook, POSTed to an Outbox Durable Object per conversation that stores,
// in one synchronous step per delivery, a deduplication marker and a pending
// row, and sets an alarm; Drift gets 200 only once the outbox answered 200.
// The outbox's alarm forwards the pending rows to a Destination Durable
// Object per app, which stores them and puts a small reference per delivery
// on the queue (bindings OUTBOX, DESTINATION, DELIVERIES). Retries, recovery
// and retention are left out: they do not run per webhook. Like drift-bridge,
// it writes one JSON log line per accepted webhook.
import { DurableObject } from "cloudflare:workers";

const CONVERSATION = new Set(["conversation_inactive", "conversation_manual_push", "conversation_push", "conversation_status_updated"]);
const encoder = new TextEncoder();

async function sha16(text) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
  return Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

const conversationId = (e, type, time, status) =>
  sha16(`drift-bridge/id/v1\0conversation\0${e.orgId}\0${type}\0${e.data.conversationId}\0${time}\0${status ?? ""}`);

function withToken(event, e) {
  return e.token === undefined ? event : { ...event, token: e.token };
}

async function translate(e, now, legacy = "always") {
  if (!CONVERSATION.has(e.type)) return [{ id: await sha16("drift-bridge/id/v1\0content\0" + JSON.stringify(e)), event: e }];
  const status = e.type === "conversation_status_updated" ? e.data.status : undefined;
  const time = (status === undefined ? e.data.lastUpdated : e.data.changedAt) ?? now;
  const allows = legacy === "always" || (legacy === "timeline" && time >= 1590969600000 && time < 1601510400000);
  const out = [{ id: await conversationId(e, e.type, time, status), event: e }];
  const close = async () =>
    out.push({
      id: await conversationId(e, "conversation_status_updated", time, "closed"),
      event: withToken({ orgId: e.orgId, type: "conversation_status_updated", data: { conversationId: e.data.conversationId, status: "closed", changedAt: time } }, e),
    });
  if (e.type === "conversation_inactive" || e.type === "conversation_manual_push") {
    out.push({ id: await conversationId(e, "conversation_push", time), event: { ...e, type: "conversation_push" } });
    if (allows) await close();
  } else if (e.type === "conversation_push") {
    if (allows) await close();
  } else if (status === "closed") {
    for (const type of ["conversation_manual_push", "conversation_push"]) {
      out.push({ id: await conversationId(e, type, time), event: withToken({ orgId: e.orgId, type, data: { conversationId: e.data.conversationId, lastUpdated: time } }, e) });
    }
  }
  return out;
}

/** The parsed DESTINATIONS, once per isolate. */
let destinations;

/** Posts the deliveries the destinations want to the outbox: how many, or -1 when it failed. */
async function handOff(env, inbound, events, now) {
  destinations ??= JSON.parse(env.DESTINATIONS ?? "[]");
  const deliveries = [];
  for (const { id, event } of events) {
    const to = destinations.filter((d) => d.types.includes("*") || d.types.includes(event.type)).map((d) => d.name);
    if (to.length > 0) deliveries.push({ id, type: event.type, to, body: JSON.stringify(event) });
  }
  if (deliveries.length === 0) return 0;
  const scope = CONVERSATION.has(inbound.type) ? `conversation:${inbound.orgId}:${inbound.data.conversationId}` : `event:${events[0].id}`;
  try {
    const outbox = env.OUTBOX.get(env.OUTBOX.idFromName(scope));
    const res = await outbox.fetch("https://outbox/accept", { method: "POST", body: JSON.stringify({ v: 2, scope, at: now, events: deliveries }) });
    await res.text();
    return res.status === 200 ? deliveries.reduce((n, d) => n + d.to.length, 0) : -1;
  } catch {
    return -1;
  }
}

const DEDUP_WINDOW_MS = 24 * 60 * 60 * 1000;
const RECOVERY_GRACE_MS = 300_000;

/** Sets the alarm unless one is due sooner. */
async function schedule(storage, when) {
  const current = await storage.getAlarm();
  if (current === null || current > when) await storage.setAlarm(when);
}

export class Outbox extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, at INTEGER NOT NULL)");
    this.sql.exec("CREATE TABLE IF NOT EXISTS pending_events (event_id TEXT PRIMARY KEY, type TEXT NOT NULL, scope TEXT NOT NULL, at INTEGER NOT NULL, body TEXT NOT NULL)");
    this.sql.exec("CREATE TABLE IF NOT EXISTS pending (id TEXT PRIMARY KEY, destination TEXT NOT NULL, event_id TEXT NOT NULL)");
  }

  /** POST /accept: a marker and a pending row per new delivery, the body once per event, then an alarm. */
  async fetch(request) {
    const handoff = await request.json();
    const now = Date.now();
    let accepted = 0;
    let duplicates = 0;
    for (const event of handoff.events) {
      let stored = false;
      for (const destination of event.to) {
        const id = `${event.id}.${destination}`;
        const seen = this.sql.exec("SELECT at FROM seen WHERE id = ?", id).toArray()[0];
        if (seen && seen.at > now - DEDUP_WINDOW_MS) {
          duplicates++;
          continue;
        }
        this.sql.exec("INSERT OR REPLACE INTO seen (id, at) VALUES (?, ?)", id, now);
        if (!stored) {
          this.sql.exec("INSERT OR IGNORE INTO pending_events (event_id, type, scope, at, body) VALUES (?, ?, ?, ?, ?)", event.id, event.type, handoff.scope, handoff.at, event.body);
          stored = true;
        }
        this.sql.exec("INSERT OR REPLACE INTO pending (id, destination, event_id) VALUES (?, ?, ?)", id, destination, event.id);
        accepted++;
      }
    }
    if (accepted > 0) await schedule(this.ctx.storage, now);
    return Response.json({ accepted, duplicates });
  }

  /** Forwards the pending deliveries to their destinations' logs. */
  async alarm() {
    const rows = this.sql.exec("SELECT p.id, p.destination, e.event_id, e.type, e.scope, e.at, e.body FROM pending p JOIN pending_events e ON e.event_id = p.event_id").toArray();
    const byDestination = new Map();
    for (const r of rows) byDestination.set(r.destination, [...(byDestination.get(r.destination) ?? []), r]);
    for (const [destination, deliveries] of byDestination) {
      const log = this.env.DESTINATION.get(this.env.DESTINATION.idFromName(`destination:${destination}`));
      const res = await log.fetch("https://do/add", { method: "POST", body: JSON.stringify({ destination, deliveries }) });
      await res.text();
      if (res.status === 200) for (const r of deliveries) this.sql.exec("DELETE FROM pending WHERE id = ?", r.id);
    }
    this.sql.exec("DELETE FROM pending_events WHERE event_id NOT IN (SELECT event_id FROM pending)");
  }
}

export class Destination extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec("CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, event_id TEXT NOT NULL, type TEXT NOT NULL, scope TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL, due_at INTEGER NOT NULL)");
  }

  /** POST /add: stores the deliveries and queues a reference to each new one. */
  async fetch(request) {
    const { destination, deliveries } = await request.json();
    const now = Date.now();
    const added = [];
    for (const d of deliveries) {
      const cursor = this.sql.exec("INSERT OR IGNORE INTO deliveries (id, event_id, type, scope, body, status, created_at, due_at) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)", d.id, d.event_id, d.type, d.scope, d.body, d.at, now + RECOVERY_GRACE_MS);
      if (cursor.rowsWritten > 0) added.push({ body: JSON.stringify({ v: 2, d: destination, id: d.id, g: 1 }) });
    }
    if (added.length > 0) {
      await schedule(this.ctx.storage, now + RECOVERY_GRACE_MS);
      await this.env.DELIVERIES.sendBatch(added);
    }
    return Response.json({ added: added.length });
  }

  async alarm() {}
}

const json = (body, status = 200) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (request.method !== "POST") return json({ error: { code: "method_not_allowed" } }, 405);
    let event;
    try {
      event = JSON.parse(await request.text());
    } catch (e) {
      return json({ error: { code: "invalid_json", message: e.message } }, 400);
    }
    if (url.pathname === "/webhooks/drift") {
      const tokens = (env.DRIFT_VERIFICATION_TOKEN ?? "").split(",");
      const presented = request.headers.get("x-verification-token") ?? event.token;
      if (!tokens.includes(presented)) return json({ error: { code: "unauthorized" } }, 401);
      const now = Date.now();
      const events = await translate(event, now);
      const answer = { received: events[0].id, events: events.map(({ id, event }) => ({ id, type: event.type })) };
      const deliveries = env.DESTINATIONS ? await handOff(env, event, events, now) : 0;
      if (deliveries < 0) return json({ error: { code: "unavailable" } }, 503);
      // The one JSON log line per webhook that drift-bridge writes too (README: structured logs).
      const scope = CONVERSATION.has(event.type) ? `conversation:${event.orgId}:${event.data.conversationId}` : `event:${events[0].id}`;
      console.log(JSON.stringify({ kind: "webhook", status: 200, eventId: events[0].id, type: event.type, scope, events: events.length, deliveries }));
      return json(answer);
    }
    if (url.pathname === "/convert") {
      return json({ events: await translate(event, Date.now(), url.searchParams.get("legacy") ?? "always") });
    }
    return json({ error: { code: "not_found" } }, 404);
  },
};
