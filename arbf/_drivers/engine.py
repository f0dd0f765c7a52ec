"""The Lloyd engine: K-Means on prepared data (scikit-learn's ``_kmeans_single_lloyd``).

Callers validate the data, then prepare them once (:func:`prepare`: an exact
power-of-two rescaling, :func:`scale_data`, so that no squared distance leaves the
dtype's range, then centring, :func:`center`), then run :func:`lloyd` —
one run from given centers — or :func:`best_of` — ``runs`` runs from an initialisation
function, the best kept.  The public :func:`arbf.kmeans`, k-means‖ (on its weighted
candidates), deterministic annealing (center swaps and the hand-over to Lloyd) and the
RBF annealer's finish (:func:`finish`) all run this engine; none re-enters a public
function.

One host synchronisation per iteration: the center shift, the inertia, "labels
unchanged" and the cluster weights come to the host together.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import Array, device_of, from_host, host_view, is_sparse, materialize, to_host
from .._math import seam
from .._messages import convergence_warning, emit
from .._scaling import in_units, rescale, scale_for, sigma_in, sigma_out, units, unscale
from .._validation import check_finite
from .results import KMeansResult

#: ``project(C_new, C_old)``: what the engine does to every set of updated centers.
Projection = Callable[[Array, Array], Array]

__all__ = [
    "Prepared",
    "best_of",
    "center",
    "finish",
    "halve_inertia",
    "lloyd",
    "prepare",
    "result_to_data",
    "scale_data",
    "sphere_prepared",
    "tolerance",
    "warn_fewer_clusters",
]


def tolerance(X: Array, tol: float, *, xp: ModuleType) -> float:
    """scikit-learn's absolute tolerance: ``tol * mean_f Var(X[:, f])`` (a host sync)."""
    if tol == 0:
        return 0.0
    return seam.mean_variance(X, xp=xp) * tol


def center(X: Array, *, xp: ModuleType) -> tuple[Array, Array]:
    """``(mean, X - mean)`` with the column means of ``X`` (scikit-learn centres the data
    before K-Means, for precision); on Dask the mean is computed once and kept.  Sparse
    data are not centred (:func:`arbf._math.seam.centre`: the mean is 0)."""
    return seam.centre(X, xp=xp)


def scale_data(
    X: Array,
    *others: Array | None,
    xp: ModuleType,
    finite_check: str | None = None,
    ext: float | None = None,
) -> float:
    """The power of two that data ``X`` (and ``others``: centers, an initialisation in
    the same units) are divided by before any distance is formed
    (:func:`arbf._scaling.scale_for` of their extent; ``1.0`` for all ordinary data).
    One host sync.

    ``finite_check`` (the name of ``X``, when its validation left out the finiteness
    check): the extent is the check -- ``max`` and ``min`` propagate NaN and inf, so a
    finite extent proves every entry finite, and a non-finite one runs
    :func:`arbf._validation.check_finite` for its error (one pass over ``X`` saved).
    ``ext``: that extent, where the caller already has it.
    """
    if ext is None:
        ext = seam.extent(X, *others, xp=xp)
    if finite_check is not None and not math.isfinite(ext):
        check_finite(X, finite_check, xp)
    return scale_for(ext, X.dtype, xp=xp)


@dataclass(frozen=True)
class Prepared:
    """Validated data, rescaled and centred once: ``X = x / scale - mean``.

    ``scale`` is a power of two (:func:`scale_data`), so the rescaling is exact and the
    whole computation on ``X`` is the original one in other units: centers map back by
    :meth:`to_data`, squared distances and objectives by ``scale**2``
    (:meth:`to_units`), a temperature σ is :meth:`sigma_in` here.  ``tol`` is the
    absolute tolerance (:func:`tolerance`) in these units.
    """

    X: Array
    mean: Array
    scale: float
    tol: float = 0.0
    offset: Array | None = None  # lazily centred: X is not centred, the kernels subtract this

    def to_data(self, C: Array) -> Array:
        """Centers from these coordinates back to the data's: ``(C + mean) * scale``."""
        return unscale(C + self.mean, self.scale)

    def from_data(self, C: Array) -> Array:
        """Centers from the data's coordinates to these: ``C / scale - mean``."""
        return rescale(C, self.scale) - self.mean

    def to_units(self, value: float, *, what: str = "inertia") -> float:
        """A host value of a squared-distance quantity, in the data's units
        (:func:`arbf._scaling.in_units`)."""
        return in_units(value, self.scale, what=what)

    def sigma_in(self, sigma: float) -> float:
        """A temperature (data units) in these units (:func:`arbf._scaling.sigma_in`)."""
        return sigma_in(sigma, self.scale)

    def sigma_out(self, sigma: float) -> float:
        """A temperature in these units back in the data's units."""
        return sigma_out(sigma, self.scale)


def prepare(
    X: Array,
    *,
    xp: ModuleType,
    tol: float = 0.0,
    others: tuple[Array | None, ...] = (),
    lazy: bool = False,
    finite_check: str | None = None,
) -> Prepared:
    """Rescale (:func:`scale_data`, with ``others`` in the extent) and centre validated
    ``X`` once; the tolerance ``tol`` (relative, :func:`tolerance`) is made absolute on
    the rescaled data.  Ordinary data (``scale == 1``) are centred exactly as before:
    nothing is copied beyond ``X - mean``.  ``lazy`` (the host kernels centre chunk by
    chunk, :func:`arbf._math.seam.lazily_centred`): ordinary data are not copied at all,
    ``Prepared.X`` is ``X`` itself and ``Prepared.offset`` the mean to subtract.
    ``finite_check``: as in :func:`scale_data`."""
    host_mean = host_var = None
    if lazy:  # the extent, the means (and the variance) in one sweep (the host route)
        ext, host_mean, host_var = seam.extent_mean_variance(X, *others, xp=xp, variance=tol != 0)
    else:
        ext = seam.extent(X, *others, xp=xp)
    scale = scale_data(X, *others, xp=xp, finite_check=finite_check, ext=ext)
    Xs = rescale(X, scale)
    if host_var is not None and scale == 1.0:  # the sweep's value: mean_variance(X)
        tol_abs = host_var * tol
    else:
        tol_abs = tolerance(Xs, tol, xp=xp)
    if lazy and scale == 1.0 and not is_sparse(Xs):
        if host_mean is None:
            (mean,) = materialize(seam.mean_rows(Xs, xp=xp), xp=xp)
        else:
            mean = host_mean
        return Prepared(Xs, mean, scale, tol_abs, offset=mean)
    if scale == 1.0 or is_sparse(Xs):
        mean, Xc = center(Xs, xp=xp)
    else:  # Xs is a fresh array: centre it in place where the namespace can
        (mean,) = materialize(seam.mean_rows(Xs, xp=xp), xp=xp)
        Xc = Xs
        Xc -= mean
    return Prepared(Xc, mean, scale, tol_abs)


def sphere_prepared(U: Array, *, xp: ModuleType, tol: float = 0.0) -> Prepared:
    """Unit rows ``U`` (the cosine metric, :func:`arbf._math.metric.to_sphere`) as
    prepared data: not centred (cosine is not translation invariant: the mean is 0) and
    not rescaled (every entry lies in [-1, 1]); ``tol`` made absolute on ``U``."""
    d = U.shape[1]
    if is_sparse(U):
        mean = np.zeros(d, dtype=U.dtype)
    else:
        mean = xp.zeros((d,), dtype=U.dtype, device=device_of(U))
    return Prepared(U, mean, 1.0, tolerance(U, tol, xp=xp))


def result_to_data(res: KMeansResult, prep: Prepared) -> KMeansResult:
    """A :class:`KMeansResult` of the engine on ``prep.X`` in the data's units: centers
    mapped back, inertia and history multiplied by ``prep.scale**2``."""
    centers = prep.to_data(res.centers)
    if prep.scale == 1.0:
        return dataclasses.replace(res, centers=centers)
    s = prep.scale
    inertia = prep.to_units(res.inertia)  # warns when beyond float64's range
    with np.errstate(over="ignore"):  # then the history is inf too (said once, above)
        history = {
            name: units(np.asarray(v, dtype=np.float64), s) for name, v in res.history.items()
        }
    return dataclasses.replace(
        res,
        centers=centers,
        inertia=inertia,
        history=history,
        n_init_inertia=[units(v, s) for v in res.n_init_inertia],
    )


def _relocate_empty(
    X: Array,
    w: Array | None,
    C_old: Array,
    sums: Array,
    weights: Array,
    labels: Array,
    empty: np.ndarray,
    *,
    xp: ModuleType,
    working_memory: Any,
    offset: Array | None = None,
) -> tuple[Array, Array]:
    """Move each empty cluster onto one of the samples farthest from their center.

    scikit-learn's rule: the ``n_empty`` samples with the largest
    ``||x_i - c_{labels_i}||^2`` become the new centers (largest first); their weight and
    mass are moved out of their old cluster.  Nothing moves when every sample sits on its
    center (more clusters than distinct samples).  Host-side on k x d arrays (rare path).
    """
    dist = seam.labelled_distances(
        X, C_old, labels, xp=xp, working_memory=working_memory, shift=offset
    )
    n_empty = int(empty.shape[0])
    if not float(to_host(xp.max(dist))) > 0:
        # more clusters than distinct samples: relocating is pointless (scikit-learn)
        return sums, weights
    far = seam.largest(dist, n_empty, xp=xp).astype(np.int64)
    dev = device_of(X)
    far_d = from_host(far, xp=xp, device=dev)
    rows_far = seam.dense_rows(X, far, xp=xp)
    if offset is not None:
        rows_far = rows_far - offset  # the rows of the centred data, to the bit
    Xf = to_host(rows_far).astype(np.float64)
    wf = np.ones(n_empty) if w is None else to_host(xp.take(w, far_d, axis=0)).astype(np.float64)
    lf = to_host(xp.take(labels, far_d, axis=0)).astype(np.int64)
    sums_h = to_host(sums).astype(np.float64, copy=True)
    weights_h = to_host(weights).astype(np.float64, copy=True)
    for e, j in enumerate(empty):
        old = lf[e]
        sums_h[old] -= Xf[e] * wf[e]
        sums_h[j] = Xf[e] * wf[e]
        weights_h[j] = wf[e]
        weights_h[old] -= wf[e]
    return (
        from_host(sums_h, xp=xp, device=dev, dtype=X.dtype),
        from_host(weights_h, xp=xp, device=dev, dtype=X.dtype),
    )


def _park_weightless(C: Array, weights: Array, *, xp: ModuleType) -> Array:
    """Put centers whose cluster still has no weight on the heaviest cluster's center.

    That happens after relocation when the moved samples have zero weight, or when
    nothing could be relocated; scikit-learn does the same (rather than leave them at the
    origin or where they were).
    """
    weights_h = to_host(weights)
    if not (weights_h == 0).any():
        return C
    heavy = int(np.argmax(weights_h))
    return xp.where((weights > 0)[:, None], C, C[heavy : heavy + 1, ...])


def lloyd(
    X: Array,
    w: Array | None,
    C0: Array,
    *,
    xp: ModuleType,
    max_iter: int,
    tol: float,
    verbose: bool = False,
    working_memory: Any = None,
    algorithm: str = "auto",
    offset: Array | None = None,
    project: Projection | None = None,
    inertia_scale: float = 1.0,
    warm: bool = False,
) -> KMeansResult:
    r"""One Lloyd run on prepared (validated, centred) ``X`` from centers ``C0``.

    Stops on strict label convergence, or when the squared center shift is ``<= tol``
    (absolute: :func:`tolerance`), or after ``max_iter`` iterations; unless labels
    converged strictly, a final assignment makes labels match centers.  Empty clusters
    are relocated to the farthest samples.  The result is in ``X``'s coordinates.
    ``algorithm`` chooses how the assignment is computed (:func:`seam.lloyd_stepper`:
    Lloyd's pass or a bound method, with the same labels), not what it is.  With
    ``offset`` (where :func:`seam.lazily_centred`) the data are ``X - offset``, centred by
    the kernels chunk by chunk: the same bits as a centred copy, without making one.
    ``project(C_new, C_old)``, when given, maps every updated set of centers (spherical
    K-Means: onto the unit sphere, :func:`arbf._math.metric.project`).  The verbose lines
    print the inertia times ``inertia_scale`` (spherical K-Means: ``0.5``, so that they show
    :math:`\sum_i w_i (1 - \cos)` like the result).  ``warm``: ``C0`` is near a fixed
    point (a hand-over, a refinement: :func:`seam.lloyd_stepper`; the same result).
    """
    stepper = seam.lloyd_stepper(
        X, w, n_clusters=C0.shape[0], algorithm=algorithm, max_iter=max_iter, xp=xp,
        working_memory=working_memory, shift=offset, warm=warm,
    )  # fmt: skip
    C = C0
    labels_old: Array | None = None
    inertias: list[float] = []
    shifts: list[float] = []
    strict = converged = False
    i = 0
    for i in range(max_iter):
        labels, sums, weights, inert, changed = stepper.step(C)
        C_new = seam.safe_divide_centers(sums, weights, C, xp=xp)
        if project is not None:
            C_new = project(C_new, C)
        diff = C_new - C
        stats = [xp.sum(diff * diff), xp.astype(inert, C.dtype)]
        # labels on the host (NumPy, CPU torch): compared there, without a device pass
        h_labels = host_view(labels, floats_only=False)
        same_host = None
        if changed is not None:  # a bound method counted the labels that changed
            same_host = labels_old is not None and changed == 0
        elif labels_old is not None:
            h_old = host_view(labels_old, floats_only=False)
            if h_labels is not None and h_old is not None:
                same_host = bool(np.array_equal(h_labels, h_old))
            else:
                stats.append(xp.astype(xp.all(labels == labels_old), C.dtype))
        host_vec = xp.concat([xp.stack(stats), xp.astype(weights, C.dtype)])
        # Dask: evaluate this iteration's graph once (a tree reduction of the sums, counts
        # and inertia over the row chunks) and keep the new centers (k x d) and the labels
        # (distributed, n) as concrete chunks, so iteration t+1 does not re-run 1..t.
        C_new, labels, sums, weights, host_vec = materialize(
            C_new, labels, sums, weights, host_vec, xp=xp
        )
        # the one host sync of the iteration: shift, inertia, "labels unchanged", weights
        host = to_host(host_vec)
        shift, inertia_i = float(host[0]), float(host[1])
        if same_host is not None:
            same = same_host
        else:
            same = labels_old is not None and bool(host[2])
        empty = np.flatnonzero(host[len(stats) :] == 0)
        if empty.size:  # rare: relocate empty clusters, then recompute the shift
            sums, weights = _relocate_empty(
                X, w, C, sums, weights, labels, empty, xp=xp, working_memory=working_memory,
                offset=offset,
            )  # fmt: skip
            C_new = seam.safe_divide_centers(sums, weights, C, xp=xp)
            if project is not None:
                C_new = project(C_new, C)
            C_new = _park_weightless(C_new, weights, xp=xp)
            diff = C_new - C
            shift = float(to_host(xp.sum(diff * diff)))
        inertias.append(inertia_i)
        shifts.append(shift)
        emit(verbose, "Iteration %d, inertia %s.", i, inertia_i * inertia_scale)
        C = C_new
        if same:
            emit(verbose, "Converged at iteration %d: strict convergence.", i)
            strict = converged = True
            break
        if shift <= tol:
            emit(
                verbose, "Converged at iteration %d: center shift %s within tolerance %s.",
                i, shift, tol,
            )  # fmt: skip
            converged = True
            break
        labels_old = labels
    if strict:
        # the labels are the nearest-center labels of C: their inertia equals seam.inertia
        labels, inert = stepper.converged(C, labels)
    else:
        labels = labels_old = None  # freed before the final pass allocates its labels
        labels, inert = stepper.final(C)
        labels, inert = materialize(labels, inert, xp=xp)
    return KMeansResult(
        centers=C,
        labels=labels,
        inertia=float(to_host(inert)),
        n_iter=i + 1,
        converged=converged,
        history={"inertia": np.asarray(inertias), "center_shift": np.asarray(shifts)},
    )


def same_clustering(a: Array, b: Array) -> bool:
    """Whether two labelings are the same partition up to a renaming of the labels."""
    la, lb = to_host(a).astype(np.int64), to_host(b).astype(np.int64)
    pairs = np.unique(la * (int(max(la.max(), lb.max())) + 1) + lb)
    return bool(pairs.size == np.unique(la).size == np.unique(lb).size)


def best_of(
    X: Array,
    w: Array | None,
    init: Callable[[], Array],
    runs: int,
    *,
    xp: ModuleType,
    max_iter: int,
    tol: float,
    verbose: bool = False,
    working_memory: Any = None,
    algorithm: str = "auto",
    offset: Array | None = None,
    project: Projection | None = None,
    inertia_scale: float = 1.0,
) -> KMeansResult:
    """``runs`` Lloyd runs on prepared ``X`` (``X - offset``: :func:`lloyd`), each from
    ``init()``; the best is kept.

    A later run replaces the best only if its inertia is lower *and* it is a different
    partition (scikit-learn's rounding guard).  ``n_init_inertia`` lists every run's.
    """
    best: KMeansResult | None = None
    all_inertia: list[float] = []
    for _ in range(runs):
        C0 = init()
        emit(verbose, "Initialization complete")
        out = lloyd(
            X, w, C0, xp=xp, max_iter=max_iter, tol=tol, verbose=verbose,
            working_memory=working_memory, algorithm=algorithm, offset=offset,
            project=project, inertia_scale=inertia_scale,
        )  # fmt: skip
        all_inertia.append(out.inertia)
        if best is None or (
            out.inertia < best.inertia and not same_clustering(out.labels, best.labels)
        ):
            best = out
    assert best is not None
    return dataclasses.replace(best, n_init_inertia=all_inertia)


def warn_fewer_clusters(labels: Array, n_clusters: int, *, stacklevel: int = 3) -> None:
    """scikit-learn's warning when fewer distinct clusters than ``n_clusters`` came out."""
    # labels are in [0, n_clusters): a bincount is several times cheaper than np.unique
    distinct = int(np.count_nonzero(np.bincount(to_host(labels), minlength=n_clusters)))
    if distinct < n_clusters:
        warnings.warn(
            f"Number of distinct clusters ({distinct}) found smaller than n_clusters "
            f"({n_clusters}). Possibly due to duplicate points in X.",
            convergence_warning(),
            stacklevel=stacklevel,
        )


def finish(
    prep: Prepared,
    C: Array,
    w: Array | None,
    *,
    xp: ModuleType,
    working_memory: Any,
    algorithm: str = "auto",
    project: Projection | None = None,
) -> tuple[Array, KMeansResult]:
    """Hard Lloyd from ``C`` to an exact K-Means fixed point (``tol=0``, at most 300
    iterations) on prepared data: the annealers' hand-over (``algorithm`` as
    :func:`lloyd`).

    Returns the final centers in the prepared coordinates and the :class:`KMeansResult`
    in the data's own coordinates and units.
    """
    km = lloyd(
        prep.X, w, C, xp=xp, max_iter=300, tol=0.0, working_memory=working_memory,
        algorithm=algorithm, project=project, warm=True,
    )  # fmt: skip
    warn_fewer_clusters(km.labels, C.shape[0], stacklevel=4)
    km = dataclasses.replace(km, n_init_inertia=[km.inertia])
    return km.centers, result_to_data(km, prep)


def halve_inertia(res: KMeansResult) -> KMeansResult:
    r"""A spherical run's result in the cosine convention: the engine's inertia
    :math:`\sum_i w_i\lVert\hat x_i - \mu_{l_i}\rVert^2` is twice
    :math:`\sum_i w_i (1 - \cos(x_i, \mu_{l_i}))`."""
    hist = dict(res.history)
    if "inertia" in hist:
        hist["inertia"] = hist["inertia"] / 2
    return dataclasses.replace(
        res,
        inertia=res.inertia / 2,
        history=hist,
        n_init_inertia=[v / 2 for v in res.n_init_inertia],
    )
