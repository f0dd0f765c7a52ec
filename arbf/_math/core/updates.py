r"""Center updates from the statistics of a pass: the one place each formula is written.

With the sums :math:`s_j = \sum_i w_i r_{ij} x_i` and masses :math:`N_j = \sum_i w_i
r_{ij}` of a pass (hard or soft responsibilities):

- the gradient of the free energy (Lemma 1),
  :math:`\nabla_{\mu_j} F_\sigma = 2\sum_i w_i r_{ij}(\mu_j - x_i) = 2(N_j\mu_j - s_j)`;
- the soft Lloyd (fixed-point) step :math:`\mu_j \leftarrow s_j / N_j`, which is the
  gradient step with :math:`\eta_j = 1/(2N_j)` (Theorem 2; ``lr="lloyd"``), evaluated in
  that simplified form so the two are equal exactly; a float ``lr`` gives
  :math:`\mu - \mathrm{lr}\,\nabla F_\sigma`;
- the mini-batch step with running masses :math:`M_j`,
  :math:`\mu_j \leftarrow (M_j\mu_j + s^B_j)/(M_j + N^B_j)`, the gradient step with
  :math:`\eta_j = 1/(2(M_j + N^B_j))`.

A center with no mass keeps its position.  Pure array operations, no host sync.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ..._backend import Array

__all__ = ["center_gradient", "running_mean_step", "safe_divide_centers", "step"]


def safe_divide_centers(sums: Array, weights: Array, fallback: Array, *, xp: ModuleType) -> Array:
    """``sums_j / weights_j`` where ``weights_j > 0``, else ``fallback_j`` (no NaN)."""
    pos = weights > 0
    denom = xp.where(pos, weights, xp.ones_like(weights))
    return xp.where(pos[:, None], sums / denom[:, None], fallback)


def center_gradient(C: Array, mass: Array, sums: Array) -> Array:
    """:math:`\\nabla_{\\mu_j} F_\\sigma = 2 (N_j \\mu_j - s_j)`."""
    return 2.0 * (mass[:, None] * C - sums)


def step(C: Array, mass: Array, sums: Array, lr: float | str, *, xp: ModuleType) -> Array:
    """One update: the soft Lloyd step (``lr="lloyd"``, :math:`\\eta_j = 1/(2N_j)`) or
    the gradient step :math:`\\mu - \\mathrm{lr}\\,\\nabla F_\\sigma` (a float ``lr``)."""
    if isinstance(lr, str):
        return safe_divide_centers(sums, mass, C, xp=xp)
    return C - lr * center_gradient(C, mass, sums)


def running_mean_step(
    C: Array, counts: Array, mass: Array, sums: Array, lr: Any, *, xp: ModuleType
) -> tuple[Array, Array]:
    """The mini-batch step; returns ``(centers, counts + mass)``.

    ``lr="lloyd"``: :math:`(M_j\\mu_j + s^B_j)/(M_j + N^B_j)` (a center with no mass so far
    stays put); a float ``lr``: :math:`\\mu - \\mathrm{lr}\\,\\nabla F^B_\\sigma`.
    """
    new_counts = counts + mass
    if not isinstance(lr, str):
        return C - float(lr) * center_gradient(C, mass, sums), new_counts
    pos = new_counts > 0
    denom = xp.where(pos, new_counts, xp.ones_like(new_counts))
    moved = (counts[:, None] * C + sums) / denom[:, None]
    return xp.where(pos[:, None], moved, C), new_counts
