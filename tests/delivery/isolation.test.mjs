// The admin token opens the admin API and nothing more; a name used again is
// a new app. Each finding of the review, in real workerd, as a user hits it:
// secrets out of an app's reach, an app as its incarnation, a narrowed
// filter decided at sending, an app's words quoted in Slack, changes tried
// again, the registry needed only where it must be, and the low ones
// (bodies without a length, private addresses, framing, URLs in logs,
// metric series, expired secrets).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";
import { ADMIN, TOKEN, receiver, persistDir, startWorker, webhook, until, quiet, conversation } from "./support.mjs";

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const LEASE_MS = 300;

async function bridge(destinations = [], extra = {}, faults = false) {
  const mf = await startWorker({ destinations, persist: persistDir(), faults, extra: { APPS_CACHE_MS: String(LEASE_MS), ...extra } });
  cleanups.push(async () => { await mf.dispose().catch(() => {}); });
  return mf;
}

async function app(behave = () => 200) {
  const r = await receiver(behave);
  cleanups.push(() => r.close());
  return r;
}

/** One admin call: {status, body, text, headers}. */
async function call(mf, method, path, body, headers = {}) {
  const res = await mf.dispatchFetch(`http://bridge.test${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

const typeOf = (q) => JSON.parse(q.body).type;
const orgOf = (q) => JSON.parse(q.body).orgId;

test("a runtime app can name no binding but its own: the admin token never leaves the bridge", async () => {
  const r = await app();
  const mf = await bridge();
  for (const name of ["ADMIN_TOKEN", "DRIFT_VERIFICATION_TOKEN", "DESTINATIONS", "SIGNING_SECRET", "NOT_SET_ANYWHERE"]) {
    const refused = await call(mf, "POST", "/admin/destinations", { name: "x", url: r.url, types: ["*"], signed: false, token: "replace", tokenSecret: name });
    assert.equal(refused.status, 400, `${name}: ${refused.text}`);
    assert.equal(refused.body.error.path, "tokenSecret");
    // The same words whether the binding exists or not: nothing learnt of which do.
    assert.match(refused.body.error.message, /may name only a binding whose name starts with APP_TOKEN_/, name);
  }
  assert.equal(r.requests.length, 0);
  // The token itself, given to the API: delivered, never shown.
  const created = await call(mf, "POST", "/admin/destinations", { name: "x", url: r.url, types: ["*"], signed: false, token: "replace", replacementToken: "tok-a1b2c3" });
  assert.equal(created.status, 201, created.text);
  const tested = await call(mf, "POST", "/admin/destinations/x/test");
  assert.equal(tested.status, 200, tested.text);
  assert.equal(JSON.parse(r.requests.at(-1).body).token, "tok-a1b2c3");
  for (const shown of [created.text, tested.text, (await call(mf, "GET", "/admin/destinations")).text, (await call(mf, "GET", "/admin/changes")).text, mf.logs()]) {
    assert.ok(!shown.includes("tok-a1b2c3"), "the token was shown");
    assert.ok(!shown.includes(ADMIN), "the admin token was shown");
  }
});

test("a name used again is a new app: nothing held, paused, counted or dead-lettered reaches it", async () => {
  const old = await app();
  const fresh = await app();
  const mf = await bridge();
  // reuse: org 1, every type; paused with 3 held.
  assert.equal((await call(mf, "POST", "/admin/destinations", { name: "reuse", url: old.url, types: ["*"], orgIds: [1], signed: false })).status, 201);
  assert.equal((await call(mf, "POST", "/admin/destinations/reuse/pause")).status, 200);
  assert.equal((await webhook(mf, conversation(7))).status, 200);
  await until(async () => (await call(mf, "GET", "/admin/destinations/reuse")).body.destination.held === 3, 10000, "3 held");
  // Deleted, then added again with another URL, orgIds [2] and only conversation_push.
  assert.equal((await call(mf, "DELETE", "/admin/destinations/reuse")).status, 200);
  const again = await call(mf, "POST", "/admin/destinations", { name: "reuse", url: fresh.url, types: ["conversation_push"], orgIds: [2], signed: false });
  assert.equal(again.status, 201, again.text);
  const now = (await call(mf, "GET", "/admin/destinations/reuse")).body.destination;
  assert.deepEqual([now.state, now.held, now.counts.failed, now.configured], ["active", 0, 0, true]);
  assert.equal((await call(mf, "POST", "/admin/destinations/reuse/resume")).status, 200);
  await quiet(1500);
  assert.equal(old.requests.length + fresh.requests.length, 0, "neither URL got the old app's deliveries");
  // What the old one held is listed apart, as its dead letters.
  const listing = (await call(mf, "GET", "/admin/deliveries?limit=50")).body.deliveries;
  assert.equal(listing.length, 3);
  for (const d of listing) {
    assert.deepEqual([d.destination, d.status, d.configured, d.reason], ["reuse", "failed", false, "its app reuse was removed"]);
    assert.match(d.incarnation, /^[0-9a-f]{16}$/);
  }
  assert.equal((await call(mf, "GET", "/admin/deliveries?destination=reuse")).body.deliveries.length, 0, "the new app has no history");
  // Replaying an old dead letter never sends it to the new URL.
  const replay = await call(mf, "POST", `/admin/deliveries/${listing[0].id}/replay`);
  assert.equal(replay.status, 409, replay.text);
  assert.match(replay.text, /its app reuse was removed/);
  // The new one gets what it subscribes to, of its organisation, and its own metrics.
  assert.equal((await webhook(mf, conversation(8))).status, 200);
  assert.equal((await webhook(mf, { ...conversation(9), orgId: 2 })).status, 200);
  await until(() => fresh.requests.length === 1, 10000, "the new app's push");
  await quiet(500);
  assert.deepEqual(fresh.requests.map((q) => [typeOf(q), orgOf(q)]), [["conversation_push", 2]]);
  const metrics = (await call(mf, "GET", "/admin/metrics?destination=reuse")).body.destinations[0];
  assert.equal(metrics.series.reduce((n, s) => n + s.accepted, 0), 1, "counted from its creation");
});

test("a PATCH that narrows an app's types or organisations decides what its held deliveries become", async () => {
  const r = await app();
  const mf = await bridge();
  assert.equal((await call(mf, "POST", "/admin/destinations", { name: "crm", url: r.url, types: ["*"], signed: false })).status, 201);
  await call(mf, "POST", "/admin/destinations/crm/pause");
  assert.equal((await webhook(mf, conversation(7))).status, 200);
  await until(async () => (await call(mf, "GET", "/admin/destinations/crm")).body.destination.held === 3, 10000, "3 held");
  assert.equal((await call(mf, "PATCH", "/admin/destinations/crm", { types: ["conversation_push"] })).status, 200);
  await call(mf, "POST", "/admin/destinations/crm/resume");
  await until(() => r.requests.length >= 1, 10000, "the push");
  await quiet(1500);
  assert.deepEqual(r.requests.map(typeOf), ["conversation_push"]);
  const failed = (await call(mf, "GET", "/admin/deliveries?destination=crm&status=failed")).body.deliveries;
  assert.deepEqual(failed.map((d) => d.reason).sort(), [
    "its app crm no longer subscribes to conversation_inactive",
    "its app crm no longer subscribes to conversation_status_updated",
  ]);
});

test("an app's words reach a Slack channel escaped and quoted, never as a mention or a link", async () => {
  const evil = "<!channel> urgent: <https://evil.example/login|Open the admin page> & co";
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(evil);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  const chat = await app();
  const mf = await bridge([{ name: "crm", url: `http://127.0.0.1:${server.address().port}/hook`, types: ["conversation_push"] }], {
    ALERTS: JSON.stringify([{ name: "chat", url: chat.url, format: "slack" }]),
    PUBLIC_URL: "https://bridge.example",
    CIRCUIT_FAILURES: "2",
    CIRCUIT_PROBE_SECONDS: "60",
  });
  for (const id of [1, 2, 3]) assert.equal((await webhook(mf, conversation(id, "conversation_push"))).status, 200);
  await until(() => chat.requests.some((q) => JSON.parse(q.body).text.includes("tripped")), 20000, "the tripped alert");
  const text = chat.requests.map((q) => JSON.parse(q.body).text).find((t) => t.includes("tripped"));
  assert.ok(!text.includes("<!channel>") && !text.includes("<https://evil.example"), text);
  assert.match(text, /\nThe app said:\n>the app answered 500: &lt;!channel&gt; urgent: &lt;https:\/\/evil\.example\/login\|Open the admin page&gt; &amp; co/);
  // The only link is the bridge's own.
  assert.deepEqual([...text.matchAll(/<(https?:[^|>]+)\|/g)].map((m) => m[1]), ["https://bridge.example/admin.html#destination=crm"]);
});

test("a rotation or a create tried again loses no secret", async () => {
  const r = await app();
  const mf = await bridge();
  const key = { "idempotency-key": "create-crm-1" };
  const first = await call(mf, "POST", "/admin/destinations", { name: "crm", url: r.url, types: ["conversation_push"] }, key);
  assert.equal(first.status, 201, first.text);
  // Its answer was lost; tried again under the same key: the same answer, the secret with it.
  const again = await call(mf, "POST", "/admin/destinations", { name: "crm", url: r.url, types: ["conversation_push"] }, key);
  assert.equal(again.status, 201, again.text);
  assert.equal(again.body.secret, first.body.secret);
  assert.equal(again.headers.get("idempotent-replayed"), "true");
  const other = await call(mf, "POST", "/admin/destinations", { name: "other", url: r.url, types: ["*"] }, key);
  assert.equal(other.status, 422, other.text);
  assert.equal(other.body.error.code, "idempotency_key_reused");
  // A rotation tried again without a key keeps the secret the app verifies with.
  const original = first.body.secret;
  assert.equal((await call(mf, "POST", "/admin/destinations/crm/rotate-secret", { overlapSeconds: 3600 })).status, 200);
  assert.equal((await call(mf, "POST", "/admin/destinations/crm/rotate-secret", { overlapSeconds: 3600 })).status, 200);
  assert.equal((await webhook(mf, conversation(5, "conversation_push"))).status, 200);
  await until(() => r.requests.length === 1, 10000, "a delivery");
  const q = r.requests[0];
  assert.doesNotThrow(() => new Webhook(original).verify(q.body, q.headers), "still verifies with the secret it had");
});

test("without its registry the bridge answers /health, delivers its declared apps and keeps its logs' alarms", async () => {
  let attempts = 0;
  const legacy = await app(() => (++attempts === 1 ? 503 : 200));
  const mf = await bridge(
    [{ name: "legacy", url: legacy.url, types: ["conversation_status_updated"] }],
    { TEST_REGISTRY_DOWN: "1", RETRY_BASE_SECONDS: "1" },
    true,
  );
  const health = await mf.dispatchFetch("http://bridge.test/health");
  assert.equal(health.status, 200);
  const body = await health.json();
  assert.equal(body.registry, "unreachable");
  assert.equal(body.configured, true);
  const detailed = await call(mf, "GET", "/health");
  assert.ok(detailed.body.details.problems.some((p) => p.startsWith("REGISTRY: could not be reached")), detailed.text);
  // A webhook: the declared app's share is stored and delivered (after a
  // retry the log's alarm schedules); the answer is 503, so that Drift sends
  // it again for any app managed at runtime.
  const res = await webhook(mf, conversation(7));
  assert.equal(res.status, 503, res.body);
  assert.match(JSON.parse(res.body).error.message, /deliveries to the declared apps are stored/);
  await until(() => legacy.accepted().length === 1, 20000, "the declared app's delivery, retried");
  // Drift sends it again: not delivered twice.
  assert.equal((await webhook(mf, conversation(7))).status, 503);
  await quiet(1500);
  assert.equal(legacy.accepted().length, 1);
  // What needs the registry says so, and that trying again is safe.
  const change = await call(mf, "POST", "/admin/destinations", { name: "x", url: legacy.url, types: ["*"] });
  assert.equal(change.status, 503, change.text);
  assert.equal(change.body.error.code, "registry_unavailable");
});

test("the low ones: body limits, private addresses, framing, URLs in logs, metric series, expired secrets", async () => {
  const r = await app();
  const mf = await bridge([{ name: "all", url: r.url, types: ["*"] }], { MAX_BODY_BYTES: "4096" });
  // An admin body without Content-Length is held to the webhook's limit.
  const started = Date.now();
  const big = new ReadableStream({
    pull(controller) {
      controller.enqueue(new TextEncoder().encode("x".repeat(65536)));
      if (Date.now() - started > 5000) controller.close();
    },
  });
  const chunked = await mf.dispatchFetch("http://bridge.test/admin/destinations", {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}` },
    body: big,
    duplex: "half",
  });
  assert.equal(chunked.status, 413, await chunked.text());
  assert.ok(Date.now() - started < 4000, "refused as soon as it passed the limit");
  // Private, link-local, unique-local and (off local development) loopback addresses.
  for (const url of ["https://169.254.169.254/latest/meta-data/", "https://10.0.0.1:6379/", "https://[fd00::1]:2375/"]) {
    const refused = await call(mf, "POST", "/admin/destinations", { name: "p", url, types: ["*"] });
    assert.equal(refused.status, 400, `${url}: ${refused.text}`);
    assert.match(refused.body.error.message, /not on the internet/);
  }
  // The admin API is never framed nor sniffed.
  const listing = await call(mf, "GET", "/admin/destinations");
  assert.equal(listing.headers.get("x-frame-options"), "DENY");
  assert.equal(listing.headers.get("x-content-type-options"), "nosniff");
  assert.match(listing.headers.get("content-security-policy"), /frame-ancestors 'none'/);
  // A URL's path and query are kept out of log lines and the history.
  const withCredential = `https://hooks.example.com/services/T000/B000/secretpath?code=secretcode`;
  assert.equal((await call(mf, "POST", "/admin/destinations", { name: "slacky", url: withCredential, types: ["x"], signed: false })).status, 201);
  for (const shown of [(await call(mf, "GET", "/admin/changes")).text, mf.logs()]) {
    assert.ok(!shown.includes("secretpath") && !shown.includes("secretcode"), shown);
  }
  // Pass-through types past a bound are counted together.
  for (let i = 0; i < 20; i++) {
    const res = await mf.dispatchFetch("http://bridge.test/webhooks/drift", {
      method: "POST",
      headers: { "x-verification-token": TOKEN },
      body: JSON.stringify({ orgId: 1, type: `custom_type_${i}`, data: { n: i } }),
    });
    assert.equal(res.status, 200);
  }
  await until(() => r.requests.length >= 20, 15000, "20 pass-through events");
  const types = new Set((await call(mf, "GET", "/admin/metrics?destination=all")).body.destinations[0].series.map((s) => s.type));
  assert.ok(types.has("(other)") && types.size <= 17, [...types].join(", "));
});

test("a secret whose overlap ended leaves the registry and every delivery", async () => {
  const r = await app();
  const mf = await bridge();
  const created = await call(mf, "POST", "/admin/destinations", { name: "crm", url: r.url, types: ["conversation_push"] });
  assert.equal((await call(mf, "POST", "/admin/destinations/crm/rotate-secret", { overlapSeconds: 1 })).status, 200);
  await quiet(1500);
  assert.equal((await webhook(mf, conversation(5, "conversation_push"))).status, 200);
  await until(() => r.requests.length === 1, 10000, "a delivery");
  assert.equal(r.requests[0].headers["webhook-signature"].split(" ").length, 1, "one signature");
  assert.ok(!created.text.includes("previousSecretExpiresAt"));
  await until(async () => (await call(mf, "GET", "/admin/changes")).body.changes.some((c) => c.action === "expire-secret"), 5000, "the purge, in the history");
});
