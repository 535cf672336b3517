// `drift-bridge listen` against the built worker in real workerd, listening
// on a loopback port: an app added with `apps add --listen` has its
// deliveries held while nobody listens; the real CLI connects, gets what
// was held and then what comes live, POSTs each to a local receiver signed
// as the bridge would, prints a line per delivery; a 500 from the receiver
// is that attempt's outcome and is retried; a second listener replaces the
// first (close 4000, exit status 1); a listener for an app with a URL is
// refused (409). Runs the native binary (target/debug/drift-bridge, built by
// `cargo build`; DRIFT_BRIDGE_BIN names another).
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { Webhook } from "standardwebhooks";
import { ADMIN, BIN, cli, needCli, receiver, persistDir, startWorker, webhook, until, conversation } from "./support.mjs";

let mf;
let url;
let crm;
const children = [];

before(async () => {
  needCli();
  crm = await receiver(() => 200);
  mf = await startWorker({
    destinations: [{ name: "crm", url: crm.url, types: ["conversation_status_updated"] }],
    persist: persistDir(),
    extra: { APPS_CACHE_MS: "500", RETRY_BASE_SECONDS: "1", DELIVERY_TIMEOUT_MS: "3000" },
    options: { host: "127.0.0.1", port: 0 },
  });
  url = (await mf.ready).href.replace(/\/$/, "");
});

after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  await mf?.dispose();
  await crm?.close();
});

const ENV = { PATH: process.env.PATH, DRIFT_BRIDGE_ADMIN_TOKEN: ADMIN };


/** Starts `drift-bridge listen`: its output so far, and its end. */
function listen(app, forward) {
  const child = spawn(BIN, ["listen", app, "--forward", forward, "--bridge", url], { env: ENV, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  const run = { child, stdout: "", stderr: "" };
  child.stdout.setEncoding("utf8").on("data", (c) => (run.stdout += c));
  child.stderr.setEncoding("utf8").on("data", (c) => (run.stderr += c));
  run.ended = new Promise((resolve) => child.on("close", (code) => resolve(code)));
  run.lines = () => run.stdout.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
  return run;
}

test("a listen app's deliveries wait for drift-bridge listen, then arrive signed; a 500 is retried; a second listener takes over", async () => {
  const added = await cli(["apps", "add", "lap", "--listen", "--types", "conversation_push,conversation_inactive", "--bridge", url]);
  assert.equal(added.code, 0, added.stderr);
  const { secret, destination } = JSON.parse(added.stdout);
  assert.equal(destination.listen, true);
  assert.equal(destination.url, undefined, "no URL");
  assert.match(added.stderr, /lap takes a listener: drift-bridge listen lap/);
  await new Promise((r) => setTimeout(r, 1500)); // the apps' copies (APPS_CACHE_MS)

  // Nobody listens: held.
  const held = conversation(1001);
  assert.equal((await webhook(mf, held)).status, 200);
  const health = async () => {
    const res = await mf.dispatchFetch(`http://bridge.test/admin/destinations/lap`, { headers: { authorization: `Bearer ${ADMIN}` } });
    return res.json();
  };
  let last;
  await until(async () => (last = await health()).destination.held >= 1, 5000, "the delivery held").catch((e) => {
    throw new Error(`${e.message}: ${JSON.stringify(last)}\n${mf.logs().slice(-3000)}`);
  });

  // The local app: the first request of the second delivery is answered 500.
  let failOnce = true;
  const local = await receiver((attempt, req) => {
    if (failOnce && req.body.includes("1003")) {
      failOnce = false;
      return 500;
    }
    return 200;
  });
  try {
    const first = listen("lap", local.url);
    const heldCount = last.destination.held;
    await until(() => local.accepted().length >= heldCount, 15000, "the held deliveries at the local app");
    const got = local.accepted().find((r) => r.body.includes("1001"));
    assert.match(got.body, /"conversationId":1001/, "the same event");
    assert.ok(new Webhook(secret).verify(got.body, got.headers), "signed with the app's secret");
    assert.match(first.stderr, /connected to .* as lap, forwarding to/);
    assert.match(first.stderr, heldCount === 1 ? /1 delivery waited for a listener; it comes first/ : new RegExp(`${heldCount} deliveries waited for a listener`));

    // Live: sent at once.
    assert.equal((await webhook(mf, conversation(1002, "conversation_push"))).status, 200);
    await until(() => local.accepted().some((r) => r.body.includes("1002")), 10000, "a live delivery");

    // A 500 is that attempt's outcome, and it is tried again.
    assert.equal((await webhook(mf, conversation(1003))).status, 200);
    const failed = await until(() => local.requests.find((r) => r.status === 500), 10000, "the answer 500");
    const failedId = failed.headers["webhook-id"];
    await until(() => local.accepted().some((r) => r.headers["webhook-id"] === failedId), 20000, "the retried delivery");
    const tries = local.requests.filter((r) => r.headers["webhook-id"] === failedId);
    assert.deepEqual(tries.map((r) => r.status), [500, 200], "the same webhook-id, tried again");
    const id = `${tries[0].headers["webhook-id"]}.lap`;
    const shown = await until(async () => {
      const res = await mf.dispatchFetch(`http://bridge.test/admin/deliveries/${id}`, { headers: { authorization: `Bearer ${ADMIN}` } });
      const d = (await res.json()).delivery;
      return d?.status === "delivered" ? d : undefined;
    }, 5000, "the delivery recorded as delivered");
    assert.deepEqual(shown.attemptLog.map((a) => a.code), [500, 200]);

    // One line per delivery on stdout (json: stdout is not a terminal).
    await until(() => first.lines().length >= local.requests.length, 5000, "a line per delivery");
    const lines = first.lines();
    assert.equal(lines.length, local.requests.length, first.stdout);
    const of = (c) => lines.filter((l) => l.conversation === c).map((l) => [l.attempt, l.status]);
    assert.deepEqual(lines.filter((l) => l.id === id).map((l) => [l.attempt, l.status]), [[1, 500], [2, 200]], first.stdout);
    assert.ok(of("1001").length >= 1 && of("1002").length >= 1, first.stdout);
    assert.ok(lines.every((l) => l.id.endsWith(".lap")));
    const ids = local.accepted().map((r) => r.headers["webhook-id"]);
    assert.equal(new Set(ids).size, ids.length, "each delivered once");

    // A second listener takes over; the first is told and ends.
    const second = listen("lap", local.url);
    assert.equal(await first.ended, 1, first.stderr);
    assert.match(first.stderr, /the bridge ended this listener: another drift-bridge listen connected/);
    // The first is told as the second's connection is taken; the second says so as it reads its hello.
    await until(() => /connected to .* as lap/.test(second.stderr), 10000, "the second listener connected");
    assert.equal((await webhook(mf, conversation(1004))).status, 200);
    await until(() => local.accepted().some((r) => r.body.includes("1004")), 10000, "a delivery through the second listener");
    await until(() => second.lines().length >= 1, 5000, "the second listener's line");
    second.child.kill("SIGINT");
    assert.equal(await second.ended, 0, second.stderr);
  } finally {
    await local.close();
  }
});

test("a listener is refused for an app with a URL (409) and for no such app (404)", async () => {
  const refused = await cli(["listen", "crm", "--forward", "http://127.0.0.1:9/x", "--bridge", url]);
  assert.equal(refused.code, 1, refused.stderr);
  // The bridge's reason when it came with the headers, else the CLI's own.
  assert.match(refused.stderr, /refused \(409 not_a_listener\): .*(only an app created with "listen": true|only an app created with --listen) takes a listener/);
  const res = await mf.dispatchFetch("http://bridge.test/admin/destinations/crm/listen", { headers: { authorization: `Bearer ${ADMIN}`, upgrade: "websocket" } });
  assert.equal(res.status, 409);
  const body = await res.json();
  assert.equal(body.error.code, "not_a_listener");
  assert.match(body.error.message, /crm sends its deliveries to http:\/\/127\.0\.0\.1:\d+\/… \(#[0-9a-f]{8}\); only an app created with "listen": true takes a listener/);
  const unknown = await cli(["listen", "nope", "--forward", "http://127.0.0.1:9/x", "--bridge", url]);
  assert.equal(unknown.code, 1, unknown.stderr);
  assert.match(unknown.stderr, /404/);
});

test("deleting a listen app ends its listener, which is told why and does not connect again", async () => {
  const added = await cli(["apps", "add", "brief", "--listen", "--types", "conversation_push", "--bridge", url]);
  assert.equal(added.code, 0, added.stderr);
  await new Promise((r) => setTimeout(r, 1500)); // the apps' copies (APPS_CACHE_MS)
  const run = listen("brief", "http://127.0.0.1:9/x");
  await until(() => /connected to .* as brief/.test(run.stderr), 10000, "the listener connected");
  const removed = await cli(["apps", "rm", "brief", "--bridge", url]);
  assert.equal(removed.code, 0, removed.stderr);
  assert.equal(await run.ended, 1, run.stderr);
  assert.match(run.stderr, /the bridge ended this listener: the app was deleted/);
});
