r"""The batched fixed-point loop of the RBF relaxation and the per-problem preparation.

B problems (``X`` of shape ``(B, n, d)``, centers ``(B, k, d)``) at once:
:func:`prepare_batched` rescales and centres every problem once (its own power of two,
mean and tolerance; :func:`arbf._drivers.engine.prepare` per problem), and
:func:`fixed_point_batched` runs :func:`arbf._drivers.fixed_point.fixed_point` of every
problem, one batched pass per iteration at a per-problem temperature, a problem that
has converged frozen while the others go on.  :mod:`.batched_rbf` (``rbf_kmeans``,
``anneal``) and :mod:`.batched_da` (deterministic annealing) run it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import Array, device_of, from_host, to_host
from .._math import seam
from .._math.metric import COSINE, check_metric, project, to_sphere
from .._scaling import scale_for, sigma_in
from .engine import Projection

__all__ = [
    "NAMES",
    "BatchedFixedPoint",
    "BatchedPrepared",
    "fixed_point_batched",
    "prepare_batched",
    "units",
]

#: The per-iteration history of a run, as :class:`arbf._drivers.fixed_point.FixedPoint`.
NAMES = ("center_shift", "free_energy", "soft_distortion", "inertia")


def units(value: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Host values of squared-distance quantities measured on data divided by
    ``scale[b]``, in the data's units (float64; :func:`arbf._scaling.units` per problem)."""
    with np.errstate(over="ignore"):
        return np.asarray(value, dtype=np.float64) * scale * scale


@dataclass(frozen=True)
class BatchedPrepared:
    """B problems rescaled and centred once: ``X[b] = x[b] / scale[b] - mean[b]``.

    ``scale`` holds each problem's power of two (:func:`arbf._scaling.scale_for` of the
    extent of its data and centers: 1 for ordinary data), ``tol`` each problem's
    absolute tolerance; ``project(C_new, C_old)``, when set by the metric, maps every
    update (``None``: Euclidean).

    ``half``: 1 for the Euclidean metric; 0.5 for ``metric="cosine"``, where ``X`` holds
    the unit rows (not rescaled, not centred: ``scale`` 1, ``mean`` 0), the centers are
    put on the sphere by :meth:`from_data` and ``project``, and the cosine problem at σ is
    the Euclidean one of the unit rows at ``σ / half`` with its objectives times ``half``
    (:mod:`arbf._math.metric`).
    """

    X: Array
    mean: Array
    scale: np.ndarray
    tol: np.ndarray
    project: Projection | None = None
    half: float = 1.0

    def _scale(self, like: Array, *, xp: ModuleType) -> Array:
        return from_host(self.scale, xp=xp, device=device_of(like), dtype=like.dtype)[
            :, None, None
        ]

    def to_data(self, C: Array, *, xp: ModuleType) -> Array:
        """``(B, k, d)`` centers back in the data's coordinates: ``(C + mean) * scale``."""
        C = C + self.mean
        return C if np.all(self.scale == 1.0) else C * self._scale(C, xp=xp)

    def from_data(self, C: Array, *, xp: ModuleType) -> Array:
        """``(B, k, d)`` centers into these coordinates: ``C / scale - mean`` (cosine:
        ``C`` row by row on the sphere, a zero row a ``ValueError`` naming ``init``)."""
        if self.half != 1.0:
            return to_sphere(C, xp=xp, name="init")
        if not np.all(self.scale == 1.0):
            C = C * (1.0 / self._scale(C, xp=xp))
        return C - self.mean

    def sigma_in(self, sigma: np.ndarray) -> np.ndarray:
        """Per-problem temperatures (data units) in these units (float64 ``(B,)``)."""
        pairs = zip(sigma, self.scale, strict=True)
        return np.asarray([sigma_in(float(s), float(c)) for s, c in pairs])


def prepare_batched(
    X: Array, C: Array, *, xp: ModuleType, tol: float, metric: str
) -> BatchedPrepared:
    """Rescale (per problem, with its centers ``C`` in the extent) and centre validated
    ``X`` ``(B, n, d)`` once; ``tol`` made absolute per problem.  One host sync.

    The one place the metric enters: ``"cosine"`` puts the rows on the sphere
    (:func:`arbf._math.metric.to_sphere`: a zero row is a ``ValueError`` naming the row
    and its problem; no rescaling, no centring, ``tol`` relative to the mean feature
    variance of the unit rows, as :func:`arbf._drivers.engine.sphere_prepared`), sets
    ``half`` to 0.5 and ``project`` to :func:`arbf._math.metric.project`.
    """
    B = X.shape[0]
    if check_metric(metric) == COSINE:
        U = to_sphere(X, xp=xp)
        tol_cos = np.zeros(B)
        if tol != 0:
            tol_cos = to_host(xp.mean(xp.var(U, axis=1), axis=-1)).astype(np.float64) * tol

        def on_sphere(C_new: Array, C_old: Array) -> Array:
            return project(C_new, C_old, xp=xp)

        zero = xp.zeros((B, 1, X.shape[2]), dtype=U.dtype, device=device_of(U))
        return BatchedPrepared(
            seam.batched_prepare(U, xp=xp), zero, np.ones(B), tol_cos, on_sphere, 0.5
        )
    ext = xp.stack(
        [xp.max(xp.abs(X), axis=(1, 2)), xp.astype(xp.max(xp.abs(C), axis=(1, 2)), X.dtype)]
    )
    extent = np.max(to_host(ext).astype(np.float64), axis=0)
    scale = np.asarray([scale_for(float(e), X.dtype, xp=xp) for e in extent])
    if np.all(scale == 1.0):
        Xs = X
    else:
        inv = from_host(1.0 / scale, xp=xp, device=device_of(X), dtype=X.dtype)
        Xs = X * inv[:, None, None]
    if tol == 0:
        tol_abs = np.zeros(B)
    else:
        var = xp.mean(xp.var(Xs, axis=1), axis=-1)
        tol_abs = to_host(var).astype(np.float64) * tol
    mean = seam.batched_mean_rows(Xs, xp=xp)
    Xc = seam.batched_prepare(Xs - mean, xp=xp)
    return BatchedPrepared(Xc, mean, scale, tol_abs)


@dataclass(frozen=True)
class BatchedFixedPoint:
    """One run of :func:`fixed_point_batched`: centers ``(B, k, d)``, ``n_iter`` and
    ``converged`` ``(B,)``, and per problem the history of
    :class:`arbf._drivers.fixed_point.FixedPoint` (lists of host floats)."""

    centers: Array
    n_iter: np.ndarray
    converged: np.ndarray
    history: list[dict[str, list[float]]] = field(default_factory=list)


def fixed_point_batched(
    X: Array,
    C: Array,
    w: Array | None,
    *,
    xp: ModuleType,
    sigma: np.ndarray,
    kind: str,
    max_iter: int,
    tol: np.ndarray,
    lr: float | str,
    scale: np.ndarray,
    working_memory: Any = None,
    project: Projection | None = None,
    counts: np.ndarray | None = None,
    running: np.ndarray | None = None,
) -> BatchedFixedPoint:
    r""":func:`arbf._drivers.fixed_point.fixed_point` of every problem at once.

    Problem ``b`` iterates at temperature ``sigma[b]`` (prepared units; all zero -- hard
    -- or all positive) the soft Lloyd step
    :math:`\mu_{bj} \leftarrow \sum_i w_{bi} r_{bij} x_{bi} / N_{bj}` (``lr="lloyd"``) or
    the gradient step :math:`\mu_{bj} \leftarrow \mu_{bj} - \eta\,2(N_{bj}\mu_{bj} -
    s_{bj})` from ``C[b]`` until :math:`\sum_j\lVert\Delta\mu_{bj}\rVert^2 \le`
    ``tol[b]`` (absolute), then stays frozen while the others go on.  Each iteration is
    one batched pass and one host sync of a ``(B, 5)`` array; the history is in the
    data's units (``scale[b]``), as the one-problem loop's.

    ``counts`` (soft only): problem ``b`` has its first ``counts[b]`` centers (the others
    stay where they are); ``running``: the problems that iterate (the others are frozen
    from the start, ``n_iter`` 0, empty history).

    Raises :class:`FloatingPointError` on a non-finite update of a running problem.
    """
    B = C.shape[0]
    hard = bool(np.all(sigma == 0))
    if not hard and not bool(np.all(sigma > 0)):
        raise ValueError("the temperatures of one level must be all 0 or all positive")
    run_kind = "hard" if hard else kind
    dev = device_of(X)
    sig_d = None if hard else from_host(sigma, xp=xp, device=dev, dtype=X.dtype)
    sig_data = units(sigma, scale)
    hist: list[dict[str, list[float]]] = [{name: [] for name in NAMES} for _ in range(B)]
    active = np.ones(B, dtype=bool) if running is None else np.array(running, dtype=bool)
    n_iter = np.zeros(B, dtype=np.int64)
    converged = np.zeros(B, dtype=bool)
    for it in range(1, max_iter + 1):
        if not active.any():
            break
        st = seam.batched_soft_stats(
            X, C, w, sigma=0.0 if hard else 1.0, sigmas=sig_d, kind=run_kind, xp=xp,
            working_memory=working_memory, counts=counts,
        )  # fmt: skip
        C_new = seam.batched_step(C, st.mass, st.sums, lr, xp=xp)
        if project is not None:
            C_new = project(C_new, C)
        diff = C_new - C
        stats = xp.stack(
            [
                xp.sum(diff * diff, axis=(1, 2)),
                xp.astype(seam.free_energy_base(st, run_kind), C.dtype),
                xp.astype(st.entropy, C.dtype),
                xp.astype(st.soft_distortion, C.dtype),
                xp.astype(st.inertia, C.dtype),
            ],
            axis=1,
        )
        h = to_host(stats).astype(np.float64)
        shift = h[:, 0]
        for b in np.flatnonzero(active):
            s = float(scale[b])
            free = seam.free_energy_at(h[b, 1], h[b, 2], sigma=float(sig_data[b]), scale=s)
            row = (shift[b] * s * s, free, h[b, 3] * s * s, h[b, 4] * s * s)
            for name, value in zip(NAMES, row, strict=True):
                hist[b][name].append(float(value))
            n_iter[b] = it
            if not np.isfinite(shift[b]):
                hint = (
                    "; the data or centers overflow the working dtype"  # pragma: no mutate
                    if isinstance(lr, str)  # pragma: no mutate
                    else "; the learning rate lr is probably too large"  # pragma: no mutate
                )
                raise FloatingPointError(
                    f"non-finite center update of problem {b} at sigma={sig_data[b]:g} "
                    f"(iteration {it}){hint}"
                )
        keep = from_host(active, xp=xp, device=dev)
        C = xp.where(keep[:, None, None], C_new, C)
        stop = active & (shift <= tol)
        converged |= stop
        active &= ~stop
        if not active.any():
            break
    return BatchedFixedPoint(C, n_iter, converged, hist)
