"""Dask routes of the compiled kernels: one task per row block.

The pure :func:`arbf._math.core.distances.lloyd_sums` on a Dask array builds about twenty
small tasks per row block (distances, argmin, the one-hot segment sum, the inertia), and
on a ``distributed`` cluster the per-task overhead then dominates.  Here each row block
runs the NumPy kernel (:func:`arbf._math.kernels.hard.lloyd_sums`: chunked BLAS
distances, float64 partial sums) in *one* task that returns the block's labels and its
``(sums, weights, inertia)`` partials packed in one vector; the partials are summed
across blocks by Dask's tree reduction.  Nothing of size ``n x k`` exists beyond one
block's chunked temporaries, and no data leaves the workers.  No host sync.

For Dask arrays of NumPy float32/float64 blocks with a single column chunk (the seam
checks that; CuPy-backed Dask arrays take the pure path).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import hard

__all__ = ["lloyd_sums", "nearest_labels"]


def _block(Xb: np.ndarray, Cb: np.ndarray, wb: np.ndarray | None = None) -> np.ndarray:
    """Labels, then sums (k*d), weights (k) and inertia of one row block, packed."""
    k, d = Cb.shape
    n_b = Xb.shape[0]
    out = np.zeros(n_b + k * (d + 2), dtype=np.float64)
    if n_b == 0:
        return out
    Xb = np.asarray(Xb)
    labels, sums, weights, inertia = hard.lloyd_sums(Xb, np.asarray(Cb), wb, working_memory=None)
    out[:n_b] = labels
    out[n_b : n_b + k * d] = sums.reshape(-1)
    out[n_b + k * d : n_b + k * (d + 1)] = weights
    out[n_b + k * (d + 1)] = inertia
    return out


def _labels_of(b: np.ndarray, m: int) -> np.ndarray:
    return b[: b.shape[0] - m].astype(np.int64)


def _stats_of(b: np.ndarray, m: int) -> np.ndarray:
    return b[b.shape[0] - m :][None, :]


def lloyd_sums(X: Any, C: Any, sample_weight: Any = None) -> tuple[Any, Any, Any, Any]:
    """``(labels, sums, weights, inertia)`` as :func:`arbf._math.core.distances.lloyd_sums`.

    ``labels`` is a Dask ``int64`` vector chunked like the rows of ``X``; the others are
    small Dask arrays in ``X.dtype`` (one block each).
    """
    import dask.array as da

    k, d = C.shape
    m = k * (d + 2)
    Cd = C if isinstance(C, da.Array) else da.from_array(np.asarray(C))
    if Cd.numblocks != (1, 1):
        Cd = Cd.rechunk(Cd.shape)
    args: list[Any] = [X, "ij", Cd, "kj"]
    if sample_weight is not None:
        args += [sample_weight, "i"]
    packed = da.blockwise(
        _block,
        "i",
        *args,
        dtype=np.float64,
        concatenate=True,
        adjust_chunks={"i": lambda c: c + m},
        meta=np.empty((0,), dtype=np.float64),
    )
    rows = X.chunks[0]
    labels = da.map_blocks(
        _labels_of, packed, m, chunks=(rows,), dtype=np.int64, meta=np.empty((0,), np.int64)
    )
    parts = da.map_blocks(
        _stats_of,
        packed,
        m,
        chunks=((1,) * len(rows), (m,)),
        new_axis=[1],
        dtype=np.float64,
        meta=np.empty((0, 0), np.float64),
    )
    total = da.sum(parts, axis=0)
    sums = da.reshape(total[: k * d], (k, d)).astype(X.dtype)
    weights = total[k * d : k * (d + 1)].astype(X.dtype)
    inertia = total[k * (d + 1)].astype(X.dtype)
    return labels, sums, weights, inertia


def _labels_block(Xb: np.ndarray, Cb: np.ndarray) -> np.ndarray:
    if Xb.shape[0] == 0:
        return np.zeros((0,), dtype=np.int64)
    return hard.assign(np.asarray(Xb), np.asarray(Cb), working_memory=None)[0].astype(np.int64)


def nearest_labels(X: Any, C: Any) -> Any:
    """Index of the nearest row of ``C`` for every row of ``X`` (ties to the lowest), one
    task per row block (NumPy fast path inside, chunked over rows for any ``k``)."""
    import dask.array as da

    Cd = C if isinstance(C, da.Array) else da.from_array(np.asarray(C))
    if Cd.numblocks != (1, 1):
        Cd = Cd.rechunk(Cd.shape)
    return da.blockwise(
        _labels_block,
        "i",
        X,
        "ij",
        Cd,
        "kj",
        dtype=np.int64,
        concatenate=True,
        meta=np.empty((0,), dtype=np.int64),
    )
