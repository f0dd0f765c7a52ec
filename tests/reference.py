"""Independent NumPy references for the mathematics of SPEC §1 (float64, brute force).

Written from the formulas, not from the library: distances by direct differences, the
softmax through ``scipy.special``, entmax-1.5 by the classic sort-based threshold (Peters,
Niculae & Martins 2019), the objectives and the updates by their definitions.  Tests
compare the library with these; a flipped operator in the library cannot hide behind a
copy of itself.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax

__all__ = [
    "entmax15",
    "free_energy",
    "gradient",
    "inertia",
    "lloyd_step",
    "minibatch_step",
    "responsibilities",
    "soft_centroids",
    "soft_distortion",
    "sqdist",
]


def sqdist(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """``D_ij = ||x_i - c_j||²`` by direct differences."""
    X, C = np.asarray(X, np.float64), np.asarray(C, np.float64)
    return ((X[:, None, :] - C[None, :, :]) ** 2).sum(-1)


def _weights(w: np.ndarray | None, n: int) -> np.ndarray:
    return np.ones(n) if w is None else np.asarray(w, np.float64)


def entmax15(z: np.ndarray) -> np.ndarray:
    """Exact entmax-1.5 of each row: ``p = [z/2 − τ]₊²`` with ``Σ p = 1``, τ from the
    sorted scores: the support is the largest ρ with ``τ(ρ) <= y_(ρ)``."""
    y = np.asarray(z, np.float64) / 2.0
    y = y - y.max(axis=-1, keepdims=True)
    out = np.empty_like(y)
    for idx in np.ndindex(y.shape[:-1]):
        row = y[idx]
        ys = np.sort(row)[::-1]
        tau = None
        for rho in range(1, row.size + 1):
            top = ys[:rho]
            mean = top.mean()
            var = (top * top).mean() - mean * mean
            t = mean - np.sqrt(max((1.0 - rho * var) / rho, 0.0))
            if t <= ys[rho - 1]:
                tau = t
        assert tau is not None
        out[idx] = np.clip(row - tau, 0.0, None) ** 2
    return out


def responsibilities(X: np.ndarray, C: np.ndarray, sigma: float, kind: str) -> np.ndarray:
    """Rows of responsibilities (softmax, entmax-1.5 of ``−D/σ``, or the hard one-hot)."""
    D = sqdist(X, C)
    if sigma == 0 or kind == "hard":
        R = np.zeros_like(D)
        R[np.arange(len(D)), np.argmin(D, axis=1)] = 1.0
        return R
    z = -D / sigma
    return softmax(z, axis=1) if kind == "softmax" else entmax15(z)


def inertia(X: np.ndarray, C: np.ndarray, w: np.ndarray | None = None) -> float:
    """``J = Σ_i w_i min_j D_ij``."""
    return float(np.sum(_weights(w, len(X)) * sqdist(X, C).min(axis=1)))


def soft_distortion(X, C, sigma: float, kind: str, w=None) -> float:
    """``L_σ = Σ_i w_i Σ_j r_ij D_ij``."""
    R = responsibilities(X, C, sigma, kind)
    return float(np.sum(_weights(w, len(X))[:, None] * R * sqdist(X, C)))


def free_energy(X, C, sigma: float, kind: str, w=None) -> float:
    """``F_σ``: ``−σ Σ w log Σ e^{−D/σ}`` (softmax), ``Σ w (Σ p D − σ H_{1.5}(p))``
    (entmax-1.5, Tsallis ``H(p) = 4/3 Σ (p − p^{3/2})``), ``J`` when hard."""
    ww = _weights(w, len(X))
    D = sqdist(X, C)
    if sigma == 0 or kind == "hard":
        return inertia(X, C, w)
    if kind == "softmax":
        return float(np.sum(ww * -sigma * logsumexp(-D / sigma, axis=1)))
    P = entmax15(-D / sigma)
    H = 4.0 / 3.0 * np.sum(P - P**1.5, axis=1)
    return float(np.sum(ww * (np.sum(P * D, axis=1) - sigma * H)))


def gradient(X, C, sigma: float, kind: str, w=None) -> np.ndarray:
    """``∇_{μ_j} F_σ = 2 Σ_i w_i r_ij (μ_j − x_i)``."""
    R = responsibilities(X, C, sigma, kind) * _weights(w, len(X))[:, None]
    X, C = np.asarray(X, np.float64), np.asarray(C, np.float64)
    return 2.0 * (R.sum(0)[:, None] * C - R.T @ X)


def soft_centroids(X, C, sigma: float, kind: str, w=None) -> tuple[np.ndarray, np.ndarray]:
    """``(m, N)``: soft centroids ``Σ w r x / N`` (a center with ``N = 0`` stays) and masses."""
    R = responsibilities(X, C, sigma, kind) * _weights(w, len(X))[:, None]
    N = R.sum(0)
    C = np.asarray(C, np.float64)
    m = np.where(
        N[:, None] > 0, (R.T @ np.asarray(X, np.float64)) / np.where(N > 0, N, 1)[:, None], C
    )
    return m, N


def lloyd_step(X, C, w=None) -> np.ndarray:
    """Lloyd's update (ties to the lowest index; an empty cell keeps its center)."""
    return soft_centroids(X, C, 0.0, "hard", w)[0]


def minibatch_step(Xb, C, counts, sigma: float, kind: str, w=None, lr="lloyd"):
    """The mini-batch step: ``(M μ + S)/(M + N)`` or ``μ − lr ∇F^B``; returns
    ``(centers, counts + N)``."""
    R = responsibilities(Xb, C, sigma, kind) * _weights(w, len(Xb))[:, None]
    N, S = R.sum(0), R.T @ np.asarray(Xb, np.float64)
    C = np.asarray(C, np.float64)
    if lr != "lloyd":
        return C - lr * 2.0 * (N[:, None] * C - S), counts + N
    M = counts + N
    out = np.where(M[:, None] > 0, (counts[:, None] * C + S) / np.where(M > 0, M, 1)[:, None], C)
    return out, M
