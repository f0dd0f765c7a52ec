"""Drivers of the RBF relaxation: fixed-σ training (A2/A3) and σ-annealing (A4).

(To be implemented.)
"""

from __future__ import annotations

from typing import Any

__all__ = ["rbf_kmeans", "anneal"]


def rbf_kmeans(X: Any, init: Any, /, *, sigma: float, kind: str = "softmax", **kwargs: Any):  # noqa: ANN201
    raise NotImplementedError


def anneal(X: Any, init: Any, /, *, kind: str = "softmax", schedule: Any = None, **kwargs: Any):  # noqa: ANN201
    raise NotImplementedError
