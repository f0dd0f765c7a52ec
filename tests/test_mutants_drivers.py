"""Tests written to kill the drivers' survivors of the mutation run (docs/testing.md,
"Mutation testing"): the Lloyd engine (empty clusters, parking, the hand-over, the
prepared units) and the mini-batch driver (random reassignment, the init-size rule, the
final labels, the cosine step).  Every value is checked against an independent reference
(a plain NumPy re-implementation, scikit-learn, a closed form), never another arbf path.
"""

from __future__ import annotations

import inspect
import math
import os
import warnings
from typing import Any

import numpy as np
import pytest
from scipy.special import logsumexp

import arbf
from arbf._backend import to_host
from tests.backends import Backend, assert_close
from tests.test_mutants import _mb_data, _rows_init


def _host(backend: Backend, a: Any) -> np.ndarray:
    return np.asarray(backend.to_numpy(a))


# ---------------------------------------------------------------------------------------
# NumPy references
# ---------------------------------------------------------------------------------------


def _entmax15(z: np.ndarray) -> np.ndarray:
    """Row-wise entmax-1.5, ``p = [z/2 - tau]_+^2`` with ``sum p = 1``, by the exact
    sort-based threshold (Peters, Niculae & Martins 2019)."""
    z = np.asarray(z, np.float64) / 2.0
    zs = -np.sort(-z, axis=1)
    k = np.arange(1, z.shape[1] + 1)
    mean = np.cumsum(zs, axis=1) / k
    mean_sq = np.cumsum(zs * zs, axis=1) / k
    delta = (1.0 - k * (mean_sq - mean * mean)) / k
    tau = mean - np.sqrt(np.maximum(delta, 0.0))
    support = np.sum(tau <= zs, axis=1)
    t = tau[np.arange(z.shape[0]), support - 1]
    return np.maximum(z - t[:, None], 0.0) ** 2


def _batch_stats(
    Xb: np.ndarray, C: np.ndarray, wb: np.ndarray, s: float, kind: str
) -> tuple[np.ndarray, float, float, float, float]:
    """Responsibilities and ``(J, L, F)`` of one weighted batch at centers ``C``, and the
    batch objective mini-batch reports (``F`` at σ; ``J`` when hard)."""
    D = ((Xb[:, None, :] - C[None]) ** 2).sum(-1)
    J = float(np.sum(wb * D.min(1)))
    if s == 0 or kind == "hard":
        R = np.zeros_like(D)
        R[np.arange(len(D)), D.argmin(1)] = 1.0
        return R, J, J, J, J
    if kind == "softmax":
        R = np.exp(-D / s - logsumexp(-D / s, axis=1, keepdims=True))
        F = float(np.sum(wb * -s * logsumexp(-D / s, axis=1)))
    else:
        R = _entmax15(-D / s)
        T = float(np.sum(wb * (4.0 / 3.0) * np.sum(R - R**1.5, axis=1)))
        F = float(np.sum(wb * (R * D).sum(1))) - s * T
    L = float(np.sum(wb * (R * D).sum(1)))
    return R, J, L, F, F


def _mb_reassign_reference(
    X: np.ndarray,
    w: np.ndarray | None,
    seed: int,
    *,
    k: int,
    batch_size: int,
    max_iter: int,
    init_size: int,
    ratio: float,
    sigma: float = 0.0,
    kind: str = "hard",
    n_init: int = 1,
    init: np.ndarray | None = None,
) -> dict[str, Any]:
    """scikit-learn's mini-batch schedule with random reassignment of small clusters
    (``_mini_batch_step``, ``_random_reassign``), all steps (``tol=0``, no EWA stop),
    constant σ (``sigma=0``: K-Means), ``lr="lloyd"``, a callable init drawing rows."""
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    batch = min(batch_size, n)
    if init_size < n:
        idx = rng.choice(n, size=init_size, replace=False)
        Xi, wi = X[idx], (None if w is None else w[idx])
    else:
        Xi, wi = X, w
    best, best_J = None, math.inf
    for _ in range(n_init):
        C = _rows_init(Xi, k, rng) if init is None else init.copy()
        D = ((Xi[:, None, :] - C[None]) ** 2).sum(-1).min(1)
        J = float(np.sum(D if wi is None else wi * D))
        if n_init == 1 or J < best_J:  # ties: the first candidate stays
            best, best_J = C, J
    C = best.copy()
    counts = np.zeros(k)
    n_steps = max(1, max_iter * n // batch)
    since = 0
    hist: dict[str, list[float]] = {"batch_inertia": [], "center_shift": []}
    moved_at: list[int] = []
    due_steps = 0
    for step in range(n_steps):
        idx = rng.integers(0, n, size=batch)
        Xb = X[idx]
        wb = np.ones(batch) if w is None else w[idx]
        due = False
        if ratio > 0:
            since += batch
            if (counts == 0).any() or since >= 10 * k:
                since, due = 0, True
        due_steps += due
        R, *_, obj = _batch_stats(Xb, C, wb, sigma, kind)
        N = (wb[:, None] * R).sum(0)
        S = (wb[:, None] * R).T @ Xb
        new = counts + N
        moved = (counts[:, None] * C + S) / np.maximum(new, 1e-300)[:, None]
        C_new = np.where(new[:, None] > 0, moved, C)
        if due:
            to = new < ratio * new.max()
            cap = int(0.5 * batch)
            if to.sum() > cap:
                to[np.argsort(new, kind="stable")[cap:]] = False
            m = int(to.sum())
            if m:
                pick = rng.choice(batch, size=m, replace=False)
                C_new[to] = Xb[pick]
                new = new.copy()
                new[to] = new[~to].min()
                moved_at.append(step)
        hist["batch_inertia"].append(obj / float(np.sum(wb)))
        hist["center_shift"].append(float(np.sum((C_new - C) ** 2)))
        C, counts = C_new, new
    return {
        "centers": C,
        "counts": counts,
        "n_steps": n_steps,
        "history": {key: np.asarray(v) for key, v in hist.items()},
        "moved_at": moved_at,
        "due_steps": due_steps,
    }


def _lloyd_reference(
    X: np.ndarray, C0: np.ndarray, w: np.ndarray | None = None, max_iter: int = 300
) -> tuple[np.ndarray, np.ndarray, float]:
    """Plain Lloyd iterations to a fixed point (no empty clusters on the data used)."""
    ww = np.ones(len(X)) if w is None else w
    C = C0.copy()
    for _ in range(max_iter):
        lab = ((X[:, None, :] - C[None]) ** 2).sum(-1).argmin(1)
        C_new = np.stack(
            [np.average(X[lab == j], axis=0, weights=ww[lab == j]) for j in range(len(C))]
        )
        if np.array_equal(C_new, C):
            break
        C = C_new
    D = ((X[:, None, :] - C[None]) ** 2).sum(-1)
    return C, D.argmin(1), float(np.sum(ww * D.min(1)))


# ---------------------------------------------------------------------------------------
# Mini-batch: random reassignment inside the driver
# ---------------------------------------------------------------------------------------

_REASSIGN_CASES = {
    # 5 centers on 3 blobs: the extra ones are light and get moved; reassignment on
    # scikit-learn's schedule (every 10 k samples, or at a zero weight), not every step
    "hard-weighted": dict(
        weighted=True, k=5, batch_size=20, max_iter=3, init_size=60, ratio=0.4,
        sigma=0.0, kind="hard",
    ),
    "hard": dict(
        weighted=False, k=5, batch_size=16, max_iter=3, init_size=90, ratio=0.5,
        sigma=0.0, kind="hard",
    ),
    # entmax-1.5 at σ > 0: the batch objective is L_σ - σ T
    "entmax": dict(
        weighted=True, k=4, batch_size=20, max_iter=2, init_size=90, ratio=0.3,
        sigma=0.7, kind="entmax15",
    ),
    # σ = 0 with kind="entmax15" is K-Means
    "entmax-sigma0": dict(
        weighted=False, k=4, batch_size=20, max_iter=2, init_size=90, ratio=0.3,
        sigma=0.0, kind="entmax15",
    ),
}  # fmt: skip


class TestMiniBatchReassignmentAgainstReference:
    @pytest.mark.parametrize("case", sorted(_REASSIGN_CASES))
    def test_fit_matches_reference(self, dbackend, case):
        p = dict(_REASSIGN_CASES[case])
        weighted = p.pop("weighted")
        X, w = _mb_data()
        ref = _mb_reassign_reference(X, w if weighted else None, 3, **p)
        # the case exercises what it is meant to: centers are moved, not at every step
        assert ref["moved_at"] and ref["due_steps"] < ref["n_steps"]
        common = dict(
            init=_rows_init, n_init=1, init_size=p["init_size"], batch_size=p["batch_size"],
            max_iter=p["max_iter"], tol=0.0, max_no_improvement=None,
            reassignment_ratio=p["ratio"], random_state=np.random.default_rng(3),
        )  # fmt: skip
        if p["kind"] == "hard":
            est = arbf.MiniBatchKMeans(p["k"], **common)
        else:
            est = arbf.MiniBatchRBFKMeans(p["k"], sigma=p["sigma"], kind=p["kind"], **common)
        est.fit(dbackend.asarray(X), sample_weight=dbackend.asarray(w) if weighted else None)
        assert est.n_steps_ == ref["n_steps"]
        for key, v in ref["history"].items():
            np.testing.assert_allclose(est.history_[key], v, rtol=1e-9, atol=1e-12, err_msg=key)
        assert_close(est.cluster_centers_, ref["centers"], backend=dbackend, rtol=1e-9)
        assert_close(est.counts_, ref["counts"], backend=dbackend, rtol=1e-9)

    def test_float32_keeps_its_dtype(self, dbackend):
        """Counts rebuilt after a reassignment stay in the data's dtype (float32)."""
        if not dbackend.name.startswith(("numpy", "array_api_strict")):
            pytest.skip("float32 values checked on NumPy and array-api-strict")
        p = dict(_REASSIGN_CASES["hard"])
        p.pop("weighted")
        X, _ = _mb_data()
        X32 = X.astype(np.float32)
        ref = _mb_reassign_reference(X32.astype(np.float64), None, 3, **p)
        est = arbf.MiniBatchKMeans(
            p["k"], init=_rows_init, n_init=1, init_size=p["init_size"],
            batch_size=p["batch_size"], max_iter=p["max_iter"], tol=0.0,
            max_no_improvement=None, reassignment_ratio=p["ratio"],
            random_state=np.random.default_rng(3),
        ).fit(dbackend.asarray(X32))  # fmt: skip
        xp = dbackend.xp
        assert est.cluster_centers_.dtype == xp.float32
        assert est.counts_.dtype == xp.float32
        assert_close(est.cluster_centers_, ref["centers"], backend=dbackend, rtol=1e-4, atol=1e-4)
        assert_close(est.counts_, ref["counts"], backend=dbackend, rtol=1e-5)

    def test_verbose_names_the_estimator(self, capsys):
        """The reassignment line names the estimator that runs (scikit-learn's
        ``[MiniBatchKMeans] Reassigning k cluster centers.``)."""
        p = dict(_REASSIGN_CASES["entmax"])
        p.pop("weighted")
        X, w = _mb_data()
        ref = _mb_reassign_reference(X, w, 3, **p)
        arbf.MiniBatchRBFKMeans(
            p["k"], sigma=p["sigma"], kind=p["kind"], init=_rows_init, n_init=1,
            init_size=p["init_size"], batch_size=p["batch_size"], max_iter=p["max_iter"],
            tol=0.0, max_no_improvement=None, reassignment_ratio=p["ratio"],
            random_state=np.random.default_rng(3), verbose=True,
        ).fit(X, sample_weight=w)  # fmt: skip
        lines = [ln for ln in capsys.readouterr().out.splitlines() if "Reassigning" in ln]
        assert len(lines) == len(ref["moved_at"]) > 0
        assert all(
            ln.startswith("[MiniBatchRBFKMeans] Reassigning ") and ln.endswith(" cluster centers.")
            for ln in lines
        )

    def test_tied_inits_keep_the_first(self, dbackend):
        """Two candidate inits with exactly the same inertia (the same centers in another
        order): the first is kept, as in scikit-learn (``inertia < best_inertia``)."""
        X, _ = _mb_data()
        C = X[[3, 35, 70]].copy()
        calls = []

        def init(Xa, k, random_state):
            calls.append(1)
            return C.copy() if len(calls) % 2 else C[::-1].copy()

        p = dict(k=3, batch_size=30, max_iter=1, init_size=90, ratio=0.0)
        ref = _mb_reassign_reference(X, None, 1, init=C, n_init=2, **p)
        est = arbf.MiniBatchKMeans(
            3, init=init, n_init=2, init_size=90, batch_size=30, max_iter=1, tol=0.0,
            max_no_improvement=None, reassignment_ratio=0.0,
            random_state=np.random.default_rng(1),
        ).fit(dbackend.asarray(X))  # fmt: skip
        assert len(calls) == 2
        assert_close(est.cluster_centers_, ref["centers"], backend=dbackend, rtol=1e-9)

    def test_wrong_init_shape(self):
        X, _ = _mb_data()
        with pytest.raises(ValueError, match="does not match the number of clusters"):
            arbf.MiniBatchKMeans(3, init=np.ones((4, 2)), n_init=1).fit(X)

    def test_cosine_init_with_a_zero_row_names_init(self, dbackend):
        X, _ = _mb_data()
        init = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
        est = arbf.MiniBatchKMeans(3, init=dbackend.asarray(init), n_init=1, metric="cosine")
        with pytest.raises(ValueError, match=r"^init has 1 row\(s\) of zero norm"):
            est.fit(dbackend.asarray(X))


class TestMiniBatchCosineStep:
    """``minibatch_step(cosine=True)``: the Euclidean step at ``2σ`` on unit rows, its
    centers projected onto the sphere, and the batch objectives halved."""

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_stats_and_centers(self, dbackend, kind):
        from arbf._drivers.minibatch import minibatch_step

        rng = np.random.default_rng(8)
        Xb = rng.normal(size=(12, 3))
        Xb /= np.linalg.norm(Xb, axis=1, keepdims=True)
        C = Xb[[0, 5, 9]] + 0.1
        C /= np.linalg.norm(C, axis=1, keepdims=True)
        wb = rng.uniform(0.5, 2.0, 12)
        counts = np.array([1.0, 0.0, 2.5])
        sigma = 0.3
        R, J, L, F, _ = _batch_stats(Xb, C, wb, 2 * sigma, kind)
        N = (wb[:, None] * R).sum(0)
        S = (wb[:, None] * R).T @ Xb
        M = counts[:, None] * C + S
        C_ref = M / np.linalg.norm(M, axis=1, keepdims=True)
        b = dbackend
        C_new, new_counts, st = minibatch_step(
            b.asarray(Xb), b.asarray(C), b.asarray(counts), b.asarray(wb), sigma=sigma,
            kind=kind, xp=b.xp, cosine=True,
        )  # fmt: skip
        assert_close(C_new, C_ref, backend=b, rtol=1e-12, atol=1e-14)
        assert_close(new_counts, counts + N, backend=b, rtol=1e-12)
        assert float(to_host(st.inertia)) == pytest.approx(J / 2, rel=1e-12)
        assert float(to_host(st.soft_distortion)) == pytest.approx(L / 2, rel=1e-12)
        assert float(to_host(st.free_energy)) == pytest.approx(F / 2, rel=1e-12)


class TestReassignSmall:
    def test_matches_reference_and_keeps_inputs(self, dbackend):
        """Which centers move (below ratio x max, at most half the batch, lightest first
        with ties by index), onto which rows (the Generator's draw without replacement),
        the new weights; on the centers' device, in their dtype, inputs untouched."""
        from arbf._drivers.minibatch import reassign_small

        rng = np.random.default_rng(5)
        Xb = rng.normal(size=(20, 2))
        C = rng.normal(size=(40, 2))
        counts = np.full(40, 1.0)  # 40 tied light centers: only the 10 first move
        counts[[3, 17]] = [50.0, 40.0]
        ratio = 0.5
        to = counts < ratio * counts.max()
        to[np.argsort(counts, kind="stable")[10:]] = False
        assert int(to.sum()) == 10 and np.array_equal(np.flatnonzero(to), np.r_[0:3, 4:11])
        pick = np.random.default_rng(9).choice(20, size=10, replace=False)
        C_ref = C.copy()
        C_ref[to] = Xb[pick]
        counts_ref = counts.copy()
        counts_ref[to] = counts[~to].min()
        b = dbackend
        Cb = b.asarray(C)
        counts_in = counts.copy()
        C2, counts2, moved = reassign_small(
            b.asarray(Xb), Cb, counts_in, np.random.default_rng(9), ratio=ratio, xp=b.xp
        )
        assert moved == 10
        assert_close(C2, C_ref, backend=b, rtol=0, dtype=Cb.dtype)
        np.testing.assert_array_equal(counts2, counts_ref)
        np.testing.assert_array_equal(_host(b, Cb), C)  # inputs untouched
        np.testing.assert_array_equal(counts_in, counts)

    def test_float32_centers_stay_float32(self, dbackend):
        from arbf._drivers.minibatch import reassign_small

        b = dbackend
        if not b.name.startswith(("numpy", "array_api_strict")):
            pytest.skip("float32 checked on NumPy and array-api-strict")
        Xb = np.arange(8.0, dtype=np.float32).reshape(4, 2)
        C = np.zeros((3, 2), dtype=np.float32)
        C2, _, moved = reassign_small(
            b.asarray(Xb), b.asarray(C), np.array([9.0, 0.0, 8.0]), np.random.default_rng(0),
            ratio=0.5, xp=b.xp,
        )  # fmt: skip
        assert moved == 1
        assert C2.dtype == b.xp.float32

    def test_no_centers(self):
        """No center at all: nothing to reassign (and no reduction of an empty vector)."""
        from arbf._drivers.minibatch import reassign_small

        C = np.zeros((0, 2))
        counts = np.zeros(0)
        C2, c2, moved = reassign_small(
            np.ones((4, 2)), C, counts, np.random.default_rng(0), ratio=0.5, xp=np
        )
        assert moved == 0 and C2 is C and c2 is counts

    def test_verbose_line_and_quiet_default(self, capsys):
        from arbf._drivers.minibatch import reassign_small

        Xb = np.arange(40.0).reshape(20, 2)
        counts = np.array([100.0, 0.5, 2.0, 0.9, 1.0])
        args = (Xb, np.zeros((5, 2)), counts)
        reassign_small(*args, np.random.default_rng(0), ratio=0.01, xp=np)
        assert capsys.readouterr().out == ""
        reassign_small(*args, np.random.default_rng(0), ratio=0.01, xp=np, verbose=True)
        assert capsys.readouterr().out == "[MiniBatchKMeans] Reassigning 2 cluster centers.\n"

    def test_ratio_above_one_keeps_the_heaviest(self):
        """reassignment_ratio > 1 puts every center below ratio x max: the heaviest is
        kept (scikit-learn 1.9 takes the minimum of an empty array there)."""
        from arbf._drivers.minibatch import reassign_small

        Xb = np.arange(40.0).reshape(20, 2)
        C = np.full((4, 2), -1.0)
        counts = np.array([3.0, 7.0, 1.0, 2.0])
        C2, counts2, m = reassign_small(Xb, C, counts, np.random.default_rng(0), ratio=2.0, xp=np)
        assert m == 3
        np.testing.assert_array_equal(C2[1], C[1])
        assert all(any((C2[j] == Xb).all(axis=1)) for j in (0, 2, 3))
        np.testing.assert_array_equal(counts2, [7.0, 7.0, 7.0, 7.0])  # min of those kept
        np.testing.assert_array_equal(counts, [3.0, 7.0, 1.0, 2.0])  # input unchanged

    @pytest.mark.parametrize("k", [1, 3])
    def test_ratio_above_one_fits(self, k):
        X, _ = _mb_data()
        km = arbf.MiniBatchKMeans(k, reassignment_ratio=2.0, batch_size=20, random_state=0)
        km.fit(X)
        assert np.isfinite(km.cluster_centers_).all()
        assert km.cluster_centers_.shape == (k, 2)

    def test_schedule_starts_at_zero(self):
        from arbf._drivers.minibatch import Reassigner

        s = Reassigner(3)  # due after 10 * 3 = 30 samples
        assert s.since == 0
        assert not s.due(29, np.ones(3))
        assert s.due(1, np.ones(3))


class TestInitSizeRule:
    @pytest.mark.parametrize(
        ("init_size", "batch", "k", "n", "expected"),
        [
            (None, 2, 6, 100, 6),  # 3 * batch_size == k: kept
            (None, 2, 7, 100, 21),  # 3 * batch_size < k: 3 * k
            (6, 100, 6, 1000, 6),  # init_size == n_clusters: kept, no warning
        ],
    )
    def test_boundaries(self, init_size, batch, k, n, expected):
        from arbf._drivers.minibatch import init_size_rule

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert init_size_rule(init_size, batch, k, n) == expected


class TestFinalLabels:
    """Labels and inertia of all of ``X`` at centers ``C`` when their squared distances
    leave float64: both are rescaled by the power of two of *their* joint extent."""

    def test_huge_centers(self, dbackend):
        from arbf._drivers.minibatch import final_labels

        X = np.random.default_rng(2).normal(size=(6, 2))
        C = np.array([[3e154, 0.0], [2e154, 0.0]])  # both square beyond float64
        b = dbackend
        with pytest.warns(RuntimeWarning, match="beyond float64's range"):
            labels, J = final_labels(
                b.asarray(X), b.asarray(C), None, xp=b.xp, working_memory=None
            )
        np.testing.assert_array_equal(_host(b, labels), np.ones(6))  # the nearer one
        assert J == math.inf

    def test_huge_rows(self, dbackend):
        """A row beyond 1e154 next to rows near small centers: the small rows keep their
        nearest center, and the inertia, beyond float64, is ``inf`` with the warning that
        says so (not an overflow of the squared distances themselves)."""
        from arbf._drivers.minibatch import final_labels

        # (the small rows' scaled squared distances stay normal numbers: JAX flushes
        # subnormals to zero)
        X = np.array([[1e154, 1e154], [90.0, 0.0], [-90.0, 10.0]])
        C = np.array([[100.0, 0.0], [-100.0, 0.0]])
        b = dbackend
        with pytest.warns(RuntimeWarning, match="the inertia is .* beyond float64's range"):
            labels, J = final_labels(
                b.asarray(X), b.asarray(C), None, xp=b.xp, working_memory=None
            )
        np.testing.assert_array_equal(_host(b, labels)[1:], [0, 1])
        assert J == math.inf


# ---------------------------------------------------------------------------------------
# The Lloyd engine
# ---------------------------------------------------------------------------------------


def _three_points(weight: float | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Points A (5 rows), P (10 rows), B (5 rows): P is the heaviest cluster."""
    A, P, B = [0.0, 0.0], [4.0, 1.0], [1.0, 5.0]
    X = np.array([A] * 5 + [P] * 10 + [B] * 5)
    return X, (None if weight is None else np.full(20, weight))


class TestEngineEmptyClusters:
    @pytest.mark.parametrize("fast", [True, False])
    @pytest.mark.parametrize("weight", [None, 0.0625])  # dyadic: every mean exact
    def test_every_sample_on_its_center_parks_on_the_heaviest(self, dbackend, fast, weight):
        """More clusters than distinct points: nothing can be relocated (every sample
        sits on its center), so the empty center is put on the heaviest cluster's center
        (scikit-learn's rule), also when every cluster weighs less than 1."""
        X, w = _three_points(weight)
        init = X[[0, 5, 15, 0]]  # the 4th center duplicates A: empty from the start
        b = dbackend
        with arbf.config_context(fast_paths=fast), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fewer distinct clusters than n_clusters
            res = arbf.kmeans(
                b.asarray(X), 4, init=b.asarray(init), n_init=1, max_iter=5, tol=0.0,
                sample_weight=None if w is None else b.asarray(w),
            )  # fmt: skip
        assert_close(res.centers, X[[0, 5, 15, 5]], backend=b, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(_host(b, res.labels), [0] * 5 + [1] * 10 + [2] * 5)
        assert res.inertia == pytest.approx(0.0, abs=1e-24)

    @pytest.mark.parametrize("fast", [True, False])
    def test_relocation_of_small_distances(self, dbackend, fast):
        """Empty clusters relocated on data whose largest squared distance to a center is
        below 1, with sample weights, against scikit-learn's Lloyd from the same init."""
        from sklearn.cluster import KMeans

        rng = np.random.default_rng(3)
        X = np.concatenate([rng.normal(0, 1, (20, 2)), rng.normal(8, 1, (20, 2))]) / 64
        w = rng.uniform(0.2, 3.0, 40)
        C0 = np.array([[0.0, 0.0], [8.0, 8.0], [100.0, 100.0], [-50.0, 40.0]]) / 64
        for max_iter in (1, 3):
            sk = KMeans(4, init=C0, n_init=1, max_iter=max_iter, algorithm="lloyd", tol=0)
            sk.fit(X, sample_weight=w)
            with arbf.config_context(fast_paths=fast):
                res = arbf.kmeans(
                    dbackend.asarray(X), 4, init=dbackend.asarray(C0), n_init=1,
                    max_iter=max_iter, tol=0.0, sample_weight=dbackend.asarray(w),
                )  # fmt: skip
            assert_close(res.centers, sk.cluster_centers_, backend=dbackend, rtol=1e-12,
                         atol=1e-14)  # fmt: skip
            np.testing.assert_array_equal(_host(dbackend, res.labels), sk.labels_)

    def test_relocate_empty_directly(self, dbackend):
        """``_relocate_empty``: the farthest weighted samples move into the empty
        clusters (largest distance first), their weight and mass out of their old
        cluster; new arrays on the data's device, the inputs untouched."""
        from arbf._drivers.engine import _relocate_empty

        b = dbackend
        rng = np.random.default_rng(4)
        X = rng.normal(size=(12, 2))
        X[7] = [9.0, 9.0]  # farthest from its center
        X[2] = [-6.0, 5.0]  # second farthest
        w = rng.uniform(0.5, 2.0, 12)
        C_old = np.array([[0.0, 0.0], [1.0, 1.0], [50.0, 50.0], [-50.0, 0.0]])
        labels = ((X[:, None, :] - C_old[:2][None]) ** 2).sum(-1).argmin(1)
        sums = np.stack([(w[labels == j, None] * X[labels == j]).sum(0) for j in range(4)])
        weights = np.array([w[labels == j].sum() for j in range(4)])
        d = ((X - C_old[labels]) ** 2).sum(1)
        far = np.argsort(-d, kind="stable")[:2]
        assert set(far) == {7, 2}
        sums_ref, weights_ref = sums.copy(), weights.copy()
        for e, j in enumerate([2, 3]):
            i = far[e]
            sums_ref[labels[i]] -= w[i] * X[i]
            weights_ref[labels[i]] -= w[i]
            sums_ref[j], weights_ref[j] = w[i] * X[i], w[i]
        sums_b, weights_b = b.asarray(sums), b.asarray(weights)
        s2, w2 = _relocate_empty(
            b.asarray(X), b.asarray(w), b.asarray(C_old), sums_b, weights_b,
            b.asarray(labels.astype(np.int64)), np.array([2, 3]), xp=b.xp, working_memory=None,
        )  # fmt: skip
        assert_close(s2, sums_ref, backend=b, rtol=1e-12, atol=1e-12)
        assert_close(w2, weights_ref, backend=b, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(_host(b, sums_b), sums)
        np.testing.assert_array_equal(_host(b, weights_b), weights)


class TestEngineHandOver:
    def test_finish_default_algorithm(self, dbackend):
        """``finish`` (the annealers' hand-over) with its default ``algorithm``: hard
        Lloyd to a fixed point, in the data's coordinates and units."""
        from arbf._drivers.engine import finish, prepare

        rng = np.random.default_rng(6)
        X = np.concatenate([rng.normal(m, 1.0, (15, 2)) for m in (0.0, 5.0, 10.0)])
        C0 = X[[0, 1, 2]]
        C_ref, lab_ref, J_ref = _lloyd_reference(X, C0)
        b = dbackend
        prep = prepare(b.asarray(X), xp=b.xp)
        C_in = prep.from_data(b.asarray(C0))
        _, km = finish(prep, C_in, None, xp=b.xp, working_memory=None)
        assert_close(km.centers, C_ref, backend=b, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(_host(b, km.labels), lab_ref)
        assert km.inertia == pytest.approx(J_ref, rel=1e-12)
        assert km.converged is True


class TestPreparedUnits:
    def test_sphere_prepared(self, dbackend):
        """Unit rows as prepared data: mean 0 on the rows' device, scale 1, the
        tolerance 0 by default and ``tol * mean Var`` when given."""
        from arbf._drivers.engine import sphere_prepared

        rng = np.random.default_rng(7)
        U = rng.normal(size=(10, 3))
        U /= np.linalg.norm(U, axis=1, keepdims=True)
        b = dbackend
        p = sphere_prepared(b.asarray(U), xp=b.xp)
        assert p.tol == 0.0 and p.scale == 1.0
        assert_close(p.mean, np.zeros(3), backend=b, rtol=0)
        assert_close(p.to_data(b.asarray(U[:2])), U[:2], backend=b, rtol=0)
        q = sphere_prepared(b.asarray(U), xp=b.xp, tol=1e-3)
        assert q.tol == pytest.approx(1e-3 * np.mean(np.var(U, axis=0)), rel=1e-12)

    def test_to_units_names_the_quantity(self):
        from arbf._drivers.engine import Prepared

        p = Prepared(np.zeros((2, 2)), np.zeros(2), 2.0**520)
        assert p.to_units(2.0**-1000) == pytest.approx(2.0**40)
        with pytest.warns(RuntimeWarning, match=r"^the inertia is 1 \* 2\*\*1040, beyond"):
            assert p.to_units(1.0) == math.inf
        with pytest.warns(RuntimeWarning, match=r"^the batch objective is 1 \* 2\*\*1040"):
            assert p.to_units(1.0, what="batch objective") == math.inf


# ---------------------------------------------------------------------------------------
# The fixed-point loop at one temperature
# ---------------------------------------------------------------------------------------


def _fixed_point_reference(
    X: np.ndarray,
    C: np.ndarray,
    w: np.ndarray | None,
    *,
    sigma: float,
    kind: str,
    max_iter: int,
    tol: float,
    lr: float | str,
    sphere: bool = False,
) -> dict[str, Any]:
    """The soft Lloyd step (or a gradient step of size ``lr``) at temperature σ until
    the squared center shift is at most ``tol``; history at the centers before each
    update, in the data's units."""
    ww = np.ones(len(X)) if w is None else w
    hist: dict[str, list[float]] = {
        "center_shift": [], "free_energy": [], "soft_distortion": [], "inertia": [],
    }  # fmt: skip
    converged, n_iter = False, 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 (the count is returned)
        R, J, L, F, _ = _batch_stats(X, C, ww, sigma, kind)
        N = (ww[:, None] * R).sum(0)
        S = (ww[:, None] * R).T @ X
        if isinstance(lr, str):
            C_new = np.where(N[:, None] > 0, S / np.maximum(N, 1e-300)[:, None], C)
        else:
            C_new = C - lr * 2.0 * (N[:, None] * C - S)
        if sphere:
            C_new = C_new / np.linalg.norm(C_new, axis=1, keepdims=True)
        shift = float(np.sum((C_new - C) ** 2))
        for key, v in zip(hist, (shift, F, L, J), strict=True):
            hist[key].append(v)
        C = C_new
        if shift <= tol:
            converged = True
            break
    return {"centers": C, "n_iter": n_iter, "converged": converged, "history": hist}


_FP_CASES = {
    "softmax-lloyd": dict(sigma=10.0, kind="softmax", max_iter=6, tol=0.0, lr="lloyd"),
    "entmax-lloyd": dict(sigma=30.0, kind="entmax15", max_iter=6, tol=0.0, lr="lloyd"),
    "hard-lloyd": dict(sigma=0.0, kind="hard", max_iter=6, tol=0.0, lr="lloyd"),
    "softmax-gradient": dict(sigma=0.5, kind="softmax", max_iter=5, tol=0.0, lr=0.003),
    "softmax-tol": dict(sigma=0.3, kind="softmax", max_iter=50, tol=1e-6, lr="lloyd"),
    "entmax-sphere": dict(
        sigma=0.4, kind="entmax15", max_iter=5, tol=0.0, lr="lloyd", sphere=True
    ),
}


class TestFixedPointAgainstReference:
    @pytest.mark.parametrize("scale", [1.0, 8.0])
    @pytest.mark.parametrize("case", sorted(_FP_CASES))
    def test_matches_reference(self, dbackend, case, scale):
        """History (data units), ``last``, centers, ``n_iter``, ``converged``; with
        ``scale`` the loop runs on ``X / scale`` with σ and ``tol`` in those units (a
        gradient step ``lr`` is the same in any units)."""
        from arbf._drivers.fixed_point import fixed_point

        p = dict(_FP_CASES[case])
        sphere = p.get("sphere", False)
        X, w = _mb_data(n=60)
        w = w[:60] / w[:60].mean()
        C0 = X[[0, 25, 50]] + 0.5
        if sphere:
            X = X + np.array([1.0, 2.0])
            X = X / np.linalg.norm(X, axis=1, keepdims=True)
            C0 = X[[0, 25, 50]] + 0.1
            C0 = C0 / np.linalg.norm(C0, axis=1, keepdims=True)
        ref = _fixed_point_reference(X, C0, w, **p)
        assert ref["converged"] is (case in ("softmax-tol", "hard-lloyd"))
        b = dbackend
        xp = b.xp
        project = None
        if sphere:

            def project(C_new, C_old):
                return C_new / xp.sqrt(xp.sum(C_new * C_new, axis=1, keepdims=True))

            scale = 1.0
        s2 = scale * scale
        res = fixed_point(
            b.asarray(X / scale), b.asarray(C0 / scale), b.asarray(w), xp=xp,
            sigma=p["sigma"] / s2, kind=p["kind"], max_iter=p["max_iter"],
            tol=p["tol"] / s2, lr=p["lr"], scale=scale, project=project,
        )  # fmt: skip
        assert res.n_iter == ref["n_iter"]
        assert res.converged is ref["converged"]
        for key, v in ref["history"].items():
            np.testing.assert_allclose(res.history[key], v, rtol=1e-9, atol=1e-13, err_msg=key)
        last = [ref["history"][k][-1] for k in ref["history"]]
        np.testing.assert_allclose(res.last, last, rtol=1e-9, atol=1e-13)
        assert_close(res.centers, ref["centers"] / scale, backend=b, rtol=1e-9, atol=1e-13)

    def test_non_finite_update_raises(self, dbackend):
        from arbf._drivers.fixed_point import fixed_point

        X, _ = _mb_data(n=60)
        b = dbackend
        with (
            np.errstate(all="ignore"),
            pytest.raises(
                FloatingPointError,
                match=r"^non-finite center update at sigma=2 \(iteration 1\); the learning rate",
            ),
        ):
            fixed_point(
                b.asarray(X / 2), b.asarray(X[[0, 30]] / 2), None, xp=b.xp, sigma=0.5,
                kind="softmax", max_iter=3, tol=0.0, lr=1e300, scale=2.0,
            )  # fmt: skip

    def test_zero_mean_on_the_sphere_keeps_the_old_center(self, dbackend):
        """Two antipodal unit rows shared equally by two centers: every soft mean is
        exactly 0, and the sphere's projection keeps the old centers (closed forms, at
        the default ``scale`` of 1)."""
        from arbf._drivers.fixed_point import fixed_point
        from arbf._math.metric import project

        b = dbackend
        xp = b.xp
        X = np.array([[1.0, 0.0], [-1.0, 0.0]])
        C0 = np.array([[0.0, 1.0], [0.0, -1.0]])
        res = fixed_point(
            b.asarray(X), b.asarray(C0), None, xp=xp, sigma=1.0, kind="softmax",
            max_iter=5, tol=0.0, lr="lloyd",
            project=lambda C_new, C_old: project(C_new, C_old, xp=xp),
        )  # fmt: skip
        assert_close(res.centers, C0, backend=b, rtol=0)
        assert (res.n_iter, res.converged) == (1, True)
        F = 2 * (2.0 - math.log(2.0))  # each row: -log(2 e^-2)
        np.testing.assert_allclose(res.last, [0.0, F, 4.0, 4.0], rtol=1e-12)
        assert res.history["free_energy"] == pytest.approx([F], rel=1e-12)


class TestEngineBoundMethods:
    @pytest.mark.parametrize("algorithm", ["lloyd", "elkan", "hamerly", "yinyang"])
    def test_strict_convergence_matches_sklearn(self, dbackend, algorithm):
        """Every assignment method stops at the iteration whose labels did not change
        (scikit-learn's strict convergence, ``tol=0``): the same ``n_iter``, centers and
        labels as scikit-learn's Lloyd from the same init (the bound methods count the
        labels that changed; elsewhere every method is Lloyd's pass)."""
        from sklearn.cluster import KMeans

        rng = np.random.default_rng(12)
        X = np.concatenate([rng.normal(m, 1.5, (60, 3)) for m in (0.0, 3.0, 6.0, 9.0)])
        C0 = X[[0, 1, 2, 3, 4]]
        sk = KMeans(5, init=C0, n_init=1, max_iter=100, algorithm="lloyd", tol=0).fit(X)
        assert 3 < sk.n_iter_ < 100
        res = arbf.kmeans(
            dbackend.asarray(X), 5, init=dbackend.asarray(C0), n_init=1, max_iter=100,
            tol=0.0, algorithm=algorithm,
        )  # fmt: skip
        assert res.n_iter == sk.n_iter_
        assert res.converged is True
        assert_close(res.centers, sk.cluster_centers_, backend=dbackend, rtol=1e-10)
        np.testing.assert_array_equal(_host(dbackend, res.labels), sk.labels_)

    @staticmethod
    def _lloyd_history(X: np.ndarray, C: np.ndarray, n_iter: int) -> tuple[list, list]:
        inertia, shift = [], []
        for _ in range(n_iter):
            D = ((X[:, None, :] - C[None]) ** 2).sum(-1)
            lab = D.argmin(1)
            C_new = np.stack([X[lab == j].mean(0) for j in range(len(C))])
            inertia.append(float(D.min(1).sum()))
            shift.append(float(((C_new - C) ** 2).sum()))
            C = C_new
        return inertia, shift

    @pytest.mark.parametrize("tol", [0.0, 1e-3])
    def test_history_and_verbose_lines(self, capsys, tol):
        """The per-iteration inertia (at the centers before the update) and squared
        center shift, and scikit-learn's verbose lines for both ways of stopping."""
        rng = np.random.default_rng(12)
        X = np.concatenate([rng.normal(m, 1.5, (60, 3)) for m in (0.0, 3.0, 6.0, 9.0)])
        C0 = X[[0, 1, 2, 3, 4]]
        res = arbf.kmeans(X, 5, init=C0, n_init=1, max_iter=100, tol=tol, verbose=True)
        inertia, shift = self._lloyd_history(X, C0, res.n_iter)
        np.testing.assert_allclose(res.history["inertia"], inertia, rtol=1e-10)
        np.testing.assert_allclose(res.history["center_shift"], shift, rtol=1e-9, atol=1e-20)
        out = capsys.readouterr().out.splitlines()
        its = [ln for ln in out if ln.startswith("Iteration ")]
        assert [ln.split(",")[0] for ln in its] == [f"Iteration {i}" for i in range(res.n_iter)]
        last = res.n_iter - 1
        if tol == 0:
            assert shift[-1] == 0.0
            assert f"Converged at iteration {last}: strict convergence." in out
        else:
            tol_abs = tol * float(np.mean(np.var(X, axis=0)))
            assert shift[-1] <= tol_abs < shift[-2]
            stop = [ln for ln in out if ln.startswith(f"Converged at iteration {last}: ")]
            assert len(stop) == 1
            rest = stop[0].partition(": center shift ")[2]
            value, _, t = rest.rstrip(".").partition(" within tolerance ")
            assert float(value) == pytest.approx(shift[-1], rel=1e-9, abs=1e-20)
            assert float(t) == pytest.approx(tol_abs, rel=1e-12)


class TestEngineBestOfAndChecks:
    def test_a_better_later_run_replaces_the_first(self, dbackend):
        """``n_init`` runs from a callable init: the run with the lowest inertia is kept
        (a later, better partition replaces an earlier one), as scikit-learn's best of
        its runs; ``n_init_inertia`` lists both."""
        from sklearn.cluster import KMeans

        rng = np.random.default_rng(13)
        X = np.concatenate([rng.normal(m, 0.5, (30, 2)) for m in (0.0, 5.0, 10.0)])
        inits = [X[[0, 1, 2]], X[[0, 30, 60]]]  # all in one blob, then one per blob
        sk = [KMeans(3, init=C, n_init=1, algorithm="lloyd", tol=0).fit(X) for C in inits]
        assert sk[1].inertia_ < sk[0].inertia_
        calls = []

        def init(Xa, k, random_state):
            calls.append(1)
            return dbackend.asarray(inits[len(calls) - 1])

        res = arbf.kmeans(dbackend.asarray(X), 3, init=init, n_init=2, tol=0.0)
        assert_close(res.centers, sk[1].cluster_centers_, backend=dbackend, rtol=1e-10)
        assert res.inertia == pytest.approx(sk[1].inertia_, rel=1e-10)
        np.testing.assert_allclose(
            res.n_init_inertia, [sk[0].inertia_, sk[1].inertia_], rtol=1e-10
        )

    def test_scale_data_finite_check(self, dbackend):
        """``finite_check``: a non-finite extent raises the validation error naming the
        data (the extent is the finiteness check)."""
        from arbf._drivers.engine import scale_data

        X = np.ones((4, 2))
        X[2, 1] = np.nan
        with pytest.raises(ValueError, match=r"^X contains NaN or infinity$"):
            scale_data(dbackend.asarray(X), xp=dbackend.xp, finite_check="X")
        assert scale_data(dbackend.asarray(np.ones((4, 2))), xp=dbackend.xp) == 1.0

    def test_best_of_directly_is_quiet_by_default(self, dbackend, capsys):
        """``best_of`` on prepared data, default options: silent, the best run kept
        (against scikit-learn's Lloyd from the same inits, on the centred data)."""
        from sklearn.cluster import KMeans

        from arbf._drivers.engine import best_of, prepare

        rng = np.random.default_rng(13)
        X = np.concatenate([rng.normal(m, 0.5, (30, 2)) for m in (0.0, 5.0, 10.0)])
        inits = [X[[0, 1, 2]], X[[0, 30, 60]]]
        sk = KMeans(3, init=inits[1], n_init=1, algorithm="lloyd", tol=0).fit(X)
        b = dbackend
        prep = prepare(b.asarray(X), xp=b.xp)
        it = iter(inits)
        res = best_of(
            prep.X, None, lambda: prep.from_data(b.asarray(next(it))), 2, xp=b.xp,
            max_iter=300, tol=0.0,
        )  # fmt: skip
        assert capsys.readouterr().out == ""
        assert_close(prep.to_data(res.centers), sk.cluster_centers_, backend=b, rtol=1e-10)
        assert res.inertia == pytest.approx(sk.inertia_, rel=1e-10)

    def test_huge_data_history_in_data_units(self, dbackend):
        """Data beyond 2**256 are rescaled by a power of two: centers, inertia, history
        and ``n_init_inertia`` come back in the data's units (NumPy Lloyd reference on
        the data themselves: their squares still fit in float64)."""
        rng = np.random.default_rng(14)
        X = np.concatenate([rng.normal(m, 1.0, (20, 2)) for m in (0.0, 6.0)]) * 2.0**300
        C0 = X[[0, 1]]
        C_ref, labels_ref, J_ref = _lloyd_reference(X, C0)
        res = arbf.kmeans(dbackend.asarray(X), 2, init=dbackend.asarray(C0), n_init=1, tol=0.0)
        inertia, _ = TestEngineBoundMethods._lloyd_history(X, C0, res.n_iter)
        assert_close(res.centers, C_ref, backend=dbackend, rtol=1e-12)
        assert res.inertia == pytest.approx(J_ref, rel=1e-12)
        np.testing.assert_allclose(res.history["inertia"], inertia, rtol=1e-12)
        np.testing.assert_allclose(res.n_init_inertia, [J_ref], rtol=1e-12)
        np.testing.assert_array_equal(_host(dbackend, res.labels), labels_ref)

    def test_prepare_makes_tol_absolute(self, dbackend):
        from arbf._drivers.engine import prepare

        X = np.random.default_rng(15).normal(size=(30, 3)) * np.array([1.0, 2.0, 3.0])
        p = prepare(dbackend.asarray(X), xp=dbackend.xp, tol=1e-3)
        assert p.tol == pytest.approx(1e-3 * float(np.mean(np.var(X, axis=0))), rel=1e-12)
        assert prepare(dbackend.asarray(X), xp=dbackend.xp).tol == 0.0

    def test_projected_lloyd_relocates_then_projects(self, dbackend):
        """``lloyd`` with a projection (spherical K-Means) and an empty cluster: the
        farthest sample is moved into it, then every updated center is projected (one
        iteration against NumPy)."""
        from arbf._drivers.engine import lloyd

        rng = np.random.default_rng(16)
        X = np.concatenate([rng.normal(m, 0.2, (10, 2)) for m in ([3.0, 0.0], [0.0, 3.0])])
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        C0 = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]) / np.array([[1.0], [1.0], [2**0.5]])
        D = ((X[:, None, :] - C0[None]) ** 2).sum(-1)
        lab = D.argmin(1)
        assert set(lab) == {0, 1}
        far = int(np.argmax(D[np.arange(20), lab]))
        sums = np.stack([X[lab == j].sum(0) for j in range(3)])
        sums[lab[far]] -= X[far]
        sums[2] = X[far]
        C_ref = sums / np.linalg.norm(sums, axis=1, keepdims=True)
        b = dbackend
        xp = b.xp

        def project(C_new, C_old):
            return C_new / xp.sqrt(xp.sum(C_new * C_new, axis=1, keepdims=True))

        res = lloyd(b.asarray(X), None, b.asarray(C0), xp=xp, max_iter=1, tol=0.0, project=project)
        assert_close(res.centers, C_ref, backend=b, rtol=1e-12, atol=1e-15)


class TestWarningsPointAtTheCaller:
    """Warnings raised deep in the library are attributed to the user's line."""

    # Under mutmut every library function is called through a trampoline that lives in
    # mutmut's package, so the first frame outside arbf is mutmut's, not the test's: the
    # attribution cannot be checked there (and `_messages.py` is not mutated).
    @pytest.mark.skipif(
        "MUTANT_UNDER_TEST" in os.environ, reason="mutmut's trampoline frames sit between"
    )
    def test_init_size_and_n_init_warnings(self):
        X, _ = _mb_data()
        I3 = X[:3].copy()
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            line = inspect.currentframe().f_lineno  # type: ignore[union-attr]
            arbf.MiniBatchKMeans(3, init_size=2, batch_size=10, n_init=1, random_state=0).fit(X)
            arbf.MiniBatchKMeans(3, init=I3, n_init=3, batch_size=10).fit(X)
            arbf.KMeans(3, init=I3, n_init=3).fit(X)
            arbf.kmeans(X, 3, init=I3, n_init=3)
            arbf.kmeans(np.stack([X, X]), 3, init=np.stack([I3, I3]), n_init=3)
        got = [(r.filename, r.lineno) for r in rec if issubclass(r.category, RuntimeWarning)]
        assert got == [(__file__, line + i) for i in range(1, 6)]
