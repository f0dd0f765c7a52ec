"""First-call compile time (docs/user_guide/kmeans.md): the first ``arbf.kmeans``,
``arbf.responsibilities(kind="entmax15")`` and ``arbf.soft_lloyd_step`` in a process
with an empty numba cache (a temporary ``NUMBA_CACHE_DIR``), and the kernels that took
longest to compile (a timer around numba's ``Dispatcher.compile``; a kernel's time
includes the helpers it compiles, listed below it with a larger depth).

    python benchmarks/compile_time.py
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time

_CACHE = tempfile.mkdtemp(prefix="arbf-numba-cache-")
os.environ["NUMBA_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

import numba  # noqa: E402
import numba.core.dispatcher as dispatcher  # noqa: E402
import numpy as np  # noqa: E402

log: list[tuple[float, int, str]] = []
_compile = dispatcher.Dispatcher.compile
_depth = [0]


def _timed(self, sig):
    _depth[0] += 1
    t = time.perf_counter()
    try:
        return _compile(self, sig)
    finally:
        _depth[0] -= 1
        name = f"{self.py_func.__module__.rsplit('.', 1)[-1]}.{self.py_func.__name__}"
        log.append((time.perf_counter() - t, _depth[0], name))


dispatcher.Dispatcher.compile = _timed  # type: ignore[method-assign]


def main() -> None:
    import arbf

    @numba.njit
    def trivial(a):
        return a[0] + 1.0

    t = time.perf_counter()
    trivial(np.ones(3))
    print(f"numba's first compile (a trivial function): {time.perf_counter() - t:.2f} s")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 8))
    C = X[:8].copy()
    calls = {
        "kmeans": lambda: arbf.kmeans(X, 8, random_state=0),
        'responsibilities(kind="entmax15")': lambda: arbf.responsibilities(
            X, C, sigma=1.0, kind="entmax15"
        ),
        "soft_lloyd_step": lambda: arbf.soft_lloyd_step(X, C, sigma=1.0),
    }
    total = 0.0
    for name, call in calls.items():
        log.clear()
        t = time.perf_counter()
        call()
        dt = time.perf_counter() - t
        total += dt
        print(f"first {name}: {dt:.2f} s")
        for sec, depth, kern in sorted(log, reverse=True)[:8]:
            print(f"    {sec:6.2f} s  depth {depth}  {kern}")
    print(f"total of the three first calls: {total:.2f} s")


if __name__ == "__main__":
    main()
