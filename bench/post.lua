-- wrk: POST a new-guest token request from the origin `make run` allows (BENCH_ORIGIN).
wrk.method = "POST"
wrk.body = '{"duration": "short"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Origin"] = os.getenv("BENCH_ORIGIN")
