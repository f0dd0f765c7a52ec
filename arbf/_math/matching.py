"""Optimal one-to-one matching of centers and the centroid discrepancy (SPEC §1).

(To be implemented.)
"""

from __future__ import annotations

from typing import Any

from .._backend import Array

__all__ = ["centroid_discrepancy", "linear_assignment"]


def centroid_discrepancy(centers: Any, reference: Any, /) -> Array:
    """d_j = ‖μ_j − c*_{π(j)}‖ with π the optimal (Hungarian) matching."""
    raise NotImplementedError
