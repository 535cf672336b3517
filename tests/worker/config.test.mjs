// Configuration from bindings: a missing or blank token, LEGACY_POLICY.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  ADMIN,
  DRIFT_EXAMPLE,
  TOKEN,
  adminHealth,
  expectError,
  expectJson,
  post,
  request,
  startWorker,
} from "./support.mjs";

const WEBHOOK = "/webhooks/drift";
const withBodyToken = (token) => DRIFT_EXAMPLE.replace(/}$/, `,"token":${JSON.stringify(token)}}`);

for (const [label, bindings] of [
  ["unset", { ADMIN_TOKEN: ADMIN }],
  ["blank", { DRIFT_VERIFICATION_TOKEN: " , ", ADMIN_TOKEN: ADMIN }],
]) {
  describe(`DRIFT_VERIFICATION_TOKEN ${label}`, () => {
    let mf;
    before(async () => {
      mf = await startWorker(bindings);
    });
    after(() => mf?.dispose());

    test("the webhook refuses everything with 503 not_configured", async () => {
      const attempts = [
        post(mf, WEBHOOK, DRIFT_EXAMPLE),
        post(mf, WEBHOOK, DRIFT_EXAMPLE, { token: TOKEN }),
        post(mf, WEBHOOK, DRIFT_EXAMPLE, { token: "" }),
        post(mf, WEBHOOK, withBodyToken(TOKEN)),
        post(mf, WEBHOOK, withBodyToken("")),
        post(mf, WEBHOOK, withBodyToken(" , "), { token: " , " }),
        post(mf, WEBHOOK, "not json", { token: TOKEN }),
      ];
      for (const pending of attempts) {
        await expectError(await pending, 503, "not_configured", "");
      }
    });

    test("/health: misconfigured, with a DRIFT_VERIFICATION_TOKEN problem named to the admin only", async () => {
      const body = await expectJson(await request(mf, "/health"), 200);
      assert.deepEqual(body, { status: "misconfigured", version: "0.1.0", configured: false, problems: 1 });
      const { details } = await adminHealth(mf);
      assert.ok(
        details.problems.some((p) => p.startsWith("DRIFT_VERIFICATION_TOKEN:")),
        JSON.stringify(details.problems),
      );
    });

    test("/convert still works without the secret", async () => {
      const body = await expectJson(await post(mf, "/convert?legacy=always", DRIFT_EXAMPLE), 200);
      assert.deepEqual(
        body.events.map((e) => e.event.type),
        ["conversation_inactive", "conversation_push", "conversation_status_updated"],
      );
    });
  });
}

describe("LEGACY_POLICY=never", () => {
  let mf;
  before(async () => {
    mf = await startWorker({ DRIFT_VERIFICATION_TOKEN: TOKEN, LEGACY_POLICY: "never", ADMIN_TOKEN: ADMIN });
  });
  after(() => mf?.dispose());

  test("conversation_inactive yields itself and a push, no legacy close", async () => {
    const res = await post(mf, WEBHOOK, DRIFT_EXAMPLE, { token: TOKEN });
    assert.equal(res.status, 200);
    assert.equal(
      await res.text(),
      '{"received":"b624515312c8ce89","events":[' +
        '{"id":"b624515312c8ce89","type":"conversation_inactive"},' +
        '{"id":"c0b44147a772c080","type":"conversation_push"}]}',
    );
  });

  test("/health reports the policy as configured (to the admin)", async () => {
    const body = await expectJson(await request(mf, "/health"), 200);
    assert.deepEqual(body, { status: "ok", version: "0.1.0", configured: true, problems: 0 });
    const { details } = await adminHealth(mf);
    assert.equal(details.legacyPolicy, "never");
    assert.deepEqual(details.problems, []);
  });
});

describe("LEGACY_POLICY=bogus", () => {
  let mf;
  before(async () => {
    mf = await startWorker({ DRIFT_VERIFICATION_TOKEN: TOKEN, LEGACY_POLICY: "bogus", ADMIN_TOKEN: ADMIN });
  });
  after(() => mf?.dispose());

  test("the webhook refuses events with 503 not_configured, even authenticated", async () => {
    await expectError(await post(mf, WEBHOOK, DRIFT_EXAMPLE, { token: TOKEN }), 503, "not_configured", "");
    await expectError(await post(mf, WEBHOOK, withBodyToken(TOKEN)), 503, "not_configured", "");
  });

  test("/health: configured false, a LEGACY_POLICY problem and none about the token", async () => {
    const body = await expectJson(await request(mf, "/health"), 200);
    assert.deepEqual(body, { status: "misconfigured", version: "0.1.0", configured: false, problems: 1 });
    const { details } = await adminHealth(mf);
    assert.ok(details.problems.some((p) => p.startsWith("LEGACY_POLICY:")), JSON.stringify(details.problems));
    assert.ok(!details.problems.some((p) => p.startsWith("DRIFT_VERIFICATION_TOKEN")), JSON.stringify(details.problems));
  });
});
