// Helpers for the delivery fault tests: the built worker in real workerd
// (Miniflare) with local Durable Objects, behind the test entry
// (entry-with-faults.mjs), and real HTTP receivers on loopback that record
// what they got.
import { createServer } from "node:http";
import { createHmac } from "node:crypto";
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const TOKEN = "drift-test-token";
export const ADMIN = "admin-test-token-0123456789abcdef";
export const SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/** A receiver on 127.0.0.1. `behave(attempt, request)` returns a status
 * code, {status, body} to answer with that body, or "hang" to never
 * answer. It records every request. */
export async function receiver(behave = () => 200, port = 0) {
  const requests = [];
  const attemptsById = new Map();
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const id = req.headers["webhook-id"];
      const attempt = (attemptsById.get(id) ?? 0) + 1;
      attemptsById.set(id, attempt);
      const outcome = behave(attempt, { headers: req.headers, body });
      requests.push({ headers: req.headers, body, attempt, status: outcome?.status ?? outcome, at: Date.now() });
      if (outcome === "hang") return; // the worker's timeout must fire
      // {status, body}: an answer with that body.
      const [status, text] = typeof outcome === "object" ? [outcome.status, outcome.body] : [outcome, String(outcome)];
      res.writeHead(status, { "content-type": "text/plain" });
      res.end(text);
    });
  });
  let connections = 0;
  server.on("connection", () => connections++);
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}/hook`;
  return {
    url,
    port: server.address().port,
    requests,
    /** TCP connections the worker opened to it so far. */
    connections: () => connections,
    /** Requests answered 2xx, i.e. what the app accepted. */
    accepted: () => requests.filter((r) => typeof r.status === "number" && r.status >= 200 && r.status < 300),
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}

/** A free loopback port with nothing listening on it (yet). */
export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export function persistDir() {
  return mkdtempSync(join(tmpdir(), "drift-bridge-do-"));
}

export function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true });
}

/** The test entry, copied beside the built worker (build/test-entry.mjs). */
export function testEntry() {
  const path = join(ROOT, "build/test-entry.mjs");
  copyFileSync(join(ROOT, "tests/delivery/entry-with-faults.mjs"), path);
  return path;
}

/** Starts the worker, behind the test entry, with destinations and delivery
 * settings for tests (`options`: more Miniflare options, e.g. a real port);
 * the test entry's bindings (`TEST_…` in `extra`) switch faults on. */
export async function startWorker({ destinations, persist, extra = {}, options = {} }) {
  const bindings = {
    DRIFT_VERIFICATION_TOKEN: TOKEN,
    ADMIN_TOKEN: ADMIN,
    DESTINATIONS: JSON.stringify(destinations),
    RETRY_BASE_SECONDS: "0",
    DELIVERY_TIMEOUT_MS: "400",
    RECOVERY_GRACE_SECONDS: "2",
    SIGNING_SECRET,
    APP_TOKEN: "app-specific-token",
    // The apps these tests add at runtime are loopback receivers.
    LOCAL_DEVELOPMENT: "1",
    ...extra,
  };
  let output = "";
  const scriptPath = testEntry();
  const mf = new Miniflare({
    rootPath: ROOT,
    scriptPath,
    modules: true,
    modulesRules: [
      { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
      { type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true },
    ],
    compatibilityDate: "2026-04-26",
    bindings,
    durableObjects: {
      OUTBOX: { className: "Outbox", useSQLite: true },
      DELIVERY_LOG: { className: "DeliveryLog", useSQLite: true },
      REGISTRY: { className: "Registry", useSQLite: true },
    },
    durableObjectsPersist: persist,
    ...options,
    handleRuntimeStdio(stdout, stderr) {
      for (const stream of [stdout, stderr]) {
        stream.setEncoding("utf8");
        stream.on("data", (chunk) => {
          output += chunk;
          if (process.env.DRIFT_BRIDGE_TEST_LOGS === "1") process.stderr.write(chunk);
        });
      }
    },
  });
  await mf.ready;
  /** Everything workerd printed so far (console.log/error of the worker). */
  mf.logs = () => output;
  return mf;
}

/** Row counts and alarm of an outbox (`kind` "outbox", `name` its scope) or
 * of a delivery log (`kind` "destination", `name` its key: a declared app's
 * name, or `<name>~<incarnation>` of an app managed at runtime). */
export async function stats(mf, kind, name) {
  const param = kind === "outbox" ? "scope" : "key";
  const res = await mf.dispatchFetch(`http://bridge.test/__test/${kind}?${param}=${encodeURIComponent(name)}`);
  if (res.status !== 200) throw new Error(`stats of ${kind} ${name}: ${res.status} ${await res.text()}`);
  return res.json();
}

export async function webhook(mf, event) {
  const res = await mf.dispatchFetch("http://bridge.test/webhooks/drift", {
    method: "POST",
    headers: { "content-type": "application/json", "x-verification-token": TOKEN },
    body: typeof event === "string" ? event : JSON.stringify(event),
  });
  return { status: res.status, body: await res.text() };
}

export async function admin(mf, path, method = "GET", scheme = "Bearer") {
  const res = await mf.dispatchFetch(`http://bridge.test${path}`, {
    method,
    headers: { authorization: `${scheme} ${ADMIN}` },
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text), text };
}

/** Polls `check` until it returns truthy or `ms` pass. */
export async function until(check, ms = 15000, what = "condition") {
  const start = Date.now();
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Settles: nothing more arrives for `ms`. */
export const quiet = (ms = 1500) => new Promise((r) => setTimeout(r, ms));

/** Verifies a Standard Webhooks signature the way a receiver would. */
export function verifySignature(request, secret = SIGNING_SECRET) {
  const { headers, body } = request;
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const signed = `${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${body}`;
  const expected = "v1," + createHmac("sha256", key).update(signed).digest("base64");
  return (headers["webhook-signature"] ?? "").split(" ").includes(expected);
}

export const INACTIVE = {
  orgId: 1,
  type: "conversation_inactive",
  data: { lastUpdated: 1591813767000, conversationId: 123456789 },
  token: TOKEN,
};

export function conversation(conversationId, type = "conversation_inactive") {
  return { orgId: 1, type, data: { lastUpdated: 1591813767000, conversationId }, token: TOKEN };
}

/** The CLI the tests run (`cargo build` makes it; DRIFT_BRIDGE_BIN for another). */
export const BIN = process.env.DRIFT_BRIDGE_BIN ?? join(ROOT, "target/debug/drift-bridge");

/** Throws, saying how to make it, when the CLI is not built. */
export function needCli() {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build it with \`cargo build\``);
}

/** Runs the CLI to its end with only `env` (and PATH) set: {code, stdout, stderr}. */
export function cli(args, env = { DRIFT_BRIDGE_ADMIN_TOKEN: ADMIN }) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { env: { PATH: process.env.PATH, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
