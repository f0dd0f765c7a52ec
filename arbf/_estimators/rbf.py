"""The scikit-learn-style ``RBFKMeans`` estimator. (To be implemented.)"""

from __future__ import annotations

__all__ = ["RBFKMeans"]


class RBFKMeans:
    """RBF K-Means estimator (placeholder)."""
