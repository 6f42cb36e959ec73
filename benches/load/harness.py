"""What the load scripts share: an analyst client, a server on a demo city, a /health poller
and the server's peak memory."""

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

TOKEN = "burst-analyst"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
DEFAULT_BIN = os.path.join(TARGET, "release", "custmap")


def call(url, body=None, timeout=300):
    """(status or None for a broken connection, seconds) of one request with the analyst token."""
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


class Server:
    """`custmap serve` on a demo city of `customers` (generated once into the bench data folder),
    with the analyst token, on a free-ish port; `with Server(...) as s:` stops it after."""

    def __init__(self, binary, customers, salt=0):
        data = os.path.join(os.environ.get("CUSTMAP_BENCH_DATA", os.path.join(TARGET, "custmap-bench-data")), f"burst-{customers}")
        if not os.path.exists(os.path.join(data, "customers.parquet")):
            subprocess.run([binary, "demo", "--out", data, "--customers", str(customers), "--format", "parquet"], check=True, stdout=subprocess.DEVNULL)
        self.store = tempfile.mkdtemp()
        self.port = 20000 + (os.getpid() + salt) % 20000
        env = dict(os.environ, CUSTMAP_ANALYST_TOKEN=TOKEN)
        self.process = subprocess.Popen(
            [binary, "serve", data, "--addr", f"127.0.0.1:{self.port}", "--data-dir", self.store],
            env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}/api/v1"
        self.name = os.path.basename(data)

    def __enter__(self):
        for _ in range(600):
            if call(f"{self.base}/health", timeout=2)[0] == 200:
                break
            time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=30)
        shutil.rmtree(self.store, ignore_errors=True)

    def peak_rss_mib(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            return int(next((line.split()[1] for line in f if line.startswith("VmHWM")), "0")) / 1024


class HealthPoller:
    """Asks /health every 20 ms until stopped; `summary()` is the line the scripts print."""

    def __init__(self, base):
        self.base, self.samples, self.done = base, [], threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self):
        while not self.done.is_set():
            s, t = call(f"{self.base}/health", timeout=30)
            self.samples.append(t if s == 200 else float("inf"))
            time.sleep(0.02)

    def start(self):
        self.thread.start()

    def stop(self):
        self.done.set()
        self.thread.join()

    def summary(self, during):
        finite = [h for h in self.samples if h != float("inf")]
        return (
            f"/health {during}: {len(self.samples)} probes, p50 {1000 * pct(finite, 0.5):.1f} ms, "
            f"p99 {1000 * pct(finite, 0.99):.1f} ms, max {1000 * max(finite, default=float('nan')):.1f} ms, "
            f"failed {len(self.samples) - len(finite)}"
        )


def run_all(base, threads):
    """Starts `threads` at once with a /health poller beside them; returns (seconds until the
    last one finished, the poller)."""
    health = HealthPoller(base)
    health.start()
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    health.stop()
    return wall, health
