"""Schemathesis hooks for tests/openapi/check.sh.

POST /convert takes NDJSON (one event a line) as well as JSON; Schemathesis
has no serializer of its own for application/x-ndjson, so here is one: a
generated string goes as it is, anything else as one JSON value a line.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode("utf-8")
