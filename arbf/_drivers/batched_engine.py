"""The batched Lloyd run and the problems' random generators: the pieces every batched
driver uses (:mod:`.batched` for K-Means and the seedings, :mod:`.batched_rbf` for the
RBF fixed point and annealing, :mod:`.batched_da` for deterministic annealing), below
all of them so that none imports another's front door."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import Array, device_of, from_host, to_host
from .._math import seam
from .._messages import emit
from .._validation import check_random_state
from .engine import Projection, _park_weightless, _relocate_empty
from .results import BatchedKMeansResult

__all__ = ["lloyd_batched", "problem_generators"]


def problem_generators(random_state: Any, B: int) -> list[np.random.Generator]:
    """One NumPy Generator per problem.

    An int, a Generator or ``None`` seeds a parent Generator (as
    :func:`arbf._validation.check_random_state`) and the problems get its ``spawn(B)``
    children; a sequence of B ints or Generators gives the problems' own.
    """
    if isinstance(random_state, Sequence) and not isinstance(random_state, str | bytes):
        if len(random_state) != B:
            raise ValueError(
                f"random_state as a sequence must hold one seed per problem (B={B}); "
                f"got {len(random_state)}"
            )
        return [check_random_state(r) for r in random_state]
    return list(check_random_state(random_state).spawn(B))


def lloyd_batched(
    X: Array,
    w: Array | None,
    C0: Array,
    *,
    xp: ModuleType,
    max_iter: int,
    tol: np.ndarray,
    verbose: bool,
    working_memory: Any,
    project: Projection | None = None,
    inertia_scale: float = 1.0,
) -> BatchedKMeansResult:
    """One Lloyd run of every problem on centred ``X`` from ``C0`` (each stops on its own).
    ``project(C_new, C_old)``, when given, maps every updated set of ``(B, k, d)`` centers
    (spherical K-Means: onto the unit sphere), as :func:`arbf._drivers.engine.lloyd`'s;
    the verbose lines print the inertia times ``inertia_scale`` (spherical: ``0.5``)."""
    B = C0.shape[0]
    C = C0
    active = np.ones(B, dtype=bool)
    n_iter = np.zeros(B, dtype=np.int64)
    converged = np.zeros(B, dtype=bool)
    inertias: list[list[float]] = [[] for _ in range(B)]
    shifts: list[list[float]] = [[] for _ in range(B)]
    labels_old: Array | None = None
    for i in range(max_iter):
        labels, sums, weights, inert = seam.batched_lloyd_sums(
            X, C, w, xp=xp, working_memory=working_memory
        )
        C_new = seam.batched_safe_divide_centers(sums, weights, C, xp=xp)
        if project is not None:
            C_new = project(C_new, C)
        diff = C_new - C
        cols = [xp.sum(diff * diff, axis=(1, 2)), xp.astype(inert, C.dtype)]
        if labels_old is not None:
            cols.append(xp.astype(xp.all(labels == labels_old, axis=1), C.dtype))
        host = to_host(xp.concat([xp.stack(cols, axis=1), xp.astype(weights, C.dtype)], axis=1))
        shift, inertia_i = host[:, 0].astype(np.float64), host[:, 1]
        same = host[:, 2] > 0 if labels_old is not None else np.zeros(B, dtype=bool)
        wts = host[:, len(cols) :]
        for b in np.flatnonzero(active & (wts == 0).any(axis=1)):  # rare: empty clusters
            empty = np.flatnonzero(wts[b] == 0)
            sums_b, weights_b = _relocate_empty(
                X[b, ...], None if w is None else w[b, ...], C[b, ...], sums[b, ...],
                weights[b, ...], labels[b, ...], empty, xp=xp, working_memory=working_memory,
            )  # fmt: skip
            new_b = seam.safe_divide_centers(sums_b, weights_b, C[b, ...], xp=xp)
            if project is not None:
                new_b = project(new_b, C[b, ...])
            new_b = _park_weightless(new_b, weights_b, xp=xp)
            d_b = new_b - C[b, ...]
            shift[b] = float(to_host(xp.sum(d_b * d_b)))
            C_new = xp.concat([C_new[:b, ...], new_b[None, ...], C_new[b + 1 :, ...]], axis=0)
        moving = active.copy()
        for b in np.flatnonzero(moving):
            inertias[b].append(float(inertia_i[b]))
            shifts[b].append(float(shift[b]))
            n_iter[b] = i + 1
        emit(verbose, "Iteration %d, inertia %s.", i, inertia_i[moving] * inertia_scale)
        stop = moving & (same | (shift <= tol))
        converged |= stop
        active &= ~stop
        keep = from_host(moving, xp=xp, device=device_of(C))
        C = xp.where(keep[:, None, None], C_new, C)
        labels_old = labels
        if not active.any():
            emit(verbose, "All problems converged at iteration %d.", i)
            break
    labels, inert = seam.batched_assign_inertia(X, C, w, xp=xp, working_memory=working_memory)
    return BatchedKMeansResult(
        centers=C,
        labels=labels,
        inertia=to_host(inert).astype(np.float64),
        n_iter=n_iter,
        converged=converged,
        history={
            "inertia": [np.asarray(h) for h in inertias],
            "center_shift": [np.asarray(h) for h in shifts],
        },
    )
