r"""Responsibilities :math:`r_{ij}` of the normalised Gaussian RBF network (SPEC §1).

With squared distances :math:`D_{ij} = \lVert x_i - \mu_j\rVert^2` and temperature σ (σ
divides the squared distance; a Gaussian of width :math:`s` is :math:`\sigma = 2s^2`), the
scores are :math:`z_{ij} = -D_{ij}/\sigma` and each row is mapped to the simplex by

- ``"softmax"``: :math:`r_i = \operatorname{softmax}(z_i)`, always max-shifted, i.e.
  computed from the gaps :math:`G_{ij} = D_{ij} - \min_l D_{il} \ge 0` as
  :math:`e^{-G_{ij}/\sigma} / \sum_l e^{-G_{il}/\sigma}` (never :math:`e^{-D/\sigma}` raw);
- ``"entmax15"``: :math:`r_{ij} = [z_{ij}/2 - \tau_i]_+^2` (exact, sparse);
- ``"hard"`` (and σ = 0 for every kind): the one-hot of :math:`\operatorname{argmin}_j
  D_{ij}`, ties to the lowest index.

:func:`from_distances` maps one chunk of distances and :func:`responsibilities` walks
the data in chunks (the reference; the public, validated function is
:func:`arbf.responsibilities`).  No host sync.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ..._backend import Array, device_of
from ..._chunking import chunk_rows, iter_chunks
from .distances import sq_distances, sq_norms
from .entmax import entmax15_sqrt

__all__ = [
    "from_distances",
    "gaps",
    "onehot",
    "responsibilities",
    "score_sigma",
    "soft_from_gaps",
]


def onehot(labels: Array, k: int, *, dtype: Any, xp: ModuleType) -> Array:
    """``(n, k)`` one-hot matrix of integer ``labels`` in ``dtype``."""
    ks = xp.arange(k, dtype=labels.dtype, device=device_of(labels))
    return xp.astype(labels[:, None] == ks[None, :], dtype)


def gaps(D: Array, *, xp: ModuleType) -> Array:
    """``G_ij = D_ij - min_l D_il`` (>= 0, exactly 0 at the row minimum)."""
    G = D - xp.min(D, axis=1, keepdims=True)
    return xp.clip(G, 0.0, None)


_SCORE_FLOOR = 2.0**20


def score_sigma(sigma: Any, dtype: Any, *, xp: ModuleType) -> Any:
    """σ as it divides the gaps in ``dtype``: clamped to ``[smallest normal, largest
    finite]`` of ``dtype`` (a Python float stays a float; a 0-d array is clipped).

    So the scores ``-G/σ`` never meet a σ that under- or overflows the dtype: a σ below
    the smallest normal number acts as that number (rows differ from the exact σ → 0
    limit only through gaps below about 100 times it, e.g. 1e-36 in float32 -- far below
    the rounding of the squared distances themselves), and a σ beyond the largest finite
    number gives scores that round to 0 (uniform rows), as the exact σ does.
    """
    fi = xp.finfo(dtype)
    lo, hi = float(fi.smallest_normal), float(fi.max)
    if isinstance(sigma, int | float):
        return min(max(float(sigma), lo), hi)
    return xp.clip(sigma, lo, hi)


def soft_from_gaps(
    G: Array, *, sigma: Any, kind: str, xp: ModuleType, inv_sigma: Any = None
) -> tuple[Array, Array]:
    """Soft responsibilities from the gaps of one chunk, for ``sigma > 0``.

    Returns ``(R, aux)``: for ``"softmax"`` ``aux = log sum_l exp(-G_il/σ)`` (>= 0, one
    per row); for ``"entmax15"`` ``aux = sqrt(R)`` (so that ``R**1.5 = aux**3`` with no
    ``sqrt(0)`` in the autodiff graph).  σ enters through :func:`score_sigma`; a caller
    that has ``1/σ`` for a σ already in the dtype's range passes it as ``inv_sigma``
    (then the scores are a product, whose gradient in σ cannot meet ``σ**2 = 0``).
    """
    s = sigma if inv_sigma is not None else score_sigma(sigma, G.dtype, xp=xp)
    # scores below -2**20 are 0 for both maps (softmax: e^-1e6 = 0; entmax-1.5: far
    # below the support): the gaps are capped there, so no division overflows
    if isinstance(s, float):
        cap = min(s * _SCORE_FLOOR, float(xp.finfo(G.dtype).max))
    else:
        cap = xp.minimum(s * _SCORE_FLOOR, xp.finfo(G.dtype).max)
    z = xp.minimum(G, cap) / (-s) if inv_sigma is None else -xp.minimum(G, cap) * inv_sigma
    if kind == "softmax":
        e = xp.exp(z)  # the row minimum contributes exp(0) = 1: no underflow to 0/0
        s = xp.sum(e, axis=1, keepdims=True)
        return e / s, xp.log(s[:, 0])
    if kind == "entmax15":
        u = entmax15_sqrt(z, xp=xp)
        return u * u, u
    raise ValueError(f"no soft responsibilities for kind {kind!r}")


def from_distances(D: Array, *, sigma: float, kind: str, xp: ModuleType) -> Array:
    """Responsibilities of one chunk of squared distances ``D`` (``n_c x k``).

    ``kind`` is ``"softmax"``, ``"entmax15"`` or ``"hard"``; ``sigma == 0`` means hard
    for every kind.  Pure array operations, no host sync (safe under ``jax.jit``).
    """
    if sigma == 0 or kind == "hard":
        return onehot(xp.argmin(D, axis=1), D.shape[1], dtype=D.dtype, xp=xp)
    R, _ = soft_from_gaps(gaps(D, xp=xp), sigma=sigma, kind=kind, xp=xp)
    return R


def responsibilities(
    X: Array, C: Array, *, sigma: float, kind: str, xp: ModuleType, working_memory: Any = None
) -> Array:
    """Responsibilities of ``C`` for every row of ``X`` (``n x k``), over chunks."""
    rows = chunk_rows(X, C.shape[0], xp=xp, working_memory=working_memory)
    c_sq = sq_norms(C, xp=xp)
    out = [
        from_distances(
            sq_distances(X[a:b, ...], C, xp=xp, c_sq=c_sq), sigma=sigma, kind=kind, xp=xp
        )
        for a, b in iter_chunks(X.shape[0], rows)
    ]
    return out[0] if len(out) == 1 else xp.concat(out, axis=0)
