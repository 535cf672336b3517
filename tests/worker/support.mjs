// Shared helpers for the worker's end-to-end tests: start the built worker
// (build/index.js, build/bridge_bg.wasm, build/operator_bg.wasm) in real workerd through Miniflare,
// send it requests, and check its JSON answers.
//
// Run with `node --test --test-concurrency=1 tests/worker/` (from any cwd).

import assert from "node:assert/strict";
import { copyFileSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";

/** The repository root, whatever the current directory. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const SCRIPT = fileURLToPath(new URL("../../build/index.js", import.meta.url));
const WASM = ["bridge_bg.wasm", "operator_bg.wasm"].map((name) => fileURLToPath(new URL(`../../build/${name}`, import.meta.url)));

/** Any origin will do: the worker routes on the path only. */
export const BASE = "http://drift-bridge.test";

/** The token most instances are configured with. */
export const TOKEN = "tok_test_5f1c";

/** An admin token (32 characters or more) for instances that need one. */
export const ADMIN = "admin_test_0123456789abcdef01234567";

/** GET /health with the admin token: the public answer plus `details`. */
export async function adminHealth(mf) {
  const res = await request(mf, "/health", { headers: { authorization: `Bearer ${ADMIN}` } });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.ok(body.details, `no details with the admin token: ${JSON.stringify(body)}`);
  return body;
}

/** Drift's published example of a conversation_inactive webhook. */
export const DRIFT_EXAMPLE =
  '{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}';

/** What the webhook must answer for DRIFT_EXAMPLE with the default policy (always). */
export const DRIFT_EXAMPLE_RECEIVED =
  '{"received":"b624515312c8ce89","events":[' +
  '{"id":"b624515312c8ce89","type":"conversation_inactive"},' +
  '{"id":"c0b44147a772c080","type":"conversation_push"},' +
  '{"id":"945d7df49ee99b50","type":"conversation_status_updated"}]}';

/**
 * Starts the built worker with `bindings` (all strings); `options` are more
 * Miniflare options (for example `{ host: "127.0.0.1", port: 0 }` to listen
 * on a real port). Returns the Miniflare instance, with `logs()` giving what
 * workerd printed so far. Set DRIFT_BRIDGE_TEST_LOGS=1 to also see workerd's
 * output live.
 */
export async function startWorker(bindings = {}, { testEntry = false, ...options } = {}) {
  if (!existsSync(SCRIPT) || !WASM.every(existsSync)) {
    throw new Error(`${SCRIPT} or its wasm modules are missing: build it with \`bash scripts/build.sh worker\``);
  }
  let output = "";
  const live = process.env.DRIFT_BRIDGE_TEST_LOGS === "1";
  const mf = new Miniflare({
    rootPath: ROOT,
    // The test entry (tests/delivery/entry-with-faults.mjs) wraps the
    // production one with the /__test/… routes; the production entry has none.
    scriptPath: testEntry ? copyTestEntry() : SCRIPT,
    modules: true,
    modulesRoot: ROOT,
    // build/index.js is an ES module, also where the test entry imports it.
    modulesRules: [
      { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
      { type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true },
    ],
    compatibilityDate: "2026-04-26",
    bindings,
    ...options,
    handleRuntimeStdio(stdout, stderr) {
      for (const stream of [stdout, stderr]) {
        stream.setEncoding("utf8");
        stream.on("data", (chunk) => {
          output += chunk;
          if (live) process.stderr.write(chunk);
        });
      }
    },
  });
  try {
    await mf.ready;
  } catch (error) {
    // A worker that fails to start must not keep workerd (and the test
    // process) alive.
    await mf.dispose().catch(() => {});
    throw error;
  }
  mf.logs = () => output;
  return mf;
}

/** The test entry, copied beside the built worker (build/test-entry.mjs). */
function copyTestEntry() {
  const path = fileURLToPath(new URL("../../build/test-entry.mjs", import.meta.url));
  copyFileSync(fileURLToPath(new URL("../delivery/entry-with-faults.mjs", import.meta.url)), path);
  return path;
}

/** `fetch` against the worker; `path` may carry a query string. */
export function request(mf, path, init = {}) {
  return mf.dispatchFetch(BASE + path, init);
}

/**
 * POSTs `body` (a string is sent as is, anything else as JSON) to `path`,
 * with a Content-Length. `token` goes in X-Verification-Token; `headers`
 * are added.
 */
export function post(mf, path, body, { token, headers = {} } = {}) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  // Explicitly: dispatchFetch re-wraps the request and would otherwise send
  // even a string body chunked, so the worker would never see the header.
  const h = { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)), ...headers };
  if (token !== undefined) h["x-verification-token"] = token;
  return request(mf, path, { method: "POST", body: text, headers: h });
}

/** POSTs `body` as a stream of `chunks` pieces, so no Content-Length is sent. */
export function postStreamed(mf, path, body, { token, chunks = 4 } = {}) {
  const bytes = new TextEncoder().encode(body);
  const size = Math.ceil(bytes.length / chunks);
  let offset = 0;
  const stream = new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.slice(offset, offset + size));
      offset += size;
    },
  });
  const headers = { "content-type": "application/json" };
  if (token !== undefined) headers["x-verification-token"] = token;
  return request(mf, path, { method: "POST", body: stream, duplex: "half", headers });
}

/** Reads the response as text and checks it is served as JSON. */
export async function jsonText(res) {
  const text = await res.text();
  assert.match(res.headers.get("content-type") ?? "", /^application\/json\b/, `content-type of ${text}`);
  return text;
}

/** Asserts `res` is `status` with a JSON body, and returns that body parsed. */
export async function expectJson(res, status) {
  const text = await jsonText(res);
  assert.equal(res.status, status, `status (body: ${text})`);
  return JSON.parse(text);
}

/**
 * Asserts `res` is the error `{"error":{"code","message","path"}}` with
 * `status` and `code` (and `path` when given: a string, or a RegExp).
 * Returns the parsed body and its raw text.
 */
export async function expectError(res, status, code, path) {
  const text = await jsonText(res);
  assert.equal(res.status, status, `status (body: ${text})`);
  const body = JSON.parse(text);
  assert.deepEqual(Object.keys(body), ["error"], `error envelope: ${text}`);
  // code, message and path always; line and column (1-based) only for syntax errors.
  const keys = Object.keys(body.error);
  assert.deepEqual(keys.slice(0, 3), ["code", "message", "path"], `error fields: ${text}`);
  assert.ok(["", "line,column"].includes(keys.slice(3).join(",")), `error fields: ${text}`);
  if ("line" in body.error) {
    assert.ok(Number.isInteger(body.error.line) && body.error.line >= 1, `line: ${text}`);
    assert.ok(Number.isInteger(body.error.column) && body.error.column >= 1, `column: ${text}`);
  }
  assert.equal(typeof body.error.code, "string");
  assert.equal(typeof body.error.message, "string");
  assert.ok(body.error.message.length > 0, "the error has a message");
  assert.equal(typeof body.error.path, "string");
  assert.equal(body.error.code, code, `code (body: ${text})`);
  if (path instanceof RegExp) assert.match(body.error.path, path);
  else if (path !== undefined) assert.equal(body.error.path, path, `path (body: ${text})`);
  return { body, text };
}

/** Asserts `res` is 405 with an error body and returns its Allow header. */
export async function expectMethodNotAllowed(res) {
  await expectError(res, 405, "method_not_allowed");
  const allow = res.headers.get("allow");
  assert.ok(allow, "405 carries an Allow header");
  return allow;
}

/** A Drift event as JSON text. */
export function event(type, data, extra = {}) {
  return JSON.stringify({ orgId: 1, type, data, ...extra });
}

/**
 * A valid conversation_inactive event of exactly `bytes` bytes (UTF-8),
 * padded with a `data.pad` string.
 */
export function paddedEvent(bytes) {
  const make = (pad) =>
    `{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789,"pad":"${pad}"}}`;
  const base = Buffer.byteLength(make(""));
  assert.ok(bytes >= base, `cannot make an event of ${bytes} bytes (at least ${base})`);
  const text = make("x".repeat(bytes - base));
  assert.equal(Buffer.byteLength(text), bytes);
  JSON.parse(text);
  return text;
}

/** Resolves once `predicate()` holds, or fails after `ms`. */
export async function eventually(predicate, message, ms = 5000) {
  const until = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > until) assert.fail(message);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
