#!/usr/bin/env bash
# Installs what drift-bridge needs and is missing, and nothing else:
#   - the wasm32-unknown-unknown Rust target,
#   - wasm-bindgen-cli (the exact version in Cargo.lock) and worker-build,
#     into ./.tools (git-ignored),
#   - the npm packages in package-lock.json (wrangler/workerd, wasm-opt, esbuild,
#     playwright-core),
#   - .dev.vars from .dev.vars.example,
#   - with --browser: Chromium from Debian's packages, for the browser tests.
# Safe to run again: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORKER_BUILD_VERSION=0.8.7

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown Rust target"
  rustup target add wasm32-unknown-unknown
fi

WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
if [ "$("$ROOT/.tools/bin/wasm-bindgen" --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION into .tools (about 3 minutes, once)"
  # --locked first; some of its pinned dependencies can be missing from a
  # registry mirror, in which case cargo resolves compatible ones.
  cargo install -q wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --root "$ROOT/.tools" --locked \
    || cargo install -q wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --root "$ROOT/.tools"
fi

if [ "$("$ROOT/.tools/bin/worker-build" --version 2>/dev/null)" != "$WORKER_BUILD_VERSION" ]; then
  say "installing worker-build $WORKER_BUILD_VERSION into .tools (about 3 minutes, once)"
  cargo install -q worker-build --version "$WORKER_BUILD_VERSION" --root "$ROOT/.tools" --locked \
    || cargo install -q worker-build --version "$WORKER_BUILD_VERSION" --root "$ROOT/.tools"
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ ! -f .dev.vars ]; then
  say "creating .dev.vars from .dev.vars.example (local development secrets)"
  cp .dev.vars.example .dev.vars
fi

if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null 2>&1; then
  say "installing Chromium from Debian's packages, for the browser tests"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
exit 0
