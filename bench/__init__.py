"""`make bench`: cold start, warm overhead, upstream calls, package size and throughput, on loopback only."""
