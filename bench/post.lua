-- wrk: POST a new-guest token request from the origin `make run` allows (BENCH_ORIGIN), with the body the
-- source takes (BENCH_BODY: "{}" for webmessaging, which refuses duration and scopes).
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or "{}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Origin"] = os.getenv("BENCH_ORIGIN")
