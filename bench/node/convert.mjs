// The reference a user would write in Node.js: read NDJSON line by line,
// JSON.parse, apply drift-bridge's rules with object spreads, compute the same
// ids (SHA-256), JSON.stringify. Byte-identical to `drift-bridge convert`
// (legacy policy "always") on inputs whose numbers are safe integers.
//
//   node bench/node/convert.mjs < events.ndjson > out.ndjson
import { createHash } from "node:crypto";
import { createInterface } from "node:readline";

const CONVERSATION = new Set(["conversation_inactive", "conversation_manual_push", "conversation_push", "conversation_status_updated"]);

function conversationId(e, type, time, status) {
  const h = createHash("sha256");
  h.update(`drift-bridge/id/v1\0conversation\0${e.orgId}\0${type}\0${e.data.conversationId}\0${time}\0`);
  if (status !== undefined) h.update(status);
  return h.digest("hex").slice(0, 16);
}

const contentId = (json) => createHash("sha256").update("drift-bridge/id/v1\0content\0").update(json).digest("hex").slice(0, 16);

function legacyClose(e, time) {
  const close = { orgId: e.orgId, type: "conversation_status_updated", data: { conversationId: e.data.conversationId, status: "closed", changedAt: time } };
  if (e.token !== undefined) close.token = e.token;
  return close;
}

function fromClose(e, type, time) {
  const push = { orgId: e.orgId, type, data: { conversationId: e.data.conversationId, lastUpdated: time } };
  if (e.token !== undefined) push.token = e.token;
  return push;
}

function translate(e, now) {
  if (!CONVERSATION.has(e.type)) {
    const json = JSON.stringify(e);
    return [[contentId(json), json]];
  }
  const status = e.type === "conversation_status_updated" ? e.data.status : undefined;
  const time = (status === undefined ? e.data.lastUpdated : e.data.changedAt) ?? now;
  const out = [[conversationId(e, e.type, time, status), e]];
  switch (e.type) {
    case "conversation_inactive":
    case "conversation_manual_push":
      out.push([conversationId(e, "conversation_push", time), { ...e, type: "conversation_push" }]);
      out.push([conversationId(e, "conversation_status_updated", time, "closed"), legacyClose(e, time)]);
      break;
    case "conversation_push":
      out.push([conversationId(e, "conversation_status_updated", time, "closed"), legacyClose(e, time)]);
      break;
    case "conversation_status_updated":
      if (status === "closed") {
        out.push([conversationId(e, "conversation_manual_push", time), fromClose(e, "conversation_manual_push", time)]);
        out.push([conversationId(e, "conversation_push", time), fromClose(e, "conversation_push", time)]);
      }
  }
  return out.map(([id, event]) => [id, typeof event === "string" ? event : JSON.stringify(event)]);
}

const now = Date.now();
let out = "";
for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) continue;
  for (const [id, json] of translate(JSON.parse(line), now)) out += `{"id":"${id}","event":${json}}\n`;
  if (out.length > 1 << 16) {
    if (!process.stdout.write(out)) await new Promise((r) => process.stdout.once("drain", r));
    out = "";
  }
}
process.stdout.write(out);
