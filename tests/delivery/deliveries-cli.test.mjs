// `drift-bridge deliveries` against the built worker in real workerd,
// listening on a loopback port: list with filters (json and table, a page at
// a time and --all), show (json and table), replay of a dead letter, with the
// exit statuses. Runs the native binary (target/debug/drift-bridge, built by
// `cargo test`; DRIFT_BRIDGE_BIN names another).
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { ADMIN, cli, needCli, INACTIVE, receiver, persistDir, removeDir, startWorker, webhook, until, quiet } from "./support.mjs";

let mf;
let url;
let persist;
let legacy;
let broken;
let healthy = false;
/** The event ids of INACTIVE's three outbound events, by type. */
let ids;

before(async () => {
  needCli();
  legacy = await receiver(() => 200);
  broken = await receiver(() => (healthy ? 200 : 500));
  persist = persistDir();
  mf = await startWorker({
    destinations: [
      { name: "legacy", url: legacy.url, types: ["conversation_status_updated"] },
      { name: "broken", url: broken.url, types: ["conversation_push"] },
    ],
    persist,
    options: { host: "127.0.0.1", port: 0 },
  });
  url = (await mf.ready).href.replace(/\/$/, "");
  const res = await webhook(mf, INACTIVE);
  assert.equal(res.status, 200, res.body);
  ids = Object.fromEntries(JSON.parse(res.body).events.map((e) => [e.type, e.id]));
  // Twelve attempts to the broken app, then a dead letter.
  await until(async () => {
    const { stdout } = await cli(["deliveries", "list", "--status", "failed", "--bridge", url]);
    return JSON.parse(stdout).deliveries.length === 1;
  }, 20000, "the dead letter");
  await until(() => legacy.accepted().length === 1, 10000, "the legacy close");
});

after(async () => {
  await mf?.dispose();
  await legacy?.close();
  await broken?.close();
  if (persist) removeDir(persist);
});


const deadLetter = () => `${ids.conversation_push}.broken`;

test("list filters as the API does, as json or a table", async () => {
  const all = await cli(["deliveries", "list", "--bridge", url]);
  assert.equal(all.code, 0, all.stderr);
  const answer = JSON.parse(all.stdout);
  assert.deepEqual(answer.deliveries.map((d) => d.id).sort(), [`${ids.conversation_status_updated}.legacy`, deadLetter()].sort());
  assert.equal(answer.next, null);
  assert.equal(all.stderr, "2 deliveries\n");

  const failed = JSON.parse((await cli(["deliveries", "list", "--status", "failed,gone", "--bridge", url])).stdout).deliveries;
  assert.deepEqual(failed.map((d) => [d.id, d.status, d.attempts]), [[deadLetter(), "failed", 12]]);
  const byApp = JSON.parse((await cli(["deliveries", "list", "--destination", "legacy", "--status", "delivered", "--bridge", url])).stdout).deliveries;
  assert.deepEqual(byApp.map((d) => d.destination), ["legacy"]);
  const byEvent = JSON.parse((await cli(["deliveries", "list", "--event", ids.conversation_push.toUpperCase(), "--bridge", url])).stdout).deliveries;
  assert.deepEqual(byEvent.map((d) => d.id), [deadLetter()]);
  const byConversation = await cli(["deliveries", "list", "--conversation", "123456789", "--bridge", url]);
  assert.equal(JSON.parse(byConversation.stdout).deliveries.length, 2);
  const other = await cli(["deliveries", "list", "--conversation", "5", "--bridge", url]);
  assert.deepEqual(JSON.parse(other.stdout).deliveries, []);
  assert.equal(other.stderr, "0 deliveries\n");
  // Received now: nothing since tomorrow, everything since yesterday (as RFC 3339 and in ms).
  const day = 86_400_000;
  const tomorrow = new Date(Date.now() + day).toISOString().replace(/\.\d+Z$/, "Z");
  assert.deepEqual(JSON.parse((await cli(["deliveries", "list", "--since", tomorrow, "--bridge", url])).stdout).deliveries, []);
  assert.equal(JSON.parse((await cli(["deliveries", "list", "--since", String(Date.now() - day), "--until", tomorrow, "--bridge", url])).stdout).deliveries.length, 2);

  const table = await cli(["deliveries", "list", "--output", "table", "--bridge", url]);
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trimEnd().split("\n");
  assert.match(lines[0], /^TIME \(UTC\) +STATUS +DESTINATION +TYPE +CONVERSATION +ATTEMPTS +ID$/);
  assert.equal(lines.length, 3, table.stdout);
  const row = lines.find((l) => l.includes(deadLetter()));
  assert.match(row, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +failed +broken +conversation_push +123456789 +12 +[0-9a-f]{16}\.broken$/);
});

test("list pages by --limit and --cursor, and --all reads every page", async () => {
  const first = await cli(["deliveries", "list", "--limit", "1", "--bridge", url]);
  assert.equal(first.code, 0, first.stderr);
  const page = JSON.parse(first.stdout);
  assert.equal(page.deliveries.length, 1);
  assert.ok(page.next, "a next page");
  assert.equal(first.stderr, `1 delivery; more with --cursor ${page.next}, or --all\n`);
  const second = JSON.parse((await cli(["deliveries", "list", "--limit", "1", "--cursor", page.next, "--bridge", url])).stdout);
  assert.equal(second.deliveries.length, 1);
  assert.notEqual(second.deliveries[0].id, page.deliveries[0].id);

  const all = await cli(["deliveries", "list", "--all", "--limit", "1", "--bridge", url]);
  assert.equal(all.code, 0, all.stderr);
  const every = JSON.parse(all.stdout);
  assert.equal(every.deliveries.length, 2);
  assert.equal(every.next, null);
  assert.equal(all.stderr, "2 deliveries\n");
});

test("show prints a delivery with its attempts and its body, token redacted", async () => {
  const shown = await cli(["deliveries", "show", deadLetter(), "--bridge", url]);
  assert.equal(shown.code, 0, shown.stderr);
  const d = JSON.parse(shown.stdout).delivery;
  assert.equal(d.id, deadLetter());
  assert.equal(d.attemptLog.length, 12);
  assert.equal(d.body.token, "[redacted]");

  const table = await cli(["deliveries", "show", deadLetter(), "--output", "table", "--bridge", url]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, new RegExp(`^id +${deadLetter().replace(".", "\\.")}\nstatus +failed: gave up after 12 attempts; last: the app answered 500`));
  assert.match(table.stdout, /^destination +broken$/m);
  assert.match(table.stdout, /^conversation +123456789 \(scope conversation:1:123456789\)$/m);
  assert.match(table.stdout, /^ATTEMPT +TIME \(UTC\) +CODE +LATENCY +ERROR$/m);
  const attempts = table.stdout.match(/^ *\d+(?: \(probe\))? +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +500 +\d+ ms +the app answered 500/gm);
  assert.equal(attempts?.length, 12, table.stdout);
  assert.match(table.stdout, /\nbody \(Drift's token redacted\)\n\{\n  "orgId": 1,\n  "type": "conversation_push",/);
  assert.ok(!table.stdout.includes("drift-test-token"), "Drift's token never shown");

  const unknown = await cli(["deliveries", "show", "0123456789abcdef.broken", "--bridge", url]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /refused \(404 not_found\): .*expired or never existed/);
});

test("replay queues a dead letter once more; twice is refused", async () => {
  healthy = true;
  const replayed = await cli(["deliveries", "replay", deadLetter(), "--bridge", url]);
  assert.equal(replayed.code, 0, replayed.stderr);
  assert.deepEqual(JSON.parse(replayed.stdout), { replayed: deadLetter(), as: `${deadLetter()}.r1` });
  assert.equal(
    replayed.stderr,
    `${deadLetter()} replayed as ${deadLetter()}.r1; follow it with: drift-bridge deliveries show ${deadLetter()}.r1 --bridge ${url}\n`,
  );
  await until(() => broken.accepted().length === 1, 10000, "the replayed delivery");
  await quiet(500);
  assert.equal(broken.accepted()[0].headers["webhook-id"], ids.conversation_push, "the same webhook-id");
  await until(async () => JSON.parse((await cli(["deliveries", "show", `${deadLetter()}.r1`, "--bridge", url])).stdout).delivery.status === "delivered", 10000, "r1 delivered");
  const listed = JSON.parse((await cli(["deliveries", "list", "--status", "replayed", "--bridge", url])).stdout).deliveries;
  assert.deepEqual(listed.map((d) => [d.id, d.replayedAs]), [[deadLetter(), `${deadLetter()}.r1`]]);

  const again = await cli(["deliveries", "replay", deadLetter(), "--bridge", url]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /refused \(409 conflict\): .*already replayed as/);
  assert.equal(JSON.parse(again.stdout).error.code, "conflict", "the answer on stdout too");
});

test("exit statuses: 2 without a token, with a wrong one, or with no bridge; usage errors before any request", async () => {
  const noToken = await cli(["deliveries", "list", "--bridge", url], {});
  assert.equal(noToken.code, 2);
  assert.match(noToken.stderr, /set DRIFT_BRIDGE_ADMIN_TOKEN/);
  const wrong = await cli(["deliveries", "list", "--bridge", url], { DRIFT_BRIDGE_ADMIN_TOKEN: "wrong-token-0123456789abcdef0123456789" });
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /refused the admin token \(401/);
  assert.ok(!wrong.stderr.includes("wrong-token"), "never echoes the token");
  const noBridge = await cli(["deliveries", "list"]);
  assert.equal(noBridge.code, 2);
  assert.match(noBridge.stderr, /--bridge <URL> is required/);
  const badStatus = await cli(["deliveries", "list", "--status", "lost", "--bridge", url]);
  assert.equal(badStatus.code, 2);
  assert.match(badStatus.stderr, /possible values: pending, held, delivered, failed, gone, replayed/);
  const unknownApp = await cli(["deliveries", "list", "--destination", "nobody", "--bridge", url]);
  assert.equal(unknownApp.code, 1);
  assert.match(unknownApp.stderr, /refused \(400 invalid_parameter at destination\)/);
});
