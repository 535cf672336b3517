-- POSTs one Drift event per request; the body and token come from the environment.
-- With BENCH_VARY=1 each request is a different conversation_inactive event of
-- the same size as Drift's example (its time counts up from BENCH_OFFSET, its
-- conversation is one of 16), so that deduplication never skips a delivery.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Verification-Token"] = os.getenv("BENCH_TOKEN") or ""

if os.getenv("BENCH_VARY") == "1" then
  local n = tonumber(os.getenv("BENCH_OFFSET") or "0")
  request = function()
    n = n + 1
    local body = string.format(
      '{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":%d,"conversationId":%d}}',
      1591813767000 + n, 123456700 + n % 16)
    return wrk.format(nil, nil, nil, body)
  end
end
