"""Soft Lloyd and gradient steps of the RBF relaxation (SPEC §1, Lemma 1, Theorem 2).

(To be implemented.)
"""

from __future__ import annotations

from typing import Any

from .._backend import Array

__all__ = ["soft_lloyd_step", "gradient_step"]


def soft_lloyd_step(X: Any, centers: Any, /, *, sigma: float, kind: str = "softmax",
                    sample_weight: Any = None, working_memory: float | None = None) -> Array:
    """m_j = Σ_i w_i r_ij x_i / N_j."""
    raise NotImplementedError


def gradient_step(X: Any, centers: Any, /, *, sigma: float, kind: str = "softmax",
                  lr: Any = "lloyd", sample_weight: Any = None,
                  working_memory: float | None = None) -> Array:
    """μ_j − η_j ∇_{μ_j} F_σ, with η_j = 1/(2 N_j) when lr == "lloyd"."""
    raise NotImplementedError
