"""Peer: the maximal covering location problem (choose P sites covering the most prospects'
work places) with PySAL spopt's MCLP, solved exactly by CBC. Demand points are the distinct work
coordinates weighted by how many customers work there; a site covers a point within its reach_m
(great-circle, the same Earth radius as custmap). Prints the covered weight, the chosen sites and
its own in-process time. Usage: python mclp_spopt.py DATASET_DIR P
"""
import json
import sys
import time

import numpy as np
import polars as pl
import pulp
from spopt.locate import MCLP

R = 6371008.8  # mean Earth radius (m), as geo's Haversine


def haversine(lat1, lng1, lat2, lng2):
    p1, p2 = np.radians(lat1)[:, None], np.radians(lat2)[None, :]
    dlat = p2 - p1
    dlng = np.radians(lng2)[None, :] - np.radians(lng1)[:, None]
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlng / 2) ** 2
    return 2 * R * np.arcsin(np.sqrt(a))


d, p = sys.argv[1], int(sys.argv[2])
start = time.perf_counter()
demand = (
    pl.read_parquet(f"{d}/customers.parquet", columns=["work_lat", "work_lng"])
    .drop_nulls()
    .group_by("work_lat", "work_lng")
    .len()
)
sites = pl.read_csv(f"{d}/sites.csv")
dist = haversine(demand["work_lat"].to_numpy(), demand["work_lng"].to_numpy(), sites["lat"].to_numpy(), sites["lng"].to_numpy())
# Normalised so one service radius (1.0) applies to every site's own reach.
cost = dist / sites["reach_m"].to_numpy()[None, :]
weights = demand["len"].to_numpy().astype(float)
mclp = MCLP.from_cost_matrix(cost, weights, service_radius=1.0, p_facilities=p, name="mclp")
mclp = mclp.solve(pulp.PULP_CBC_CMD(msg=False))
chosen = [sites["site_id"][j] for j, cl in enumerate(mclp.fac2cli) if len(cl) > 0 or mclp.fac_vars[j].value() > 0.5]
covered = float(weights[(cost[:, [j for j in range(len(sites)) if mclp.fac_vars[j].value() > 0.5]] <= 1.0).any(axis=1)].sum())
elapsed = time.perf_counter() - start
print(json.dumps({"covered": covered, "sites": sorted(chosen)}))
print(f"seconds={elapsed:.4f}")
