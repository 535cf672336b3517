#!/usr/bin/env bash
# Builds the two wasm artifacts from the one crate:
#   build/            the Worker (feature "worker"), by worker-build
#   www/pkg/          the playground's module (feature "browser"), by wasm-bindgen --target web
# wrangler runs this as its [build] command, so `wrangler dev` and
# `wrangler deploy` always serve fresh code. Run scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/env.sh
# Local tools instead of worker-build's downloads (no network but the registries).
export WASM_BINDGEN_BIN="$WASM_BINDGEN_ROOT/bin/wasm-bindgen"
export WASM_OPT_BIN="$ROOT/node_modules/binaryen/bin/wasm-opt"
export ESBUILD_BIN="$ROOT/node_modules/esbuild/bin/esbuild"
# wasm favours size; native builds keep opt-level 3 from Cargo.toml.
export CARGO_PROFILE_RELEASE_OPT_LEVEL=z

what=${1:-all}
if [ "$what" = all ] || [ "$what" = worker ]; then
  worker-build --release --features worker
  # worker-build keeps the wasm names section (about 100 KB) so that panics
  # log function names; drop it unless DRIFT_BRIDGE_KEEP_NAMES=1. Same
  # feature set as worker-build's own wasm-opt pass.
  if [ "${DRIFT_BRIDGE_KEEP_NAMES:-0}" != 1 ]; then
    "$WASM_OPT_BIN" build/index_bg.wasm -o build/index_bg.wasm --strip-debug \
      --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int --enable-bulk-memory \
      --enable-multivalue --enable-reference-types --enable-exception-handling
  fi
fi
if [ "$what" = all ] || [ "$what" = browser ]; then
  cargo build --quiet --lib --release --target wasm32-unknown-unknown --features browser --target-dir target/browser
  wasm-bindgen --target web --no-typescript --out-dir www/pkg \
    target/browser/wasm32-unknown-unknown/release/drift_bridge.wasm
  "$WASM_OPT_BIN" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
    www/pkg/drift_bridge_bg.wasm -o www/pkg/drift_bridge_bg.wasm
fi
