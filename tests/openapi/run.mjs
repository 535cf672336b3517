// The OpenAPI document against the bridge itself (make test-openapi): the
// built worker in real workerd (as tests/delivery/ runs it), listening on a
// loopback port, with an admin token, Drift's token and one declared app,
// a loopback receiver that answers 200 (410 to legacy closes, so that there
// are dead letters to replay); then tests/openapi/check.sh, which
// validates the document the worker serves and runs Schemathesis against
// the worker. Exits with check.sh's status.
//
// Schemathesis creates apps at runtime with whatever URLs it generates, and
// sends them test deliveries: every request the worker makes to anything
// but the receiver is answered here (200), never sent anywhere. OPENAPI_FILE
// checks another document (a file) against this worker instead.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { ADMIN, ROOT, TOKEN, persistDir, receiver, removeDir, startWorker } from "../delivery/support.mjs";

const started = Date.now();
// The legacy close is gone (410) for this app: dead letters to replay and recover.
const app = await receiver((_, { body }) => (body.includes('"type":"conversation_status_updated"') ? 410 : 200));
const receiverOrigin = new URL(app.url).origin;
const elsewhere = new Map();
const persist = persistDir();
let mf;
let status = 1;
try {
  mf = await startWorker({
    destinations: [{ name: "push-app", url: app.url, types: ["*"], signingSecret: "SIGNING_SECRET" }],
    persist,
    // A change to the apps is answered once every isolate's copy expired.
    extra: { APPS_CACHE_MS: "500" },
    options: {
      host: "127.0.0.1",
      port: 0,
      async outboundService(request) {
        const url = new URL(request.url);
        if (url.origin === receiverOrigin) {
          const body = ["GET", "HEAD"].includes(request.method) ? undefined : await request.arrayBuffer();
          return fetch(request.url, { method: request.method, headers: request.headers, body, redirect: "manual" });
        }
        elsewhere.set(url.host, (elsewhere.get(url.host) ?? 0) + 1);
        return new Response("ok (answered by tests/openapi/run.mjs)", { status: 200 });
      },
    },
  });
  const url = (await mf.ready).href.replace(/\/$/, "");
  console.error(`run.mjs: the bridge answers at ${url}`);
  status = await new Promise((resolve, reject) => {
    const child = spawn("bash", [join(ROOT, "tests/openapi/check.sh")], {
      stdio: "inherit",
      env: { ...process.env, BRIDGE_URL: url, ADMIN_TOKEN: ADMIN, DRIFT_VERIFICATION_TOKEN: TOKEN },
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
} finally {
  await mf?.dispose();
  await app.close();
  removeDir(persist);
}
const hosts = [...elsewhere].map(([host, n]) => `${host} (${n})`).join(", ");
console.error(`run.mjs: the receiver got ${app.requests.length} requests; answered here instead of sent: ${hosts || "none"}`);
console.error(`run.mjs: ${status === 0 ? "passed" : "failed"} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
process.exit(status);
