// Delivery hardening, in real workerd: every row has a lifetime, every
// accepted event is deliverable whatever its size and depth, Drift gets 200
// as soon as the event is durable, one app cannot stall the consumer or
// redirect a signed body, URLs are read as fetch reads them, and no secret
// leaks into a log, a listing or a public answer.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import {
  receiver, persistDir, removeDir, startWorker, webhook, admin, until, quiet, stats,
  INACTIVE, TOKEN, ADMIN, conversation,
} from "./support.mjs";

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function bridge(destinations, options = {}) {
  const persist = options.persist ?? persistDir();
  const mf = await startWorker({ destinations, persist, ...options });
  cleanups.push(async () => { await mf.dispose().catch(() => {}); });
  if (!options.persist) cleanups.push(() => removeDir(persist));
  return mf;
}

async function app(behave) {
  const r = await receiver(behave);
  cleanups.push(() => r.close());
  return r;
}

/** A loopback server whose handler is `handle(req, res, body)`; records requests. */
async function server(handle) {
  const requests = [];
  const s = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      requests.push({ headers: req.headers, body, url: req.url });
      handle(req, res, body);
    });
  });
  await new Promise((resolve) => s.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise((resolve) => { s.closeAllConnections?.(); s.close(() => resolve()); }));
  return { url: `http://127.0.0.1:${s.address().port}/hook`, port: s.address().port, requests };
}

const SCOPE = "conversation:1:123456789";

test("a webhook leaves no outbox rows and no alarm: deduplication is the delivery log's", async () => {
  const ok = await app(() => 200);
  const mf = await bridge([{ name: "ok-app", url: ok.url, types: ["conversation_push"] }]);
  assert.equal((await webhook(mf, INACTIVE)).status, 200);
  await until(() => ok.accepted().length === 1, 10000, "the delivery");
  await until(async () => (await stats(mf, "outbox", SCOPE)).outgoing === 0, 5000, "forwarded");
  assert.deepEqual(await stats(mf, "outbox", SCOPE), { outgoing: 0, deliveries: 0, forwarding: 0, alarm: null });
  // A repeat reaches the delivery log again; the log drops it.
  assert.equal((await webhook(mf, INACTIVE)).status, 200);
  await until(async () => (await stats(mf, "outbox", SCOPE)).outgoing === 0, 5000, "the repeat forwarded");
  await quiet(500);
  assert.equal(ok.requests.length, 1, "delivered once");
  assert.deepEqual((await stats(mf, "destination", "ok-app")).deliveries, { delivered: 1 });
});

/** What a delivery log keeps once its deliveries are gone: its metrics, and the alarm that forgets them. */
function emptied(log) {
  return log.rows === 0 && (log.alarm === null || log.alarm > Date.now() + 40 * 3600_000);
}

test("rows live for their time: delivered for DELIVERY_LOG_SECONDS, dead letters for DEAD_LETTER_RETENTION_SECONDS, then none", async () => {
  const ok = await app(() => 200);
  const gone = await app(() => 410);
  const mf = await bridge(
    [
      { name: "ok-app", url: ok.url, types: ["conversation_push"] },
      { name: "gone-app", url: gone.url, types: ["conversation_status_updated"] },
    ],
    { extra: { DEDUP_WINDOW_SECONDS: "3", DELIVERY_LOG_SECONDS: "3", DEAD_LETTER_RETENTION_SECONDS: "6" } },
  );
  assert.equal((await webhook(mf, INACTIVE)).status, 200);
  await until(() => ok.accepted().length === 1 && gone.requests.length === 1, 10000, "both deliveries");
  await until(async () => (await stats(mf, "destination", "gone-app")).deliveries.gone === 1, 5000, "the gone record");
  const before = {
    outbox: await stats(mf, "outbox", SCOPE),
    ok: await stats(mf, "destination", "ok-app"),
    gone: await stats(mf, "destination", "gone-app"),
  };
  console.log(`rows before the retention: ${JSON.stringify(before)}`);
  assert.deepEqual(before.outbox, { outgoing: 0, deliveries: 0, forwarding: 0, alarm: null }, "nothing left in the outbox");
  assert.deepEqual(before.ok.deliveries, { delivered: 1 });
  assert.ok(before.ok.alarm !== null, "an alarm to forget it");
  assert.deepEqual(before.gone.deliveries, { gone: 1 });

  // Inside the window a repeat is a duplicate: nothing more is delivered.
  assert.equal((await webhook(mf, INACTIVE)).status, 200);

  // After DELIVERY_LOG_SECONDS: the delivered row is gone; the dead letter stays.
  await until(async () => emptied(await stats(mf, "destination", "ok-app")), 10000, "the delivered row's end");
  assert.deepEqual((await stats(mf, "destination", "gone-app")).deliveries, { gone: 1 }, "dead letters live longer");

  // After DEAD_LETTER_RETENTION_SECONDS: the dead letter too.
  await until(async () => emptied(await stats(mf, "destination", "gone-app")), 10000, "the dead letter's end");
  const replay = await admin(mf, `/admin/deliveries/945d7df49ee99b50.gone-app/replay`, "POST");
  assert.equal(replay.status, 404);
  assert.match(replay.body.error.message, /dead letters for 6 s \(DEAD_LETTER_RETENTION_SECONDS\), so it has expired/);
  assert.equal(ok.requests.length, 1, "the repeat inside the window was not delivered");
});

test("listings page with limit and cursor, newest first, nothing twice", async () => {
  const gone = await app(() => 410);
  const mf = await bridge([{ name: "gone-app", url: gone.url, types: ["conversation_push"] }]);
  for (let i = 1; i <= 5; i++) assert.equal((await webhook(mf, conversation(1000 + i))).status, 200);
  await until(async () => (await stats(mf, "destination", "gone-app")).deliveries.gone === 5, 10000, "five gone");
  const seen = [];
  let cursor = null;
  let pages = 0;
  do {
    const page = await admin(mf, `/admin/deliveries?status=gone&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    assert.equal(page.status, 200, page.text);
    assert.ok(page.body.deliveries.length <= 2);
    seen.push(...page.body.deliveries);
    cursor = page.body.next;
    pages++;
  } while (cursor && pages < 10);
  assert.equal(seen.length, 5);
  assert.equal(new Set(seen.map((d) => d.id)).size, 5, "no delivery twice");
  const times = seen.map((d) => d.at);
  assert.deepEqual(times, [...times].sort((a, b) => b - a), "newest first");
  assert.equal((await admin(mf, "/admin/deliveries?limit=0")).status, 400);
  assert.equal((await admin(mf, "/admin/deliveries?cursor=nonsense")).status, 400);
  assert.equal((await admin(mf, "/admin/deliveries?status=lost")).status, 400);
});

/** An inactive event of exactly `bytes` bytes. */
function padded(bytes, token = TOKEN) {
  const make = (pad) =>
    `{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":77,"pad":"${pad}"},"token":"${token}"}`;
  return make("x".repeat(bytes - Buffer.byteLength(make(""))));
}

for (const [label, bytes, extra] of [
  // Six megabytes at once, on a busy machine, take longer than the tests'
  // 400 ms deadline: a request that timed out is sent again, as it must be.
  ["the largest event at the default MAX_BODY_BYTES (64 KiB)", 65536, { DELIVERY_TIMEOUT_MS: "10000" }],
  ["the largest event MAX_BODY_BYTES allows (1 MiB)", 1048576, { MAX_BODY_BYTES: "1048576", DELIVERY_TIMEOUT_MS: "10000" }],
]) {
  test(`${label} with six "*" destinations is delivered to all six`, async () => {
    const apps = [];
    for (let i = 0; i < 6; i++) apps.push(await app(() => 200));
    const mf = await bridge(apps.map((a, i) => ({ name: `all-${i}`, url: a.url, types: ["*"] })), { extra });
    const event = padded(bytes);
    assert.equal(Buffer.byteLength(event), bytes);
    const started = Date.now();
    const res = await webhook(mf, event);
    assert.equal(res.status, 200, res.body);
    await until(() => apps.every((a) => a.accepted().length === 3), 60000, "3 events x 6 apps");
    console.log(`${bytes}-byte event to 6 destinations: 18 deliveries in ${Date.now() - started} ms`);
    await quiet(1000);
    for (const a of apps) {
      assert.equal(a.requests.length, 3, "each event once");
      const inactive = a.requests.find((r) => JSON.parse(r.body).type === "conversation_inactive");
      assert.equal(inactive.body, event, "the event byte for byte");
    }
    assert.equal((await webhook(mf, padded(bytes + 1))).status, 413, "one byte more is refused at the edge");
  });
}

test("an event at the deepest accepted nesting hands off and is delivered", async () => {
  const r = await app(() => 200);
  const mf = await bridge([{ name: "deep", url: r.url, types: ["conversation_inactive"] }]);
  // The event object, data, and arrays down to the 64th level.
  const deep = `{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":5,"n":${"[".repeat(62)}1${"]".repeat(62)}},"token":"${TOKEN}"}`;
  const res = await webhook(mf, deep);
  assert.equal(res.status, 200, res.body);
  await until(() => r.accepted().length === 1, 10000, "the deep event");
  assert.equal(r.requests[0].body, deep);
  const deeper = deep.replace("[".repeat(62), "[".repeat(63)).replace("]".repeat(62), "]".repeat(63));
  assert.equal((await webhook(mf, deeper)).status, 400, "one level more is refused");
});

test("only when a delivery log cannot store the event does Drift get 503", async () => {
  const r = await app(() => 200);
  const mf = await bridge([{ name: "app", url: r.url, types: ["conversation_push"] }], { extra: { TEST_LOG_FAILS: "1" } });
  const res = await webhook(mf, INACTIVE);
  assert.equal(res.status, 503);
  assert.equal(JSON.parse(res.body).error.code, "unavailable");
  await quiet(1500);
  assert.equal(r.requests.length, 0, "nothing half-delivered");
});

test("an app that answers 200 and trickles its body forever does not hold the delivery", async () => {
  const trickler = await server((req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    const timer = setInterval(() => res.write("."), 50);
    res.on("close", () => clearInterval(timer));
  });
  const failing = await server((req, res) => {
    res.writeHead(500, { "content-type": "text/plain" });
    res.write("down for maintenance ");
    const timer = setInterval(() => res.write("x".repeat(1000)), 20);
    res.on("close", () => clearInterval(timer));
  });
  const mf = await bridge(
    [
      { name: "trickle", url: trickler.url, types: ["conversation_push"] },
      { name: "failing", url: failing.url, types: ["conversation_status_updated"] },
    ],
    { extra: { DELIVERY_TIMEOUT_MS: "1000", RETRY_BASE_SECONDS: "60" } },
  );
  assert.equal((await webhook(mf, INACTIVE)).status, 200);
  await until(async () => (await stats(mf, "destination", "trickle")).deliveries.delivered === 1, 5000, "delivered on its status");
  const failed = await until(async () => {
    const list = (await admin(mf, "/admin/deliveries?destination=failing")).body.deliveries;
    return list[0]?.state === "retrying" && list[0];
  }, 5000, "the failure recorded within the deadline");
  assert.match(failed.lastError, /^the app answered 500: down for maintenance x+…$/);
  assert.ok(failed.lastError.length < 300, "an excerpt, not the whole body");
  await quiet(3000); // past RECOVERY_GRACE_SECONDS: nothing is sent again
  assert.equal(trickler.requests.length, 1);
  assert.equal(failing.requests.length, 1);
});

test("redirects are not followed: a 307 is a failure that says where it pointed", async () => {
  const thief = await server((req, res) => { res.writeHead(200); res.end(); });
  const redirecting = await server((req, res) => {
    res.writeHead(307, { location: thief.url.replace("/hook", "/steal") });
    res.end();
  });
  const mf = await bridge([{ name: "moved", url: redirecting.url, types: ["conversation_push"], signingSecret: "SIGNING_SECRET" }], {
    extra: { RETRY_BASE_SECONDS: "60" },
  });
  assert.equal((await webhook(mf, INACTIVE)).status, 200);
  const failed = await until(async () => {
    const list = (await admin(mf, "/admin/deliveries?destination=moved")).body.deliveries;
    return list[0]?.lastError && list[0];
  }, 5000, "the attempt");
  assert.equal(failed.lastError, `the app redirected (307) to http://127.0.0.1:${thief.port}/steal; redirects are not followed`);
  await quiet(500);
  assert.equal(thief.requests.length, 0, "the signed body went nowhere else");
});

test("URLs are read as fetch reads them: backslashes, credentials and plain http elsewhere are refused", async () => {
  // The Worker reads them with the runtime's own URL (src/worker/mod.rs), the
  // CLI and the native tests with the url crate: the same answers.
  for (const [url, problem] of [
    ["http://evil.example\\@localhost/", "contains a backslash"],
    ["http://localhost@evil.example/", "must not carry a user name or password"],
    ["http://127.0.0.1.evil.example/", "must be https"],
    ["http://[::ffff:127.0.0.1]/", "must be https"],
    ["https://bücher.example/", "contains a character outside ASCII"],
    ["example.com", '"example.com" is not an absolute URL'],
    ["https://", '"https://" is not an absolute URL'],
    ["file:///etc/passwd", '"file:///etc/passwd" has no host'],
    ["ftp://a.example/", 'scheme "ftp" is not supported'],
  ]) {
    const mf = await bridge([{ name: "x", url, types: ["*"] }]);
    const health = (await admin(mf, "/health")).body;
    assert.equal(health.configured, false, url);
    assert.match(health.details.problems[0], new RegExp(`^DESTINATIONS\\[0\\]\\.url: ${problem}`), url);
    assert.equal((await webhook(mf, INACTIVE)).status, 503, url);
    await mf.dispose();
  }
  // Loopback written as the parser normalises it: 0x7f.1 is 127.0.0.1.
  const a = await app(() => 200);
  const mf = await bridge([{ name: "hex", url: a.url.replace("127.0.0.1", "0x7f.1"), types: ["conversation_inactive"] }]);
  assert.equal((await admin(mf, "/health")).body.configured, true);
  assert.equal((await webhook(mf, INACTIVE)).status, 200);
  await until(() => a.accepted().length === 1, 15000, "delivered to the normalised loopback URL");
});

test("no secret in logs, listings, errors or public answers", async () => {
  // An app that echoes what it got in its error, Drift's token included.
  const echo = await server((req, res, body) => { res.writeHead(400); res.end(`bad request: ${body}`); });
  const signed = await app(() => 200);
  const signedKeep = await app(() => 200);
  const mf = await bridge(
    [
      { name: "echo", url: echo.url, types: ["conversation_push"] },
      { name: "signed", url: signed.url, types: ["conversation_push"], signingSecret: "SIGNING_SECRET" },
      { name: "signed-keep", url: signedKeep.url, types: ["conversation_push"], signingSecret: "SIGNING_SECRET", token: "keep" },
    ],
    { extra: { RETRY_BASE_SECONDS: "60" } },
  );
  assert.equal((await webhook(mf, INACTIVE)).status, 200);
  await until(() => signed.accepted().length === 1 && signedKeep.accepted().length === 1 && echo.requests.length === 1, 10000, "deliveries");
  assert.equal(JSON.parse(signed.requests[0].body).token, undefined, "a signed destination gets no Drift token by default");
  assert.equal(JSON.parse(signedKeep.requests[0].body).token, TOKEN, "unless it asks for it");

  const failed = await until(async () => {
    const list = (await admin(mf, "/admin/deliveries?destination=echo")).body.deliveries;
    return list[0]?.lastError && list[0];
  }, 5000, "the echo's error");
  assert.match(failed.lastError, /"token":"\[redacted\]"/, "the echoed token is redacted");
  const detail = await admin(mf, `/admin/deliveries/${failed.id}`);
  assert.equal(detail.body.delivery.body.token, "[redacted]");
  const listing = await admin(mf, "/admin/deliveries");
  for (const text of [listing.text, detail.text, mf.logs()]) {
    assert.ok(!text.includes(TOKEN), `Drift's token leaked: ${text.slice(0, 300)}`);
    assert.ok(!text.includes(ADMIN), "the admin token leaked");
  }

  const health = await (await mf.dispatchFetch("http://bridge.test/health")).text();
  assert.deepEqual(JSON.parse(health), { status: "ok", version: "0.1.0", configured: true, problems: 0 });
  const details = (await admin(mf, "/health")).body.details;
  assert.deepEqual(details.destinations.map((d) => [d.name, d.token, d.signed]), [
    ["echo", "keep", false], ["signed", "strip", true], ["signed-keep", "keep", true],
  ]);
  assert.ok(!JSON.stringify(details).includes("whsec_"), "no signing secret in the details");
});

test("a bad signing secret is named, never quoted", async () => {
  const mf = await bridge([{ name: "x", url: "https://example.com/", types: ["*"], signingSecret: "BAD_SECRET" }], {
    extra: { BAD_SECRET: "whsec_sec!ret+val%ue" },
  });
  const problems = (await admin(mf, "/health")).body.details.problems;
  assert.deepEqual(problems, ["DESTINATIONS[0].signingSecret: secret BAD_SECRET: the part after whsec_ is not valid base64"]);
  assert.ok(!mf.logs().includes("sec!ret"));
});

test("the admin API refuses a short ADMIN_TOKEN and takes the Bearer scheme in any case", async () => {
  const short = await bridge([], { extra: { ADMIN_TOKEN: "too-short-admin-token" } });
  const health = await (await short.dispatchFetch("http://bridge.test/health")).json();
  assert.deepEqual(health, { status: "degraded", version: "0.1.0", configured: true, problems: 1 });
  assert.match(short.logs(), /ADMIN_TOKEN: shorter than 32 characters, so the admin API stays off/);
  const off = await short.dispatchFetch("http://bridge.test/admin/deliveries", { headers: { authorization: "Bearer too-short-admin-token" } });
  assert.equal(off.status, 404);
  assert.equal((await webhook(short, INACTIVE)).status, 200, "webhooks keep flowing");

  const mf = await bridge([]);
  for (const scheme of ["Bearer", "bearer", "BEARER", "bEaReR"]) {
    assert.equal((await admin(mf, "/admin/deliveries", "GET", scheme)).status, 200, scheme);
  }
  assert.equal((await admin(mf, "/admin/deliveries", "GET", "Basic")).status, 401);
  const wrong = await mf.dispatchFetch("http://bridge.test/admin/deliveries", { headers: { authorization: `Bearer ${ADMIN}x` } });
  assert.equal(wrong.status, 401);
});

test("a repeat inside the deduplication window is dropped; after it, the event is delivered again, with the same webhook-id", async () => {
  const r = await app(() => 200);
  const mf = await bridge([{ name: "push-app", url: r.url, types: ["conversation_push"] }], {
    extra: { DEDUP_WINDOW_SECONDS: "2", DELIVERY_LOG_SECONDS: "3600" },
  });
  assert.equal((await webhook(mf, INACTIVE)).status, 200);
  await until(() => r.accepted().length === 1, 10000, "the first delivery");
  assert.equal((await webhook(mf, INACTIVE)).status, 200, "a duplicate is answered 200");
  await quiet(2500);
  assert.equal(r.accepted().length, 1, "dropped inside the window");
  // Past the window, while the log still keeps the delivered row: sent again,
  // as a new delivery of the same event, and the log says why.
  for (let i = 0; i < 2; i++) assert.equal((await webhook(mf, INACTIVE)).status, 200);
  await until(() => r.accepted().length === 2, 10000, "the delivery after the window");
  await quiet(500);
  assert.equal(r.accepted().length, 2, "the repeat right after it was dropped again");
  assert.equal(r.accepted()[0].headers["webhook-id"], r.accepted()[1].headers["webhook-id"], "the same event, the same webhook-id");
  const again = (await admin(mf, "/admin/deliveries/c0b44147a772c080.push-app.r1")).body.delivery;
  assert.equal(again.status, "delivered");
  assert.match(again.reason, /sent again: the event came in again after the deduplication window/);
  assert.equal((await admin(mf, "/admin/deliveries/c0b44147a772c080.push-app")).body.delivery.replayedAs, "c0b44147a772c080.push-app.r1");
});
