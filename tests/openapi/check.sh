#!/usr/bin/env bash
# Checks the bridge's OpenAPI document with the ecosystem's own tools, the
# versions pinned in scripts/setup.sh (`--test`, which installs them into
# the tests' Python virtual environment):
#   1. openapi-spec-validator: the document is valid OpenAPI 3.1;
#   2. Schemathesis: a running bridge answers as the document says, for
#      every operation, with examples from the document, cases at the
#      boundaries of its schemas, generated ones, valid and invalid, and
#      sequences that follow the document's links (an app created, then
#      changed, tested and deleted; a delivery listed, then replayed).
#
# The bridge must be running already (tests/openapi/run.mjs starts one in
# workerd and runs this; `make test-openapi`):
#   BRIDGE_URL                where it answers (http://127.0.0.1:8787 by default)
#   ADMIN_TOKEN               its admin token (required: most routes are admin ones)
#   DRIFT_VERIFICATION_TOKEN  its Drift token, so that generated webhooks get past
#                             the token check (optional: without it they are all 401)
#   OPENAPI_FILE              the document to check (by default the one the bridge
#                             serves at /openapi.json)
#   SCHEMATHESIS_MAX_EXAMPLES test cases per operation and phase (50 by default)
#   SCHEMATHESIS_SEED         the seed (1 by default, so that a run can be repeated)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
source scripts/env.sh

BRIDGE_URL=${BRIDGE_URL:-http://127.0.0.1:8787}
BRIDGE_URL=${BRIDGE_URL%/}
: "${ADMIN_TOKEN:?set ADMIN_TOKEN to the admin token of the running bridge}"
PYTHON_ENV="$TOOLS_CACHE/python-prometheus"
for tool in openapi-spec-validator st; do
  if [ ! -x "$PYTHON_ENV/bin/$tool" ]; then
    echo "check.sh: $PYTHON_ENV/bin/$tool is missing: run scripts/setup.sh --test (make test does)" >&2
    exit 2
  fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${OPENAPI_FILE:-}" ]; then
  document=$OPENAPI_FILE
  location=$OPENAPI_FILE
else
  # The document the bridge serves, exactly, as a file: Schemathesis leaves
  # out the operation that serves the document it loads from a URL
  # (GET /openapi.json), and loaded from a file it tests that one too.
  document="$work/openapi.json"
  location="$BRIDGE_URL/openapi.json"
  "$PYTHON_ENV/bin/python" - "$location" "$document" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=30) as answer:
    if answer.status != 200:
        sys.exit(f"{sys.argv[1]} answered {answer.status}")
    open(sys.argv[2], "wb").write(answer.read())
PY
fi

echo "check.sh: openapi-spec-validator $location" >&2
"$PYTHON_ENV/bin/openapi-spec-validator" "$document"

headers=(--header "Authorization: Bearer $ADMIN_TOKEN")
if [ -n "${DRIFT_VERIFICATION_TOKEN:-}" ]; then
  headers+=(--header "X-Verification-Token: $DRIFT_VERIFICATION_TOKEN")
fi

# Every operation is tested; none is excluded. The checks are those about
# the document's truth: no 5xx at all (even a documented 503: here the
# bridge is configured and its registry answers), every status, content
# type, header and body as documented, and every route that needs a token
# refusing a request without it or with a wrong one (ignored_auth). Not
# negative_data_rejection and the like: the bridge ignores unknown query
# parameters and headers on purpose. Not use_after_free: a deleted app's
# GET still answers while its log keeps deliveries (`"configured": false`).
echo "check.sh: schemathesis against $BRIDGE_URL" >&2
# One worker: Hypothesis describes its strategies with Python's ast, which
# is not safe across threads in Python 3.11 (it fails at random with
# "AST constructor recursion depth mismatch").
SCHEMATHESIS_HOOKS="$ROOT/tests/openapi/hooks.py" "$PYTHON_ENV/bin/st" run "$document" \
  --url "$BRIDGE_URL" \
  "${headers[@]}" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,ignored_auth \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-50}" \
  --seed "${SCHEMATHESIS_SEED:-1}" \
  --generation-database none \
  --request-timeout 30 \
  --workers 1 \
  --no-color
