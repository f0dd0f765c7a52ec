r"""Mini-batch K-Means and mini-batch RBF training (stochastic steps on :math:`F_\sigma`).

One step takes a batch :math:`B` and the running per-center masses
:math:`M_j = \sum_{t} N_j^{(t)}` (:math:`N_j^{(t)} = \sum_{i \in B_t} w_i r_{ij}`, hard
or soft responsibilities at the current centers) and moves every center along the batch
gradient :math:`\nabla_{\mu_j} F_\sigma^{B} = 2 (N_j^B \mu_j - S_j^B)`,
:math:`S_j^B = \sum_{i\in B} w_i r_{ij} x_i`, with the per-center step

.. math:: \eta_j = \frac{1}{2 (M_j + N_j^B)}, \qquad
          \mu_j \leftarrow \mu_j - \eta_j \nabla_{\mu_j} F_\sigma^{B}
          = \frac{M_j \mu_j + S_j^B}{M_j + N_j^B},

the mini-batch analogue of the Lloyd step (SPEC Theorem 2: with :math:`M_j = 0` it lands
exactly on the batch centroid).  With hard responsibilities (σ = 0) this is the update of
Sculley (2010) and of :class:`sklearn.cluster.MiniBatchKMeans`: every center is the
running mean of the samples it has been assigned.  A float ``lr`` uses the constant step
:math:`\eta_j = \text{lr}` instead.

The step (:func:`minibatch_step`) is pure array code with no host synchronisation; the
driver (:func:`minibatch_fit`) synchronises once per step for the early-stopping test
(scikit-learn's: exponentially weighted batch inertia, ``max_no_improvement``, and
``tol`` on the squared center shift relative to the mean feature variance).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import Array, device_of, from_host, to_host
from .._math.distances import assign_inertia
from .._math.objectives import inertia_impl
from .._math.rbf_objectives import SoftStats, soft_stats_impl
from .._validation import check_centers
from .init import kmeans_parallel_impl, kmeans_plusplus_impl, random_init_impl
from .kmeans import _emit, _tolerance

__all__ = ["MiniBatchResult", "init_centers", "minibatch_fit", "minibatch_step"]


def minibatch_step(
    Xb: Array,
    C: Array,
    counts: Array,
    wb: Array | None,
    *,
    sigma: float,
    kind: str,
    lr: Any = "lloyd",
    xp: ModuleType,
    working_memory: float | None = None,
) -> tuple[Array, Array, SoftStats]:
    r"""One mini-batch step; returns ``(centers, counts, batch_stats)``.

    ``batch_stats`` are the statistics of the batch at the *old* centers
    (:class:`arbf._math.rbf_objectives.SoftStats`: sums, masses, :math:`L_\sigma`,
    :math:`F_\sigma`, J).  ``sigma == 0`` or ``kind == "hard"`` gives hard (K-Means)
    responsibilities.  With ``lr="lloyd"`` the new centers are
    :math:`(M_j \mu_j + S_j^B)/(M_j + N_j^B)` (a center with no mass so far stays put);
    with a float ``lr`` they are :math:`\mu_j - \text{lr}\cdot 2 (N_j^B\mu_j - S_j^B)`.
    No host sync (lazy on Dask, safe under ``jax.jit`` for a fixed σ).
    """
    st = soft_stats_impl(Xb, C, wb, sigma=sigma, kind=kind, xp=xp, working_memory=working_memory)
    new_counts = counts + st.mass
    if isinstance(lr, str):
        pos = new_counts > 0
        denom = xp.where(pos, new_counts, xp.ones_like(new_counts))
        moved = (counts[:, None] * C + st.sums) / denom[:, None]
        C_new = xp.where(pos[:, None], moved, C)
    else:
        C_new = C - float(lr) * 2.0 * (st.mass[:, None] * C - st.sums)
    return C_new, new_counts, st


def init_centers(
    X: Array,
    n_clusters: int,
    w: Array | None,
    rng: np.random.Generator,
    *,
    init: Any,
    xp: ModuleType,
    working_memory: float | None = None,
) -> Array:
    """Initial centers from ``X`` by ``init`` ("k-means++", "k-means||", "random", an
    array or a callable ``init(X, n_clusters, random_state=rng)``)."""
    d = X.shape[1]
    dev = device_of(X)
    if isinstance(init, str):
        if init == "k-means++":
            return kmeans_plusplus_impl(
                X, n_clusters, w, rng, xp=xp, working_memory=working_memory
            )[0]
        if init == "k-means||":
            return kmeans_parallel_impl(
                X, n_clusters, w, rng, xp=xp, working_memory=working_memory
            )
        if init == "random":
            return random_init_impl(X, n_clusters, w, rng, xp=xp)[0]
        raise ValueError(
            "init must be 'k-means++', 'k-means||', 'random', an array or a callable, "
            f"got {init!r}"
        )
    if callable(init):
        init = init(X, n_clusters, random_state=rng)
    return check_centers(init, n_clusters, d, xp=xp, dtype=X.dtype, device=dev, like=X)


@dataclass
class MiniBatchResult:
    """What :func:`minibatch_fit` returns (host floats, arrays in the input namespace)."""

    centers: Array
    counts: Array
    n_steps: int
    n_iter: int
    converged: bool
    history: dict[str, np.ndarray] = field(default_factory=dict)


def _sigma_at(step: int, n_steps: int, sigma: float, sigma_end: float | None) -> float:
    """Geometric schedule from ``sigma`` to ``sigma_end`` over the steps (constant if None)."""
    if sigma_end is None or n_steps <= 1 or sigma == 0:
        return sigma
    return float(sigma * (sigma_end / sigma) ** (step / (n_steps - 1)))


def minibatch_fit(
    X: Array,
    n_clusters: int,
    w: Array | None,
    rng: np.random.Generator,
    *,
    xp: ModuleType,
    sigma: float = 0.0,
    sigma_end: float | None = None,
    kind: str = "hard",
    lr: Any = "lloyd",
    init: Any = "k-means++",
    n_init: int = 1,
    init_size: int | None = None,
    batch_size: int = 1024,
    max_iter: int = 100,
    tol: float = 0.0,
    max_no_improvement: int | None = 10,
    working_memory: float | None = None,
    verbose: bool = False,
) -> MiniBatchResult:
    """Fit centers on validated ``X`` by mini-batch steps (scikit-learn's driver).

    Initialisation: ``n_init`` candidate initialisations on a subsample of ``init_size``
    rows (default ``max(3 batch_size, 3 k)``, at most ``n``), the one with the lowest
    inertia on that subsample kept.  Then ``max_iter * n // batch_size`` steps on batches
    drawn with replacement by the host Generator, stopping early on ``tol`` or
    ``max_no_improvement``.  One host sync per step.
    """
    n = X.shape[0]
    dev = device_of(X)
    batch_size = min(int(batch_size), n)
    if init_size is None:
        init_size = max(3 * batch_size, 3 * n_clusters)
    init_size = min(max(int(init_size), n_clusters), n)
    tol_abs = _tolerance(X, float(tol), xp=xp) if tol > 0 else 0.0

    is_array = not isinstance(init, str) and not callable(init)
    best_C: Array | None = None
    best_J = math.inf
    if init_size < n:
        idx = from_host(rng.choice(n, size=init_size, replace=False), xp=xp, device=dev)
        X_init = xp.take(X, idx, axis=0)
        w_init = None if w is None else xp.take(w, idx, axis=0)
    else:
        X_init, w_init = X, w
    for _ in range(1 if is_array else n_init):
        C = init_centers(
            X_init, n_clusters, w_init, rng, init=init, xp=xp, working_memory=working_memory
        )
        if n_init > 1 and not is_array:
            J = float(to_host(inertia_impl(X_init, C, w_init, xp=xp)))
            if J < best_J:
                best_C, best_J = C, J
        else:
            best_C = C
    assert best_C is not None
    C = best_C
    counts = xp.zeros((n_clusters,), dtype=X.dtype, device=dev)

    n_steps = max(1, (int(max_iter) * n) // batch_size)
    alpha = min(1.0, 2.0 * batch_size / (n + 1))
    ewa: float | None = None
    ewa_min = math.inf
    no_improvement = 0
    hist: dict[str, list[float]] = {"batch_inertia": [], "center_shift": [], "sigma": []}
    converged = False
    step = 0
    for step in range(n_steps):
        s = _sigma_at(step, n_steps, sigma, sigma_end)
        idx_h = rng.integers(0, n, size=batch_size)
        idx = from_host(idx_h, xp=xp, device=dev)
        Xb = xp.take(X, idx, axis=0)
        wb = None if w is None else xp.take(w, idx, axis=0)
        C_new, counts, st = minibatch_step(
            Xb, C, counts, wb, sigma=s, kind=kind, lr=lr, xp=xp, working_memory=working_memory
        )
        diff = C_new - C
        parts = [xp.astype(st.free_energy, C.dtype), xp.sum(diff * diff)]
        if wb is not None:
            parts.append(xp.sum(wb))
        # the one host sync of the step: batch objective (F at sigma; J when hard),
        # squared center shift, batch weight
        host = to_host(xp.stack(parts))
        wsum = float(host[2]) if wb is not None else float(batch_size)
        C = C_new
        batch_obj = float(host[0]) / max(wsum, np.finfo(float).tiny)
        shift = float(host[1])
        if not np.isfinite(shift):
            raise FloatingPointError(
                f"non-finite center update at step {step} (sigma={s:g}); with a float lr "
                "the learning rate is probably too large"
            )
        hist["batch_inertia"].append(batch_obj)
        hist["center_shift"].append(shift)
        hist["sigma"].append(s)
        if step == 0:
            continue
        ewa = batch_obj if ewa is None else ewa * (1 - alpha) + batch_obj * alpha
        _emit(
            verbose,
            "Minibatch step %d/%d: mean batch inertia %.6g, ewa inertia %.6g",
            step + 1,
            n_steps,
            batch_obj,
            ewa,
        )
        if tol_abs > 0 and shift <= tol_abs:
            _emit(verbose, "Converged (small centers change) at step %d/%d", step + 1, n_steps)
            converged = True
            break
        if ewa < ewa_min:
            no_improvement, ewa_min = 0, ewa
        else:
            no_improvement += 1
        if max_no_improvement is not None and no_improvement >= max_no_improvement:
            _emit(verbose, "Converged (lack of improvement) at step %d/%d", step + 1, n_steps)
            converged = True
            break
    n_done = step + 1
    return MiniBatchResult(
        centers=C,
        counts=counts,
        n_steps=n_done,
        n_iter=math.ceil(n_done * batch_size / n),
        converged=converged,
        history={k: np.asarray(v) for k, v in hist.items()},
    )


def final_labels(
    X: Array, C: Array, w: Array | None, *, xp: ModuleType, working_memory: float | None
) -> tuple[Array, float]:
    """Nearest-center labels of all of ``X`` and the inertia (one pass, one sync)."""
    labels, J = assign_inertia(X, C, w, xp=xp, working_memory=working_memory)
    return labels, float(to_host(J))


def check_positive_int(name: str, value: Any, *, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
