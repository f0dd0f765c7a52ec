"""Before/after a change: ``bench_kmeans.py`` and ``bench_rbf.py`` of two checkouts run
alternately, shape by shape, so that a shared machine's load hits both alike.

Usage::

    git worktree add /tmp/before <commit>
    python benchmarks/compare_trees.py /tmp/before . --rounds 2 --out compare.json

Each checkout runs its *own* benchmark scripts with its own ``arbf`` (``PYTHONPATH``).
The raw table rows of every round are written to ``--out``; read the medians of the
ratios each benchmark prints (docs/architecture.md, "Before and after").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

SHAPES = ["200000,32,64", "100000,128,256", "1000000,16,16"]
RUNNERS = "arbf-numpy,arbf-numpy-pure,arbf-torch,sklearn"


def run(tree: str, args: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": tree}
    p = subprocess.run([sys.executable, *args], cwd=tree, env=env, capture_output=True, text=True)
    return p.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="compare.json")
    a = ap.parse_args()
    trees = {"before": os.path.abspath(a.before), "after": os.path.abspath(a.after)}
    out: dict[str, list] = {}
    for r in range(a.rounds):
        order = ("before", "after") if r % 2 == 0 else ("after", "before")
        for shape in SHAPES:
            for dt in ("float32", "float64"):
                for tree in order:
                    txt = run(trees[tree], [
                        "benchmarks/bench_kmeans.py", "--repeats", "5", "--no-memory",
                        "--shapes", shape, "--dtypes", dt, "--runners", RUNNERS,
                    ])  # fmt: skip
                    rows = [
                        ln for ln in txt.splitlines() if ln.startswith("| " + shape.split(",")[0])
                    ]
                    out.setdefault(f"kmeans|{shape}|{dt}|{tree}", []).extend(rows[:1])
        for tree in order:
            out.setdefault(f"rbf|{tree}", []).append(
                run(trees[tree], ["benchmarks/bench_rbf.py", "--repeats", "5"])
            )
        print("round", r, "done", flush=True)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print("saved", a.out)


if __name__ == "__main__":
    main()
