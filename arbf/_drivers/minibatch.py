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
import warnings
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import Array, device_of, from_host, to_host
from .._math import seam
from .._math.metric import project, to_sphere
from .._messages import emit, user_stacklevel
from .._scaling import in_units, rescale, sigma_in, units, unscale
from .engine import scale_data, tolerance
from .init import array_init, resolve_init
from .results import MiniBatchResult

__all__ = [
    "Reassigner",
    "final_labels",
    "init_size_rule",
    "minibatch_fit",
    "minibatch_step",
    "reassign_small",
]


def init_size_rule(init_size: int | None, batch_size: int, n_clusters: int, n: int) -> int:
    """scikit-learn's number of samples for the initialisation: ``3 * batch_size`` by
    default (``batch_size`` at most ``n``), ``3 * n_clusters`` when that is smaller than
    ``n_clusters``; a given ``init_size < n_clusters`` is replaced by
    ``3 * n_clusters`` with scikit-learn's ``RuntimeWarning``; at most ``n``."""
    if init_size is None:
        size = 3 * min(int(batch_size), n)
        if size < n_clusters:
            size = 3 * n_clusters
    elif init_size < n_clusters:
        warnings.warn(
            f"init_size={init_size} should be larger than n_clusters={n_clusters}. "
            "Setting it to min(3*n_clusters, n_samples)",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
        size = 3 * n_clusters
    else:
        size = int(init_size)
    return min(size, n)


class Reassigner:
    """When to reassign small clusters (scikit-learn's schedule): after every
    ``10 * n_clusters`` samples seen, and at any step that starts with an empty center
    (zero accumulated weight).  ``since`` counts the samples since the last time."""

    def __init__(self, n_clusters: int, since: int = 0) -> None:
        self.n_clusters = int(n_clusters)
        self.since = int(since)

    def due(self, batch_n: int, counts: np.ndarray) -> bool:
        """Count a batch of ``batch_n`` samples; whether this step reassigns."""
        self.since += int(batch_n)
        if bool((counts == 0).any()) or self.since >= 10 * self.n_clusters:
            self.since = 0
            return True
        return False


def reassign_small(
    Xb: Array,
    C: Array,
    counts_h: np.ndarray,
    rng: np.random.Generator,
    *,
    ratio: float,
    xp: ModuleType,
    verbose: bool = False,
    name: str = "MiniBatchKMeans",
) -> tuple[Array, np.ndarray, int]:
    r"""Random reassignment of small clusters (scikit-learn's rule; Sculley 2010).

    The centers whose accumulated weight :math:`M_j` is below ``ratio`` times the
    largest, :math:`M_j < \text{ratio}\cdot\max_l M_l` (at most half the batch: the
    lightest ones), are moved onto as many distinct samples of the batch ``Xb``, drawn
    uniformly, and their weight is set to the smallest weight of the centers kept (not 0,
    so they are not reassigned again at once).  A duplicate or dead center thus gets a
    second chance.  The heaviest center is always kept, so the minimum exists (a
    ``ratio > 1`` would otherwise move every center; scikit-learn 1.9 raises there).
    Host-side on the ``k``-vector; returns ``(C, counts_h, n_moved)``
    (``C`` itself when nothing moves).
    """
    if not ratio > 0 or counts_h.size == 0:
        return C, counts_h, 0
    to = counts_h < ratio * counts_h.max()
    to[int(np.argmax(counts_h))] = False  # the heaviest stays (only ratio > 1 reaches it)
    cap = int(0.5 * Xb.shape[0])
    if int(to.sum()) > cap:
        to[np.argsort(counts_h, kind="stable")[cap:]] = False
    m = int(to.sum())
    if m == 0:
        return C, counts_h, 0
    pick = np.asarray(rng.choice(Xb.shape[0], size=m, replace=False), dtype=np.int64)
    emit(verbose, "[%s] Reassigning %d cluster centers.", name, m)
    C_h = np.array(to_host(C), copy=True)
    C_h[np.flatnonzero(to)] = to_host(seam.dense_rows(Xb, pick, xp=xp))
    counts_h = counts_h.copy()
    counts_h[to] = counts_h[~to].min()
    return from_host(C_h, xp=xp, device=device_of(C), dtype=C.dtype), counts_h, m


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
    working_memory: Any = None,
    cosine: bool = False,
) -> tuple[Array, Array, seam.SoftStats]:
    r"""One mini-batch step; returns ``(centers, counts, batch_stats)``.

    ``batch_stats`` are the statistics of the batch at the *old* centers
    (:class:`arbf._math.core.soft.SoftStats`: sums, masses, :math:`L_\sigma`,
    :math:`F_\sigma`, J).  ``sigma == 0`` or ``kind == "hard"`` gives hard (K-Means)
    responsibilities.  With ``lr="lloyd"`` the new centers are
    :math:`(M_j \mu_j + S_j^B)/(M_j + N_j^B)` (a center with no mass so far stays put);
    with a float ``lr`` they are :math:`\mu_j - \text{lr}\cdot 2 (N_j^B\mu_j - S_j^B)`
    (:func:`arbf._math.core.updates.running_mean_step`).  No host sync (lazy on Dask,
    safe under ``jax.jit`` for a fixed σ).

    ``cosine``: ``Xb`` and ``C`` are unit rows and σ, ``lr`` and the objectives are the
    cosine metric's (:mod:`arbf._math.metric`): the Euclidean step at ``2 sigma`` (a float
    ``lr`` halved), its centers projected onto the sphere — the online spherical K-Means
    update :math:`\mu_j \leftarrow (M_j\mu_j + S^B_j)/\lVert M_j\mu_j + S^B_j\rVert` —
    and the batch objectives halved.
    """
    if cosine:
        sigma, lr = 2.0 * sigma, lr if isinstance(lr, str) else lr / 2
    st = seam.soft_stats(Xb, C, wb, sigma=sigma, kind=kind, xp=xp, working_memory=working_memory)
    C_new, new_counts = seam.running_mean_step(C, counts, st.mass, st.sums, lr, xp=xp)
    if cosine:
        C_new = project(C_new, C, xp=xp)
        st = st._replace(
            soft_distortion=st.soft_distortion / 2,
            free_energy=st.free_energy / 2,
            inertia=st.inertia / 2,
        )
    return C_new, new_counts, st


def minibatch_fit(
    X: Array,
    n_clusters: int,
    w: Array | None,
    rng: np.random.Generator,
    *,
    xp: ModuleType,
    sigma: float,
    sigma_end: float | None,
    kind: str,
    lr: Any,
    init: Any,
    n_init: int,
    init_size: int | None,
    batch_size: int,
    max_iter: int,
    tol: float,
    max_no_improvement: int | None,
    reassignment_ratio: float,
    working_memory: Any,
    verbose: bool,
    name: str,
    cosine: bool,
) -> MiniBatchResult:
    """Fit centers on validated ``X`` by mini-batch steps (scikit-learn's driver).

    Every option is a required keyword: the estimators validate them and pass them all
    (no second set of defaults to drift from theirs).

    Initialisation: ``n_init`` candidate initialisations (:func:`arbf._drivers.init.
    resolve_init`) on a subsample of ``init_size`` rows (default:
    :func:`init_size_rule`), the one with the lowest inertia on that subsample kept.
    Then ``max_iter * n // batch_size`` steps on batches drawn with replacement by the
    host Generator, with random reassignment of small clusters
    (:func:`reassign_small`, ``reassignment_ratio > 0``, on :class:`Reassigner`'s
    schedule), stopping early on ``tol`` or ``max_no_improvement``.  With ``sigma_end``
    σ falls geometrically over the steps (:func:`arbf._math.core.schedules.geometric`).
    One host sync per step.  A sparse ``X`` stays sparse (batches are CSR row subsets).

    ``X`` and the centers are divided by an exact power of two
    (:func:`arbf._drivers.engine.scale_data`) when their squared distances would leave
    the dtype; σ, the centers and the history are in the data's units.  ``cosine``: ``X``
    holds unit rows (spherical mini-batch K-Means, see :func:`minibatch_step`); the
    initial centers are normalised.
    """
    n = X.shape[0]
    dev = device_of(X)
    scale = scale_data(X, array_init(init, n_clusters, X, xp=xp), xp=xp)
    X = rescale(X, scale)
    batch_size = min(int(batch_size), n)
    if init_size is None:
        init_size = init_size_rule(None, batch_size, n_clusters, n)
    init_size = min(max(int(init_size), n_clusters), n)
    tol_abs = tolerance(X, float(tol), xp=xp) if tol > 0 else 0.0

    if init_size < n:
        idx_h = rng.choice(n, size=init_size, replace=False)
        X_init = seam.take_rows(X, idx_h, xp=xp)
        w_init = None if w is None else xp.take(w, from_host(idx_h, xp=xp, device=dev), axis=0)
    else:
        X_init, w_init = X, w
    make_init = resolve_init(
        init, n_clusters, X=unscale(X_init, scale), Xc=X_init, mean=None, w=w_init, rng=rng,
        xp=xp, scale=scale, working_memory=working_memory,
    )  # fmt: skip
    best_C: Array | None = None
    best_J = math.inf
    for r in range(n_init):
        emit(verbose, "Init %d/%d with method %s", r + 1, n_init, init)
        C = make_init()
        if cosine:
            C = to_sphere(C, xp=xp, name="init")
        J = math.inf
        if n_init > 1 or verbose:  # scikit-learn prints the line for one init too
            J = float(to_host(seam.inertia(X_init, C, w_init, xp=xp)))
            emit(verbose, "Inertia for init %d/%d: %s", r + 1, n_init, J)
        if best_C is None or J < best_J:
            best_C, best_J = C, J
    assert best_C is not None
    C = best_C
    counts = xp.zeros((n_clusters,), dtype=X.dtype, device=dev)
    counts_h = np.zeros(n_clusters)
    schedule = Reassigner(n_clusters)

    n_steps = max(1, (int(max_iter) * n) // batch_size)
    sigmas = (
        seam.geometric(sigma, sigma_end, n_steps)
        if sigma_end is not None and sigma > 0
        else np.full(n_steps, float(sigma))
    )  # in the data's units; each step runs at sigma_in(s, scale)
    alpha = min(1.0, 2.0 * batch_size / (n + 1))
    ewa: float | None = None
    ewa_min = math.inf
    no_improvement = 0
    hist: dict[str, list[float]] = {"batch_inertia": [], "center_shift": [], "sigma": []}
    converged = False
    step = 0
    for step in range(n_steps):
        s = float(sigmas[step])
        idx_h = rng.integers(0, n, size=batch_size)
        Xb = seam.take_rows(X, idx_h, xp=xp)
        wb = None if w is None else xp.take(w, from_host(idx_h, xp=xp, device=dev), axis=0)
        due = reassignment_ratio > 0 and schedule.due(batch_size, counts_h)
        step_kind = "hard" if s == 0 else kind
        C_new, counts, st = minibatch_step(
            Xb, C, counts, wb, sigma=sigma_in(s, scale), kind=step_kind, lr=lr, xp=xp,
            working_memory=working_memory, cosine=cosine,
        )  # fmt: skip
        diff = C_new - C
        parts = [
            xp.astype(seam.free_energy_base(st, step_kind), C.dtype),
            xp.astype(st.entropy, C.dtype),
            xp.sum(diff * diff),
        ]
        if wb is not None:
            parts.append(xp.sum(wb))
        # the one host sync of the step: batch objective (F at sigma; J when hard),
        # squared center shift, batch weight, the accumulated weights
        host = to_host(xp.concat([xp.stack(parts), xp.astype(counts, C.dtype)])).astype(np.float64)
        counts_h = host[len(parts) :]
        wsum = float(host[3]) if wb is not None else float(batch_size)
        # the stopping rule in the rescaled units (a value beyond float64 in the data's
        # units must not stop it); the history in the data's
        free = seam.free_energy_at(host[0], host[1], sigma=sigma_in(s, scale))
        batch_obj = free / max(wsum, np.finfo(float).tiny)
        shift = float(host[2])
        if due:
            C_new, counts_h, moved = reassign_small(
                Xb, C_new, counts_h, rng, ratio=reassignment_ratio, xp=xp, verbose=verbose,
                name=name,
            )  # fmt: skip
            if moved:
                counts = from_host(counts_h, xp=xp, device=dev, dtype=X.dtype)
                diff = C_new - C
                shift = float(to_host(xp.sum(diff * diff)))
        C = C_new
        if not np.isfinite(shift):
            cause = (
                "the data or centers overflow the working dtype"
                if isinstance(lr, str)
                else f"the learning rate lr={lr:g} is probably too large"
            )
            raise FloatingPointError(
                f"non-finite center update at step {step} (sigma={s:g}): {cause}"
            )
        with np.errstate(over="ignore"):
            hist["batch_inertia"].append(units(batch_obj, scale))
        hist["center_shift"].append(units(shift, scale))
        hist["sigma"].append(s)
        if step == 0:
            emit(
                verbose, "Minibatch step %d/%d: mean batch inertia: %s", 1, n_steps,
                units(batch_obj, scale),
            )  # fmt: skip
            continue
        ewa = batch_obj if ewa is None else ewa * (1 - alpha) + batch_obj * alpha
        emit(
            verbose, "Minibatch step %d/%d: mean batch inertia: %s, ewa inertia: %s",
            step + 1, n_steps, units(batch_obj, scale), units(ewa, scale),
        )  # fmt: skip
        if tol_abs > 0 and shift <= tol_abs:
            emit(verbose, "Converged (small centers change) at step %d/%d", step + 1, n_steps)
            converged = True
            break
        if ewa < ewa_min:
            no_improvement, ewa_min = 0, ewa
        else:
            no_improvement += 1
        if max_no_improvement is not None and no_improvement >= max_no_improvement:
            emit(
                verbose, "Converged (lack of improvement in inertia) at step %d/%d",
                step + 1, n_steps,
            )  # fmt: skip
            converged = True
            break
    n_done = step + 1
    return MiniBatchResult(
        centers=unscale(C, scale),
        counts=counts,
        n_steps=n_done,
        n_iter=math.ceil(n_done * batch_size / n),
        converged=converged,
        history={k: np.asarray(v) for k, v in hist.items()},
    )


def final_labels(
    X: Array, C: Array, w: Array | None, *, xp: ModuleType, working_memory: Any
) -> tuple[Array, float]:
    """Nearest-center labels of all of ``X`` and the inertia (one pass, one sync), on
    data and centers rescaled alike (:func:`arbf._drivers.engine.scale_data`)."""
    scale = scale_data(X, C, xp=xp)
    labels, J = seam.assign_inertia(
        rescale(X, scale), rescale(C, scale), w, xp=xp, working_memory=working_memory
    )
    return labels, in_units(float(to_host(J)), scale)
