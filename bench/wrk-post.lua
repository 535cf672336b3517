-- POSTs one Drift event per request; the body and token come from the environment.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Verification-Token"] = os.getenv("BENCH_TOKEN") or ""
