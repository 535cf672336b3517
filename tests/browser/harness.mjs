// Shared plumbing for the playground's browser tests: the worker under
// `wrangler dev`, a plain static server for www/, and headless Chromium.

import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const RESULTS_DIR = path.join(ROOT, "test-results");

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `npx wrangler dev` on a free loopback port (it builds first) and
 * resolves once GET /health answers. `args` are more `wrangler dev` flags
 * (`--var NAME:value`, `--persist-to DIR`). Returns { url, stop, output }.
 */
export async function startWorker({ timeoutMs = 240_000, args = [] } = {}) {
  const port = await freePort();
  // Its own inspector port too: the default (9229) is shared by every
  // wrangler dev on the machine, and a rebuild that finds it taken exits.
  const inspector = await freePort();
  const child = spawn("npx", ["wrangler", "dev", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspector), ...args], {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false", CI: "1", NO_COLOR: "1" },
    detached: true, // its own process group, so stop() ends workerd and the build too
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (chunk) => {
    output = (output + chunk).slice(-20_000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  let exited = null;
  const exit = new Promise((resolve) => child.on("exit", (code, signal) => resolve((exited = { code, signal }))));

  const url = `http://127.0.0.1:${port}`;
  const started = Date.now();
  const deadline = started + timeoutMs;
  for (;;) {
    if (exited) throw new Error(`wrangler dev exited early (${JSON.stringify(exited)}):\n${output}`);
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
      if (response.ok && typeof (await response.json()).version === "string") break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      killGroup(child, "SIGKILL");
      throw new Error(`wrangler dev was not ready within ${timeoutMs} ms:\n${output}`);
    }
    await sleep(250);
  }

  async function stop() {
    if (exited) return;
    killGroup(child, "SIGTERM");
    const timer = setTimeout(() => killGroup(child, "SIGKILL"), 5_000);
    await exit;
    clearTimeout(timer);
  }
  return { url, stop, readyMs: Date.now() - started, output: () => output };
}

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

/** A bare static file server for www/: no worker behind it. */
export async function startStaticServer(dir = path.join(ROOT, "www")) {
  const server = http.createServer((req, res) => {
    const pathname = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const file = path.join(dir, pathname.endsWith("/") ? `${pathname}index.html` : pathname);
    if (!file.startsWith(dir) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream" });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}`, stop: () => new Promise((resolve) => server.close(resolve)) };
}

export function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}; set CHROMIUM_PATH or run scripts/setup.sh --test`);
  }
  // Playwright gives every launch a fresh temporary profile (user data dir).
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** A fresh context and page, with page errors collected (and failing the test at the end). */
export async function openPage(browser, url, { viewport = { width: 1280, height: 800 }, colorScheme = "light", permissions = [] } = {}) {
  const context = await browser.newContext({ viewport, colorScheme, deviceScaleFactor: 1, reducedMotion: "reduce" });
  if (permissions.length) await context.grantPermissions(permissions, { origin: new URL(url).origin });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    // HTTP statuses of fetches (a 400 from /convert for a broken event) are not script errors.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text());
  });
  await page.goto(url);
  await settled(page);
  return { page, context, errors };
}

/** Waits until the page has converted exactly what the text area holds (debounce flushed). */
export async function settled(page, timeout = 10_000) {
  await page.waitForFunction(
    () => {
      const p = window.__playground;
      return p && p.firstConversionMs != null && !p.pending && p.last && p.last.input === document.getElementById("event").value;
    },
    null,
    { timeout },
  );
}

/** What the cards show, read from the DOM. */
export function readCards(page) {
  return page.locator("#results .card").evaluateAll((cards) =>
    cards.map((card) => ({
      type: card.dataset.type,
      id: card.dataset.id,
      json: card.dataset.json,
      role: card.dataset.role,
      title: card.querySelector(".card-type")?.textContent,
      shownId: card.querySelector(".card-id code")?.textContent,
      pretty: card.querySelector("pre.json")?.textContent,
      copy: card.querySelector("button.copy")?.tagName === "BUTTON",
    })),
  );
}

export function readError(page) {
  return page.locator("#results .error-card").evaluateAll((boxes) =>
    boxes.map((box) => ({
      code: box.dataset.code,
      path: box.dataset.path,
      line: box.dataset.line,
      column: box.dataset.column,
      // textContent: a batch's groups off screen are not laid out (content-visibility), so they have no innerText.
      text: box.textContent,
    })),
  );
}

/** What a batch shows, read from the DOM: one entry per inbound event on screen. */
export function readGroups(page) {
  return page.locator("#results .group").evaluateAll((groups) =>
    groups.map((group) => ({
      title: group.querySelector(".group-title")?.textContent,
      meta: group.querySelector(".group-meta")?.textContent,
      index: Number(group.dataset.index),
      line: Number(group.dataset.line),
      ok: group.dataset.ok === "true",
      records: [...group.querySelectorAll(".card")].map((card) => `{"id":"${card.dataset.id}","event":${card.dataset.json}}`),
      error: group.querySelector(".error-card") && {
        code: group.querySelector(".error-card").dataset.code,
        path: group.querySelector(".error-card").dataset.path,
        line: group.querySelector(".error-card").dataset.line,
        column: group.querySelector(".error-card").dataset.column,
        text: group.querySelector(".error-card").textContent,
      },
    })),
  );
}

/** Puts text into the input as a paste does: one input event of type insertFromPaste. */
export async function paste(page, text) {
  await page.evaluate((value) => {
    const ta = document.getElementById("event");
    ta.focus();
    ta.value = value;
    ta.dispatchEvent(new InputEvent("input", { bubbles: true, inputType: "insertFromPaste" }));
  }, text);
  await settled(page, 60_000);
}
