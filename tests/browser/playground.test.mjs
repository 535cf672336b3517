// The playground in real headless Chromium, loaded from the running worker
// (`wrangler dev`): samples, errors, the legacy policy across Drift's 2020
// boundaries, the edge comparison, the keyboard, and screenshots.
//
//   node --test --test-concurrency=1 tests/browser/

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import {
  RESULTS_DIR, launchBrowser, openPage, readCards, readError, settled, startStaticServer, startWorker,
} from "./harness.mjs";

// What the CLI prints (`drift-bridge convert`) for each sample, line for line.
const CLI = {
  inactive: [
    ["b624515312c8ce89", '{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}'],
    ["c0b44147a772c080", '{"orgId":1,"type":"conversation_push","data":{"lastUpdated":1591813767000,"conversationId":123456789}}'],
    ["945d7df49ee99b50", '{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":123456789,"status":"closed","changedAt":1591813767000}}'],
  ],
  "manual-push": [
    ["997f2bbec3bac24e", '{"orgId":1,"type":"conversation_manual_push","data":{"lastUpdated":1591813767000,"conversationId":123456789}}'],
    ["c0b44147a772c080", '{"orgId":1,"type":"conversation_push","data":{"lastUpdated":1591813767000,"conversationId":123456789}}'],
    ["945d7df49ee99b50", '{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":123456789,"status":"closed","changedAt":1591813767000}}'],
  ],
  push: [
    ["c0b44147a772c080", '{"orgId":1,"type":"conversation_push","data":{"lastUpdated":1591813767000,"conversationId":123456789}}'],
    ["945d7df49ee99b50", '{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":123456789,"status":"closed","changedAt":1591813767000}}'],
  ],
  "status-closed": [
    ["945d7df49ee99b50", '{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":123456789,"status":"closed","changedAt":1591813767000}}'],
    ["997f2bbec3bac24e", '{"orgId":1,"type":"conversation_manual_push","data":{"conversationId":123456789,"lastUpdated":1591813767000}}'],
    ["c0b44147a772c080", '{"orgId":1,"type":"conversation_push","data":{"conversationId":123456789,"lastUpdated":1591813767000}}'],
  ],
  "status-open": [
    ["6c1e9b3f374ac34f", '{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":123456789,"status":"open","changedAt":1591813767000}}'],
  ],
  "new-message": [
    ["bf71a274ab364034", '{"orgId":1,"type":"new_message","data":{"id":9007199254740993,"conversationId":123456789,"author":{"id":2394872,"type":"contact","bot":false},"type":"chat","body":"Hi! Could we book a demo next week?","createdAt":1591813767000}}'],
  ],
};
const DRIFT_INACTIVE_EXAMPLE = '{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}';
const typeOf = (json) => /"type":"([^"]+)"/.exec(json)[1];

let worker;
let browser;
const pages = [];

before(async () => {
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  [worker, browser] = await Promise.all([startWorker(), launchBrowser()]);
  console.log(`wrangler dev (build included) ready at ${worker.url} after ${(worker.readyMs / 1000).toFixed(1)} s`);
});

after(async () => {
  for (const p of pages) await p.context.close().catch(() => {});
  await browser?.close();
  await worker?.stop();
});

async function open(options) {
  const opened = await openPage(browser, `${worker.url}/`, options);
  pages.push(opened);
  return opened;
}

async function pickSample(page, id) {
  await page.getByLabel("Sample").selectOption(id);
  await settled(page);
}

async function setDate(page, iso) {
  await page.getByLabel("Event date", { exact: true }).fill(iso);
  await settled(page);
}

const types = async (page) => (await readCards(page)).map((c) => c.type);

describe("the playground served by the worker", () => {
  test("loads, converts Drift's inactive example on its own and reports the time to first conversion", async () => {
    const { page, errors } = await open();
    assert.equal(await page.title(), "drift-bridge playground");
    assert.equal(await page.getByLabel("Sample").inputValue(), "inactive");
    const text = await page.getByLabel("Drift event", { exact: true }).inputValue();
    assert.equal(JSON.stringify(JSON.parse(text)), DRIFT_INACTIVE_EXAMPLE, "the inactive sample is Drift's published example");

    const cards = await readCards(page);
    assert.deepEqual(cards.map((c) => [c.id, c.json]), CLI.inactive, "cards carry exactly what the CLI prints");
    assert.deepEqual(cards.map((c) => c.type), ["conversation_inactive", "conversation_push", "conversation_status_updated"]);
    for (const card of cards) {
      assert.equal(card.title, card.type, "the card shows its type");
      assert.equal(card.shownId, card.id, "the card shows its id");
      assert.equal(card.pretty, JSON.stringify(JSON.parse(card.json), null, 2), "the card shows the pretty JSON");
      assert.ok(card.copy, "the card has a copy button");
    }
    assert.deepEqual(cards.map((c) => c.role), ["inbound", "derived", "legacy"]);
    assert.match(await page.locator("#summary").innerText(), /^3 outbound events/);

    const timing = await page.evaluate(() => ({
      firstConversionMs: window.__playground.firstConversionMs,
      wasmReadyMs: window.__playground.wasmReadyMs,
      mark: performance.getEntriesByName("first-conversion", "mark").length,
      version: window.__playground.version,
    }));
    assert.equal(timing.mark, 1, "performance.mark('first-conversion') is set");
    assert.ok(timing.firstConversionMs > 0 && timing.firstConversionMs < 10_000, `first conversion at ${timing.firstConversionMs} ms`);
    assert.match(await page.locator("#core-version").innerText(), new RegExp(`v${timing.version.replace(/\./g, "\\.")}`));

    // A few more cold loads (fresh context each) for a steadier number.
    const samples = [timing.firstConversionMs];
    for (let i = 0; i < 4; i++) {
      const again = await open();
      samples.push(await again.page.evaluate(() => window.__playground.firstConversionMs));
      await again.context.close();
    }
    const sorted = [...samples].sort((a, b) => a - b);
    console.log(
      `time to first conversion after navigation: median ${sorted[2]} ms (runs: ${samples.join(", ")} ms; wasm ready at ${timing.wasmReadyMs} ms in the first run)`,
    );
    assert.deepEqual(errors, []);
  });

  test("each sample shows its cards, as the CLI prints them", async () => {
    const { page, errors } = await open();
    for (const [sample, expected] of Object.entries(CLI)) {
      await pickSample(page, sample);
      const cards = await readCards(page);
      assert.deepEqual(cards.map((c) => [c.id, c.json]), expected, `sample ${sample}`);
      assert.deepEqual(cards.map((c) => c.type), expected.map(([, json]) => typeOf(json)), `sample ${sample}: types`);
      assert.equal(await page.locator("#results .error-card").count(), 0);
    }
    // new_message carries an id above 2^53: it must survive digit for digit, on the card too.
    await pickSample(page, "new-message");
    const [message] = await readCards(page);
    assert.match(message.pretty, /"id": 9007199254740993,/);

    await pickSample(page, "broken");
    assert.equal((await readCards(page)).length, 0, "no cards for broken JSON");
    const [error] = await readError(page);
    assert.equal(error.code, "invalid_json");
    assert.equal(error.path, "data");
    assert.equal(error.line, "7");
    assert.equal(error.column, "3");
    assert.match(error.text, /at data · line 7, column 3/);
    assert.deepEqual(errors, []);
  });

  test("typing broken JSON shows the error in place, with its path, and recovers as you type", async () => {
    const { page, errors } = await open();
    const editor = page.getByLabel("Drift event", { exact: true });
    await editor.fill("");
    await editor.pressSequentially('{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}');
    await settled(page);
    let [error] = await readError(page);
    assert.equal(error.code, "invalid_json");
    assert.equal(error.path, "data");
    assert.equal([error.line, error.column].join(":"), "1:106");
    assert.match(error.text, /unexpected end of input/);
    assert.equal(await editor.getAttribute("aria-invalid"), "true");
    assert.match(await page.locator("#summary").innerText(), /invalid_json at data/);

    await editor.press("End");
    await editor.pressSequentially("}");
    await settled(page);
    assert.deepEqual(await types(page), ["conversation_inactive", "conversation_push", "conversation_status_updated"]);
    assert.equal(await editor.getAttribute("aria-invalid"), null);

    // A well-formed event with a bad field: invalid_event at data.conversationId.
    const bad = '{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":"abc"}}';
    await editor.fill(bad);
    await settled(page);
    [error] = await readError(page);
    assert.equal(error.code, "invalid_event");
    assert.equal(error.path, "data.conversationId");
    assert.match(error.text, /at data\.conversationId/);
    assert.match(error.text, /expected an integer, found a string/);
    // The error points into the input: the button selects the offending value.
    await page.getByRole("button", { name: /^Show line 1, column \d+ in the input$/ }).click();
    const selected = await editor.evaluate((ta) => ta.value.slice(ta.selectionStart, ta.selectionEnd));
    assert.equal(selected, '"abc"');
    assert.ok(await editor.evaluate((ta) => document.activeElement === ta), "focus goes to the text area");
    assert.deepEqual(errors, []);
  });

  test("Timeline follows Drift's broadcast window across both boundaries; Never and Always ignore it", async () => {
    const { page, errors } = await open();
    const editor = page.getByLabel("Drift event", { exact: true });
    const timeline = page.getByRole("group", { name: "Legacy close events" });
    await timeline.getByRole("radio", { name: "Timeline", exact: true }).check();
    await settled(page);
    assert.equal(await page.evaluate(() => window.__playground.last.options.legacy), "timeline");

    const withLegacy = ["conversation_inactive", "conversation_push", "conversation_status_updated"];
    const without = ["conversation_inactive", "conversation_push"];
    // The date control keeps the event's time of day (18:29:27 UTC) and edits only that number.
    for (const [date, ms, expected, marker] of [
      ["2020-05-31", 1590949767000, without, "outside"],
      ["2020-06-01", 1591036167000, withLegacy, "inside"],
      ["2020-09-30", 1601490567000, withLegacy, "inside"],
      ["2020-10-01", 1601576967000, without, "outside"],
    ]) {
      await setDate(page, date);
      const text = await editor.inputValue();
      assert.match(text, new RegExp(`"lastUpdated": ${ms},`), `${date}: lastUpdated in the text`);
      assert.deepEqual(await types(page), expected, `${date} under timeline`);
      const cards = await readCards(page);
      if (expected.length === 3) assert.match(cards[2].json, new RegExp(`"changedAt":${ms}}`));
      assert.equal(await page.locator("#timeline").getAttribute("data-marker"), marker, `${date}: marker ${marker}`);
      assert.equal(await page.locator("#timeline .tl-pill-text").textContent(), date, `${date}: marked on the timeline`);
    }

    await timeline.getByRole("radio", { name: "Never", exact: true }).check();
    await setDate(page, "2020-06-10");
    assert.deepEqual(await types(page), without, "never, inside the window");
    await timeline.getByRole("radio", { name: "Always", exact: true }).check();
    await settled(page);
    await setDate(page, "2024-03-05");
    assert.deepEqual(await types(page), withLegacy, "always, long after the window");
    assert.equal(await page.locator("#timeline").getAttribute("data-marker"), "after", "clamped at the right edge");
    assert.match(await page.locator("#timeline .tl-pill-text").textContent(), /2024-03-05 ▶/);
    await setDate(page, "2019-12-05");
    assert.equal(await page.locator("#timeline").getAttribute("data-marker"), "before", "clamped at the left edge");

    // Status events carry their time in changedAt.
    await pickSample(page, "status-closed");
    await setDate(page, "2020-05-31");
    assert.match(await editor.inputValue(), /"changedAt": 1590949767000\n/);
    assert.doesNotMatch(await editor.inputValue(), /lastUpdated/);

    // The date is written into the text, never through JSON.parse: a big integer elsewhere survives.
    await editor.fill('{"orgId":1,"type":"conversation_push","data":{"conversationId":123456789,"lastUpdated":0,"seq":123456789012345678901234567890}}');
    await settled(page);
    await setDate(page, "2020-07-04");
    assert.equal(
      await editor.inputValue(),
      '{"orgId":1,"type":"conversation_push","data":{"conversationId":123456789,"lastUpdated":1593820800000,"seq":123456789012345678901234567890}}',
    );
    assert.equal((await readCards(page))[0].json, await editor.inputValue(), "the big integer reaches the card unchanged");
    assert.deepEqual(errors, []);
  });

  test("Compare with the edge: the worker's /convert body is byte-identical to the browser's", async () => {
    const { page, errors } = await open();
    const requests = [];
    page.on("request", (r) => {
      if (new URL(r.url()).pathname === "/convert") requests.push({ url: new URL(r.url()), body: r.postData() });
    });
    const button = page.getByRole("button", { name: "Compare with the edge" });
    const result = page.locator("#compare-result");
    const compare = async () => {
      await button.click();
      await page.waitForFunction(() => !["pending", undefined].includes(document.getElementById("compare-result").dataset.agree));
      return { agree: await result.getAttribute("data-agree"), text: await result.innerText() };
    };

    await page.getByRole("radio", { name: "Timeline", exact: true }).check();
    await settled(page);
    let outcome = await compare();
    assert.equal(outcome.agree, "true", outcome.text);
    assert.match(outcome.text, /Edge and browser agree/);
    const last = await page.evaluate(() => window.__playground.last);
    const sent = requests.at(-1);
    assert.equal(sent.url.searchParams.get("legacy"), "timeline");
    assert.equal(sent.url.searchParams.get("now"), String(last.options.now), "the edge gets the browser's own now");
    assert.equal(sent.body, last.input, "the edge gets the same input");

    // Errors come back from the edge as HTTP 400 with the same body.
    await pickSample(page, "broken");
    outcome = await compare();
    assert.equal(outcome.agree, "true", outcome.text);
    assert.match(outcome.text, /HTTP 400/);

    // An event without lastUpdated: the shared `now` decides the derived events.
    await page.getByLabel("Drift event", { exact: true }).fill('{"orgId":1,"type":"conversation_inactive","data":{"conversationId":123456789}}');
    await settled(page);
    outcome = await compare();
    assert.equal(outcome.agree, "true", outcome.text);

    // And it does notice a difference: an edge that answers otherwise.
    const isConvert = (url) => url.pathname === "/convert";
    await page.route(isConvert, (route) => route.fulfill({ status: 200, contentType: "application/json", body: '{"events":[]}' }));
    outcome = await compare();
    assert.equal(outcome.agree, "false");
    assert.match(outcome.text, /Edge and browser differ at byte 11/);
    await page.unroute(isConvert);

    // Editing the input clears a stale verdict.
    await page.getByLabel("Drift event", { exact: true }).press("End");
    await page.getByLabel("Drift event", { exact: true }).pressSequentially(" ");
    await settled(page);
    assert.equal(await result.innerText(), "");
    assert.deepEqual(errors, []);
  });

  test("the copy button copies the compact event JSON", async () => {
    const { page, errors } = await open({ permissions: ["clipboard-read", "clipboard-write"] });
    const legacy = page.locator('#results .card[data-type="conversation_status_updated"]');
    await legacy.getByRole("button", { name: /^Copy conversation_status_updated/ }).click();
    await page.waitForFunction(() => document.querySelector('.card[data-type="conversation_status_updated"] .copy')?.dataset.copied === "yes");
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), CLI.inactive[2][1]);
    assert.match(await legacy.locator("button.copy").innerText(), /Copied/);
    assert.deepEqual(errors, []);
  });

  test("works by keyboard: every control is reachable, focus is visible, radios and buttons respond", async () => {
    const { page, errors } = await open();
    await page.getByLabel("Event date", { exact: true }).fill("2020-05-31");
    await settled(page);
    // Start from the top, as a keyboard user arriving on the page would.
    await page.locator("h1").click();

    const describeFocus = () =>
      page.evaluate(() => {
        const el = document.activeElement;
        if (!el || el === document.body) return null;
        // The visible focus ring of a segmented radio is drawn on its label text.
        const ring = el.matches('input[type="radio"]') ? el.nextElementSibling : el;
        const style = getComputedStyle(ring);
        return {
          key: el.id || el.getAttribute("aria-label") || el.textContent.trim().slice(0, 40),
          tag: el.tagName,
          outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
        };
      });

    const seen = [];
    for (let i = 0; i < 30; i++) {
      await page.keyboard.press("Tab");
      const focus = await describeFocus();
      if (!focus) break;
      seen.push(focus);
      if (focus.key === "compare-button") break;
    }
    const keys = seen.map((f) => f.key);
    for (const wanted of ["sample", "event", "legacy-always", "event-date", "compare-button"]) {
      assert.ok(keys.includes(wanted), `Tab reaches #${wanted} (reached: ${keys.join(" → ")})`);
    }
    assert.ok(keys.filter((k) => /^Copy /.test(k)).length === 3, "Tab reaches the three copy buttons");
    assert.ok(keys.indexOf("sample") < keys.indexOf("event") && keys.indexOf("event") < keys.indexOf("legacy-always"), "focus order follows the page");
    for (const f of seen) {
      assert.ok(f.outline, `visible focus ring on ${f.key}`);
    }

    // Arrow keys move the policy; the cards follow (2020-05-31 is outside the window).
    await page.locator("#legacy-always").focus();
    await page.keyboard.press("ArrowRight");
    await settled(page);
    assert.equal(await page.locator("#legacy-timeline").isChecked(), true);
    assert.deepEqual(await types(page), ["conversation_inactive", "conversation_push"]);

    // Enter on the compare button runs the comparison.
    await page.locator("#compare-button").focus();
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.getElementById("compare-result").dataset.agree === "true");

    // Results are announced: the summary is a live region.
    assert.equal(await page.locator("#summary").getAttribute("role"), "status");
    assert.equal(await page.locator("#summary").getAttribute("aria-live"), "polite");
    assert.deepEqual(errors, []);
  });

  test("looks right on a desktop and on a phone (screenshots)", async () => {
    const desktop = await open({ viewport: { width: 1280, height: 800 } });
    const input = await desktop.page.locator(".panel-input").boundingBox();
    const results = await desktop.page.locator(".panel-results").boundingBox();
    assert.ok(results.x > input.x + input.width, "desktop: results sit beside the input");
    assert.equal(await desktop.page.evaluate(() => document.documentElement.scrollWidth), 1280, "desktop: no sideways scrolling");
    // Show the edge comparison in the picture too.
    await desktop.page.getByRole("button", { name: "Compare with the edge" }).click();
    await desktop.page.waitForFunction(() => document.getElementById("compare-result").dataset.agree === "true");
    const desktopShot = path.join(RESULTS_DIR, "playground.png");
    await desktop.page.screenshot({ path: desktopShot, fullPage: true });

    const phone = await open({ viewport: { width: 375, height: 812 } });
    assert.equal(await phone.page.evaluate(() => document.documentElement.scrollWidth), 375, "phone: no sideways scrolling");
    const pInput = await phone.page.locator(".panel-input").boundingBox();
    const pResults = await phone.page.locator(".panel-results").boundingBox();
    assert.ok(pResults.y > pInput.y + pInput.height, "phone: results stack below the input");
    const svg = await phone.page.locator("#timeline").boundingBox();
    assert.ok(svg.width <= 375 && svg.width > 250, `phone: the timeline fits (${svg.width}px)`);
    const phoneShot = path.join(RESULTS_DIR, "playground-phone.png");
    await phone.page.screenshot({ path: phoneShot, fullPage: true });

    for (const file of [desktopShot, phoneShot]) {
      assert.ok(fs.statSync(file).size > 10_000, `${file} written`);
    }
    console.log(`screenshots: ${path.relative(process.cwd(), desktopShot)}, ${path.relative(process.cwd(), phoneShot)}`);
    assert.deepEqual(desktop.errors, []);
    assert.deepEqual(phone.errors, []);
  });
});

describe("the playground on a plain static server", () => {
  let server;
  before(async () => {
    server = await startStaticServer();
  });
  after(async () => server?.stop());

  test("converts in the page without the worker, and offers no edge comparison", async () => {
    const opened = await openPage(browser, `${server.url}/`);
    pages.push(opened);
    const { page, errors } = opened;
    assert.deepEqual((await readCards(page)).map((c) => [c.id, c.json]), CLI.inactive);
    await page.waitForFunction(() => !document.getElementById("edge-note").hidden);
    assert.equal(await page.locator("#compare").isHidden(), true);
    assert.match(await page.locator("#edge-note").innerText(), /not the drift-bridge worker/);
    assert.deepEqual(errors, []);
  });
});
