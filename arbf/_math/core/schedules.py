r"""Temperature schedules (host NumPy): the one geometric schedule.

:math:`\sigma_t = \sigma_0 (\sigma_{T-1}/\sigma_0)^{t/(T-1)}`, :math:`t = 0, \dots, T-1`
(``np.geomspace``: both ends exact).  Every σ schedule of the library — the default
annealing levels, the mini-batch σ decay, the network layers' schedules and the
reproduction's grids — is this one.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["geometric"]


def geometric(start: float, end: float, n: int) -> np.ndarray:
    """``n`` temperatures falling (or rising) geometrically from ``start`` to ``end``
    (float64, both ends exact; ``[start]`` when ``n == 1``)."""
    start, end = float(start), float(end)
    if not (start > 0 and end > 0 and math.isfinite(start) and math.isfinite(end)):
        raise ValueError(f"schedule bounds must be positive and finite, got {start}, {end}")
    if n < 1:
        raise ValueError(f"a schedule needs at least one temperature, got n={n}")
    return np.geomspace(start, end, int(n)) if n > 1 else np.asarray([start])
