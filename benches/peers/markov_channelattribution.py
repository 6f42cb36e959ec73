"""Peer: order-1 Markov attribution with the ChannelAttribution package, on the distinct paths
custmap exported (`custmap attribution --paths`). Prints conversions per channel as CSV and its
own in-process time. Usage: python markov_channelattribution.py PATHS_CSV OUT_CSV
"""
import sys
import time

import pandas as pd
from ChannelAttribution import markov_model

paths, out = sys.argv[1], sys.argv[2]
start = time.perf_counter()
data = pd.read_csv(paths)
result = markov_model(
    data, var_path="path", var_conv="conversions", var_value="value", var_null="nulls",
    order=1, sep=">", verbose=0, seed=1,
)
result.rename(columns={"channel_name": "channel", "total_conversions": "conversions"})[["channel", "conversions"]].to_csv(out, index=False)
print(f"seconds={time.perf_counter() - start:.4f}")
