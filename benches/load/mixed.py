#!/usr/bin/env python3
"""Mixed workload against `custmap serve`: what a marketing team's dashboards and notebooks send
at once, from 16 keep-alive connections for 30 s.

Each connection loops over a weighted mix: heatmaps (JSON, GeoJSON, PNG; everyone and a few
segments), attribution (four models, by channel and campaign), the funnel, placements (a few
budgets, mostly cached after their first answer) and a trickle of new placements (a new budget
each time: real engine work every time). A poller asks /api/v1/health every 20 ms meanwhile.
Reports per route: requests, answered, refused early (429/503 within 1 s), failed late (any other
error, or a broken connection), p50/p99 of the answered; /health p50/p99/max; the server's peak
RSS (VmHWM). The cached heatmap's own throughput is wrk's line in run.sh (this client is Python).

Usage: benches/load/mixed.py [--customers 200000] [--connections 16] [--seconds 30] [--bin PATH]
"""

import argparse
import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.parse

from harness import DEFAULT_BIN, TOKEN, Server, pct, run_all

SEGMENTS = ["budget >= 3000000", "budget >= 1500000 AND desired_area_sqm >= 120", "age_band = '35-44'"]


def routes(name):
    """(route name, weight, method, path, body) of the mix; a path may be a function of the draw."""
    d = f"/api/v1/datasets/{name}"
    q = urllib.parse.quote
    placement = lambda budget: {"budget": budget, "where": "budget >= 3000000", "reach": "both", "time_limit_s": 1}
    fresh = iter(range(10**9))
    return [
        ("heatmap json", 30, "GET", lambda: f"{d}/heatmap?res=8", None),
        ("heatmap segment", 10, "GET", lambda: f"{d}/heatmap?res=9&where={q(random.choice(SEGMENTS))}", None),
        ("heatmap geojson", 10, "GET", lambda: f"{d}/heatmap?res=9&format=geojson", None),
        ("heatmap png", 5, "GET", lambda: f"{d}/heatmap?res=8&format=png", None),
        (
            "attribution",
            15,
            "GET",
            lambda: f"{d}/attribution?model={random.choice(['markov', 'linear', 'first_touch', 'shapley'])}&by={random.choice(['channel', 'campaign'])}",
            None,
        ),
        ("funnel", 10, "GET", lambda: f"{d}/funnel?by={random.choice(['channel', 'campaign'])}", None),
        ("placement", 15, "POST", lambda: f"{d}/placement", lambda: placement(random.choice([300000, 1000000, 3000000]))),
        ("placement new", 5, "POST", lambda: f"{d}/placement", lambda: placement(3000000 + 1000 * next(fresh))),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=200_000)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--bin", default=DEFAULT_BIN)
    args = ap.parse_args()

    with Server(args.bin, args.customers, salt=7) as server:
        mix = routes(server.name)
        weights = [w for _, w, *_ in mix]
        print(f"== {args.customers} customers, {os.cpu_count()} cores, {args.connections} connections, {args.seconds:.0f} s, cold caches")
        results = []
        lock = threading.Lock()
        stop = time.perf_counter() + args.seconds

        def connection(seed):
            rng = random.Random(seed)
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            local = []
            while time.perf_counter() < stop:
                route, _, method, path, body = rng.choices(mix, weights)[0]
                payload = None if body is None else json.dumps(body()).encode()
                headers = {"Authorization": f"Bearer {TOKEN}"}
                if payload is not None:
                    headers["Content-Type"] = "application/json"
                t0 = time.perf_counter()
                try:
                    conn.request(method, path(), body=payload, headers=headers)
                    r = conn.getresponse()
                    r.read()
                    status = r.status
                except Exception:
                    status = None
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
                local.append((route, status, time.perf_counter() - t0))
            with lock:
                results.extend(local)

        wall, health = run_all(server.base, [threading.Thread(target=connection, args=(i,)) for i in range(args.connections)])

        print(f"{len(results)} requests in {wall:.1f} s ({len(results) / wall:.0f} req/s from this Python client)")
        print("| route | requests | answered | refused early | failed late | answered p50 / p99 ms |")
        print("|---|---|---|---|---|---|")
        late_total = 0
        for route, *_ in mix:
            rows = [r for r in results if r[0] == route]
            ok = [t for _, s, t in rows if s == 200]
            early = [t for _, s, t in rows if s in (429, 503) and t < 1.0]
            late = len(rows) - len(ok) - len(early)
            late_total += late
            print(f"| {route} | {len(rows)} | {len(ok)} | {len(early)} | {late} | {1000 * pct(ok, 0.5):.1f} / {1000 * pct(ok, 0.99):.1f} |")
        print(health.summary("meanwhile"))
        print(f"server peak RSS: {server.peak_rss_mib():.0f} MiB; failed late: {late_total}")
        statuses = sorted({s for _, s, _ in results if s not in (200, 429, 503)}, key=str)
        if statuses:
            print(f"other statuses: {statuses}")


if __name__ == "__main__":
    sys.exit(main())
