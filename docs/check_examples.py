"""Run the Python examples of the guide pages, so that they cannot rot unnoticed.

Usage: ``python docs/check_examples.py [PAGE.md ...]`` (default: the pages this script
knows).  Each page's ```` ```python ```` blocks run in order in one namespace, after a
prelude that defines the placeholder names the guides use (``X``, ``C``, ``w`` ...).
Blocks that need a GPU (CuPy, CUDA), a cluster (``Client(``) or a user's own model are skipped,
and the Dask example runs on a smaller array.  Exits 1 if any block raises.
"""

from __future__ import annotations

import re
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGES = [
    "index.md",
    "getting_started.md",
    "user_guide/backends.md",
    "user_guide/kmeans.md",
    "user_guide/rbf.md",
    "user_guide/entmax.md",
    "user_guide/deep_learning.md",
    "user_guide/embeddings.md",
    "user_guide/dask.md",
    "user_guide/scale_out.md",
]
PRELUDE = """
import numpy as np
import arbf
rng = np.random.default_rng(0)
X = np.concatenate([rng.normal(loc=c, scale=0.3, size=(300, 2))
                    for c in ([0, 0], [3, 0], [0, 3])])
w = rng.uniform(0.5, 2, len(X))
C = X[[0, 300, 600]].copy()
centers = init_centers = C
k = 3
X_train, X_test = X, X[:100]
X_np, C_np = X, C
E = rng.normal(size=(3000, 16))  # "embeddings" (the cosine examples)
E_new = rng.normal(size=(50, 16))
"""
SKIP = ("import cupy", 'device="cuda"', ".cuda()", "encoder(batch)", "Client(")
SMALLER = {"200_000": "5_000", "chunks=(50_000, 8)": "chunks=(1_000, 8)"}


def run_page(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    for big, small in SMALLER.items():
        text = text.replace(big, small)
    namespace: dict = {}
    exec(PRELUDE, namespace)
    failures = 0
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.S):
        first = block.splitlines()[0][:60]
        if any(s in block for s in SKIP):
            print(f"skip {path.name}: {first}")
            continue
        start = time.perf_counter()
        try:
            exec(compile(block, str(path), "exec"), namespace)
        except Exception as exc:  # report every failing block, then fail
            failures += 1
            print(f"FAIL {path.name}: {first}\n     {type(exc).__name__}: {exc}")
        else:
            print(f"ok   {path.name}: {first} ({time.perf_counter() - start:.1f} s)")
    return failures


def main(argv: list[str]) -> int:
    warnings.simplefilter("ignore")
    pages = [Path(a) for a in argv] or [HERE / p for p in PAGES]
    failures = sum(run_page(p) for p in pages)
    print(f"{failures} failing block(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
