"""Segment sums, the pure way: ``onehot(labels)^T @ values``.

``out_j = Σ_{i : labels_i = j} values_i``.  Backends with a native scatter-add
(:mod:`arbf._math.kernels.segments`) get it through the seam; this is the reference and
the fallback.  It builds an ``n x k`` one-hot matrix, so callers pass one chunk at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from ..._backend import Array, device_of

__all__ = ["SegmentSum", "onehot_segment_sum", "resolve"]

#: ``segment_sum(values, labels, k) -> (k, d)`` for 2-D ``values``.
SegmentSum = Callable[[Array, Array, int], Array]


def onehot_segment_sum(values: Array, labels: Array, k: int, *, xp: ModuleType) -> Array:
    """``onehot(labels)^T @ values`` for 2-D ``values`` (``n x d``) -> ``k x d``."""
    ks = xp.arange(k, dtype=labels.dtype, device=device_of(labels))
    onehot = xp.astype(labels[:, None] == ks[None, :], values.dtype)
    return onehot.T @ values


def resolve(segment_sum: SegmentSum | None, xp: ModuleType) -> SegmentSum:
    """``segment_sum`` if given, else :func:`onehot_segment_sum` in ``xp``."""
    if segment_sum is not None:
        return segment_sum

    def pure(values: Any, labels: Any, k: int) -> Any:
        return onehot_segment_sum(values, labels, k, xp=xp)

    return pure
