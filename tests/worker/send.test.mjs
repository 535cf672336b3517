// `drift-bridge send` against the built worker in real workerd.
//
// The worker listens on a loopback port; a small Node proxy sits between the
// CLI and it, forwarding each POST and counting, per line, the requests and
// the worker's answers. The proxy can also answer in the worker's place
// (503, 429, a dropped connection) to check retries. Runs the native binary
// (target/debug/drift-bridge, built by `cargo test` or `cargo build`;
// DRIFT_BRIDGE_BIN names another).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ROOT, TOKEN, eventually, startWorker } from "./support.mjs";

const BIN = process.env.DRIFT_BRIDGE_BIN ?? join(ROOT, "target/debug/drift-bridge");

/** A distinct, valid event per line: `conversation_status_updated` for conversation `id`. */
const closed = (id) =>
  `{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":${id},"status":"closed","changedAt":1591813767000}}`;
const BAD = '{"orgId":1,"type":"conversation_push","data":{"conversationId":"42"}}';

/** Runs the CLI; resolves with its exit code, stdout and stderr. `onSpawn` gets the child. */
function run(args, { env = {}, stdin = "", onSpawn } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, {
      env: { PATH: process.env.PATH, ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
    // A run that reads a file, or stops early, may exit before its stdin is
    // written: that EPIPE is no failure of the CLI's.
    child.stdin.on("error", (error) => {
      if (error.code !== "EPIPE") reject(error);
    });
    child.stdin.end(stdin);
    onSpawn?.(child);
  });
}

describe("drift-bridge send", () => {
  let mf;
  let proxy;
  let target;
  let dir;
  /** body → { requests, statuses: [worker's answers] } */
  let seen = new Map();
  /** (body, attempt) → an answer given in the worker's place, or undefined to forward. */
  let intercept = () => undefined;

  before(async () => {
    if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build it with \`cargo build\``);
    // A real port: the CLI reaches the worker (through the proxy) over HTTP.
    mf = await startWorker({ DRIFT_VERIFICATION_TOKEN: TOKEN }, { host: "127.0.0.1", port: 0 });
    const worker = await mf.ready;
    proxy = createServer(async (req, res) => {
      const chunks = [];
      for await (const chunk of req) chunks.push(chunk);
      const body = Buffer.concat(chunks).toString("utf8");
      const entry = seen.get(body) ?? { requests: 0, statuses: [] };
      seen.set(body, entry);
      entry.requests += 1;
      const answer = intercept(body, entry.requests);
      if (answer === "drop") {
        req.socket.destroy();
        return;
      }
      if (answer) {
        res.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
        res.end(answer.body ?? "");
        return;
      }
      const headers = { "content-type": req.headers["content-type"] ?? "application/json" };
      if (req.headers["x-verification-token"] !== undefined) headers["x-verification-token"] = req.headers["x-verification-token"];
      const answered = await fetch(new URL(req.url, worker), { method: "POST", headers, body });
      entry.statuses.push(answered.status);
      const text = await answered.text();
      res.writeHead(answered.status, { "content-type": answered.headers.get("content-type") ?? "application/json" });
      res.end(text);
    });
    await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    target = `http://127.0.0.1:${proxy.address().port}/webhooks/drift`;
    dir = mkdtempSync(join(tmpdir(), "drift-bridge-send-"));
  });

  after(async () => {
    proxy?.closeAllConnections?.();
    await new Promise((resolve) => (proxy ? proxy.close(resolve) : resolve()));
    await mf?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function reset() {
    seen = new Map();
    intercept = () => undefined;
  }

  function file(name, lines) {
    const path = join(dir, name);
    writeFileSync(path, lines.join("\n") + "\n");
    return path;
  }

  test("every good line is accepted once; blank lines skipped; the token can come from the environment", async () => {
    reset();
    const lines = [closed(101), closed(102), "", closed(103), "   ", closed(104), closed(105)];
    const { code, stdout, stderr } = await run(["send", file("good.ndjson", lines), "--to", target], {
      env: { DRIFT_VERIFICATION_TOKEN: TOKEN },
    });
    assert.equal(code, 0, stderr);
    assert.equal(stdout, "", "stdout stays clean");
    assert.match(stderr, /^drift-bridge: sent 5 lines to http:\/\/127\.0\.0\.1:\d+\/webhooks\/drift in [\d.]+ s \(5 requests\)$/m);
    assert.match(stderr, /^ {2}accepted {2}5$/m);
    assert.match(stderr, /^ {2}rejected {2}0$/m);
    assert.match(stderr, /^ {2}failed {4}0$/m);
    for (const id of [101, 102, 103, 104, 105]) assert.deepEqual(seen.get(closed(id)), { requests: 1, statuses: [200] }, `line with ${id}`);
    assert.equal(seen.size, 5, "nothing else was sent");
    assert.ok(!stderr.includes(TOKEN), "the token is never printed");
  });

  test("stdin with -", async () => {
    reset();
    const { code, stderr } = await run(["send", "-", "--to", target, "--token", TOKEN], { stdin: `${closed(111)}\n${closed(112)}` });
    assert.equal(code, 0, stderr);
    assert.match(stderr, /^ {2}accepted {2}2$/m);
    assert.equal(seen.get(closed(112))?.statuses.join(), "200", "a last line without a newline is sent too");
  });

  test("a line the bridge rejects is reported with its line number and error, not retried; exit 1", async () => {
    reset();
    const big = closed(124).replace(/}}$/, `,"pad":"${"x".repeat(70_000)}"}}`);
    const path = file("bad.ndjson", [closed(121), BAD, closed(123), big]);
    const { code, stderr } = await run(["send", path, "--to", target, "--token", TOKEN]);
    assert.equal(code, 1, stderr);
    assert.match(stderr, /^line 2: rejected \(400\): invalid_event at data\.conversationId: expected an integer, found a string$/m);
    assert.match(stderr, /^line 4: rejected \(413\): too_large: the request body is larger than the limit of 65536 bytes \(MAX_BODY_BYTES\)$/m);
    assert.match(stderr, /^ {2}accepted {2}2$/m);
    assert.match(stderr, /^ {2}rejected {2}2 {2}lines 2, 4$/m);
    assert.deepEqual(seen.get(BAD), { requests: 1, statuses: [400] });
    assert.deepEqual(seen.get(big), { requests: 1, statuses: [413] });
  });

  test("a wrong token stops the run with a clear error; exit 2; the token is never printed", async () => {
    reset();
    const wrong = "tok_wrong_91c2";
    const path = file("wrong-token.ndjson", Array.from({ length: 20 }, (_, i) => closed(200 + i)));
    const { code, stdout, stderr } = await run(["send", path, "--to", target, "--token", wrong, "--concurrency", "1"]);
    assert.equal(code, 2, stderr);
    assert.equal(stdout, "");
    assert.match(
      stderr,
      /^drift-bridge: the bridge refused the token \(401 unauthorized: missing or invalid verification token\): check --token$/m,
    );
    assert.ok(!stderr.includes(wrong), stderr);
    const requests = [...seen.values()].reduce((n, e) => n + e.requests, 0);
    assert.ok(requests >= 1 && requests <= 2, `the run stopped at once (${requests} requests)`);
  });

  test("429, 503 and dropped connections are retried (Retry-After honoured) until accepted, each line accepted once", async () => {
    reset();
    intercept = (body, attempt) => {
      if (body === closed(301) && attempt <= 2) return { status: 503, body: '{"error":{"code":"unavailable","message":"busy","path":""}}' };
      if (body === closed(302) && attempt === 1) return { status: 429, headers: { "retry-after": "1" } };
      if (body === closed(303) && attempt === 1) return "drop";
      return undefined;
    };
    const path = file("retry.ndjson", [closed(301), closed(302), closed(303), closed(304)]);
    const { code, stderr } = await run(["send", path, "--to", target, "--token", TOKEN]);
    assert.equal(code, 0, stderr);
    assert.match(stderr, /^ {2}accepted {2}4$/m);
    assert.match(stderr, /\(8 requests\)/);
    assert.deepEqual(seen.get(closed(301)), { requests: 3, statuses: [200] });
    assert.deepEqual(seen.get(closed(302)), { requests: 2, statuses: [200] });
    assert.deepEqual(seen.get(closed(303)), { requests: 2, statuses: [200] });
    assert.deepEqual(seen.get(closed(304)), { requests: 1, statuses: [200] });
  });

  test("a line that keeps failing is given up on after --retries and reported; exit 1", async () => {
    reset();
    intercept = (body) =>
      body === closed(402) ? { status: 503, headers: { "retry-after": "0" }, body: '{"error":{"code":"not_configured","message":"try later","path":""}}' } : undefined;
    const path = file("failing.ndjson", [closed(401), closed(402), closed(403)]);
    const { code, stderr } = await run(["send", path, "--to", target, "--token", TOKEN, "--retries", "2"]);
    assert.equal(code, 1, stderr);
    assert.match(stderr, /^line 2: failed after 3 tries: 503 not_configured: try later$/m);
    assert.match(stderr, /^ {2}failed {4}1 {2}line 2$/m);
    assert.match(stderr, /^ {2}accepted {2}2$/m);
    assert.equal(seen.get(closed(402)).requests, 3);
  });

  test("an interrupted run carries on from --state: every line accepted exactly once overall", async () => {
    reset();
    const ids = Array.from({ length: 30 }, (_, i) => 500 + i);
    const path = file("resume.ndjson", ids.map(closed));
    const state = join(dir, "resume.state");
    const args = ["send", path, "--to", target, "--token", TOKEN, "--state", state, "--concurrency", "2"];
    const accepted = () => [...seen.values()].filter((e) => e.statuses.includes(200)).length;

    // First run: slow, interrupted once some lines are in.
    const first = await run([...args, "--rate", "10"], {
      onSpawn: (child) => {
        eventually(() => accepted() >= 8, "8 lines accepted", 15_000).then(() => child.kill("SIGINT"), () => child.kill("SIGKILL"));
      },
    });
    assert.equal(first.code, 130, first.stderr);
    assert.match(first.stderr, /^drift-bridge: interrupted; run the same command again to carry on$/m);
    const firstAccepted = Number(first.stderr.match(/^ {2}accepted {2}(\d+)$/m)?.[1]);
    assert.ok(firstAccepted >= 8 && firstAccepted < 30, `${firstAccepted} accepted before the interruption`);
    assert.equal(accepted(), firstAccepted, "lines in flight were finished and counted");
    const recorded = readFileSync(state, "utf8").split("\n").filter((l) => /^\d+$/.test(l));
    assert.equal(recorded.length, firstAccepted, "every accepted line is in the state");

    // Second run: the same command carries on.
    const second = await run(args);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stderr, new RegExp(`^  accepted  ${30 - firstAccepted}$`, "m"));
    assert.match(second.stderr, new RegExp(`^  skipped   ${firstAccepted}  accepted in an earlier run`, "m"));
    for (const id of ids) assert.deepEqual(seen.get(closed(id)), { requests: 1, statuses: [200] }, `conversation ${id}`);

    // A third run has nothing left to send.
    const third = await run(args);
    assert.equal(third.code, 0, third.stderr);
    assert.match(third.stderr, /^drift-bridge: sent 0 lines/m);
    assert.match(third.stderr, /^ {2}skipped {3}30 /m);

    // The state belongs to this input: another one is refused.
    const other = await run(["send", file("other.ndjson", [closed(1)]), "--to", target, "--token", TOKEN, "--state", state]);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /it belongs to another input/);
  });
});
