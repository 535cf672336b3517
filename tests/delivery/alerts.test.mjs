// Alerts and metrics, in real workerd: an app that goes down and comes back
// sends exactly one "tripped" and one "recovered" alert to each target,
// signed (checked with the Standard Webhooks reference library) and, for a
// Slack target, in Slack's form; a dead letter sends one alert; a backlog
// past ALERT_BACKLOG one; and the metrics of a known sequence of webhooks and
// answers are exact, as JSON and as Prometheus text (read by the Prometheus
// client's own parser).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { Webhook } from "standardwebhooks";
import { ADMIN, receiver, persistDir, startWorker, webhook, until, quiet, conversation } from "./support.mjs";
import { pythonWithPrometheus } from "./python.mjs";

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const ALERT_SECRET = "whsec_YWxlcnQtc2lnbmluZy1zZWNyZXQtMDEyMzQ1Njc4OQ==";

async function app(behave) {
  const r = await receiver(behave);
  cleanups.push(() => r.close());
  return r;
}

/** A bridge with two alert targets: `ops` (JSON, signed) and `chat` (Slack's form). */
async function bridge(destinations, extra = {}) {
  const ops = await app(() => 200);
  const chat = await app(() => 200);
  const alerts = [
    { name: "ops", url: ops.url, signingSecret: "ALERT_SECRET" },
    { name: "chat", url: chat.url, format: "slack" },
  ];
  const mf = await startWorker({
    destinations,
    persist: persistDir(),
    extra: {
      ALERTS: JSON.stringify(alerts),
      ALERT_SECRET,
      PUBLIC_URL: "https://bridge.example",
      CIRCUIT_FAILURES: "3",
      CIRCUIT_PROBE_SECONDS: "1",
      RETRY_BASE_SECONDS: "10",
      ...extra,
    },
  });
  cleanups.push(async () => { await mf.dispose().catch(() => {}); });
  return { mf, ops, chat };
}

const alertsOf = (r) => r.requests.map((q) => JSON.parse(q.body));
const kinds = (r) => alertsOf(r).map((a) => a.kind);

function verifies(secret, request) {
  try {
    new Webhook(secret).verify(request.body, request.headers);
    return true;
  } catch {
    return false;
  }
}

async function call(mf, path, method = "GET", headers = {}) {
  const res = await mf.dispatchFetch(`http://bridge.test${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, ...headers } });
  return { status: res.status, text: await res.text(), type: res.headers.get("content-type") };
}

test("an app that goes down and comes back: exactly one tripped and one recovered alert, signed, and Slack's form for Slack", async () => {
  let down = true;
  const crm = await app(() => (down ? 503 : 200));
  const { mf, ops, chat } = await bridge([{ name: "crm", url: crm.url, types: ["conversation_push"] }]);
  for (let id = 1; id <= 8; id++) assert.equal((await webhook(mf, conversation(id, "conversation_push"))).status, 200);
  await until(() => kinds(ops).includes("tripped"), 20000, "the tripped alert");
  // Probes keep failing for a while: nothing more is said.
  await quiet(3000);
  down = false;
  await until(() => kinds(ops).includes("recovered"), 20000, "the recovered alert");
  await until(() => crm.accepted().length >= 8, 30000, "the backlog delivered");
  await quiet(3000);
  assert.deepEqual(kinds(ops), ["tripped", "recovered"], JSON.stringify(alertsOf(ops)));
  for (const request of ops.requests) assert.ok(verifies(ALERT_SECRET, request), "signed with the target's secret");
  const [tripped, recovered] = alertsOf(ops);
  assert.equal(tripped.type, "drift_bridge.alert");
  assert.equal(tripped.destination, "crm");
  assert.equal(tripped.state, "tripped");
  assert.equal(tripped.link, "https://bridge.example/admin.html#destination=crm");
  assert.match(tripped.summary, /crm tripped: its last 3 attempts failed/);
  assert.match(tripped.id, /^[0-9a-f]{16}$/);
  assert.equal(ops.requests[0].headers["webhook-id"], tripped.id, "its id is its webhook-id");
  assert.match(recovered.summary, /crm answers again/);
  // The Slack target: the same two, as {"text"}, unsigned.
  assert.equal(chat.requests.length, 2);
  const texts = chat.requests.map((q) => JSON.parse(q.body));
  assert.deepEqual(Object.keys(texts[0]), ["text"]);
  // The bridge's words, its link, and what the app said set apart as a quote.
  assert.match(texts[0].text, /^\[drift-bridge\] crm tripped: .* <https:\/\/bridge\.example\/admin\.html#destination=crm\|Open the admin page>\nThe app said:\n>the app answered 503/);
  assert.match(texts[1].text, /crm answers again/);
  assert.equal(chat.requests[0].headers["webhook-signature"], undefined);
  // The targets are listed with the destinations, as alert targets.
  const listed = JSON.parse((await call(mf, "/admin/destinations")).text).destinations;
  assert.deepEqual(listed.filter((d) => d.source === "alerts").map((d) => [d.name, d.format]), [["@ops", "json"], ["@chat", "slack"]]);
});

test("a dead letter sends one alert; more within the window come as one", async () => {
  const gone = await app(() => 410);
  const { mf, ops } = await bridge([{ name: "crm", url: gone.url, types: ["conversation_push"] }], { ALERT_COALESCE_SECONDS: "3" });
  assert.equal((await webhook(mf, conversation(1, "conversation_push"))).status, 200);
  await until(() => kinds(ops).includes("dead-letter"), 20000, "the dead letter's alert");
  const first = alertsOf(ops)[0];
  assert.equal(first.count, 1);
  assert.match(first.summary, /\.crm to crm is a dead letter$/);
  assert.match(first.detail, /the app answered 410/, "what the app said, in a field of its own");
  for (let id = 2; id <= 4; id++) assert.equal((await webhook(mf, conversation(id, "conversation_push"))).status, 200);
  await until(() => gone.requests.length >= 4, 20000, "the three more answered 410");
  await quiet(1000);
  assert.deepEqual(kinds(ops), ["dead-letter"], "the three more within the window wait");
  await until(() => kinds(ops).length === 2, 15000, "the coalesced alert once the window is over");
  const coalesced = alertsOf(ops)[1];
  assert.equal(coalesced.kind, "dead-letter");
  assert.equal(coalesced.count, 3);
  assert.match(coalesced.summary, /and 2 more like it since/);
});

test("a backlog past ALERT_BACKLOG alerts once, with its app paused", async () => {
  const crm = await app(() => 200);
  const { mf, ops } = await bridge([{ name: "crm", url: crm.url, types: ["conversation_push"] }], { ALERT_BACKLOG: "5" });
  assert.equal((await call(mf, "/admin/destinations/crm/pause", "POST")).status, 200);
  await until(() => kinds(ops).includes("paused"), 20000, "the paused alert");
  for (let id = 1; id <= 9; id++) assert.equal((await webhook(mf, conversation(id, "conversation_push"))).status, 200);
  await until(() => kinds(ops).includes("backlog"), 20000, "the backlog alert");
  await quiet(2000);
  assert.deepEqual(kinds(ops), ["paused", "backlog"]);
  assert.match(alertsOf(ops)[1].summary, /crm has 6 deliveries waiting \(6 held, 0 pending\), more than ALERT_BACKLOG \(5\)/);
});

test("the metrics of a known sequence are exact, as JSON and as Prometheus text", async () => {
  // conversation 1..6 answered 200; 7 and 8 answered 500 once, then 200.
  const crm = await app((attempt, { body }) => {
    const id = JSON.parse(body).data.conversationId;
    return id >= 7 && attempt === 1 ? 500 : 200;
  });
  const { mf } = await bridge([{ name: "crm", url: crm.url, types: ["conversation_push"] }], { RETRY_BASE_SECONDS: "1", CIRCUIT_FAILURES: "10" });
  for (let id = 1; id <= 8; id++) assert.equal((await webhook(mf, conversation(id, "conversation_push"))).status, 200);
  await until(() => crm.accepted().length === 8, 30000, "eight deliveries");
  await quiet(1000);
  const json = JSON.parse((await call(mf, "/admin/metrics?destination=crm")).text);
  assert.equal(json.step, 60000);
  const sum = (key) => json.destinations[0].series.reduce((n, s) => n + s[key], 0);
  assert.deepEqual(
    Object.fromEntries(["accepted", "delivered", "failed", "retried", "held", "attempts", "succeeded"].map((k) => [k, sum(k)])),
    { accepted: 8, delivered: 8, failed: 0, retried: 2, held: 0, attempts: 10, succeeded: 8 },
  );
  const buckets = json.destinations[0].series.reduce((acc, s) => acc.map((n, i) => n + s.latencyBuckets[i]), new Array(13).fill(0));
  assert.equal(buckets.reduce((a, b) => a + b, 0), 10, "one latency per attempt");
  assert.ok(json.destinations[0].series.every((s) => s.type === "conversation_push"));
  // Prometheus, by Accept and by format=prometheus, read by prometheus_client's parser.
  for (const [path, headers] of [["/admin/metrics", { accept: "text/plain" }], ["/admin/metrics?format=prometheus", {}]]) {
    const res = await call(mf, path, "GET", headers);
    assert.equal(res.status, 200);
    assert.match(res.type, /^text\/plain; version=0\.0\.4/);
    const families = parsePrometheus(res.text);
    const sample = (family, labels) => families[family]?.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    const crmPush = { destination: "crm", type: "conversation_push" };
    assert.equal(sample("drift_bridge_deliveries_accepted", { ...crmPush, __name__: "drift_bridge_deliveries_accepted_total" }), 8);
    assert.equal(sample("drift_bridge_deliveries_delivered", { ...crmPush, __name__: "drift_bridge_deliveries_delivered_total" }), 8);
    assert.equal(sample("drift_bridge_deliveries_retried", { ...crmPush, __name__: "drift_bridge_deliveries_retried_total" }), 2);
    assert.equal(sample("drift_bridge_attempts", { ...crmPush, __name__: "drift_bridge_attempts_total" }), 10);
    assert.equal(sample("drift_bridge_delivery_latency_seconds", { ...crmPush, __name__: "drift_bridge_delivery_latency_seconds_count" }), 10);
    assert.equal(sample("drift_bridge_delivery_latency_seconds", { ...crmPush, le: "+Inf", __name__: "drift_bridge_delivery_latency_seconds_bucket" }), 10);
    assert.equal(sample("drift_bridge_destination_state", { destination: "crm", state: "active", __name__: "drift_bridge_destination_state" }), 1);
    assert.equal(sample("drift_bridge_deliveries", { destination: "crm", status: "delivered", __name__: "drift_bridge_deliveries" }), 8);
    assert.equal(families.drift_bridge_deliveries_accepted.type, "counter");
    assert.equal(families.drift_bridge_delivery_latency_seconds.type, "histogram");
  }
  // Bad parameters name themselves.
  for (const [query, parameter] of [["format=xml", "format"], ["step=week", "step"], ["since=x", "since"], ["destination=nobody", "destination"]]) {
    const res = await call(mf, `/admin/metrics?${query}`);
    assert.equal(res.status, 400, query);
    assert.equal(JSON.parse(res.text).error.path, parameter);
  }
});

/** Prometheus text, read by the Prometheus client library's own parser: {family: {type, samples…}}. */
function parsePrometheus(text) {
  const script = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    out[f.name] = {"type": f.type, "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]}
print(json.dumps(out))
`;
  const parsed = JSON.parse(execFileSync(pythonWithPrometheus(), ["-c", script], { input: text, encoding: "utf8" }));
  const families = {};
  for (const [name, f] of Object.entries(parsed)) {
    families[name] = f.samples.map((s) => ({ labels: { ...s.labels, __name__: s.name }, value: s.value }));
    families[name].type = f.type;
  }
  return families;
}
