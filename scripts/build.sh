#!/usr/bin/env bash
# Builds the wasm artifacts from the one crate:
#   build/            the Worker: index.js, the entry module src/worker/entry.mjs
#                     bundled with the wasm-bindgen glue of its two modules,
#                     bridge_bg.wasm (feature "bridge": webhooks and the
#                     delivery logs' steps; no workers-rs) and
#                     operator_bg.wasm (feature "operator": workers-rs, /health,
#                     the admin API and the registry)
#   www/pkg/          the playground's module (feature "browser")
# Both by cargo, wasm-bindgen --target web and wasm-opt (and esbuild for the
# worker's one JavaScript file).
# wrangler runs this as its [build] command, so `wrangler dev` and
# `wrangler deploy` always serve fresh code. Run scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/env.sh
WASM_OPT="$ROOT/node_modules/binaryen/bin/wasm-opt"
# One build at a time in a checkout: `make dev` (wrangler's [build]) and
# `make test` running at once would otherwise delete each other's output.
mkdir -p target
exec 9>target/.build.lock
flock 9
# wasm favours size; native builds keep opt-level 3 from Cargo.toml.
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z
what=${1:-all}
if [ "$what" = all ] || [ "$what" = worker ]; then
  out=target/worker-pkg
  rm -rf "$out"
  mkdir -p "$out"
  # The names section (about 100 KB) only makes panics name functions; keep
  # it with DRIFT_BRIDGE_KEEP_NAMES=1.
  strip=(--strip-debug --strip-producers)
  [ "${DRIFT_BRIDGE_KEEP_NAMES:-0}" = 1 ] && strip=(--debuginfo)
  # feature, target dir, output name (the glue is <name>.js, the wasm
  # <name>_bg.wasm), optimisation: both favour size (the bridge's module,
  # which every isolate starts, must stay under 300 KB with the delivery state
  # machine in it; bench/README.md, "Size and start", has what that costs).
  for module in "bridge target/bridge bridge z" "operator target/operator operator z"; do
    read -r feature dir name level <<<"$module"
    CARGO_PROFILE_RELEASE_OPT_LEVEL=$level \
      cargo build --quiet --lib --release --target wasm32-unknown-unknown --no-default-features --features "$feature" --target-dir "$dir"
    # --force-enable-abort-handler: a panic (a trap, with panic = "abort")
    # marks the instance dead, and the glue starts a fresh one on the next
    # call (each module registers the abort handler; see entry.mjs).
    wasm-bindgen --target web --no-typescript --force-enable-abort-handler --out-dir "$out" --out-name "$name" \
      "$dir/wasm32-unknown-unknown/release/drift_bridge.wasm"
    # The wasm features are those workerd's V8 supports and the modules use.
    "$WASM_OPT" "-O$level" "${strip[@]}" --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-multivalue --enable-reference-types --enable-exception-handling \
      "$out/${name}_bg.wasm" -o "$out/${name}_bg.wasm"
  done
  # One module, as workerd and wrangler load it: the entry and the glue.
  cp src/worker/entry.mjs "$out/entry.mjs"
  "$ROOT/node_modules/esbuild/bin/esbuild" "$out/entry.mjs" --bundle --format=esm --log-level=warning \
    --external:./bridge_bg.wasm --external:./operator_bg.wasm '--external:cloudflare:*' --outfile="$out/index.js"
  rm -rf "$out/bridge.js" "$out/operator.js" "$out/entry.mjs" "$out/snippets"
  # Swap in whole, so that a watching `wrangler dev` never sees half a build.
  rm -rf target/build.old
  if [ -d build ]; then mv build target/build.old; fi
  mv "$out" build
  rm -rf target/build.old
fi
if [ "$what" = all ] || [ "$what" = browser ]; then
  cargo build --quiet --lib --release --target wasm32-unknown-unknown --no-default-features --features browser --target-dir target/browser
  wasm-bindgen --target web --no-typescript --out-dir www/pkg \
    target/browser/wasm32-unknown-unknown/release/drift_bridge.wasm
  "$WASM_OPT" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
    www/pkg/drift_bridge_bg.wasm -o www/pkg/drift_bridge_bg.wasm
fi
