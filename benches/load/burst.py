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
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

TOKEN = "burst-analyst"


def call(url, body=None, timeout=300):
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", f"Bearer {TOKEN}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return r.status, time.perf_counter() - t0
    except urllib.error.HTTPError as e:
        e.read()
        return e.code, time.perf_counter() - t0
    except Exception:  # connection reset, timeout: a late failure
        return None, time.perf_counter() - t0


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=200_000)
    ap.add_argument("--n", type=int, default=40)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    ap.add_argument("--bin", default=os.path.join(target, "release", "custmap"))
    args = ap.parse_args()

    data = os.path.join(os.environ.get("CUSTMAP_BENCH_DATA", os.path.join(target, "custmap-bench-data")), f"burst-{args.customers}")
    if not os.path.exists(os.path.join(data, "customers.parquet")):
        subprocess.run([args.bin, "demo", "--out", data, "--customers", str(args.customers), "--format", "parquet"], check=True, stdout=subprocess.DEVNULL)
    store = tempfile.mkdtemp()
    port = 20000 + os.getpid() % 20000
    env = dict(os.environ, CUSTMAP_ANALYST_TOKEN=TOKEN)
    server = subprocess.Popen([args.bin, "serve", data, "--addr", f"127.0.0.1:{port}", "--data-dir", store], env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/api/v1"
    name = os.path.basename(data)
    try:
        for _ in range(600):
            if call(f"{base}/health", timeout=2)[0] == 200:
                break
            time.sleep(0.5)
        # The coverage of the segment is built once (what a planner's first request pays).
        place = f"{base}/datasets/{name}/placement"
        segment = "budget >= 3000000"
        status, warm = call(place, {"budget": 100000, "where": segment, "reach": "both", "time_limit_s": 1})
        print(f"== {args.customers} customers, {os.cpu_count()} cores; warm-up placement {status} in {warm:.2f} s")

        results = []
        lock = threading.Lock()
        health = []
        done = threading.Event()

        def poll():
            while not done.is_set():
                s, t = call(f"{base}/health", timeout=30)
                health.append(t if s == 200 else float("inf"))
                time.sleep(0.02)

        def heavy(kind, body):
            s, t = call(place, body)
            with lock:
                results.append((kind, s, t))

        jobs = [("identical", {"budget": 500000, "where": segment, "reach": "both", "time_limit_s": 2}) for _ in range(args.n)]
        jobs += [("distinct", {"budget": 500000 + 1000 * i, "where": segment, "reach": "both", "time_limit_s": 2}) for i in range(args.n)]
        poller = threading.Thread(target=poll)
        poller.start()
        threads = [threading.Thread(target=heavy, args=job) for job in jobs]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        done.set()
        poller.join()
        with open(f"/proc/{server.pid}/status") as f:
            hwm = next((line.split()[1] for line in f if line.startswith("VmHWM")), "0")

        print(f"burst: {len(jobs)} placements at once ({args.n} identical + {args.n} distinct), all settled in {wall:.1f} s")
        print("| requests | answered | refused early | failed late | answered p50 / p99 s |")
        print("|---|---|---|---|---|")
        for kind in ("identical", "distinct"):
            rows = [r for r in results if r[0] == kind]
            ok = [t for _, s, t in rows if s == 200]
            early = [t for _, s, t in rows if s in (429, 503) and t < 1.0]
            late = len(rows) - len(ok) - len(early)
            print(f"| {kind} | {len(ok)} | {len(early)} | {late} | {pct(ok, 0.5):.2f} / {pct(ok, 0.99):.2f} |")
        finite = [h for h in health if h != float("inf")]
        print(
            f"/health during the burst: {len(health)} probes, p50 {1000 * pct(finite, 0.5):.1f} ms, "
            f"p99 {1000 * pct(finite, 0.99):.1f} ms, max {1000 * max(finite, default=float('nan')):.1f} ms, failed {len(health) - len(finite)}"
        )
        print(f"server peak RSS: {int(hwm) / 1024:.0f} MiB")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
