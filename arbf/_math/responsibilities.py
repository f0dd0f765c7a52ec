"""Responsibilities r_ij of the normalised Gaussian RBF network (SPEC §1).

(To be implemented.)
"""

from __future__ import annotations

from typing import Any

from .._backend import Array

__all__ = ["responsibilities"]


def responsibilities(
    X: Any,
    centers: Any,
    /,
    *,
    sigma: float,
    kind: str = "softmax",
    working_memory: float | None = None,
) -> Array:
    """Row-wise responsibilities of ``centers`` for ``X`` at temperature ``sigma``."""
    raise NotImplementedError
