// The test entry: the production entry (build/index.js, beside which this
// file is copied as build/test-entry.mjs) wrapped with what only tests need,
// so that the production entry carries no test switches at all.
//
// Routes (POST, or GET where it reads):
//   /__test/modules             which wasm modules this isolate started, and what used the operator's
//   /__test/panic               a panic in the operator's module
//   /__test/bridge-panic        a panic in the bridge's module
//   /__test/destination?key=    a delivery log's row counts and alarm (`name=` for a declared app)
//   /__test/outbox?scope=       an outbox's row counts and alarm
//   /__test/fill?name=&count=&status=held|failed   rows made up in one statement
//   /__test/trace               the actions each object's steps asked for, in order
//                               (the format of tests/delivery_trace.rs)
// Faults, switched on by bindings only this file reads:
//   TEST_REGISTRY_DOWN=1   the registry throws on every request, as one that cannot be reached
//   TEST_LOG_FAILS=1       a delivery log refuses every /accept, as storage that fails
import * as production from "./index.js";

const HEADERS = { "content-type": "application/json; charset=utf-8" };

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (!url.pathname.startsWith("/__test/")) return production.default.fetch(request, env, ctx);
    const arg = (name) => url.searchParams.get(name) ?? "";
    switch (url.pathname) {
      case "/__test/modules":
        return Response.json(production.internals.modules());
      case "/__test/panic":
        production.internals.operatorPanic();
        break;
      case "/__test/bridge-panic":
        production.internals.bridgePanic();
        break;
      case "/__test/destination":
        return ask(env.DELIVERY_LOG, `destination:${arg("key") || arg("name")}`, "/stats", "");
      case "/__test/outbox":
        return ask(env.OUTBOX, arg("scope"), "/stats", "");
      case "/__test/trace":
        // Every object of a local workerd runs in this isolate.
        return Response.json(trace);
      case "/__test/fill": {
        const key = arg("key") || arg("name");
        const body = JSON.stringify({ destination: key, count: Number(arg("count")) || 0, status: arg("status") });
        return ask(env.DELIVERY_LOG, `destination:${key}`, "/fill", body);
      }
    }
    return new Response(JSON.stringify({ error: { code: "not_found", message: "no such test route", path: "" } }), { status: 404, headers: HEADERS });
  },
};

async function ask(namespace, name, path, body) {
  const res = await namespace.get(namespace.idFromName(name)).fetch(`https://do${path}`, { method: "POST", body });
  return new Response(await res.text(), { status: res.status, headers: HEADERS });
}

/** Each step of an object, as one line: `<object> <path>: <actions>`. */
const trace = [];
function traced(object, reports, path, actions) {
  const input = reports === "" || path === "/sent" ? path : `/sent+${path}`;
  trace.push(`${object} ${input}: ${actions.map((a) => a.do).join(",") || "none"}`);
}

export class DeliveryLog extends production.DeliveryLog {
  /** Its key, as the first request that names it says. */
  #key;

  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === "/accept" && this.env.TEST_LOG_FAILS === "1") throw new Error("storage refused the hand-off (TEST_LOG_FAILS)");
    if (this.#key === undefined && path === "/accept") this.#key = JSON.parse(await request.clone().text()).key;
    const res = await super.fetch(request);
    if (path !== "/stats") return res;
    const stats = await res.json();
    stats.alarm = await this.ctx.storage.getAlarm();
    return Response.json(stats);
  }

  step(sql, reports, path, body) {
    const actions = super.step(sql, reports, path, body);
    traced(`log ${this.#key ?? "?"}`, reports, path, actions);
    return actions;
  }
}

export class Outbox extends production.Outbox {
  step(sql, reports, path, body) {
    const actions = super.step(sql, reports, path, body);
    traced("outbox", reports, path, actions);
    return actions;
  }

  async fetch(request) {
    const path = new URL(request.url).pathname;
    const res = await super.fetch(request);
    if (path !== "/stats") return res;
    const stats = await res.json();
    stats.alarm = await this.ctx.storage.getAlarm();
    return Response.json(stats);
  }
}

export class Registry extends production.Registry {
  fetch(request) {
    if (this.env.TEST_REGISTRY_DOWN === "1") throw new Error("the registry cannot be reached (TEST_REGISTRY_DOWN)");
    return super.fetch(request);
  }

  step(sql, reports, path, body) {
    const actions = super.step(sql, reports, path, body);
    // Each isolate's copy of the apps is not the native runtime's to model.
    if (path !== "/routes") traced("registry", reports, path, actions);
    return actions;
  }
}
