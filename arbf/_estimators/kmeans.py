"""The scikit-learn-style ``KMeans`` estimator. (To be implemented.)"""

from __future__ import annotations

__all__ = ["KMeans"]


class KMeans:
    """K-Means estimator (placeholder)."""
