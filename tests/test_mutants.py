"""Tests written to kill the survivors of the mutation run (docs/testing.md, "Mutation
testing"): every value below is checked against an independent reference (a plain
NumPy re-implementation, a closed form, SciPy), never against another arbf path.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy.special import logsumexp

import arbf
from arbf._backend import to_host
from tests.backends import assert_close

# ---------------------------------------------------------------------------------------
# Mini-batch driver: a line-by-line NumPy reference of scikit-learn's schedule
# ---------------------------------------------------------------------------------------


def _mb_data(seed: int = 0, n: int = 90) -> tuple[np.ndarray, np.ndarray]:
    """Three blobs and heavy-tailed weights: with ``seed=0`` and the Generator seeded 7,
    the weighted choice among 3 inits on a 40-row subsample (and among 2 on all rows)
    differs from the unweighted one and from the last candidate (checked below)."""
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    X = np.concatenate([rng.normal(m, 1.0, (n // 3, 2)) for m in means])
    w = rng.exponential(1.0, n) ** 3
    return X, w


def _rows_init(X: Any, k: int, random_state: np.random.Generator) -> np.ndarray:
    """A callable init that consumes the Generator: ``k`` distinct rows of ``X``."""
    Xh = to_host(X)
    return Xh[random_state.choice(Xh.shape[0], size=k, replace=False)].copy()


def _mb_reference(
    X: np.ndarray,
    w: np.ndarray | None,
    seed: int,
    *,
    k: int,
    batch_size: int,
    max_iter: int,
    tol: float,
    max_no_improvement: int | None,
    n_init: int,
    init_size: int,
    sigmas: np.ndarray | None = None,
    lr: float | None = None,
    init: np.ndarray | None = None,
) -> dict[str, Any]:
    """Mini-batch K-Means / softmax RBF (``lr="lloyd"``, no reassignment), from the
    docstrings of :mod:`arbf._drivers.minibatch` and scikit-learn's driver."""
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    batch = min(batch_size, n)
    init_size = min(max(init_size, k), n)
    tol_abs = tol * float(np.mean(np.var(X, axis=0))) if tol > 0 else 0.0
    if init_size < n:
        idx = rng.choice(n, size=init_size, replace=False)
        Xi, wi = X[idx], (None if w is None else w[idx])
    else:
        Xi, wi = X, w
    best, best_J = None, math.inf
    pick = pick_unweighted = 0
    best_unweighted = math.inf
    for r in range(n_init):
        C = _rows_init(Xi, k, rng) if init is None else init.copy()
        D = ((Xi[:, None, :] - C[None]) ** 2).sum(-1).min(1)
        J = float(np.sum(D if wi is None else wi * D))
        if n_init == 1 or J < best_J:
            best, best_J, pick = C, J, r
        J_unweighted = float(np.sum(D))
        if J_unweighted < best_unweighted:
            best_unweighted, pick_unweighted = J_unweighted, r
    C = best.copy()
    counts = np.zeros(k)
    n_steps = max(1, max_iter * n // batch)
    if sigmas is None:
        sigmas = np.zeros(n_steps)
    alpha = min(1.0, 2.0 * batch / (n + 1))
    ewa, ewa_min, no_imp = None, math.inf, 0
    hist: dict[str, list[float]] = {"batch_inertia": [], "center_shift": [], "sigma": []}
    converged, step = False, 0
    for step in range(n_steps):
        s = float(sigmas[step])
        idx = rng.integers(0, n, size=batch)
        Xb = X[idx]
        wb = np.ones(batch) if w is None else w[idx]
        D = ((Xb[:, None, :] - C[None]) ** 2).sum(-1)
        if s == 0:
            R = np.zeros_like(D)
            R[np.arange(batch), D.argmin(1)] = 1.0
            obj = float(np.sum(wb * D.min(1)))
        else:
            R = np.exp(-D / s - logsumexp(-D / s, axis=1, keepdims=True))
            obj = float(np.sum(wb * -s * logsumexp(-D / s, axis=1)))
        N = (wb[:, None] * R).sum(0)
        S = (wb[:, None] * R).T @ Xb
        new = counts + N
        if lr is None:
            moved = (counts[:, None] * C + S) / np.maximum(new, 1e-300)[:, None]
            C_new = np.where(new[:, None] > 0, moved, C)
        else:
            C_new = C - lr * 2.0 * (N[:, None] * C - S)
        shift = float(np.sum((C_new - C) ** 2))
        C, counts = C_new, new
        batch_obj = obj / float(np.sum(wb))
        hist["batch_inertia"].append(batch_obj)
        hist["center_shift"].append(shift)
        hist["sigma"].append(s)
        if step == 0:
            continue
        ewa = batch_obj if ewa is None else ewa * (1 - alpha) + batch_obj * alpha
        if tol_abs > 0 and shift <= tol_abs:
            converged = True
            break
        if ewa < ewa_min:
            no_imp, ewa_min = 0, ewa
        else:
            no_imp += 1
        if max_no_improvement is not None and no_imp >= max_no_improvement:
            converged = True
            break
    n_done = step + 1
    return {
        "centers": C,
        "counts": counts,
        "n_steps": n_done,
        "n_iter": math.ceil(n_done * batch / n),
        "converged": converged,
        "history": {key: np.asarray(v) for key, v in hist.items()},
        "pick": (pick, pick_unweighted),
        "init_inertia": best_J,
    }


_MB_CASES = {
    # weights, a subsample for the init, 3 candidate inits, early stop on the EWA
    "weighted-n_init": dict(
        weighted=True, batch_size=16, max_iter=30, tol=0.0, max_no_improvement=3,
        n_init=3, init_size=40,
    ),
    # no early stop: every step runs (n_steps = max_iter * n // batch_size)
    "all-steps": dict(
        weighted=False, batch_size=25, max_iter=2, tol=0.0, max_no_improvement=None,
        n_init=1, init_size=30,
    ),
    # the tol rule on the squared center shift
    "tol": dict(
        weighted=True, batch_size=30, max_iter=50, tol=1e-3, max_no_improvement=None,
        n_init=2, init_size=90,
    ),
    # batch_size > n: clipped to n; init on all of X
    "big-batch": dict(
        weighted=False, batch_size=500, max_iter=4, tol=0.0, max_no_improvement=2,
        n_init=1, init_size=200,
    ),
    # one epoch of batches larger than n/2: a single step
    "one-step": dict(
        weighted=False, batch_size=60, max_iter=1, tol=0.0, max_no_improvement=None,
        n_init=1, init_size=90,
    ),
    # 3 distinct points, centers on them: every shift and batch inertia is exactly 0, so
    # tol=0 must not stop, and a flat EWA is "no improvement"
    "exact": dict(
        weighted=False, batch_size=10, max_iter=2, tol=0.0, max_no_improvement=4,
        n_init=1, init_size=90, exact=True,
    ),
    "exact-no-stop": dict(
        weighted=True, batch_size=10, max_iter=1, tol=0.0, max_no_improvement=None,
        n_init=1, init_size=90, exact=True,
    ),
}  # fmt: skip


def _exact_data() -> tuple[np.ndarray, np.ndarray]:
    pts = np.array([[0.0, 0.0], [5.0, 1.0], [1.0, 6.0]])
    return np.repeat(pts, 30, axis=0), np.linspace(0.5, 1.5, 90)


class TestMiniBatchDriverAgainstReference:
    @pytest.mark.parametrize("case", sorted(_MB_CASES))
    def test_kmeans_fit_matches_reference(self, dbackend, case):
        p = dict(_MB_CASES[case])
        weighted = p.pop("weighted")
        exact = p.pop("exact", False)
        X, w = _exact_data() if exact else _mb_data()
        init = X[[0, 30, 60]] if exact else None
        ref = _mb_reference(X, w if weighted else None, 7, k=3, init=init, **p)
        if case == "weighted-n_init":  # the weights decide which init is kept
            assert ref["pick"][0] != ref["pick"][1]
        if case == "tol":  # the kept init is not the last one drawn
            assert ref["pick"][0] != p["n_init"] - 1
        if case == "exact":  # stopped by the flat EWA, after some steps
            assert ref["converged"] and 3 < ref["n_steps"] < 18
            assert not np.any(ref["history"]["center_shift"])
        est = arbf.MiniBatchKMeans(
            3, init=_rows_init if init is None else init, random_state=np.random.default_rng(7),
            reassignment_ratio=0.0, **p,
        )  # fmt: skip
        est.fit(dbackend.asarray(X), sample_weight=dbackend.asarray(w) if weighted else None)
        self._check(est, ref, dbackend)
        # the final labels and inertia are those of all of X at the final centers
        D = ((X[:, None, :] - ref["centers"][None]) ** 2).sum(-1)
        assert_close(est.labels_, D.argmin(1), backend=dbackend)
        J = float(np.sum((w if weighted else 1.0) * D.min(1)))
        assert est.inertia_ == pytest.approx(J, rel=1e-9)

    def test_rbf_annealed_fit_matches_reference(self, dbackend):
        X, w = _mb_data()
        p = dict(batch_size=20, max_iter=2, tol=0.0, max_no_improvement=None, n_init=1)
        n_steps = 2 * 90 // 20
        sigmas = np.geomspace(0.8, 0.05, n_steps)
        ref = _mb_reference(X, w, 11, k=3, init_size=60, sigmas=sigmas, **p)
        est = arbf.MiniBatchRBFKMeans(
            3, sigma=0.8, sigma_end=0.05, kind="softmax", init=_rows_init, init_size=60,
            random_state=np.random.default_rng(11), reassignment_ratio=0.0, **p,
        )  # fmt: skip
        est.fit(dbackend.asarray(X), sample_weight=dbackend.asarray(w))
        self._check(est, ref, dbackend)
        assert est.sigma_ == pytest.approx(0.05, rel=1e-12)

    def test_rbf_constant_lr_matches_reference(self, dbackend):
        X, w = _mb_data()
        p = dict(batch_size=30, max_iter=2, tol=0.0, max_no_improvement=None, n_init=1)
        ref = _mb_reference(X, w, 4, k=3, init_size=90, sigmas=np.full(6, 0.6), lr=0.004, **p)
        est = arbf.MiniBatchRBFKMeans(
            3, sigma=0.6, lr=0.004, init=_rows_init, init_size=90,
            random_state=np.random.default_rng(4), reassignment_ratio=0.0, **p,
        )  # fmt: skip
        est.fit(dbackend.asarray(X), sample_weight=dbackend.asarray(w))
        self._check(est, ref, dbackend)

    def test_rescaling_accounts_for_the_init_centers(self, dbackend):
        """Centers at 1e160 square beyond float64: the driver rescales data and centers
        by the init's scale too, so the step and its shift stay finite (no
        FloatingPointError); every sample ties to center 0 at that distance."""
        X, _ = _mb_data()
        init = np.array([[1e160, 0.0], [-1e160, 0.0], [0.0, 1e160]])
        p = dict(batch_size=30, max_iter=3, tol=0.0, max_no_improvement=None, n_init=1)
        with np.errstate(over="ignore", invalid="ignore"):  # the reference's D is inf
            ref = _mb_reference(X, None, 0, k=3, init_size=90, init=init, **p)
        est = arbf.MiniBatchKMeans(
            3, init=init, init_size=90, random_state=np.random.default_rng(0),
            reassignment_ratio=0.0, **p,
        ).fit(dbackend.asarray(X))  # fmt: skip
        assert est.n_steps_ == ref["n_steps"] == 9
        assert_close(est.cluster_centers_, ref["centers"], backend=dbackend, rtol=1e-12)
        assert_close(est.counts_, [270.0, 0.0, 0.0], backend=dbackend)

    @pytest.mark.parametrize("init_size", [40, None])
    def test_kmeanspp_init_sees_the_weights(self, dbackend, init_size):
        """Far points of weight 0 are never drawn by the weighted k-means++ init (they
        would almost surely be without the weights); a center never moves onto them."""
        X, _ = _mb_data()
        far = np.random.default_rng(1).normal(size=(30, 2)) + 1e3
        Xf = np.concatenate([X, far])
        w = np.concatenate([np.ones(len(X)), np.zeros(len(far))])
        for seed in range(3):
            est = arbf.MiniBatchKMeans(
                3, init="k-means++", n_init=1, init_size=init_size, batch_size=20,
                max_iter=2, random_state=seed, reassignment_ratio=0.0,
            )  # fmt: skip
            est.fit(dbackend.asarray(Xf), sample_weight=dbackend.asarray(w))
            assert np.abs(to_host(est.cluster_centers_)).max() < 20.0

    @pytest.mark.parametrize("sigma", [0.5, 1.0])
    def test_rbf_constant_sigma(self, dbackend, sigma):
        """σ without ``sigma_end`` stays constant (no schedule), and σ = 1 is soft."""
        X, _ = _mb_data()
        p = dict(batch_size=30, max_iter=1, tol=0.0, max_no_improvement=None, n_init=1)
        ref = _mb_reference(X, None, 5, k=3, init_size=90, sigmas=np.full(3, sigma), **p)
        est = arbf.MiniBatchRBFKMeans(
            3, sigma=sigma, init=_rows_init, init_size=90,
            random_state=np.random.default_rng(5), reassignment_ratio=0.0, **p,
        )  # fmt: skip
        est.fit(dbackend.asarray(X))
        self._check(est, ref, dbackend)

    def test_rbf_zero_sigma_schedule_is_kmeans(self, dbackend):
        """``sigma = sigma_end = 0`` is mini-batch K-Means (no geometric schedule of 0)."""
        X, _ = _mb_data()
        p = dict(batch_size=30, max_iter=1, tol=0.0, max_no_improvement=None, n_init=1)
        ref = _mb_reference(X, None, 5, k=3, init_size=90, **p)
        est = arbf.MiniBatchRBFKMeans(
            3, sigma=0.0, sigma_end=0.0, init=_rows_init, init_size=90,
            random_state=np.random.default_rng(5), reassignment_ratio=0.0, **p,
        )  # fmt: skip
        est.fit(dbackend.asarray(X))
        self._check(est, ref, dbackend)

    def test_verbose_one_init_prints_its_inertia_like_scikit_learn(self, capsys):
        """scikit-learn prints "Inertia for init 1/1: ..." for a single init too."""
        from sklearn.cluster import MiniBatchKMeans as SkMB

        X, _ = _mb_data()
        lines = []
        for cls in (arbf.MiniBatchKMeans, SkMB):
            cls(3, n_init=1, batch_size=30, max_iter=1, random_state=0, verbose=1).fit(X)
            out = capsys.readouterr().out.splitlines()
            lines.append([ln.split(":")[0] for ln in out if ln.startswith("Inertia for init")])
        assert lines[0] == lines[1] == ["Inertia for init 1/1"]

    def test_verbose_output_of_the_inits_and_the_tol_stop(self, capsys):
        X, w = _mb_data()
        p = dict(_MB_CASES["tol"])
        p.pop("weighted")
        ref = _mb_reference(X, w, 7, k=3, **p)
        arbf.MiniBatchKMeans(
            3, init=_rows_init, random_state=np.random.default_rng(7), reassignment_ratio=0.0,
            verbose=True, **p,
        ).fit(X, sample_weight=w)  # fmt: skip
        out = capsys.readouterr().out.splitlines()
        inits = [ln for ln in out if ln.startswith("Init ")]
        assert [ln.split(" with method ")[0] for ln in inits] == ["Init 1/2", "Init 2/2"]
        assert all(ln.endswith(f"with method {_rows_init}") for ln in inits)
        inertias = [ln for ln in out if ln.startswith("Inertia for init ")]
        assert [ln.split(":")[0] for ln in inertias] == [
            "Inertia for init 1/2", "Inertia for init 2/2",
        ]  # fmt: skip
        assert min(float(ln.split(": ")[1]) for ln in inertias) == pytest.approx(
            ref["init_inertia"], rel=1e-9
        )
        assert ref["converged"] and ref["n_steps"] < 50 * 90 // 30
        stop = f"Converged (small centers change) at step {ref['n_steps']}/{50 * 90 // 30}"
        assert stop in out

    @staticmethod
    def _check(est: Any, ref: dict[str, Any], backend: Any) -> None:
        assert est.n_steps_ == ref["n_steps"]
        assert est.n_iter_ == ref["n_iter"]
        assert est.converged_ is ref["converged"]
        for key, v in ref["history"].items():
            np.testing.assert_allclose(est.history_[key], v, rtol=1e-9, atol=1e-12, err_msg=key)
        assert_close(est.cluster_centers_, ref["centers"], backend=backend, rtol=1e-9)
        assert_close(est.counts_, ref["counts"], backend=backend, rtol=1e-9)

    @pytest.mark.parametrize("batch", [60, 20])  # EWA weight 2 b/(n+1): clipped to 1, 0.44
    def test_verbose_output_reports_every_step(self, capsys, batch):
        X, _ = _mb_data()
        p = dict(batch_size=batch, max_iter=6, tol=0.0, max_no_improvement=2, n_init=1)
        ref = _mb_reference(X, None, 2, k=3, init_size=90, **p)
        arbf.MiniBatchKMeans(
            3, init=_rows_init, init_size=90, random_state=np.random.default_rng(2),
            reassignment_ratio=0.0, verbose=True, **p,
        ).fit(X)  # fmt: skip
        out = capsys.readouterr().out
        lines = [ln for ln in out.splitlines() if ln.startswith("Minibatch")]
        n_steps = 6 * 90 // batch
        assert len(lines) == ref["n_steps"]
        bi = ref["history"]["batch_inertia"]
        ewa = None
        alpha = min(1.0, 2.0 * batch / 91)
        for i, ln in enumerate(lines):
            head, _, rest = ln.partition(": mean batch inertia: ")
            assert head == f"Minibatch step {i + 1}/{n_steps}"
            values = [float(v) for v in rest.replace(", ewa inertia:", "").split()]
            assert values[0] == pytest.approx(bi[i], rel=1e-9)
            if i:
                ewa = bi[i] if ewa is None else ewa * (1 - alpha) + bi[i] * alpha
                assert values[1] == pytest.approx(ewa, rel=1e-9)
        assert ref["converged"]
        stop = f"Converged (lack of improvement in inertia) at step {ref['n_steps']}/{n_steps}"
        assert stop in out.splitlines()


# ---------------------------------------------------------------------------------------
# The chunked passes of the math core, on 1, 2 and 3 chunks, against NumPy
# ---------------------------------------------------------------------------------------


def _wm_for(X: Any, width: int, rows: int, *, batched: bool = False) -> float:
    """A ``working_memory`` (MiB) that gives exactly ``rows`` rows per chunk (``batched``:
    per batched chunk, ``width`` = problems × centers)."""
    from arbf._chunking import _TEMPORARIES, itemsize
    from arbf._math.core import batched as core_batched

    temporaries = core_batched._TEMPORARIES if batched else _TEMPORARIES
    return rows * temporaries * width * itemsize(X) / 2**20


def _core_data(dtype: str = "float64") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(21)
    X = rng.normal(size=(30, 3)) * np.array([1.0, 2.0, 0.5]) + np.array([3.0, -1.0, 2.0])
    C = X[[0, 7, 13, 22]] + rng.normal(scale=0.3, size=(4, 3))
    w = rng.uniform(0.1, 3.0, 30)
    return X.astype(dtype), C.astype(dtype), w.astype(dtype)


def _sqd(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    X, C = np.asarray(X, np.float64), np.asarray(C, np.float64)
    return ((X[:, None, :] - C[None]) ** 2).sum(-1)


_CHUNKS = [30, 15, 11]  # rows per chunk: 1, 2 and 3 chunks of 30 rows


class TestChunkedCore:
    @pytest.mark.parametrize("rows", _CHUNKS)
    @pytest.mark.parametrize("weighted", [False, True])
    def test_labels_inertia_sums(self, dbackend, rows, weighted):
        from arbf._math.core import distances as d

        xp = dbackend.xp
        X, C, w = _core_data()
        D = _sqd(X, C)
        lab = D.argmin(1)
        ww = w if weighted else np.ones(len(X))
        Xb, Cb = dbackend.asarray(X), dbackend.asarray(C)
        wb = dbackend.asarray(w) if weighted else None
        wm = _wm_for(Xb, C.shape[0], rows)
        labels, dmin = d.assign(Xb, Cb, xp=xp, working_memory=wm)
        assert_close(labels, lab, backend=dbackend)
        assert_close(dmin, D.min(1), backend=dbackend, rtol=1e-12)
        labels, J = d.assign_inertia(Xb, Cb, wb, xp=xp, working_memory=wm)
        assert_close(labels, lab, backend=dbackend)
        assert float(J) == pytest.approx(float(ww @ D.min(1)), rel=1e-12)
        J2 = d.labelled_inertia(Xb, Cb, labels, wb, xp=xp, working_memory=wm)
        assert float(J2) == pytest.approx(float(ww @ D.min(1)), rel=1e-12)
        wm2 = _wm_for(Xb, C.shape[0] + 1, rows)
        lab3, sums, weights, J3 = d.lloyd_sums(Xb, Cb, wb, xp=xp, working_memory=wm2)
        onehot = np.eye(4)[lab] * ww[:, None]
        assert_close(lab3, lab, backend=dbackend)
        assert_close(sums, onehot.T @ X, backend=dbackend, rtol=1e-12)
        assert_close(weights, onehot.sum(0), backend=dbackend, rtol=1e-12)
        assert float(J3) == pytest.approx(float(ww @ D.min(1)), rel=1e-12)
        # utilities: U_j = sum_{l_i=j} w_i (D_(2) - D_(1)), E_j = sum_{l_i=j} w_i D_(1)
        Ds = np.sort(D, axis=1)
        U = np.bincount(lab, ww * (Ds[:, 1] - Ds[:, 0]), minlength=4)
        E = np.bincount(lab, ww * Ds[:, 0], minlength=4)
        ue = d.utilities(Xb, Cb, wb, xp=xp, working_memory=wm)
        assert_close(ue, np.stack([U, E], axis=1), backend=dbackend, rtol=1e-10)

    @pytest.mark.parametrize("rows", _CHUNKS)
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_margin_and_distances(self, dbackend, rows, dtype):
        from arbf._math.core import distances as d

        xp = dbackend.xp
        X, C, _ = _core_data(dtype)
        D = _sqd(X, C)
        Ds = np.sort(D, axis=1)
        Xb, Cb = dbackend.asarray(X), dbackend.asarray(C)
        wm = _wm_for(Xb, C.shape[0], rows)
        tol = 1e-4 if dtype == "float32" else 1e-11
        m = d.min_margin(Xb, Cb, xp=xp, working_memory=wm)
        dbackend.check_same_kind(m, dtype=getattr(xp, dtype))
        assert float(m) == pytest.approx(float((Ds[:, 1] - Ds[:, 0]).min()), rel=tol * 100)
        P = d.pairwise_distances(Xb, Cb, xp=xp, working_memory=wm)
        assert_close(P, np.sqrt(D), backend=dbackend, rtol=tol)
        x_sq = d.sq_norms(Xb, xp=xp)
        R = d.dist_to_rows(Xb, Cb, x_sq, xp=xp, working_memory=wm)
        assert_close(R, D, backend=dbackend, rtol=tol * 10, atol=tol)
        lab, _, d2 = d.two_nearest(dbackend.asarray(D.astype(dtype)), xp=xp)
        assert_close(lab, D.argmin(1), backend=dbackend)
        assert_close(d2, Ds[:, 1], backend=dbackend, rtol=tol, dtype=getattr(xp, dtype))

    def test_margin_of_two_and_one_centers(self, dbackend):
        from arbf._math.core import distances as d

        xp = dbackend.xp
        X, C, _ = _core_data()
        Xb = dbackend.asarray(X)
        D = _sqd(X, C[:2])
        m2 = d.min_margin(Xb, dbackend.asarray(C[:2]), xp=xp)
        assert float(m2) == pytest.approx(float(np.abs(D[:, 1] - D[:, 0]).min()), rel=1e-10)
        m1 = d.min_margin(Xb, dbackend.asarray(C[:1]), xp=xp)
        dbackend.check_same_kind(m1, dtype=xp.float64)
        assert float(m1) == math.inf

    @pytest.mark.parametrize("rows", _CHUNKS)
    @pytest.mark.parametrize("kind", ["softmax", "entmax15", "hard"])
    def test_responsibilities(self, dbackend, rows, kind):
        from arbf._math.core import responsibilities as r

        xp = dbackend.xp
        X, C, _ = _core_data()
        D = _sqd(X, C)
        sigma = 0.7
        if kind == "softmax":
            ref = np.exp(-D / sigma - logsumexp(-D / sigma, axis=1, keepdims=True))
        elif kind == "hard":
            ref = np.eye(4)[D.argmin(1)]
        else:
            ref = np.stack([_entmax_ref(-row / sigma, 1.5) for row in D])
        Xb, Cb = dbackend.asarray(X), dbackend.asarray(C)
        wm = _wm_for(Xb, C.shape[0], rows)
        R = r.responsibilities(Xb, Cb, sigma=sigma, kind=kind, xp=xp, working_memory=wm)
        assert_close(R, ref, backend=dbackend, rtol=1e-9, atol=1e-12)

    def test_onehot_and_gaps(self, dbackend):
        from arbf._math.core import responsibilities as r

        xp = dbackend.xp
        lab = dbackend.asarray(np.array([2, 0, 1, 2]))
        H = r.onehot(lab, 3, dtype=xp.float32, xp=xp)
        assert_close(H, np.eye(3)[[2, 0, 1, 2]], backend=dbackend, dtype=xp.float32)
        D = np.array([[3.0, 1.0, 2.5], [0.0, 4.0, 4.0]])
        G = r.gaps(dbackend.asarray(D), xp=xp)
        assert_close(G, D - D.min(1, keepdims=True), backend=dbackend, rtol=0)


def _entmax_ref(z: np.ndarray, alpha: float) -> np.ndarray:
    """α-entmax of one row: ``p = [(α-1) z - τ]_+^{1/(α-1)}``, τ by SciPy's brentq."""
    from scipy.optimize import brentq

    y = (alpha - 1.0) * np.asarray(z, np.float64)
    y = y - y.max()
    inv = 1.0 / (alpha - 1.0)

    def f(tau: float) -> float:
        return float(np.sum(np.clip(y - tau, 0.0, None) ** inv) - 1.0)

    tau = brentq(f, -1.0, 0.0, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    p = np.clip(y - tau, 0.0, None) ** inv
    return p / p.sum()


# ---------------------------------------------------------------------------------------
# Sparse maps on 3-D inputs, for several α, against a root-finder reference
# ---------------------------------------------------------------------------------------


def _entmax_ref_nd(z: np.ndarray, alpha: float, axis: int = -1) -> np.ndarray:
    zl = np.moveaxis(np.asarray(z, np.float64), axis, -1)
    out = np.stack([_entmax_ref(row, alpha) for row in zl.reshape(-1, zl.shape[-1])])
    return np.moveaxis(out.reshape(zl.shape), -1, axis)


def _scores_3d() -> np.ndarray:
    rng = np.random.default_rng(5)
    z = rng.normal(scale=1.5, size=(2, 3, 5))
    z[0, 0] = [1.0, 1.0, 0.2, -3.0, 1.0]  # ties
    z[1, 2] = 0.25  # a uniform slice
    return z


class TestSparseMaps3D:
    @pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0, 2.5, 3.0])
    @pytest.mark.parametrize("axis", [-1, 1])
    def test_entmax_bisect(self, dbackend, alpha, axis):
        z = _scores_3d()
        p = arbf.entmax_bisect(dbackend.asarray(z), alpha=alpha, axis=axis)
        assert_close(p, _entmax_ref_nd(z, alpha, axis), backend=dbackend, rtol=1e-7, atol=1e-10)

    @pytest.mark.parametrize("axis", [-1, 0])
    def test_entmax15_and_sparsemax(self, dbackend, axis):
        z = _scores_3d()
        p = arbf.entmax15(dbackend.asarray(z), axis=axis)
        assert_close(p, _entmax_ref_nd(z, 1.5, axis), backend=dbackend, rtol=1e-7, atol=1e-10)
        p = arbf.sparsemax(dbackend.asarray(z), axis=axis)
        assert_close(p, _entmax_ref_nd(z, 2.0, axis), backend=dbackend, rtol=1e-7, atol=1e-10)

    @pytest.mark.parametrize("shape", [(2, 6), (3, 2, 6), (6, 1, 6)])
    @pytest.mark.parametrize("alpha", [1.5, 2.0, 3.0])
    def test_uniform_rows_longer_than_the_other_axes(self, dbackend, shape, alpha):
        """Equal scores give 1/k: τ sits at the top of the bracket
        ``max - k^(1-α)``, which a bracket computed from another axis misses."""
        z = np.full(shape, 0.7)
        p = arbf.entmax_bisect(dbackend.asarray(z), alpha=alpha)
        assert_close(p, np.full(shape, 1 / 6), backend=dbackend, rtol=1e-9)


# ---------------------------------------------------------------------------------------
# Spectral helpers of deterministic annealing against NumPy's eigh / np.cov
# ---------------------------------------------------------------------------------------


def _spiked(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples in ``d`` features with a leading covariance eigenvalue about 1.5
    times the next one (power iteration converges slowly), and positive weights."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * 0.05
    X[:, 0] += rng.normal(size=n) * 1.5
    X[:, 1] += rng.normal(size=n) * 1.2
    X += 3.0
    return X, rng.uniform(0.2, 2.0, n)


class TestSpectral:
    @pytest.mark.parametrize("weighted", [False, True])
    def test_covariance(self, dbackend, weighted):
        from arbf._math.core.spectral import covariance

        X, w = _spiked(25, 4)
        ref = np.cov(X.T, aweights=w if weighted else None, bias=True)
        wb = dbackend.asarray(w) if weighted else None
        cov = covariance(dbackend.asarray(X), wb, xp=dbackend.xp)
        assert_close(cov, ref, backend=dbackend, rtol=1e-10, atol=1e-14)

    @pytest.mark.parametrize("d", [1024, 1100])  # eigh up to EIGH_MAX_FEATURES, then power
    @pytest.mark.parametrize("weighted", [False, True])
    def test_principal_axis(self, backend, d, weighted):
        from arbf._math.core.spectral import EIGH_MAX_FEATURES, principal_axis

        assert EIGH_MAX_FEATURES == 1024
        X, w = _spiked(30, d)
        vals, vecs = np.linalg.eigh(np.cov(X.T, aweights=w if weighted else None, bias=True))
        wb = backend.asarray(w) if weighted else None
        lam, v = principal_axis(backend.asarray(X), wb, xp=backend.xp)
        # eigh is exact; the power iteration stops on a 1e-10 change of the Rayleigh quotient
        assert lam == pytest.approx(vals[-1], rel=1e-12 if d <= EIGH_MAX_FEATURES else 1e-8)
        tol = 1e-10 if d <= EIGH_MAX_FEATURES else 1e-4
        assert abs(float(v @ vecs[:, -1])) == pytest.approx(1.0, abs=tol)
        assert float(np.linalg.norm(v)) == pytest.approx(1.0, abs=1e-12)

    def test_principal_axis_of_a_point_is_zero(self, backend):
        from arbf._math.core.spectral import principal_axis

        for d in (3, 1030):
            lam, v = principal_axis(backend.asarray(np.ones((4, d))), None, xp=backend.xp)
            assert lam == 0.0
            assert v.shape == (d,)

    @pytest.mark.parametrize("rows", _CHUNKS)
    @pytest.mark.parametrize(
        ("kind", "sigma"), [("softmax", 0.9), ("entmax15", 2.5), ("softmax", 0.004)]
    )
    def test_principal_axes_pass(self, dbackend, rows, kind, sigma):
        from arbf._math.core.spectral import principal_axes_pass

        X, C, w = _core_data()
        V = np.random.default_rng(2).normal(size=C.shape)
        D = _sqd(X, C)
        if kind == "softmax":
            R = np.exp(-D / sigma - logsumexp(-D / sigma, axis=1, keepdims=True))
        else:
            R = np.stack([_entmax_ref(-row / sigma, 1.5) for row in D])
        R = R * w[:, None]
        A = np.stack([
            (R[:, j, None] * (X - C[j]) * ((X - C[j]) @ V[j])[:, None]).sum(0)
            for j in range(C.shape[0])
        ])  # fmt: skip
        Xb = dbackend.asarray(X)
        wm = _wm_for(Xb, 2 * C.shape[0], rows)
        A_, N_ = principal_axes_pass(
            Xb, dbackend.asarray(C), dbackend.asarray(V), dbackend.asarray(w), sigma=sigma,
            kind=kind, xp=dbackend.xp, working_memory=wm,
        )  # fmt: skip
        assert_close(N_, R.sum(0), backend=dbackend, rtol=1e-9, atol=1e-12)
        assert_close(A_, A, backend=dbackend, rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------------------------------
# Host helpers: the assignment solver (against SciPy) and the σ schedule
# ---------------------------------------------------------------------------------------


class TestLinearAssignment:
    @pytest.mark.parametrize("shape", [(1, 1), (4, 4), (3, 6), (6, 3), (5, 5), (2, 7)])
    @pytest.mark.parametrize("integer", [False, True])  # integer costs: many ties
    def test_against_scipy(self, shape, integer):
        from scipy.optimize import linear_sum_assignment

        from arbf._math.core.matching import linear_assignment

        rng = np.random.default_rng(sum(shape) + integer)
        for _ in range(5):
            cost = rng.integers(0, 4, shape) if integer else rng.normal(size=shape)
            rows, cols = linear_assignment(cost)
            r_ref, c_ref = linear_sum_assignment(cost)
            assert rows.dtype == np.intp and cols.dtype == np.intp
            assert len(rows) == min(shape)
            assert np.all(np.diff(rows) > 0) and len(set(cols.tolist())) == len(cols)
            assert cost[rows, cols].sum() == pytest.approx(cost[r_ref, c_ref].sum(), abs=1e-12)
            if not integer:  # a unique optimum
                np.testing.assert_array_equal(rows, r_ref)
                np.testing.assert_array_equal(cols, c_ref)

    def test_differences_below_float32_resolution(self):
        from arbf._math.core.matching import linear_assignment

        # 1 + 2**-30 is 1 in float32: the costs are compared in float64
        cost = np.array([[1.0, 1.0 + 2.0**-30], [1.0 + 2.0**-29, 1.0]])
        _, cols = linear_assignment(cost)
        assert cols.tolist() == [0, 1]
        _, cols = linear_assignment(np.array([[0.0, 2.0**-30], [2.0**-30, 0.0]]).T)
        assert cols.tolist() == [0, 1]

    def test_empty_and_errors(self):
        from arbf._math.core.matching import linear_assignment

        for shape in [(0, 0), (0, 3), (3, 0)]:
            rows, cols = linear_assignment(np.zeros(shape))
            assert rows.shape == cols.shape == (0,)
            assert rows.dtype == cols.dtype == np.intp
        with pytest.raises(ValueError, match=r"cost must be a 2-D matrix, got shape \(3,\)"):
            linear_assignment(np.zeros(3))
        for bad in (np.nan, np.inf):
            with pytest.raises(ValueError, match=r"^cost contains NaN or infinity$"):
                linear_assignment(np.array([[0.0, bad], [1.0, 2.0]]))


class TestGeometricSchedule:
    def test_values(self):
        from arbf._math.core.schedules import geometric

        np.testing.assert_array_equal(geometric(2.0, 2.0, 1), [2.0])
        np.testing.assert_array_equal(geometric(8.0, 0.5, 1), [8.0])
        np.testing.assert_array_equal(geometric(8.0, 0.5, 2), [8.0, 0.5])
        np.testing.assert_allclose(geometric(8.0, 0.5, 5), [8.0, 4.0, 2.0, 1.0, 0.5], rtol=1e-15)
        np.testing.assert_allclose(geometric(0.5, 8.0, 3), [0.5, 2.0, 8.0], rtol=1e-15)
        np.testing.assert_allclose(geometric(0.3, 0.2, 2), [0.3, 0.2], rtol=0)

    @pytest.mark.parametrize(
        ("start", "end"),
        [(0.0, 1.0), (1.0, 0.0), (-1.0, 1.0), (1.0, -1.0), (math.inf, 1.0), (1.0, math.inf),
         (math.nan, 1.0), (1.0, math.nan), (0.0, 0.5), (0.5, 0.0)],
    )  # fmt: skip
    def test_bad_bounds(self, start, end):
        from arbf._math.core.schedules import geometric

        with pytest.raises(ValueError, match="schedule bounds must be positive and finite"):
            geometric(start, end, 3)

    def test_bad_length(self):
        from arbf._math.core.schedules import geometric

        for n in (0, -2):
            with pytest.raises(ValueError, match="at least one temperature"):
                geometric(1.0, 0.5, n)


# ---------------------------------------------------------------------------------------
# Drivers: the fixed-point loop's flags and history, the annealers' hard finish
# ---------------------------------------------------------------------------------------


def _lloyd_fixed_point(X: np.ndarray, C: np.ndarray, w: np.ndarray) -> np.ndarray:
    for _ in range(300):
        lab = _sqd(X, C).argmin(1)
        new = np.stack([
            np.average(X[lab == j], axis=0, weights=w[lab == j]) if np.any(lab == j) else C[j]
            for j in range(C.shape[0])
        ])  # fmt: skip
        if np.array_equal(new, C):
            break
        C = new
    return C


class TestDriverResults:
    def test_rbf_not_converged_is_false_and_history_has_one_entry_per_iteration(self, dbackend):
        X, C, w = _core_data()
        res = arbf.rbf_kmeans(
            dbackend.asarray(X), dbackend.asarray(C), sigma=0.5, sample_weight=dbackend.asarray(w),
            max_iter=2, tol=0.0,
        )  # fmt: skip
        assert res.converged is False
        assert res.n_iter == 2
        assert sorted(res.history) == [
            "center_shift", "free_energy", "inertia", "soft_distortion",
        ]  # fmt: skip
        for v in res.history.values():
            assert v.shape == (2,)
        # the first entry is the first step from C: inertia of C, F of C
        D = _sqd(X, C)
        assert res.history["inertia"][0] == pytest.approx(float(w @ D.min(1)), rel=1e-10)
        F = float(w @ (-0.5 * logsumexp(-D / 0.5, axis=1)))
        assert res.history["free_energy"][0] == pytest.approx(F, rel=1e-10)

    def test_rbf_converged_is_true(self, dbackend):
        X, C, _ = _core_data()
        res = arbf.rbf_kmeans(dbackend.asarray(X), dbackend.asarray(C), sigma=0.5, tol=1e-3)
        assert res.converged is True

    def test_tol_zero_stops_at_an_exact_fixed_point(self, dbackend):
        """At σ = 1e-6 the responsibilities are one-hot: Lloyd's iteration, which reaches
        a fixed point (shift exactly 0) in a few steps; ``tol = 0`` then stops."""
        X, C, _ = _core_data()
        res = arbf.rbf_kmeans(
            dbackend.asarray(X), dbackend.asarray(C), sigma=1e-6, tol=0.0, max_iter=100
        )
        assert res.converged is True
        assert res.n_iter < 100
        assert res.history["center_shift"][-1] == 0.0
        ref = _lloyd_fixed_point(X, C, np.ones(len(X)))
        assert_close(res.centers, ref, backend=dbackend, rtol=1e-12)

    @pytest.mark.parametrize("weighted", [False, True])
    def test_anneal_hard_finish_is_lloyds_fixed_point(self, dbackend, weighted):
        """The finish runs Lloyd to its fixed point in the data's coordinates (data far
        from the origin, so centring errors show) and reports one run's inertia."""
        X, C, w = _core_data()
        X, C = X + 50.0, C + 50.0
        ww = w if weighted else np.ones(len(X))
        res = arbf.anneal(
            dbackend.asarray(X), dbackend.asarray(C), schedule=[4.0, 2.0],
            sample_weight=dbackend.asarray(w) if weighted else None, max_iter=1,
        )  # fmt: skip
        km = res.kmeans
        assert km is not None
        last = np.asarray(to_host(res.path[-1]), np.float64)
        ref = _lloyd_fixed_point(X, last, ww)
        assert np.abs(ref - last).max() > 1e-3  # the finish has work to do
        D = _sqd(X, ref)
        assert_close(km.centers, ref, backend=dbackend, rtol=1e-10)
        assert_close(res.centers, ref, backend=dbackend, rtol=1e-10)
        assert_close(km.labels, D.argmin(1), backend=dbackend)
        assert km.inertia == pytest.approx(float(ww @ D.min(1)), rel=1e-10)
        assert km.n_init_inertia == [km.inertia]
        assert km.converged is True


def test_min_margin_with_one_feature(dbackend):
    """``k`` is the number of centers (rows of C), not of features: d = 1, k = 3."""
    from arbf._math.core import distances as d

    x = np.linspace(0.0, 10.0, 11)[:, None]
    C = np.array([[1.0], [4.5], [9.0]])
    D = _sqd(x, C)
    Ds = np.sort(D, axis=1)
    m = d.min_margin(dbackend.asarray(x), dbackend.asarray(C), xp=dbackend.xp)
    assert float(m) == pytest.approx(float((Ds[:, 1] - Ds[:, 0]).min()), rel=1e-12)


# ---------------------------------------------------------------------------------------
# The batched chunked passes (core/batched.py, core/batched_anneal.py) on 1, 2 and 3
# chunks, against one-problem references (found by the mutation run of 5bca3fb: the
# batched passes had been tested on one chunk only, and `mean_rows` never in float32)
# ---------------------------------------------------------------------------------------


def _batched_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Three problems of 30 rows (d = 3, k = 4), weights with a zero, a σ per problem and
    an active mask with two or three active centers per problem."""
    rng = np.random.default_rng(33)
    X = rng.normal(size=(3, 30, 3)) * np.array([1.0, 2.0, 0.5]) + np.array([[[3.0, -1.0, 2.0]]])
    X[1] *= 0.5
    C = X[:, [0, 7, 13, 22], :] + rng.normal(scale=0.3, size=(3, 4, 3))
    w = rng.uniform(0.1, 3.0, size=(3, 30))
    w[0, 4] = 0.0
    sigmas = np.array([0.7, 1.9, 0.25])
    active = np.array([[True, True, True, True], [True, False, True, False],
                       [False, True, True, True]])  # fmt: skip
    return X, C, w, sigmas, active


class TestChunkedBatchedCore:
    @pytest.mark.parametrize("rows", _CHUNKS)
    @pytest.mark.parametrize("kind", ["softmax", "entmax15", "hard"])
    def test_responsibilities(self, dbackend, rows, kind):
        from arbf._math.core import batched

        X, C, _, _, _ = _batched_data()
        Xb, Cb = dbackend.asarray(X), dbackend.asarray(C)
        wm = _wm_for(Xb, 3 * 4, rows, batched=True)
        for sigma in (0.8, 0.0):
            R = batched.responsibilities(
                Xb, Cb, sigma=sigma, kind=kind, xp=dbackend.xp, working_memory=wm
            )
            ref = np.stack([
                np.asarray(arbf.responsibilities(X[b], C[b], sigma=sigma, kind=kind))
                for b in range(3)
            ])  # fmt: skip
            assert_close(R, ref, backend=dbackend, rtol=1e-12, atol=1e-14)

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_mean_rows(self, dbackend, dtype):
        """Column means of every problem over n ≠ d rows; float32 summed in float64 (a
        float32 running sum of 4099 rows near 1000 is off by many ulps)."""
        from arbf._math.core import batched_anneal as ba

        rng = np.random.default_rng(2)
        X = (1000.0 + rng.uniform(0.0, 1.0, size=(2, 4099, 3))).astype(dtype)
        got = ba.mean_rows(dbackend.asarray(X), xp=dbackend.xp)
        ref = X.astype(np.float64).mean(axis=1, keepdims=True).astype(dtype)
        assert tuple(got.shape) == (2, 1, 3)
        got_h = np.asarray(dbackend.to_numpy(got))
        if dtype == "float32":  # the float64 sum rounded once
            np.testing.assert_array_max_ulp(got_h, ref, maxulp=1)
        else:  # the backend's own float64 mean (summation order differs: ~20 ulp)
            np.testing.assert_allclose(got_h, ref, rtol=1e-13)

    @pytest.mark.parametrize("rows", _CHUNKS)
    @pytest.mark.parametrize("weighted", [False, True])
    def test_margin_and_utilities(self, dbackend, rows, weighted):
        from arbf._math.core import batched_anneal as ba

        X, C, w, _, _ = _batched_data()
        Xb, Cb = dbackend.asarray(X), dbackend.asarray(C)
        wb = dbackend.asarray(w) if weighted else None
        wm = _wm_for(Xb, 3 * 4, rows, batched=True)
        margins, ue_ref = [], []
        for b in range(3):
            D = _sqd(X[b], C[b])
            Ds, lab = np.sort(D, axis=1), D.argmin(1)
            ww = w[b] if weighted else np.ones(30)
            margins.append((Ds[:, 1] - Ds[:, 0]).min())
            U = np.bincount(lab, ww * (Ds[:, 1] - Ds[:, 0]), minlength=4)
            E = np.bincount(lab, ww * Ds[:, 0], minlength=4)
            ue_ref.append(np.stack([U, E], axis=1))
        m = ba.min_margin(Xb, Cb, xp=dbackend.xp, working_memory=wm)
        assert_close(m, np.array(margins), backend=dbackend, rtol=1e-10)
        ue = ba.utilities(Xb, Cb, wb, xp=dbackend.xp, working_memory=wm)
        assert_close(ue, np.stack(ue_ref), backend=dbackend, rtol=1e-10, atol=1e-12)
        one = ba.min_margin(Xb, Cb[:, :1, :], xp=dbackend.xp, working_memory=wm)
        assert_close(one, np.full(3, np.inf), backend=dbackend)

    @pytest.mark.parametrize("rows", _CHUNKS)
    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    @pytest.mark.parametrize("weighted", [False, True])
    def test_masked_soft_stats(self, dbackend, rows, kind, weighted):
        """Every problem equals the one-problem soft statistics over its active centers
        (at its own σ), with sums and masses 0 at the inactive ones."""
        import array_api_compat.numpy as npx

        from arbf._math.core import batched_anneal as ba
        from arbf._math.core.soft import soft_stats

        X, C, w, sigmas, active = _batched_data()
        Xb, Cb = dbackend.asarray(X), dbackend.asarray(C)
        wb = dbackend.asarray(w) if weighted else None
        wm = _wm_for(Xb, 3 * 4, rows, batched=True)
        got = ba.masked_soft_stats(
            Xb, Cb, wb, sigmas=dbackend.asarray(sigmas), active=dbackend.asarray(active),
            kind=kind, xp=dbackend.xp, working_memory=wm,
        )  # fmt: skip
        for b in range(3):
            a = active[b]
            ref = soft_stats(X[b], C[b][a], w[b] if weighted else None,
                             sigma=float(sigmas[b]), kind=kind, xp=npx)  # fmt: skip
            sums = np.zeros((4, 3))
            sums[a] = ref.sums
            mass = np.zeros(4)
            mass[a] = ref.mass
            g = [np.asarray(dbackend.to_numpy(f))[b] for f in got]
            np.testing.assert_allclose(g[0], sums, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(g[1], mass, rtol=1e-10, atol=1e-12)
            for i, name in enumerate(["soft_distortion", "free_energy", "inertia", "entropy"]):
                want = float(getattr(ref, name))
                assert float(g[2 + i]) == pytest.approx(want, rel=1e-10, abs=1e-12), name

    @pytest.mark.parametrize("rows", _CHUNKS)
    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_principal_axes_pass(self, dbackend, rows, kind):
        r""":math:`A_{bj} = \sum_i w r_{ij} (x_i - c_j)((x_i - c_j) \cdot v_j)` and
        :math:`N_{bj} = \sum_i w r_{ij}` with the responsibilities over the active centers
        (0 at the inactive ones), against NumPy."""
        from arbf._math.core import batched_anneal as ba

        X, C, w, sigmas, active = _batched_data()
        V = np.random.default_rng(4).normal(size=(3, 4, 3))
        Xb, Cb = dbackend.asarray(X), dbackend.asarray(C)
        wm = _wm_for(Xb, 2 * 3 * 4, rows, batched=True)
        A, N = ba.principal_axes_pass(
            Xb, Cb, dbackend.asarray(V), dbackend.asarray(w), sigmas=dbackend.asarray(sigmas),
            active=dbackend.asarray(active), kind=kind, xp=dbackend.xp, working_memory=wm,
        )  # fmt: skip
        for b in range(3):
            a = active[b]
            R = np.zeros((30, 4))
            R[:, a] = np.asarray(
                arbf.responsibilities(X[b], C[b][a], sigma=float(sigmas[b]), kind=kind)
            )
            Rw = R * w[b][:, None]
            A_ref = np.zeros((4, 3))
            for j in range(4):
                Z = X[b] - C[b, j]
                A_ref[j] = (Rw[:, j] * (Z @ V[b, j])) @ Z
            np.testing.assert_allclose(
                np.asarray(dbackend.to_numpy(A))[b], A_ref, rtol=1e-10, atol=1e-12
            )
            np.testing.assert_allclose(
                np.asarray(dbackend.to_numpy(N))[b], Rw.sum(0), rtol=1e-10, atol=1e-12
            )

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    @pytest.mark.parametrize("kind", ["softmax", "entmax15", "hard"])
    def test_sample_terms(self, dbackend, dtype, kind):
        """Every field of every problem equals the one-problem ``sample_terms``, in the
        input dtype, at σ = 1 (a value, not a switch), 0.5 and 0 (hard)."""
        import array_api_compat.numpy as npx

        from arbf._math.core import batched
        from arbf._math.core.terms import sample_terms

        X, C, _, _, _ = _batched_data()
        X, C = X.astype(dtype), C.astype(dtype)
        tol = 2e-5 if dtype == "float32" else 1e-12
        for sigma in (1.0, 0.5, 0.0):
            got = batched.sample_terms(
                dbackend.asarray(X), dbackend.asarray(C), sigma, kind=kind, xp=dbackend.xp
            )
            for b in range(3):
                ref = sample_terms(X[b], C[b], sigma, kind=kind, xp=npx)
                for name, g, r in zip(ref._fields, got, ref, strict=True):
                    dbackend.check_same_kind(g, dtype=getattr(dbackend.xp, dtype))
                    np.testing.assert_allclose(
                        np.asarray(dbackend.to_numpy(g))[b], np.asarray(r, dtype=np.float64),
                        rtol=tol, atol=tol, err_msg=f"{name} sigma={sigma}",
                    )  # fmt: skip

    @pytest.mark.parametrize("rows", _CHUNKS)
    def test_margin_and_utilities_float32(self, dbackend, rows):
        """In float32 the margins and utilities stay float32 (an ``inf`` or index made in
        the default float64 would promote them) and match the float64 values."""
        from arbf._math.core import batched_anneal as ba

        X, C, w, _, _ = _batched_data()
        X32, C32 = X.astype(np.float32), C.astype(np.float32)
        Xb, Cb = dbackend.asarray(X32), dbackend.asarray(C32)
        wm = _wm_for(Xb, 3 * 4, rows, batched=True)
        f32 = dbackend.xp.float32
        m = ba.min_margin(Xb, Cb, xp=dbackend.xp, working_memory=wm)
        ue = ba.utilities(Xb, Cb, dbackend.asarray(w.astype(np.float32)), xp=dbackend.xp,
                          working_memory=wm)  # fmt: skip
        dbackend.check_same_kind(m, dtype=f32)
        dbackend.check_same_kind(ue, dtype=f32)
        m64 = ba.min_margin(dbackend.asarray(X32.astype(np.float64)),
                            dbackend.asarray(C32.astype(np.float64)), xp=dbackend.xp)  # fmt: skip
        assert_close(m, np.asarray(dbackend.to_numpy(m64)), backend=dbackend, rtol=1e-3,
                     atol=1e-4, dtype=f32)  # fmt: skip

    @pytest.mark.parametrize("rows", _CHUNKS)
    @pytest.mark.parametrize("weighted", [False, True])
    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_lloyd_sums_and_assign_inertia(self, dbackend, rows, weighted, dtype):
        """Labels, per-cluster sums and weights and the inertia of every problem, over 1,
        2 and 3 chunks, in the input dtype and on its device, against NumPy."""
        from arbf._math.core import batched

        X, C, w, _, _ = _batched_data()
        X, C, w = X.astype(dtype), C.astype(dtype), w.astype(dtype)
        Xb, Cb = dbackend.asarray(X), dbackend.asarray(C)
        wb = dbackend.asarray(w) if weighted else None
        wm = _wm_for(Xb, 3 * 4, rows, batched=True)
        dt = getattr(dbackend.xp, dtype)
        tol = 1e-5 if dtype == "float32" else 1e-12
        lab, sums, weights, J = batched.lloyd_sums(Xb, Cb, wb, xp=dbackend.xp, working_memory=wm)
        lab2, J2 = batched.assign_inertia(Xb, Cb, wb, xp=dbackend.xp, working_memory=wm)
        for a in (sums, weights, J, J2):
            dbackend.check_same_kind(a, dtype=dt)
        for b in range(3):
            D = _sqd(X[b], C[b])
            ref_lab = D.argmin(1)
            ww = w[b].astype(np.float64) if weighted else np.ones(30)
            onehot = np.eye(4)[ref_lab] * ww[:, None]
            for got_lab in (lab, lab2):
                np.testing.assert_array_equal(np.asarray(dbackend.to_numpy(got_lab))[b], ref_lab)
            np.testing.assert_allclose(
                np.asarray(dbackend.to_numpy(sums))[b],
                onehot.T @ X[b].astype(np.float64),
                rtol=tol,
                atol=tol,
            )
            np.testing.assert_allclose(
                np.asarray(dbackend.to_numpy(weights))[b], onehot.sum(0), rtol=tol
            )
            for got_J in (J, J2):
                assert float(np.asarray(dbackend.to_numpy(got_J))[b]) == pytest.approx(
                    float(ww @ D.min(1)), rel=tol)  # fmt: skip

    @pytest.mark.parametrize("rows", _CHUNKS)
    @pytest.mark.parametrize("kind", ["softmax", "entmax15", "hard"])
    @pytest.mark.parametrize("weighted", [False, True])
    def test_soft_stats(self, dbackend, rows, kind, weighted):
        """Every problem's soft statistics over 1-3 chunks, on the array's device, equal the
        one-problem ``soft_stats`` (the hard kind: the Lloyd statistics); ``batch_rows``
        gives the requested rows per chunk."""
        import array_api_compat.numpy as npx

        from arbf._math.core import batched
        from arbf._math.core.soft import soft_stats

        X, C, w, _, _ = _batched_data()
        Xb, Cb = dbackend.asarray(X), dbackend.asarray(C)
        wb = dbackend.asarray(w) if weighted else None
        wm = _wm_for(Xb, 3 * 4, rows, batched=True)
        assert batched.batch_rows(Xb, 4, working_memory=wm) == rows
        got = batched.soft_stats(Xb, Cb, wb, sigma=0.6, kind=kind, xp=dbackend.xp,
                                 working_memory=wm)  # fmt: skip
        for b in range(3):
            ref = soft_stats(X[b], C[b], w[b] if weighted else None, sigma=0.6, kind=kind,
                             xp=npx)  # fmt: skip
            for name in ("sums", "mass", "soft_distortion", "free_energy", "inertia"):
                np.testing.assert_allclose(
                    np.asarray(dbackend.to_numpy(getattr(got, name)))[b],
                    np.asarray(getattr(ref, name)), rtol=1e-10, atol=1e-12, err_msg=name,
                )  # fmt: skip

    def test_small_helpers(self, dbackend):
        """``nearest`` without precomputed norms; ``sq_distances`` never negative (a center
        equal to a far-off row cancels to a rounding error below 0 before the clip);
        ``safe_divide_centers`` divides by weights below 1 and keeps the fallback at 0;
        ``min_margin`` with two centers (a margin) and one (``inf``, in float32)."""
        from arbf._math.core import batched
        from arbf._math.core import batched_anneal as ba

        xp = dbackend.xp
        X, C, _, _, _ = _batched_data()
        lab = batched.nearest(dbackend.asarray(X), dbackend.asarray(C), xp=xp)
        ref = np.stack([_sqd(X[b], C[b]).argmin(1) for b in range(3)])
        np.testing.assert_array_equal(np.asarray(dbackend.to_numpy(lab)), ref)
        Y = 1e4 + np.random.default_rng(8).normal(size=(2, 50, 3))
        D = batched.sq_distances(dbackend.asarray(Y), dbackend.asarray(Y[:, :5, :].copy()),
                                 xp=xp)  # fmt: skip
        assert float(np.min(np.asarray(dbackend.to_numpy(D)))) >= 0.0
        sums = np.array([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
        weights = np.array([[0.5, 0.0, 2.0]])
        fb = np.full((1, 3, 2), -7.0)
        got = batched.safe_divide_centers(*(dbackend.asarray(a) for a in (sums, weights, fb)),
                                          xp=xp)  # fmt: skip
        np.testing.assert_array_equal(np.asarray(dbackend.to_numpy(got)),
                                      [[[2.0, 4.0], [-7.0, -7.0], [2.5, 3.0]]])  # fmt: skip
        m2 = ba.min_margin(dbackend.asarray(X), dbackend.asarray(C[:, :2, :].copy()), xp=xp)
        ref2 = [np.diff(np.sort(_sqd(X[b], C[b, :2]), axis=1), axis=1).min() for b in range(3)]
        assert_close(m2, np.array(ref2), backend=dbackend, rtol=1e-10)
        m1 = ba.min_margin(dbackend.asarray(X.astype(np.float32)),
                           dbackend.asarray(C[:, :1, :].astype(np.float32)), xp=xp)  # fmt: skip
        dbackend.check_same_kind(m1, dtype=xp.float32)
        assert_close(m1, np.full(3, np.inf), backend=dbackend)

    @pytest.mark.parametrize("kind", ["softmax", "entmax15"])
    def test_masked_soft_stats_float32(self, dbackend, kind):
        """In float32 the masked statistics and principal axes stay float32 (an ``inf`` or
        a column of ones made in the default float64 would promote them) and match the
        float64 pass."""
        from arbf._math.core import batched_anneal as ba

        X, C, w, sigmas, active = _batched_data()
        V = np.random.default_rng(4).normal(size=(3, 4, 3))
        f32 = dbackend.xp.float32
        for dtype, tol in (("float32", 2e-4), ("float64", None)):
            args = [dbackend.asarray(a.astype(dtype)) for a in (X, C, w, sigmas)]
            got = ba.masked_soft_stats(*args[:3], sigmas=args[3], active=dbackend.asarray(active),
                                       kind=kind, xp=dbackend.xp, working_memory=_wm_for(
                                           args[0], 12, 11, batched=True))  # fmt: skip
            A, N = ba.principal_axes_pass(
                args[0], args[1], dbackend.asarray(V.astype(dtype)), args[2], sigmas=args[3],
                active=dbackend.asarray(active), kind=kind, xp=dbackend.xp,
            )  # fmt: skip
            if tol is None:
                ref, ref_A = got, A
                continue
            for field in (*got, A, N):
                dbackend.check_same_kind(field, dtype=f32)
            f32_vals = [np.asarray(dbackend.to_numpy(f), dtype=np.float64) for f in got]
            saved = (f32_vals, np.asarray(dbackend.to_numpy(A), dtype=np.float64))
        for g, r in zip(saved[0], ref, strict=True):
            np.testing.assert_allclose(g, np.asarray(dbackend.to_numpy(r)), rtol=2e-4, atol=2e-4)
        np.testing.assert_allclose(saved[1], np.asarray(dbackend.to_numpy(ref_A)), rtol=2e-4,
                                   atol=2e-4)  # fmt: skip


class TestSampleTermsValues:
    """``core.terms`` (the per-sample terms behind the torch layer and the JAX functions)
    on the NumPy + array-api-strict matrix, against closed forms: a mutation run found
    these functions reached only through torch and JAX, which that matrix does not run."""

    @staticmethod
    def _data() -> tuple[np.ndarray, np.ndarray]:
        X = np.array([[0.0, 0.0], [1.0, 0.5], [3.0, -1.0], [4.0, 2.0], [-1.0, 1.0]])
        C = np.array([[0.0, 0.0], [3.5, 0.5]])  # row 0 sits exactly on center 0: d = 0
        return X, C

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_softmax_two_centers(self, dbackend, dtype):
        """k = 2, softmax: ``t_i = log Σ_j e^{-G_ij/σ}`` (scipy) and ``F_i = d_i - σ t_i``
        at a finite σ, passed as a float and as ``log_sigma``."""
        from arbf._math.core.terms import sample_terms

        X, C = self._data()
        D = _sqd(X, C)
        d = D.min(1)
        sigma = 1.7
        t = logsumexp(-(D - d[:, None]) / sigma, axis=1)
        R = np.exp(-(D - d[:, None]) / sigma - t[:, None])
        Xb, Cb = dbackend.asarray(X.astype(dtype)), dbackend.asarray(C.astype(dtype))
        tol = 1e-5 if dtype == "float32" else 1e-12
        log_s = dbackend.asarray(np.asarray(math.log(sigma), dtype=dtype))
        for kw in ({"sigma": sigma}, {"sigma": None, "log_sigma": log_s}):
            got = sample_terms(Xb, Cb, kw.pop("sigma"), kind="softmax", xp=dbackend.xp, **kw)
            assert_close(got.responsibilities, R, backend=dbackend, rtol=tol, atol=tol)
            assert_close(got.entropy, t, backend=dbackend, rtol=tol, atol=tol)
            assert_close(got.free_energy, d - sigma * t, backend=dbackend, rtol=tol, atol=tol)
            assert_close(got.inertia, d, backend=dbackend, rtol=tol, atol=tol)

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_log_sigma_clamped_to_the_normal_range(self, dbackend, dtype):
        """``log_sigma`` beyond the dtype's range is clamped to
        ``[log(2 smallest_normal), log(max / 2)]``: at the top every row is uniform and
        ``F_i = d_i - (max/2) log k`` (finite); at the bottom every row is one-hot and
        ``F_i = d_i``; never NaN."""
        from arbf._math.core.terms import sample_terms

        X, C = self._data()
        d = _sqd(X, C).min(1)
        fi = np.finfo(dtype)
        Xb, Cb = dbackend.asarray(X.astype(dtype)), dbackend.asarray(C.astype(dtype))
        big, small = (dbackend.asarray(np.asarray(v, dtype=dtype)) for v in (1000.0, -1000.0))
        top = sample_terms(Xb, Cb, None, kind="softmax", xp=dbackend.xp, log_sigma=big)
        F = dbackend.to_numpy(top.free_energy).astype(np.float64)
        assert np.all(np.isfinite(F))
        np.testing.assert_allclose(F, d - float(fi.max) / 2 * math.log(2), rtol=1e-3)
        low = sample_terms(Xb, Cb, None, kind="softmax", xp=dbackend.xp, log_sigma=small)
        onehot = (np.arange(2)[None, :] == _sqd(X, C).argmin(1)[:, None]).astype(dtype)
        assert_close(low.responsibilities, onehot, backend=dbackend, rtol=0, atol=0)
        assert_close(low.free_energy, d, backend=dbackend, rtol=1e-6, atol=0)

    def test_one_center_at_infinite_sigma(self, dbackend):
        """One center: ``t = 0`` exactly and ``F_i = d_i`` at every σ, even σ = inf
        (``σ t`` would be NaN)."""
        from arbf._math.core.terms import sample_terms

        X, C = self._data()
        got = sample_terms(
            dbackend.asarray(X), dbackend.asarray(C[:1]), float("inf"), kind="softmax",
            xp=dbackend.xp,
        )  # fmt: skip
        assert_close(got.free_energy, _sqd(X, C[:1])[:, 0], backend=dbackend, rtol=1e-15)

    @pytest.mark.parametrize("dtype", ["float32", "float64"])
    def test_hard_terms(self, dbackend, dtype):
        """``kind="hard"``: one-hot responsibilities in X's dtype, ``L = F = d``, ``t = 0``."""
        from arbf._math.core.terms import sample_terms

        X, C = self._data()
        D = _sqd(X, C)
        got = sample_terms(
            dbackend.asarray(X.astype(dtype)), dbackend.asarray(C.astype(dtype)), 1.0,
            kind="hard", xp=dbackend.xp,
        )  # fmt: skip
        onehot = (np.arange(2)[None, :] == D.argmin(1)[:, None]).astype(dtype)
        assert_close(got.responsibilities, onehot, backend=dbackend, rtol=0, atol=0,
                     dtype=getattr(dbackend.xp, dtype))  # fmt: skip
        for v in (got.distortion, got.free_energy, got.inertia):
            assert_close(v, D.min(1), backend=dbackend, rtol=1e-6)
        assert_close(got.entropy, np.zeros(5), backend=dbackend, rtol=0, atol=0)

    def test_nll(self, dbackend):
        """``"nll"``: ``d_i/σ - t_i + (d/2)(log π + log σ) + log k``, from σ (a 0-d array)
        or from ``log_sigma``; with σ = inf and ``log_sigma = 1000`` the value uses the
        latter (finite); a point on a center contributes ``d_i/σ = 0`` without a
        floating-point exception."""
        from arbf._math.core.terms import sample_terms, select_objective

        X, C = self._data()
        D = _sqd(X, C)
        d = D.min(1)
        xp = dbackend.xp
        Xb, Cb = dbackend.asarray(X), dbackend.asarray(C)
        for sigma in (1.7, 1e300):
            t = logsumexp(-(D - d[:, None]) / sigma, axis=1)
            ref = d / sigma - t + 0.5 * 2 * (math.log(math.pi) + math.log(sigma)) + math.log(2)
            terms = sample_terms(Xb, Cb, sigma, kind="softmax", xp=xp)
            s_arr = dbackend.asarray(np.asarray(sigma))
            with np.errstate(all="raise"):
                for s, ls in (
                    (s_arr, None),
                    (sigma, None),
                    (dbackend.asarray(np.inf), dbackend.asarray(np.log(sigma))),
                ):
                    got = select_objective(terms, "nll", s, n_features=2, n_clusters=2, xp=xp,
                                           log_sigma=ls)  # fmt: skip
                    assert_close(got, ref, backend=dbackend, rtol=1e-12, atol=1e-12)

    def test_reduce_terms(self, dbackend):
        """``"none"``: ``w_i ℓ_i``; ``"sum"``: ``Σ w_i ℓ_i``; ``"mean"``: over ``Σ w_i``
        (over n without weights); anything else is a ValueError."""
        from arbf._math.core.terms import reduce_terms

        xp = dbackend.xp
        loss, w = np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.0, 2.0])
        lb, wb = dbackend.asarray(loss), dbackend.asarray(w)
        for weights, wn in ((None, np.ones(3)), (wb, w)):
            assert_close(reduce_terms(lb, weights, "none", xp=xp), loss * wn, backend=dbackend)
            assert_close(reduce_terms(lb, weights, "sum", xp=xp), np.sum(loss * wn),
                         backend=dbackend)  # fmt: skip
            assert_close(reduce_terms(lb, weights, "mean", xp=xp),
                         np.sum(loss * wn) / np.sum(wn), backend=dbackend)  # fmt: skip
        with pytest.raises(ValueError, match="reduction must be"):
            reduce_terms(lb, None, "avg", xp=xp)


class TestWeightedRelocation:
    """Empty clusters relocated with sample weights, against scikit-learn's Lloyd from the
    same init (a mutation run found the weighted update of the relocation untested: with
    unit weights ``x w`` and ``x / w`` agree)."""

    @pytest.mark.parametrize("fast", [True, False])
    @pytest.mark.parametrize("max_iter", [1, 2, 5])
    def test_two_empty_clusters(self, dbackend, fast, max_iter):
        from sklearn.cluster import KMeans

        rng = np.random.default_rng(3)
        X = np.concatenate([rng.normal(0, 1, (20, 2)), rng.normal(8, 1, (20, 2))])
        w = rng.uniform(0.2, 3.0, 40)
        C0 = np.array([[0.0, 0.0], [8.0, 8.0], [100.0, 100.0], [-50.0, 40.0]])  # 2 empty
        sk = KMeans(4, init=C0, n_init=1, max_iter=max_iter, algorithm="lloyd", tol=0)
        sk.fit(X, sample_weight=w)
        with arbf.config_context(fast_paths=fast):
            res = arbf.kmeans(
                dbackend.asarray(X), 4, init=dbackend.asarray(C0), n_init=1,
                max_iter=max_iter, tol=0.0, sample_weight=dbackend.asarray(w),
            )  # fmt: skip
        assert_close(res.centers, sk.cluster_centers_, backend=dbackend, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(dbackend.to_numpy(res.labels), sk.labels_)
        assert res.inertia == pytest.approx(sk.inertia_, rel=1e-12)
