#!/usr/bin/env bash
# Installs what drift-bridge needs and is missing, and nothing else:
#   - the wasm32-unknown-unknown Rust target,
#   - wasm-bindgen-cli (the exact version in Cargo.lock), into a versioned
#     folder under ~/.cache/drift-bridge (scripts/env.sh),
#   - the npm packages in package-lock.json (wrangler/workerd, wasm-opt, esbuild,
#     playwright-core, the Standard Webhooks reference library),
#   - .dev.vars from .dev.vars.example (and LOCAL_DEVELOPMENT="1" in an
#     older .dev.vars that lacks it),
#   - with --test (make test), what only the tests need: Chromium from
#     Debian's packages, for the browser tests, and in one virtual
#     environment in the tools' cache (scripts/env.sh), pinned:
#     prometheus_client, to read /admin/metrics with, and
#     openapi-spec-validator and Schemathesis, to check /openapi.json
#     (tests/openapi/check.sh);
#   - with --bench (make bench), the benchmarks' tools (jq, GNU time,
#     Chromium, perf) from Debian's packages.
# Safe to run again: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/env.sh

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown Rust target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$("$WASM_BINDGEN_ROOT/bin/wasm-bindgen" --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION into $WASM_BINDGEN_ROOT (3 to 8 minutes, once)"
  # --locked first; some of its pinned dependencies can be missing from a
  # registry mirror, in which case cargo resolves compatible ones (the first
  # attempt's error would only alarm: it is dropped).
  if ! cargo install -q wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --root "$WASM_BINDGEN_ROOT" --locked 2>/dev/null; then
    say "its locked dependencies are not all in this registry; building it with compatible ones"
    cargo install -q wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --root "$WASM_BINDGEN_ROOT"
  fi
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ ! -f .dev.vars ]; then
  say "creating .dev.vars from .dev.vars.example (local development secrets)"
  cp .dev.vars.example .dev.vars
elif ! grep -q '^LOCAL_DEVELOPMENT=' .dev.vars; then
  say "adding LOCAL_DEVELOPMENT=\"1\" to .dev.vars (apps added at runtime may be on loopback, locally)"
  printf '\n# Added by scripts/setup.sh: a bridge run for local development.\nLOCAL_DEVELOPMENT="1"\n' >> .dev.vars
fi

if [ "${1:-}" = "--test" ]; then
  if ! command -v chromium >/dev/null 2>&1; then
    say "installing Chromium from Debian's packages, for the browser tests"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  fi
  # The Prometheus client's own text parser, which the tests read /admin/metrics
  # with, in a virtual environment of its own (nothing installed system-wide).
  PROMETHEUS_CLIENT_VERSION=0.26.0
  PYTHON_ENV="$TOOLS_CACHE/python-prometheus"
  if ! "$PYTHON_ENV/bin/python" -c "import sys, importlib.metadata as m; sys.exit(m.version('prometheus_client') != '$PROMETHEUS_CLIENT_VERSION')" 2>/dev/null; then
    say "installing prometheus_client $PROMETHEUS_CLIENT_VERSION into $PYTHON_ENV, for the tests"
    python3 -m venv "$PYTHON_ENV"
    "$PYTHON_ENV/bin/pip" install -q --disable-pip-version-check "prometheus_client==$PROMETHEUS_CLIENT_VERSION"
  fi
  # The OpenAPI document's checkers (tests/openapi/check.sh), in the same
  # virtual environment: the OpenAPI spec validator, and Schemathesis.
  OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
  SCHEMATHESIS_VERSION=4.32.5
  if ! "$PYTHON_ENV/bin/python" -c "import sys, importlib.metadata as m; sys.exit(m.version('openapi-spec-validator') != '$OPENAPI_SPEC_VALIDATOR_VERSION' or m.version('schemathesis') != '$SCHEMATHESIS_VERSION')" 2>/dev/null; then
    say "installing openapi-spec-validator $OPENAPI_SPEC_VALIDATOR_VERSION and schemathesis $SCHEMATHESIS_VERSION into $PYTHON_ENV, for the tests"
    "$PYTHON_ENV/bin/pip" install -q --disable-pip-version-check "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION" "schemathesis==$SCHEMATHESIS_VERSION"
  fi
fi
if [ "${1:-}" = "--bench" ]; then
  missing=()
  command -v jq >/dev/null 2>&1 || missing+=(jq)
  [ -x /usr/bin/time ] || missing+=(time)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  # bench/profile.mjs: where a webhook's CPU goes.
  command -v perf >/dev/null 2>&1 || missing+=(linux-perf)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} from Debian's packages, for the benchmarks"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
exit 0
