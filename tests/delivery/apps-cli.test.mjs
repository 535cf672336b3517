// `drift-bridge apps` against the built worker in real workerd, listening on
// a loopback port: list (json and table), add (the secret on stdout, once),
// edit, test, rotate, rm, a change sent again under its Idempotency-Key, with
// the exit statuses and the token from DRIFT_BRIDGE_ADMIN_TOKEN only.
// Runs the native binary (target/debug/drift-bridge, built by `cargo test`;
// DRIFT_BRIDGE_BIN names another).
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import { ADMIN, cli, needCli, receiver, persistDir, startWorker, webhook, until, conversation } from "./support.mjs";

let mf;
let url;
let app;

before(async () => {
  needCli();
  app = await receiver(() => 200);
  mf = await startWorker({
    destinations: [{ name: "legacy", url: app.url, types: ["conversation_status_updated"] }],
    persist: persistDir(),
    extra: { APPS_CACHE_MS: "500" },
    options: { host: "127.0.0.1", port: 0 },
  });
  url = (await mf.ready).href.replace(/\/$/, "");
});

after(async () => {
  await mf?.dispose();
  await app?.close();
});


test("apps add prints the answer with the secret once; list, edit, test, rotate and rm do what they say", async () => {
  const added = await cli(["apps", "add", "crm", "--url", app.url, "--types", "conversation_push", "--org-id", "1", "--rate", "20", "--bridge", url]);
  assert.equal(added.code, 0, added.stderr);
  const answer = JSON.parse(added.stdout);
  assert.match(answer.secret, /^whsec_/);
  assert.deepEqual(answer.destination.orgIds, [1]);
  assert.equal(answer.destination.ratePerSecond, 20);
  assert.match(added.stderr, /^crm added \(version 1\); its signing secret is in the answer on stdout, shown this once\n$/);
  assert.ok(!added.stderr.includes(answer.secret), "the secret only on stdout");

  const listed = await cli(["apps", "list", "--bridge", url]);
  assert.equal(listed.code, 0, listed.stderr);
  const names = JSON.parse(listed.stdout).destinations.map((d) => [d.name, d.source]);
  assert.deepEqual(names, [["legacy", "declared"], ["crm", "runtime"]], "json when stdout is not a terminal");
  assert.equal(listed.stderr, "2 apps\n");
  assert.ok(!listed.stdout.includes("whsec_"), "never in a listing");
  const table = await cli(["apps", "list", "--output", "table", "--bridge", url]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^NAME +SOURCE +STATE +URL\nlegacy +declared +active +http:\/\/127\.0\.0\.1:\d+\/hook\ncrm +runtime +active +http:\/\/127\.0\.0\.1:\d+\/hook\n$/);
  assert.ok(!table.stdout.includes("whsec_"));

  const edited = await cli(["apps", "edit", "crm", "--types", "conversation_push,conversation_status_updated", "--no-rate", "--bridge", url]);
  assert.equal(edited.code, 0, edited.stderr);
  assert.deepEqual(JSON.parse(edited.stdout).destination.types, ["conversation_push", "conversation_status_updated"]);
  assert.equal(JSON.parse(edited.stdout).destination.ratePerSecond, undefined);

  const tested = await cli(["apps", "test", "crm", "--bridge", url]);
  assert.equal(tested.code, 0, tested.stderr);
  assert.match(tested.stderr, /^crm took the test delivery: 200 in \d+ ms\n$/);
  const sent = app.requests.at(-1);
  assert.ok(new Webhook(answer.secret).verify(sent.body, sent.headers), "signed with the secret add printed");

  const rotated = await cli(["apps", "rotate", "crm", "--overlap", "60", "--bridge", url]);
  assert.equal(rotated.code, 0, rotated.stderr);
  assert.notEqual(JSON.parse(rotated.stdout).secret, answer.secret);
  assert.match(rotated.stderr, /the old one signs too until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+ ms since the epoch\)/);

  // The very next webhook goes to it.
  assert.equal((await webhook(mf, conversation(77, "conversation_push"))).status, 200);
  await until(() => app.requests.some((q) => JSON.parse(q.body).data?.conversationId === 77 && JSON.parse(q.body).type === "conversation_push"), 10000, "the push to crm");

  const removed = await cli(["apps", "rm", "crm", "--bridge", url]);
  assert.equal(removed.code, 0, removed.stderr);
  assert.deepEqual(JSON.parse(removed.stdout), { deleted: "crm", version: 4 });
});

test("exit statuses: 1 when the bridge refuses, 2 without a token, with a wrong one or no bridge", async () => {
  const bad = await cli(["apps", "add", "x", "--url", "http://example.com", "--types", "*", "--bridge", url]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /refused \(400 invalid_destination at url\): must be https/);
  assert.equal(JSON.parse(bad.stdout).error.path, "url", "the answer on stdout too");
  const declared = await cli(["apps", "rm", "legacy", "--bridge", url]);
  assert.equal(declared.code, 1);
  assert.match(declared.stderr, /declared in DESTINATIONS/);
  const unknown = await cli(["apps", "rotate", "nobody", "--bridge", url]);
  assert.equal(unknown.code, 1);
  const noToken = await cli(["apps", "list", "--bridge", url], {});
  assert.equal(noToken.code, 2);
  assert.match(noToken.stderr, /set DRIFT_BRIDGE_ADMIN_TOKEN/);
  const wrong = await cli(["apps", "list", "--bridge", url], { DRIFT_BRIDGE_ADMIN_TOKEN: "wrong-token-0123456789abcdef0123456789" });
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /refused the admin token \(401/);
  assert.ok(!wrong.stderr.includes("wrong-token"), "never echoes the token");
  const nowhere = await cli(["apps", "list", "--bridge", "http://127.0.0.1:9"]);
  assert.equal(nowhere.code, 2);
  assert.match(nowhere.stderr, /cannot reach http:\/\/127\.0\.0\.1:9/);
  const plain = await cli(["apps", "list", "--bridge", "http://example.com"]);
  assert.equal(plain.code, 2);
  assert.match(plain.stderr, /must be https/);
  const badName = await cli(["apps", "rm", "a.b", "--bridge", url]);
  assert.equal(badName.code, 2);
  const webhookUrl = await cli(["apps", "list", "--bridge", `${url}/webhooks/drift`]);
  assert.equal(webhookUrl.code, 2);
  assert.match(webhookUrl.stderr, /give the bridge's base URL, without \/webhooks\/drift/);
});

test("a change sent again under its Idempotency-Key is made once and answered with its first answer, secret included", async () => {
  const key = `cli-test-${Date.now()}`;
  const args = ["apps", "add", "crm2", "--url", app.url, "--types", "conversation_push", "--idempotency-key", key, "--bridge", url];
  const first = await cli(args);
  assert.equal(first.code, 0, first.stderr);
  const answer = JSON.parse(first.stdout);
  assert.match(answer.secret, /^whsec_/);
  assert.ok(!first.stderr.includes("already done"), first.stderr);

  const again = await cli(args);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(JSON.parse(again.stdout), answer, "the very same answer, the secret too");
  assert.match(again.stderr, new RegExp(`the bridge had already done this \\(Idempotency-Key ${key}\\); this is its first answer, given again`));
  const names = JSON.parse((await cli(["apps", "list", "--bridge", url])).stdout).destinations.filter((d) => d.name === "crm2");
  assert.equal(names.length, 1, "added once");

  const other = await cli(["apps", "rm", "crm2", "--idempotency-key", key, "--bridge", url]);
  assert.equal(other.code, 1, other.stderr);
  assert.match(other.stderr, /refused \(422 idempotency_key_reused\)/);
  assert.match(other.stderr, /leave --idempotency-key out for a fresh one/);
  assert.equal(JSON.parse(other.stdout).error.code, "idempotency_key_reused");

  // Without the flag each change has a fresh key: this one is made.
  const removed = await cli(["apps", "rm", "crm2", "--bridge", url]);
  assert.equal(removed.code, 0, removed.stderr);
});
