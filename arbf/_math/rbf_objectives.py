"""The smooth objectives L_σ and F_σ and the analytic gradient of F_σ (SPEC §1).

(To be implemented.)
"""

from __future__ import annotations

from typing import Any

from .._backend import Array

__all__ = ["soft_distortion", "free_energy", "center_gradient"]


def soft_distortion(X: Any, centers: Any, /, *, sigma: float, kind: str = "softmax",
                    sample_weight: Any = None, working_memory: float | None = None) -> Array:
    """L_σ(μ) = Σ_i w_i Σ_j r_ij D_ij."""
    raise NotImplementedError


def free_energy(X: Any, centers: Any, /, *, sigma: float, kind: str = "softmax",
                sample_weight: Any = None, working_memory: float | None = None) -> Array:
    """F_σ(μ) = Σ_i w_i (Σ_j p_ij D_ij − σ H(p_i))."""
    raise NotImplementedError


def center_gradient(X: Any, centers: Any, /, *, sigma: float, kind: str = "softmax",
                    sample_weight: Any = None, working_memory: float | None = None) -> Array:
    """∇_μ F_σ = 2 Σ_i w_i r_ij (μ_j − x_i)."""
    raise NotImplementedError
