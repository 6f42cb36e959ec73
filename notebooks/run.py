"""Executes every notebook here top to bottom, headless, and fails on the first error.

Usage: python run.py [--bin PATH] [NOTEBOOK ...]. Outputs are not written back: the committed
notebooks stay stripped. Each notebook runs with this folder as its working directory.
"""

import argparse
import base64
import os
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

here = pathlib.Path(__file__).resolve().parent


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--bin", help="the custmap binary (sets CUSTMAP_BIN)")
    p.add_argument("--figures", help="write every figure as NOTEBOOK-N.png into this folder")
    p.add_argument("notebooks", nargs="*")
    args = p.parse_args()
    if args.bin:
        os.environ["CUSTMAP_BIN"] = str(pathlib.Path(args.bin).resolve())
    names = args.notebooks or sorted(str(n) for n in here.glob("*.ipynb"))
    for name in names:
        nb = nbformat.read(name, as_version=4)
        start = time.time()
        try:
            NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(here)}}).execute()
        except CellExecutionError as e:
            print(f"FAILED {name}:\n{e}", file=sys.stderr)
            return 1
        images = [o["data"]["image/png"] for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        if args.figures:
            out = pathlib.Path(args.figures)
            out.mkdir(parents=True, exist_ok=True)
            for i, png in enumerate(images):
                (out / f"{pathlib.Path(name).stem}-{i}.png").write_bytes(base64.b64decode(png))
        figures = len(images)
        print(f"ok {pathlib.Path(name).name}: {len(nb.cells)} cells, {figures} figures, {time.time() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
