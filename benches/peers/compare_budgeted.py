#!/usr/bin/env python3
"""Budgeted maximum coverage: custmap's exact solver against CBC (through PuLP) on the same
seeded random instances resembling ad placement in a city.

Usage (from the repository root, after
`cargo build --release -p custmap-benches --example budgeted_coverage`):

    python3 benches/peers/compare_budgeted.py [--exe PATH] [--limit 10] [--cbc-limit 120]
        [--out DIR] [SIZE ...]

SIZE is one of S (150 sites x 4,000 prospects, seeds 1-3), M (400 x 20,000), L (1,000 x
100,000), XL (1,000 x 1,000,000), or SITESxPROSPECTS[:SEED[:WEIGHT]]; the default is S M L.
Each instance is solved by the `budgeted_coverage` example (a subprocess: custmap merges the
prospects reached by the same set of sites into one weighted row, then runs `optimize_within`)
and by CBC on the same merged rows:

    max sum_g W_g y_g  s.t.  y_g <= sum_{i reaches g} x_i,  sum_i c_i x_i <= B,
    x_i in {0, 1},  0 <= y_g <= 1

(y may be continuous: with integral x the best y is min(1, sum x), integral too). Correctness
checks (any failure is listed at the end and the exit status is 1): both plans are feasible and
their reach recomputed here on the unmerged prospects matches what each solver reports; when
CBC proves optimality, custmap's reach <= CBC's optimum and custmap's upper bound >= it; in any
case custmap's upper bound >= CBC's plan's reach and custmap's reach <= CBC's best bound.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pulp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))

CITY_M = 12_000.0  # the city is a 12 km x 12 km square

# kind: (share of sites, reach radius m, median cost yuan, cost log-sd)
KINDS = {
    "office_lobby": (0.40, 100.0, 3_000.0, 0.4),
    "cafe": (0.30, 250.0, 10_000.0, 0.4),
    "billboard": (0.20, 800.0, 80_000.0, 0.5),
    "bus_route": (0.10, 300.0, 250_000.0, 0.4),
}

PRESETS = {
    "S": [(150, 4_000, s, w) for s, w in ((1, "count"), (1, "budget"), (2, "count"), (2, "budget"), (3, "count"), (3, "budget"))],
    "M": [(400, 20_000, 1, "count"), (400, 20_000, 1, "budget")],
    "L": [(1_000, 100_000, 1, "count"), (1_000, 100_000, 1, "budget")],
    "XL": [(1_000, 1_000_000, 1, "count")],
}


# ---------------------------------------------------------------------------------------------
# Instances


def prospects_xy(rng: np.random.Generator, n: int) -> np.ndarray:
    """Prospects clustered in space: 85% in 25 Gaussian clusters of 300-1500 m, 15% uniform."""
    k = 25
    centers = rng.uniform(1_000, CITY_M - 1_000, size=(k, 2))
    sigma = rng.uniform(300, 1_500, size=k)
    share = rng.dirichlet(np.full(k, 1.5))
    n_clustered = int(n * 0.85)
    which = rng.choice(k, size=n_clustered, p=share)
    pts = centers[which] + rng.normal(size=(n_clustered, 2)) * sigma[which, None]
    pts = np.vstack([pts, rng.uniform(0, CITY_M, size=(n - n_clustered, 2))])
    return np.clip(pts, 0, CITY_M)


def within_point(xs: np.ndarray, ys: np.ndarray, cx: float, cy: float, r: float) -> np.ndarray:
    lo, hi = np.searchsorted(xs, [cx - r, cx + r])
    dx, dy = xs[lo:hi] - cx, ys[lo:hi] - cy
    return lo + np.nonzero(dx * dx + dy * dy <= r * r)[0]


def within_segment(xs, ys, ax, ay, bx, by, r) -> np.ndarray:
    lo, hi = np.searchsorted(xs, [min(ax, bx) - r, max(ax, bx) + r])
    px, py = xs[lo:hi], ys[lo:hi]
    m = (py >= min(ay, by) - r) & (py <= max(ay, by) + r)
    idx = np.nonzero(m)[0]
    px, py = px[idx], py[idx]
    vx, vy = bx - ax, by - ay
    t = np.clip(((px - ax) * vx + (py - ay) * vy) / max(vx * vx + vy * vy, 1e-9), 0, 1)
    dx, dy = px - (ax + t * vx), py - (ay + t * vy)
    return lo + idx[dx * dx + dy * dy <= r * r]


def generate(n_sites: int, n_prospects: int, seed: int, weight: str):
    """Returns (budget, weights, costs, covers, kinds), prospects numbered by x."""
    rng = np.random.default_rng([seed, n_sites, n_prospects, 0 if weight == "count" else 1])
    pts = prospects_xy(rng, n_prospects)
    pts = pts[np.argsort(pts[:, 0], kind="stable")]
    xs, ys = pts[:, 0].copy(), pts[:, 1].copy()
    if weight == "count":
        w = np.ones(n_prospects, dtype=np.int64)
    else:
        # Purchasing power in units of 10k yuan: log-normal around 3M yuan, integers.
        w = np.maximum(1, np.rint(300 * rng.lognormal(0.0, 0.8, size=n_prospects))).astype(np.int64)
    names = list(KINDS)
    counts = [int(round(KINDS[k][0] * n_sites)) for k in names]
    counts[0] += n_sites - sum(counts)
    costs, covers, kinds = [], [], []
    for kind, count in zip(names, counts):
        _, radius, median, sd = KINDS[kind]
        for _ in range(count):
            cost = float(np.rint(median * rng.lognormal(0.0, sd)))
            if kind in ("office_lobby", "cafe"):
                # Where people are: near a random prospect's place.
                j = rng.integers(n_prospects)
                cx, cy = pts[j] + rng.normal(size=2) * (50 if kind == "office_lobby" else 200)
                idx = within_point(xs, ys, cx, cy, radius)
            elif kind == "billboard":
                if rng.random() < 0.5:
                    j = rng.integers(n_prospects)
                    cx, cy = pts[j] + rng.normal(size=2) * 800
                else:
                    cx, cy = rng.uniform(0, CITY_M, size=2)
                idx = within_point(xs, ys, cx, cy, radius)
            else:
                # A bus route: 3 legs of 2-4 km from a prospect's place, turning at random.
                j = rng.integers(n_prospects)
                ax, ay = pts[j]
                heading = rng.uniform(0, 2 * np.pi)
                parts = []
                for _ in range(3):
                    heading += rng.normal() * 0.7
                    length = rng.uniform(2_000, 4_000)
                    bx = float(np.clip(ax + np.cos(heading) * length, 0, CITY_M))
                    by = float(np.clip(ay + np.sin(heading) * length, 0, CITY_M))
                    parts.append(within_segment(xs, ys, ax, ay, bx, by, radius))
                    ax, ay = bx, by
                idx = np.unique(np.concatenate(parts))
            costs.append(cost)
            covers.append(np.asarray(idx, dtype=np.int64))
            kinds.append(kind)
    order = rng.permutation(n_sites)  # mix the kinds in the site numbering
    costs = [costs[i] for i in order]
    covers = [covers[i] for i in order]
    kinds = [kinds[i] for i in order]
    # Roughly 10-30 sites fit: twelve times the average site cost.
    budget = float(np.rint(12 * np.mean(costs)))
    return budget, w, costs, covers, kinds


def write_instance(path: Path, budget, w, costs, covers) -> None:
    with open(path, "w") as f:
        f.write(f"bmc1\n{budget:.0f} {len(costs)} {len(w)}\n")
        f.write(" ".join(map(str, w.tolist())))
        f.write("\n")
        for c, idx in zip(costs, covers):
            f.write(f"{c:.0f} {len(idx)} ")
            f.write(" ".join(map(str, idx.tolist())))
            f.write("\n")


def merge(n_prospects: int, w: np.ndarray, covers):
    """Prospects reached by the same set of sites as one row (weights summed); prospects no site
    reaches dropped. Returns (row weights, per row the sites reaching it)."""
    site = np.concatenate([np.full(len(c), i, dtype=np.int64) for i, c in enumerate(covers)])
    pros = np.concatenate(covers) if covers else np.zeros(0, dtype=np.int64)
    order = np.lexsort((site, pros))
    site, pros = site[order], pros[order]
    cuts = np.nonzero(np.diff(pros))[0] + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(pros)]])
    row_of: dict[bytes, int] = {}
    row_w: list[int] = []
    row_sites: list[np.ndarray] = []
    for s, e in zip(starts.tolist(), ends.tolist()):
        if s == e:
            continue
        key_arr = site[s:e]
        key = key_arr.tobytes()
        r = row_of.get(key)
        if r is None:
            r = row_of[key] = len(row_w)
            row_w.append(0)
            row_sites.append(key_arr)
        row_w[r] += int(w[pros[s]])
    return row_w, row_sites


def reach_of(chosen, w, covers) -> float:
    if not chosen:
        return 0.0
    seen = np.zeros(len(w), dtype=bool)
    for i in chosen:
        seen[covers[i]] = True
    return float(w[seen].sum())


# ---------------------------------------------------------------------------------------------
# Solvers


def run_custmap(exe: str, path: Path, limit: float) -> dict:
    t = time.perf_counter()
    out = subprocess.run([exe, str(path), str(limit)], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["wall"] = wall
    return res


def parse_cbc_log(text: str) -> dict:
    """Status line, objective, best bound and CBC's own wall time from a CBC log (CBC minimises
    the negated objective: its bound on the minimum is minus ours on the maximum)."""
    info: dict = {}
    m = re.search(r"^Result - (.+)$", text, re.M)
    info["result"] = m.group(1).strip() if m else None
    m = re.search(r"^Objective value:\s+(\S+)", text, re.M)
    info["objective"] = abs(float(m.group(1))) if m else None
    m = re.search(r"^Lower bound:\s+(\S+)", text, re.M)
    info["bound"] = abs(float(m.group(1))) if m else None
    m = re.search(r"^Time \(Wallclock seconds\):\s+(\S+)", text, re.M)
    info["cbc_wall"] = float(m.group(1)) if m else None
    m = re.search(r"^Enumerated nodes:\s+(\S+)", text, re.M)
    info["nodes"] = int(m.group(1)) if m else None
    return info


def run_cbc(budget, costs, row_w, row_sites, limit: float, log: Path) -> dict:
    t = time.perf_counter()
    prob = pulp.LpProblem("bmc", pulp.LpMaximize)
    x = [pulp.LpVariable(f"x{i}", cat="Binary") for i in range(len(costs))]
    y = [pulp.LpVariable(f"y{g}", lowBound=0, upBound=1) for g in range(len(row_w))]
    prob += pulp.LpAffineExpression(zip(y, row_w))
    for g, sites in enumerate(row_sites):
        prob += pulp.LpAffineExpression([(y[g], 1)] + [(x[i], -1) for i in sites.tolist()]) <= 0, f"r{g}"
    prob += pulp.LpAffineExpression(zip(x, costs)) <= budget, "budget"
    build = time.perf_counter() - t
    t = time.perf_counter()
    prob.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=limit, logPath=str(log), threads=1))
    solve = time.perf_counter() - t
    info = parse_cbc_log(log.read_text())
    chosen = [i for i, v in enumerate(x) if v.value() is not None and v.value() > 0.5]
    info.update(
        status=pulp.LpStatus[prob.status],
        sol_status=prob.sol_status,
        pulp_objective=pulp.value(prob.objective),
        build=build,
        solve_wall=solve,
        chosen=chosen,
    )
    info["optimal"] = info["result"] == "Optimal solution found"
    if info["optimal"] and info["bound"] is None:
        info["bound"] = info["objective"]
    return info


# ---------------------------------------------------------------------------------------------


def spec_list(args) -> list[tuple[int, int, int, str]]:
    out = []
    for s in args.sizes or ["S", "M", "L"]:
        if s in PRESETS:
            out += PRESETS[s]
        else:
            parts = s.split(":")
            n_sites, n_pros = (int(v) for v in parts[0].lower().split("x"))
            seed = int(parts[1]) if len(parts) > 1 else 1
            weight = parts[2] if len(parts) > 2 else "count"
            out.append((n_sites, n_pros, seed, weight))
    return out


def fmt(v, digits=0):
    return f"{v:,.{digits}f}" if v is not None else "-"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sizes", nargs="*")
    ap.add_argument("--exe", default=str(TARGET / "release" / "examples" / "budgeted_coverage"))
    ap.add_argument("--limit", type=float, default=10.0, help="custmap time limit, s")
    ap.add_argument("--cbc-limit", type=float, default=120.0, help="CBC time limit, s")
    ap.add_argument("--out", default=str(TARGET / "custmap-bench-data" / "budgeted"))
    ap.add_argument("--json", help="append one JSON line per instance here")
    args = ap.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    rows, failures = [], []
    for n_sites, n_pros, seed, weight in spec_list(args):
        name = f"{n_sites}x{n_pros}-s{seed}-{weight}"
        t = time.perf_counter()
        budget, w, costs, covers, kinds = generate(n_sites, n_pros, seed, weight)
        path = out_dir / f"{name}.bmc"
        write_instance(path, budget, w, costs, covers)
        gen = time.perf_counter() - t
        t = time.perf_counter()
        row_w, row_sites = merge(n_pros, w, covers)
        py_merge = time.perf_counter() - t
        print(f"[{name}] generated in {gen:.1f} s, {len(row_w)} merged rows ({py_merge:.1f} s)", file=sys.stderr, flush=True)

        cm = run_custmap(args.exe, path, args.limit)
        print(f"[{name}] custmap reach {cm['reach']} ub {cm['upper_bound']} proven {cm['proven_optimal']} "
              f"in {cm['solve_seconds']:.2f} s", file=sys.stderr, flush=True)
        cbc = run_cbc(budget, costs, row_w, row_sites, args.cbc_limit, out_dir / f"{name}.cbc.log")
        print(f"[{name}] CBC {cbc['result']} obj {cbc['objective']} bound {cbc['bound']} "
              f"in {cbc['cbc_wall']} s (solve call {cbc['solve_wall']:.1f} s, build {cbc['build']:.1f} s)",
              file=sys.stderr, flush=True)

        # ---- correctness checks
        def check(ok: bool, what: str):
            if not ok:
                failures.append(f"{name}: {what}")
                print(f"[{name}] CHECK FAILED: {what}", file=sys.stderr, flush=True)

        total = float(sum(row_w))
        eps = 1e-6 * max(1.0, total)
        check(cm["rows"] == len(row_w), f"custmap merged rows {cm['rows']} != {len(row_w)} merged here")
        cm_reach = reach_of(cm["chosen"], w, covers)
        cm_cost = sum(costs[i] for i in cm["chosen"])
        check(abs(cm_reach - cm["reach"]) <= eps, f"custmap reports reach {cm['reach']}, its plan reaches {cm_reach}")
        check(cm_cost <= budget + 1e-6, f"custmap plan costs {cm_cost} > budget {budget}")
        check(cm["upper_bound"] >= cm["reach"] - eps, f"custmap upper bound {cm['upper_bound']} < reach {cm['reach']}")
        g = cm["greedy"]
        g_reach = reach_of(g["chosen"], w, covers)
        check(abs(g_reach - g["reach"]) <= eps, f"greedy reports reach {g['reach']}, its plan reaches {g_reach}")
        check(sum(costs[i] for i in g["chosen"]) <= budget + 1e-6, "greedy plan over budget")
        cbc_reach = reach_of(cbc["chosen"], w, covers)
        cbc_cost = sum(costs[i] for i in cbc["chosen"])
        check(cbc_cost <= budget + 1e-6, f"CBC plan costs {cbc_cost} > budget {budget}")
        if cbc["objective"] is not None:
            check(abs(cbc_reach - cbc["objective"]) <= eps, f"CBC objective {cbc['objective']}, its plan reaches {cbc_reach}")
        check(cm["upper_bound"] >= cbc_reach - eps,
              f"custmap upper bound {cm['upper_bound']} < reach {cbc_reach} of CBC's plan")
        check(g["upper_bound"] >= cbc_reach - eps,
              f"greedy upper bound {g['upper_bound']} < reach {cbc_reach} of CBC's plan")
        if cbc["bound"] is not None:
            check(cm["reach"] <= cbc["bound"] + eps, f"custmap reach {cm['reach']} > CBC best bound {cbc['bound']}")
        if cbc["optimal"]:
            opt = cbc_reach
            check(cm["reach"] <= opt + eps, f"custmap reach {cm['reach']} > CBC optimum {opt}")
            check(cm["upper_bound"] >= opt - eps, f"custmap upper bound {cm['upper_bound']} < CBC optimum {opt}")
            if cm["proven_optimal"]:
                check(abs(cm["reach"] - opt) <= eps, f"custmap claims optimal {cm['reach']} but CBC optimum is {opt}")

        best_known = max(cbc_reach, cm["reach"])
        row = dict(
            name=name, sites=n_sites, prospects=n_pros, rows=len(row_w), seed=seed, weight=weight, budget=budget,
            total_weight=total, sites_chosen=len(cm["chosen"]), cbc_sites_chosen=len(cbc["chosen"]),
            cbc_result=cbc["result"], cbc_objective=cbc_reach, cbc_bound=cbc["bound"], cbc_wall=cbc["cbc_wall"],
            cbc_solve_call=cbc["solve_wall"], cbc_build=cbc["build"], cbc_nodes=cbc["nodes"], cbc_optimal=cbc["optimal"],
            cm_reach=cm["reach"], cm_ub=cm["upper_bound"], cm_gap=cm["gap"], cm_proven=cm["proven_optimal"],
            cm_nodes=cm["nodes"], cm_solve=cm["solve_seconds"], cm_reduce=cm["reduce_seconds"], cm_read=cm["read_seconds"],
            cm_wall=cm["wall"], greedy_reach=g["reach"], greedy_ub=g["upper_bound"], greedy_seconds=g["seconds"],
            cm_pct=100.0 * cm["reach"] / best_known if best_known > 0 else 100.0,
            greedy_pct=100.0 * g["reach"] / best_known if best_known > 0 else 100.0,
        )
        rows.append(row)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(row) + "\n")

    print(f"\ncustmap limit {args.limit:g} s, CBC limit {args.cbc_limit:g} s (1 thread)\n")
    print("| instance | sites x prospects (merged rows) | CBC objective / time s / status | "
          "custmap reach / proven? / gap / time s (nodes) | custmap % of CBC | greedy reach (%) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        status = r["cbc_result"] or "?"
        if not r["cbc_optimal"] and r["cbc_bound"] is not None:
            status += f", bound {fmt(r['cbc_bound'])}"
        print(
            f"| {r['name']} | {r['sites']:,} x {r['prospects']:,} ({r['rows']:,}) "
            f"| {fmt(r['cbc_objective'])} / {fmt(r['cbc_wall'], 2)} / {status} "
            f"| {fmt(r['cm_reach'])} / {'yes' if r['cm_proven'] else 'no'} / {100 * r['cm_gap']:.2f}% / "
            f"{r['cm_solve']:.2f} ({r['cm_nodes']:,}) "
            f"| {100.0 * r['cm_reach'] / r['cbc_objective'] if r['cbc_objective'] else float('nan'):.2f}% "
            f"| {fmt(r['greedy_reach'])} ({100.0 * r['greedy_reach'] / r['cbc_objective'] if r['cbc_objective'] else float('nan'):.2f}%) |"
        )
    if failures:
        print("\nCORRECTNESS CHECK FAILURES:")
        for f in failures:
            print(f"- {f}")
        return 1
    print("\nAll correctness checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
