r"""The one fixed-point loop of the RBF relaxation at a fixed temperature.

Each iteration is one pass (:func:`arbf._math.seam.soft_stats`) and one update
(:func:`arbf._math.seam.step`): the soft Lloyd step
:math:`\mu_j \leftarrow \sum_i w_i r_{ij} x_i / N_j` (``lr="lloyd"``, Lemma 1 and
Theorem 2) or a gradient step of size ``lr`` on :math:`F_\sigma`.  It stops when the
squared center shift :math:`\sum_j \lVert\Delta\mu_j\rVert^2` is at most ``tol``
(absolute) or after ``max_iter`` iterations.  :func:`arbf.rbf_kmeans`, :func:`arbf.anneal`
and deterministic annealing run it.

One host synchronisation per iteration: the shift and :math:`F_\sigma`,
:math:`L_\sigma`, :math:`J` (at the centers *before* the update) come to the host
together; on Dask the new centers are evaluated once per iteration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import Array, materialize, to_host
from .._math import seam
from .._scaling import units

__all__ = ["FixedPoint", "fixed_point"]


@dataclass(frozen=True)
class FixedPoint:
    """One run of :func:`fixed_point`.

    ``last`` holds the host values ``[shift, F, L, J]`` of the last iteration; ``history``
    the per-iteration ``"center_shift"``, ``"free_energy"``, ``"soft_distortion"`` and
    ``"inertia"``.
    """

    centers: Array
    n_iter: int
    converged: bool
    last: np.ndarray
    history: dict[str, list[float]] = field(default_factory=dict)


def fixed_point(
    X: Array,
    C: Array,
    w: Array | None,
    *,
    xp: ModuleType,
    sigma: float,
    kind: str,
    max_iter: int,
    tol: float,
    lr: float | str,
    working_memory: Any = None,
    scale: float = 1.0,
    project: Callable[[Array, Array], Array] | None = None,
) -> FixedPoint:
    """Iterate the update at temperature ``sigma`` from ``C`` (see the module docstring).

    ``X`` may be data divided by a power of two ``scale`` (:mod:`arbf._scaling`);
    ``sigma`` and ``tol`` are then in those units, and the history (and ``last``) in the
    data's: shifts and objectives times ``scale**2``, the free energy assembled on the
    host in float64 as :math:`F = s^2 B - \\sigma_{data} T`
    (:func:`arbf._math.core.soft.free_energy_at`), so a σ or an objective beyond the
    working dtype's range is still recorded exactly.  ``project(C_new, C_old)``, when
    given, maps every update (spherical: onto the unit sphere).

    Raises :class:`FloatingPointError` on a non-finite update (a float ``lr`` too large).
    """
    names = ("center_shift", "free_energy", "soft_distortion", "inertia")
    hist: dict[str, list[float]] = {name: [] for name in names}
    host = np.zeros(4)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        st = seam.soft_stats(X, C, w, sigma=sigma, kind=kind, xp=xp, working_memory=working_memory)
        C_new = seam.step(C, st.mass, st.sums, lr, xp=xp)
        if project is not None:
            C_new = project(C_new, C)
        diff = C_new - C
        stats = xp.stack(
            [
                xp.sum(diff * diff),
                xp.astype(seam.free_energy_base(st, kind), C.dtype),
                xp.astype(st.entropy, C.dtype),
                xp.astype(st.soft_distortion, C.dtype),
                xp.astype(st.inertia, C.dtype),
            ]
        )
        C_new, stats = materialize(C_new, stats, xp=xp)  # Dask: one evaluation per iteration
        h = to_host(stats).astype(np.float64)
        shift = float(h[0])
        free = seam.free_energy_at(h[1], h[2], sigma=units(sigma, scale), scale=scale)
        host = np.asarray([units(shift, scale), free, units(h[3], scale), units(h[4], scale)])
        for name, value in zip(names, host, strict=True):
            hist[name].append(float(value))
        if not np.isfinite(shift):
            hint = (
                "; the data or centers overflow the working dtype"  # pragma: no mutate
                if isinstance(lr, str)  # pragma: no mutate
                else "; the learning rate lr is probably too large"  # pragma: no mutate
            )
            raise FloatingPointError(
                f"non-finite center update at sigma={units(sigma, scale):g} (iteration {it}){hint}"
            )
        C = C_new
        if shift <= tol:
            converged = True
            break
    return FixedPoint(C, it, converged, host, hist)
