"""Sparse probability maps: entmax-1.5 (exact, sort-based), α-entmax by bisection, sparsemax.

(To be implemented: see the docstrings of the public functions.)
"""

from __future__ import annotations

from typing import Any

from .._backend import Array

__all__ = ["entmax15", "entmax_bisect", "sparsemax"]


def entmax15(z: Any, /, *, axis: int = -1) -> Array:
    """Exact entmax-1.5 along ``axis`` (Peters, Niculae & Martins 2019)."""
    raise NotImplementedError


def entmax_bisect(z: Any, /, *, alpha: float = 1.5, axis: int = -1, n_iter: int = 50) -> Array:
    """α-entmax along ``axis`` by bisection on the threshold τ, any α > 1."""
    raise NotImplementedError


def sparsemax(z: Any, /, *, axis: int = -1) -> Array:
    """Sparsemax (α = 2) along ``axis`` (Martins & Astudillo 2016)."""
    raise NotImplementedError
