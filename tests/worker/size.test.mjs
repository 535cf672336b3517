// The bridge's wasm module, which every isolate starts before its first
// webhook, stays within its budget: 300 KB (issue 31; bench/README.md,
// "Size and start", has what a kilobyte costs at start). The admin API's
// operations live in the operator's module, which starts only when used.
import { test } from "node:test";
import assert from "node:assert/strict";
import { statSync } from "node:fs";
import { fileURLToPath } from "node:url";

const BUDGET = 300_000;

test(`the bridge's module is at most ${BUDGET.toLocaleString("en")} bytes`, () => {
  const size = statSync(fileURLToPath(new URL("../../build/bridge_bg.wasm", import.meta.url))).size;
  console.log(`build/bridge_bg.wasm: ${size} bytes`);
  assert.ok(size <= BUDGET, `build/bridge_bg.wasm is ${size} bytes, over its ${BUDGET}-byte budget`);
});
