#!/usr/bin/env python3
"""Burst of heavy requests against `custmap serve`: are they answered or refused early, never
failed late, and does /health stay fast meanwhile?

Starts the server on a demo city (generated once into the bench data folder), then sends, all
at once, N identical uncached placements (single flight: computed once) and N distinct ones
(each a new budget: a new plan), while a poller asks /api/v1/health every 20 ms. Reports how
many were answered, refused early (429/503 within 1 s), failed late (an error after 1 s or a
broken connection), p50/p99 latency of the answered, /health p50/p99/max during the burst, and
the server's peak RSS (VmHWM).

Usage: benches/load/burst.py [--customers 200000] [--n 40] [--bin PATH]
"""

import argparse
import os
import sys
import threading

from harness import DEFAULT_BIN, Server, call, pct, run_all


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=200_000)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--bin", default=DEFAULT_BIN)
    args = ap.parse_args()

    with Server(args.bin, args.customers) as server:
        # The coverage of the segment is built once (what a planner's first request pays).
        place = f"{server.base}/datasets/{server.name}/placement"
        segment = "budget >= 3000000"
        status, warm = call(place, {"budget": 100000, "where": segment, "reach": "both", "time_limit_s": 1})
        print(f"== {args.customers} customers, {os.cpu_count()} cores; warm-up placement {status} in {warm:.2f} s")

        results = []
        lock = threading.Lock()

        def heavy(kind, body):
            s, t = call(place, body)
            with lock:
                results.append((kind, s, t))

        jobs = [("identical", {"budget": 500000, "where": segment, "reach": "both", "time_limit_s": 2}) for _ in range(args.n)]
        jobs += [("distinct", {"budget": 500000 + 1000 * i, "where": segment, "reach": "both", "time_limit_s": 2}) for i in range(args.n)]
        wall, health = run_all(server.base, [threading.Thread(target=heavy, args=job) for job in jobs])

        print(f"burst: {len(jobs)} placements at once ({args.n} identical + {args.n} distinct), all settled in {wall:.1f} s")
        print("| requests | answered | refused early | failed late | answered p50 / p99 s |")
        print("|---|---|---|---|---|")
        for kind in ("identical", "distinct"):
            rows = [r for r in results if r[0] == kind]
            ok = [t for _, s, t in rows if s == 200]
            early = [t for _, s, t in rows if s in (429, 503) and t < 1.0]
            late = len(rows) - len(ok) - len(early)
            print(f"| {kind} | {len(ok)} | {len(early)} | {late} | {pct(ok, 0.5):.2f} / {pct(ok, 0.99):.2f} |")
        print(health.summary("during the burst"))
        print(f"server peak RSS: {server.peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
