// The entry module (src/worker/entry.mjs) in front of workers-rs: every route
// answers exactly as when workers-rs served them all. The answers below were
// recorded from the worker before the entry existed (main at b925e0b, built
// by worker-build): status, Allow, the body byte for byte and the webhook's
// log line, with the same JSON headers on both paths.
// POST /webhooks/drift and POST /convert are the entry's (one wasm call);
// the rest (wrong methods, /health, /admin, unknown paths) is workers-rs'.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ADMIN, DRIFT_EXAMPLE as EX, TOKEN, eventually, post, request, startWorker } from "./support.mjs";

const t = { "x-verification-token": TOKEN };
/** Over the limit of 1024 bytes these workers run with. */
const big = EX.replace('"conversationId"', `"pad":"${"x".repeat(1000)}","conversationId"`);
const notUtf8 = new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]);

const CASES = [
  { name: "webhook, header token", method: "POST", path: "/webhooks/drift", body: EX, headers: t,
    status: 200, answer: `{"received":"b624515312c8ce89","events":[{"id":"b624515312c8ce89","type":"conversation_inactive"},{"id":"c0b44147a772c080","type":"conversation_push"},{"id":"945d7df49ee99b50","type":"conversation_status_updated"}]}`,
    log: `{"kind":"webhook","status":200,"eventId":"b624515312c8ce89","type":"conversation_inactive","scope":"conversation:1:123456789","events":3,"deliveries":0}`, },
  { name: "webhook, body token", method: "POST", path: "/webhooks/drift", body: EX.replace(/}$/, `,"token":"${TOKEN}"}`),
    status: 200, answer: `{"received":"b624515312c8ce89","events":[{"id":"b624515312c8ce89","type":"conversation_inactive"},{"id":"c0b44147a772c080","type":"conversation_push"},{"id":"945d7df49ee99b50","type":"conversation_status_updated"}]}`,
    log: `{"kind":"webhook","status":200,"eventId":"b624515312c8ce89","type":"conversation_inactive","scope":"conversation:1:123456789","events":3,"deliveries":0}`, },
  { name: "webhook, padded header token", method: "POST", path: "/webhooks/drift", body: EX, headers: { "x-verification-token": ` ${TOKEN} ` },
    status: 200, answer: `{"received":"b624515312c8ce89","events":[{"id":"b624515312c8ce89","type":"conversation_inactive"},{"id":"c0b44147a772c080","type":"conversation_push"},{"id":"945d7df49ee99b50","type":"conversation_status_updated"}]}`,
    log: `{"kind":"webhook","status":200,"eventId":"b624515312c8ce89","type":"conversation_inactive","scope":"conversation:1:123456789","events":3,"deliveries":0}`, },
  { name: "webhook, no token", method: "POST", path: "/webhooks/drift", body: EX,
    status: 401, answer: `{"error":{"code":"unauthorized","message":"missing or invalid verification token","path":""}}`,
    log: `{"kind":"webhook","status":401,"error":"unauthorized"}`, },
  { name: "webhook, over the limit (Content-Length)", method: "POST", path: "/webhooks/drift", body: big, headers: t,
    status: 413, answer: `{"error":{"code":"too_large","message":"the request body is larger than the limit of 1024 bytes (MAX_BODY_BYTES)","path":""}}`,
    log: `{"kind":"webhook","status":413,"error":"too_large"}`, },
  { name: "webhook, over the limit (streamed)", method: "POST", path: "/webhooks/drift", body: big, headers: t, stream: true,
    status: 413, answer: `{"error":{"code":"too_large","message":"the request body is larger than the limit of 1024 bytes (MAX_BODY_BYTES)","path":""}}`,
    log: `{"kind":"webhook","status":413,"error":"too_large"}`, },
  { name: "webhook, streamed", method: "POST", path: "/webhooks/drift", body: EX, headers: t, stream: true,
    status: 200, answer: `{"received":"b624515312c8ce89","events":[{"id":"b624515312c8ce89","type":"conversation_inactive"},{"id":"c0b44147a772c080","type":"conversation_push"},{"id":"945d7df49ee99b50","type":"conversation_status_updated"}]}`,
    log: `{"kind":"webhook","status":200,"eventId":"b624515312c8ce89","type":"conversation_inactive","scope":"conversation:1:123456789","events":3,"deliveries":0}`, },
  { name: "webhook, empty body", method: "POST", path: "/webhooks/drift", body: "", headers: t,
    status: 400, answer: `{"error":{"code":"invalid_json","message":"unexpected end of input; expected a JSON value (line 1, column 1)","path":"","line":1,"column":1}}`,
    log: `{"kind":"webhook","status":400,"error":"invalid_json"}`, },
  { name: "webhook, no body", method: "POST", path: "/webhooks/drift", headers: t,
    status: 400, answer: `{"error":{"code":"invalid_json","message":"unexpected end of input; expected a JSON value (line 1, column 1)","path":"","line":1,"column":1}}`,
    log: `{"kind":"webhook","status":400,"error":"invalid_json"}`, },
  { name: "webhook, bad JSON", method: "POST", path: "/webhooks/drift", body: '{"orgId":1,\n  "type":}', headers: t,
    status: 400, answer: `{"error":{"code":"invalid_json","message":"expected a JSON value, found '}' (line 2, column 10)","path":"type","line":2,"column":10}}`,
    log: `{"kind":"webhook","status":400,"error":"invalid_json"}`, },
  { name: "webhook, not UTF-8", method: "POST", path: "/webhooks/drift", body: notUtf8, headers: t,
    status: 400, answer: `{"error":{"code":"invalid_json","message":"the input is not valid UTF-8 (line 1, column 3)","path":"","line":1,"column":3}}`,
    log: `{"kind":"webhook","status":400,"error":"invalid_json"}`, },
  { name: "webhook, not UTF-8, no token", method: "POST", path: "/webhooks/drift", body: notUtf8,
    status: 401, answer: `{"error":{"code":"unauthorized","message":"missing or invalid verification token","path":""}}`,
    log: `{"kind":"webhook","status":401,"error":"unauthorized"}`, },
  { name: "webhook, bad event", method: "POST", path: "/webhooks/drift", body: '{"orgId":1,"type":"conversation_push","data":{"conversationId":"7"}}', headers: t,
    status: 400, answer: `{"error":{"code":"invalid_event","message":"expected an integer, found a string","path":"data.conversationId"}}`,
    log: `{"kind":"webhook","status":400,"error":"invalid_event"}`, },
  { name: "webhook, deep nesting", method: "POST", path: "/webhooks/drift", body: `{"orgId":1,"type":"x","data":${"[".repeat(70)}${"]".repeat(70)}}`, headers: t,
    status: 400, answer: `{"error":{"code":"too_large","message":"arrays and objects nest deeper than 64 levels (line 1, column 93)","path":"data[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]","line":1,"column":93}}`,
    log: `{"kind":"webhook","status":400,"error":"too_large"}`, },
  { name: "webhook, GET", method: "GET", path: "/webhooks/drift",
    status: 405, allow: "POST", answer: `{"error":{"code":"method_not_allowed","message":"this route accepts POST","path":""}}`, },
  { name: "webhook, PUT", method: "PUT", path: "/webhooks/drift", body: EX, headers: t,
    status: 405, allow: "POST", answer: `{"error":{"code":"method_not_allowed","message":"this route accepts POST","path":""}}`, },
  { name: "webhook, trailing slash", method: "POST", path: "/webhooks/drift/", body: EX, headers: t,
    status: 404, answer: `{"error":{"code":"not_found","message":"no route for POST /webhooks/drift/; the routes are POST /webhooks/drift, POST /convert, GET /health and GET /openapi.json","path":""}}`, },
  { name: "webhook, with a query", method: "POST", path: "/webhooks/drift?x=1", body: EX, headers: t,
    status: 200, answer: `{"received":"b624515312c8ce89","events":[{"id":"b624515312c8ce89","type":"conversation_inactive"},{"id":"c0b44147a772c080","type":"conversation_push"},{"id":"945d7df49ee99b50","type":"conversation_status_updated"}]}`,
    log: `{"kind":"webhook","status":200,"eventId":"b624515312c8ce89","type":"conversation_inactive","scope":"conversation:1:123456789","events":3,"deliveries":0}`, },
  { name: "convert, always", method: "POST", path: "/convert?legacy=always", body: EX,
    status: 200, answer: `{"events":[{"id":"b624515312c8ce89","event":{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}},{"id":"c0b44147a772c080","event":{"orgId":1,"type":"conversation_push","data":{"lastUpdated":1591813767000,"conversationId":123456789}}},{"id":"945d7df49ee99b50","event":{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":123456789,"status":"closed","changedAt":1591813767000}}}]}`, },
  { name: "convert, encoded query", method: "POST", path: "/convert?legacy=nev%65r&x=%zz&now=5", body: '{"orgId":1,"type":"conversation_push","data":{"conversationId":7}}',
    status: 200, answer: `{"events":[{"id":"ca129bfd7aca9656","event":{"orgId":1,"type":"conversation_push","data":{"conversationId":7}}}]}`, },
  { name: "convert, NDJSON", method: "POST", path: "/convert", body: `${EX}\n{"orgId":1,"type":\n${EX}\n`,
    status: 200, answer: `{"results":[{"events":[{"id":"b624515312c8ce89","event":{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}},{"id":"c0b44147a772c080","event":{"orgId":1,"type":"conversation_push","data":{"lastUpdated":1591813767000,"conversationId":123456789}}},{"id":"945d7df49ee99b50","event":{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":123456789,"status":"closed","changedAt":1591813767000}}}]},{"error":{"code":"invalid_json","message":"unexpected end of input; expected a JSON value (line 2, column 19)","path":"[1].type","line":2,"column":19}},{"events":[{"id":"b624515312c8ce89","event":{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}},{"id":"c0b44147a772c080","event":{"orgId":1,"type":"conversation_push","data":{"lastUpdated":1591813767000,"conversationId":123456789}}},{"id":"945d7df49ee99b50","event":{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":123456789,"status":"closed","changedAt":1591813767000}}}]}]}`, },
  { name: "convert, bad legacy", method: "POST", path: "/convert?legacy=sometimes", body: EX,
    status: 400, answer: `{"error":{"code":"invalid_parameter","message":"unknown legacy policy \\"sometimes\\"; expected always, timeline or never","path":"legacy"}}`, },
  { name: "convert, bad now, over the limit", method: "POST", path: "/convert?now=abc", body: big,
    status: 400, answer: `{"error":{"code":"invalid_parameter","message":"expected milliseconds since the epoch, found \\"abc\\"","path":"now"}}`, },
  { name: "convert, over the limit", method: "POST", path: "/convert", body: big,
    status: 413, answer: `{"error":{"code":"too_large","message":"the request body is larger than the limit of 1024 bytes (MAX_BODY_BYTES)","path":""}}`, },
  { name: "convert, over the limit (streamed)", method: "POST", path: "/convert", body: big, stream: true,
    status: 413, answer: `{"error":{"code":"too_large","message":"the request body is larger than the limit of 1024 bytes (MAX_BODY_BYTES)","path":""}}`, },
  { name: "convert, empty body", method: "POST", path: "/convert", body: "",
    status: 400, answer: `{"error":{"code":"invalid_json","message":"unexpected end of input; expected a JSON value (line 1, column 1)","path":"","line":1,"column":1}}`, },
  { name: "convert, GET", method: "GET", path: "/convert",
    status: 405, allow: "POST", answer: `{"error":{"code":"method_not_allowed","message":"this route accepts POST","path":""}}`, },
  { name: "health", method: "GET", path: "/health",
    status: 200, answer: `{"status":"ok","version":"0.1.0","configured":true,"problems":0}`, },
  { name: "health, POST", method: "POST", path: "/health", body: "{}",
    status: 405, allow: "GET, HEAD", answer: `{"error":{"code":"method_not_allowed","message":"this route accepts GET, HEAD","path":""}}`, },
  { name: "unknown path", method: "POST", path: "/nope", body: "{}",
    status: 404, answer: `{"error":{"code":"not_found","message":"no route for POST /nope; the routes are POST /webhooks/drift, POST /convert, GET /health and GET /openapi.json","path":""}}`, },
  { name: "health, admin", method: "GET", path: "/health", headers: { authorization: `Bearer ${ADMIN}` },
    status: 200, answer: `{"status":"ok","version":"0.1.0","configured":true,"problems":0,"details":{"legacyPolicy":"always","maxBodyBytes":1024,"verificationTokens":1,"problems":[],"destinations":[]}}`, },
  { name: "admin, no token", method: "GET", path: "/admin/deliveries",
    status: 401, answer: `{"error":{"code":"unauthorized","message":"missing or invalid admin token (Authorization: Bearer <ADMIN_TOKEN>)","path":""}}`, },
  { name: "admin, off", config: "unconfigured", method: "GET", path: "/admin/deliveries",
    status: 404, answer: `{"error":{"code":"not_found","message":"the admin routes are off; set ADMIN_TOKEN (32 characters or more) to turn them on","path":""}}`, },
  { name: "unconfigured webhook", config: "unconfigured", method: "POST", path: "/webhooks/drift", body: EX, headers: t,
    status: 503, answer: `{"error":{"code":"not_configured","message":"the worker is not fully configured, so it accepts no events; GET /health with the admin token, or \`wrangler tail\`, names the problems","path":""}}`,
    log: `{"kind":"webhook","status":503,"error":"not_configured"}`, },
  { name: "unconfigured webhook, over the limit", config: "unconfigured", method: "POST", path: "/webhooks/drift", body: big, headers: t,
    status: 503, answer: `{"error":{"code":"not_configured","message":"the worker is not fully configured, so it accepts no events; GET /health with the admin token, or \`wrangler tail\`, names the problems","path":""}}`,
    log: `{"kind":"webhook","status":503,"error":"not_configured"}`, },
  { name: "unconfigured convert", config: "unconfigured", method: "POST", path: "/convert?legacy=never", body: EX,
    status: 200, answer: `{"events":[{"id":"b624515312c8ce89","event":{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}},{"id":"c0b44147a772c080","event":{"orgId":1,"type":"conversation_push","data":{"lastUpdated":1591813767000,"conversationId":123456789}}}]}`, },
  { name: "unconfigured health", config: "unconfigured", method: "GET", path: "/health",
    status: 200, answer: `{"status":"misconfigured","version":"0.1.0","configured":false,"problems":1}`, },
];

/** Sends a case's request: a body with Content-Length, or streamed without one. */
function send(mf, c) {
  const init = { method: c.method, headers: { ...c.headers } };
  if (c.body !== undefined) {
    const bytes = typeof c.body === "string" ? new TextEncoder().encode(c.body) : c.body;
    if (c.stream) {
      init.body = new ReadableStream({
        start(controller) {
          controller.enqueue(bytes);
          controller.close();
        },
      });
      init.duplex = "half";
    } else {
      init.body = bytes;
      init.headers["content-length"] = String(bytes.length);
    }
  }
  return request(mf, c.path, init);
}

for (const [config, bindings] of [
  ["configured", { DRIFT_VERIFICATION_TOKEN: TOKEN, MAX_BODY_BYTES: "1024", ADMIN_TOKEN: ADMIN }],
  ["unconfigured", { MAX_BODY_BYTES: "1024" }],
]) {
  describe(`the same answers as before the entry module (${config})`, () => {
    let mf;
    before(async () => {
      mf = await startWorker(bindings);
    });
    after(() => mf?.dispose());

    for (const c of CASES.filter((c) => (c.config ?? "configured") === config)) {
      test(c.name, async () => {
        const res = await send(mf, c);
        const text = await res.text();
        assert.equal(res.status, c.status, text);
        assert.equal(text, c.answer);
        assert.equal(res.headers.get("content-type"), "application/json; charset=utf-8");
        assert.equal(res.headers.get("cache-control"), "no-store");
        assert.equal(res.headers.get("allow"), c.allow ?? null);
        if (c.log) await eventually(() => mf.logs().includes(`${c.log}\n`), `no log line ${c.log} in:\n${mf.logs()}`);
      });
    }
  });
}

describe("warm-up", () => {
  let mf;
  before(async () => {
    mf = await startWorker({ DRIFT_VERIFICATION_TOKEN: TOKEN });
  });
  after(() => mf?.dispose());

  test("the hot path runs as the isolate starts without side effects, and the isolate writes its start line", async () => {
    const res = await request(mf, "/webhooks/drift", { method: "POST", body: EX, headers: t });
    assert.equal(res.status, 200);
    await res.text();
    const line =
      '{"kind":"webhook","status":200,"eventId":"b624515312c8ce89","type":"conversation_inactive","scope":"conversation:1:123456789","events":3,"deliveries":0}';
    await eventually(() => mf.logs().includes(line), `no log line in:\n${mf.logs()}`);
    // What the public /health says, and how many destinations.
    const health = await (await request(mf, "/health")).json();
    assert.deepEqual(health, { status: "ok", version: "0.1.0", configured: true, problems: 0 });
    const start = JSON.stringify({ kind: "start", ...health, destinations: 0 });
    assert.equal(mf.logs().trim(), `${start}\n${line}`, "the start line, the request's log line, and nothing else from the warm-up");
    assert.ok(!mf.logs().includes(TOKEN), "no token in the start line");
  });
});

describe("the operator's module (workers-rs) starts on its first use", () => {
  let mf;
  before(async () => {
    mf = await startWorker({ DRIFT_VERIFICATION_TOKEN: TOKEN }, { testEntry: true });
  });
  after(() => mf?.dispose());

  const modules = async () => (await post(mf, "/__test/modules", "")).json();

  test("webhooks run on the bridge's module alone", async () => {
    for (let i = 0; i < 3; i++) {
      const res = await post(mf, "/webhooks/drift", EX, { token: TOKEN });
      assert.equal(res.status, 200, await res.text());
    }
    assert.deepEqual(await modules(), { bridge: true, operator: false, users: [] });
  });

  test("/convert, no webhook's path, starts the operator's module", async () => {
    const converted = await post(mf, "/convert", EX);
    assert.equal(converted.status, 200, await converted.text());
    assert.deepEqual(await modules(), { bridge: true, operator: true, users: ["convert"] });
  });

  test("any other route starts the workers-rs module, and it stays", async () => {
    const health = await request(mf, "/health");
    assert.equal(health.status, 200, await health.text());
    assert.deepEqual((await modules()).users, ["convert", "routes"]);
    const res = await post(mf, "/webhooks/drift", EX, { token: TOKEN });
    assert.equal(res.status, 200, await res.text());
  });
});
