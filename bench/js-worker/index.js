// The reference a user would write as a JavaScript Worker: the same
// /webhooks/drift and /convert as drift-bridge, idiomatically (JSON.parse,
// object spreads, JSON.stringify, Web Crypto SHA-256 ids). No streaming size
// checks, no duplicate-key or digit-exact handling: the plain version.
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
      const events = await translate(event, Date.now());
      return json({ received: events[0].id, events: events.map(({ id, event }) => ({ id, type: event.type })) });
    }
    if (url.pathname === "/convert") {
      return json({ events: await translate(event, Date.now(), url.searchParams.get("legacy") ?? "always") });
    }
    return json({ error: { code: "not_found" } }, 404);
  },
};
