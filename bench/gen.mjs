// Generates a realistic mix of Drift webhook events as NDJSON, deterministic
// for a given seed: mostly conversation events (inactive, manual push, push,
// status updates), some other types, sizes like Drift's (a few hundred bytes
// to about 2 KB). Numbers are integers in canonical form so that JSON.parse
// and JSON.stringify keep them exact: the Node and jq references can then
// produce byte-identical output.
//
//   node bench/gen.mjs <lines> [seed] > events.ndjson
import { createWriteStream } from "node:fs";

const lines = Number(process.argv[2] ?? 1000);
let state = BigInt(process.argv[3] ?? 42);
function rand() {
  // xorshift64*
  state ^= state >> 12n; state ^= (state << 25n) & 0xffffffffffffffffn; state ^= state >> 27n;
  return Number(((state * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn) >> 11n) / 2 ** 53;
}
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const words = "hello thanks pricing demo meeting question trial invoice support upgrade team plan call tomorrow great".split(" ");
const sentence = (n) => Array.from({ length: n }, () => pick(words)).join(" ");

function event() {
  const orgId = pick([1, 7, 42, 1001, 2398423]);
  const conversationId = 100000000 + Math.floor(rand() * 3000000000);
  const lastUpdated = 1580000000000 + Math.floor(rand() * 60000000000);
  const token = "vt_" + Math.floor(rand() * 1e12).toString(36);
  const r = rand();
  const attributes = { email: `lead${Math.floor(rand() * 1e6)}@example.com`, tags: [pick(words), pick(words)], score: Math.floor(rand() * 100) };
  if (r < 0.35) return { orgId, type: "conversation_inactive", data: { lastUpdated, conversationId, inboxId: Math.floor(rand() * 100), participants: [Math.floor(rand() * 1e6)] }, token };
  if (r < 0.45) return { orgId, type: "conversation_manual_push", data: { conversationId, lastUpdated, closedBy: Math.floor(rand() * 1e6) }, token };
  if (r < 0.75) return { orgId, type: "conversation_push", data: { lastUpdated, conversationId }, token };
  if (r < 0.85) return { orgId, type: "conversation_status_updated", data: { conversationId, status: "closed", changedAt: lastUpdated }, token };
  if (r < 0.90) return { orgId, type: "conversation_status_updated", data: { conversationId, status: pick(["open", "pending"]), changedAt: lastUpdated }, token };
  if (r < 0.97) {
    return {
      orgId, type: "new_message", token,
      data: { id: Math.floor(rand() * 1e12), conversationId, body: `<p>${sentence(5 + Math.floor(rand() * 120))}</p>`, author: { id: Math.floor(rand() * 1e6), type: pick(["contact", "user"]), bot: false }, type: "chat", createdAt: lastUpdated, attributes },
    };
  }
  return { orgId, type: "contact_identified", token, data: { endUserId: Math.floor(rand() * 1e9), attributes, conversationId } };
}

const out = process.stdout;
let buffer = "";
for (let i = 0; i < lines; i++) {
  buffer += JSON.stringify(event()) + "\n";
  if (buffer.length > 1 << 20) {
    if (!out.write(buffer)) await new Promise((r) => out.once("drain", r));
    buffer = "";
  }
}
out.write(buffer);
