"""The worker-thread runtime of the compiled kernels: CPU pinning while a call runs.

``run_chunks`` binds its threads to distinct CPUs for the duration of a call (Linux;
``runtime.PIN_THREADS``) and gives every thread its own affinity mask back afterwards --
also when the work raises, and never for a call that overlaps another pinned call.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import arbf
from arbf._math.kernels import runtime

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here"),
    pytest.mark.skipif(
        hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) < 2,
        reason="pinning needs two CPUs",
    ),
]


def _all_thread_masks() -> set[frozenset[int]]:
    """The affinity mask of every live thread of this process (Linux takes a thread id)."""
    return {
        frozenset(os.sched_getaffinity(t.native_id))
        for t in threading.enumerate()
        if t.native_id is not None
    }


def _record(n_chunks: int, threads: int, hold: threading.Event | None = None):
    """Run ``n_chunks`` chunks over ``threads`` threads; each chunk records the calling
    thread's id and affinity mask."""
    seen: list[tuple[int, frozenset[int]]] = []
    guard = threading.Lock()

    def work(a: int, st: None) -> None:
        if hold is not None:
            hold.wait(5)
        with guard:
            seen.append((threading.get_ident(), frozenset(os.sched_getaffinity(0))))

    runtime.run_chunks(n_chunks, 1, threads, work, lambda: None)
    return seen


def test_threads_run_on_distinct_single_cpus_and_get_their_masks_back():
    before = os.sched_getaffinity(0)
    allowed = sorted(before)
    seen = _record(40 * len(allowed), len(allowed))
    by_thread: dict[int, set[frozenset[int]]] = {}
    for tid, mask in seen:
        by_thread.setdefault(tid, set()).add(mask)
    assert len(by_thread) == len(allowed)
    masks = [next(iter(m)) for m in by_thread.values()]
    assert all(len(m) == 1 for m in by_thread.values())  # one mask per thread throughout
    assert sorted(next(iter(m)) for m in masks) == allowed  # one CPU each, distinct
    assert os.sched_getaffinity(0) == before  # the caller's mask is back
    assert _all_thread_masks() == {frozenset(before)}  # and every worker's


def test_no_pinning_when_switched_off_or_single_threaded(monkeypatch):
    before = frozenset(os.sched_getaffinity(0))
    monkeypatch.setattr(runtime, "PIN_THREADS", False)
    assert {m for _, m in _record(10, 2)} == {before}
    monkeypatch.setattr(runtime, "PIN_THREADS", True)
    assert {m for _, m in _record(10, 1)} == {before}  # one thread: nothing to spread
    assert runtime._pin_plan(1) is None
    # more threads than allowed CPUs, or fewer: not pinned
    assert runtime._pin_plan(len(before) + 1) is None
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert runtime._pin_plan(2) is None and runtime._pin_plan(3) is None
    assert not runtime._pin_lock.locked()
    cpus = runtime._pin_plan(4)
    assert cpus == [0, 1, 2, 3] and runtime._pin_lock.locked()
    runtime._pin_lock.release()


def test_a_restricted_caller_mask_is_respected():
    # a caller restricted to two of the CPUs (all of them on a 2-CPU machine): its two
    # threads are bound to exactly those
    before = os.sched_getaffinity(0)
    allowed = sorted(before)
    sub = {allowed[-1], allowed[0]}
    os.sched_setaffinity(0, sub)
    try:
        seen = _record(12, 2)
        assert {next(iter(m)) for _, m in seen} == sub
        assert os.sched_getaffinity(0) == sub
    finally:
        os.sched_setaffinity(0, before)


def test_an_overlapping_call_runs_unpinned_and_the_lock_is_released():
    # a second caller while the first is pinned: unpinned (it would otherwise share
    # the first call's CPUs), and both masks come back
    before = frozenset(os.sched_getaffinity(0))
    n_cpus = len(before)
    hold = threading.Event()
    first: list = []
    t = threading.Thread(target=lambda: first.extend(_record(2 * n_cpus, n_cpus, hold)))
    t.start()
    try:
        for _ in range(500):  # wait until the first call holds the pin
            if runtime._pin_lock.locked():
                break
            threading.Event().wait(0.01)
        assert runtime._pin_lock.locked()
        second = _record(3 * n_cpus, n_cpus)
    finally:
        hold.set()
        t.join(10)
    assert {m for _, m in second} == {before}
    assert all(len(m) == 1 for _, m in first)
    assert not runtime._pin_lock.locked()
    assert frozenset(os.sched_getaffinity(0)) == before


def test_an_exception_in_the_work_restores_masks_and_releases_the_pin():
    # the calling thread's block raises at once; the call returns only when the other
    # threads have finished their blocks
    before = os.sched_getaffinity(0)
    n_cpus = len(before)
    done: list[int] = []

    def work(a: int, st: None) -> None:
        if a == 0:
            raise RuntimeError("boom")
        threading.Event().wait(0.002)
        done.append(a)

    with pytest.raises(RuntimeError, match="boom"):
        runtime.run_chunks(8 * n_cpus, 1, n_cpus, work, lambda: None)
    assert sorted(done) == list(range(8, 8 * n_cpus))  # every other block ran to its end
    assert os.sched_getaffinity(0) == before
    assert not runtime._pin_lock.locked()
    assert _all_thread_masks() == {frozenset(before)}


@pytest.mark.skipif(not runtime.HAVE_NUMBA, reason="numba not installed")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pinning_changes_no_bit_of_a_fit(dtype, monkeypatch):
    rng = np.random.default_rng(4)
    X = (rng.standard_normal((30_000, 9)) + rng.integers(0, 4, (30_000, 1))).astype(dtype)
    C0 = X[:7].copy()
    out = {}
    for pin in (False, True):
        monkeypatch.setattr(runtime, "PIN_THREADS", pin)
        with arbf.config_context(n_threads=len(os.sched_getaffinity(0))):
            out[pin] = arbf.kmeans(X, 7, init=C0, max_iter=20, tol=0)
    a, b = out[False], out[True]
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centers, b.centers)
    assert a.inertia == b.inertia and a.n_iter == b.n_iter


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_can_pin_although_the_parent_held_the_pin():
    # fork while a call in another thread holds the pinning lock: the child's lock is
    # fresh (else the child's calls would never be pinned)
    import subprocess
    import sys

    code = """
import os, sys
from arbf._math.kernels import runtime
n = len(os.sched_getaffinity(0))
assert runtime._pin_lock.acquire(blocking=False)
pid = os.fork()
if pid == 0:
    cpus = runtime._pin_plan(n)
    os._exit(0 if cpus == sorted(os.sched_getaffinity(0)) else 3)
_, status = os.waitpid(pid, 0)
assert runtime._pin_lock.locked()
sys.exit(os.waitstatus_to_exitcode(status))
"""
    out = subprocess.run([sys.executable, "-c", code], timeout=60, capture_output=True)
    assert out.returncode == 0, out.stderr.decode()
