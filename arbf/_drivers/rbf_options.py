"""The options of the RBF drivers, shared by the one-problem front doors (:mod:`.rbf`)
and the batched ones (:mod:`.batched_rbf`): the update rule, the temperature schedule
and the bounds of the default schedule."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._backend import is_array, to_host
from .._math import seam
from .._validation import (
    NONE,
    Interval,
    Options,
    check_lr,
    check_param,
    check_sigma,
    real_scalar,
)

__all__ = [
    "MAX_LEVELS",
    "check_schedule",
    "check_schedule_bounds",
    "check_update",
    "schedule_from",
]

_UPDATES = ("fixed_point", "gradient")

#: Largest ``n_levels`` of a default schedule: the path alone holds
#: ``n_levels x n_clusters x n_features`` float64 values (a geometric schedule over six
#: decades with 10,000 levels already steps by 0.14 % per level).
MAX_LEVELS = 10_000


def check_update(update: Any, lr: Any) -> float | str:
    """``update`` and ``lr`` of the RBF drivers -> the step: ``"lloyd"`` (the fixed-point
    step, Theorem 2) for ``update="fixed_point"`` or ``lr="lloyd"``, else the float lr."""
    update = check_param("update", update, Options(*_UPDATES))
    lr = check_lr(lr)
    return "lloyd" if update == "fixed_point" else lr


def check_schedule(schedule: Any) -> np.ndarray:
    """A temperature schedule: a non-empty, 1-D, non-increasing sequence (or array) of
    finite σ ≥ 0 -> a host float64 array."""
    if is_array(schedule):
        sig = np.asarray(to_host(schedule), dtype=np.float64)
    elif isinstance(schedule, Sequence) and not isinstance(schedule, str | bytes):
        sig = np.asarray([check_sigma(s, name="schedule entries") for s in schedule])
    else:
        raise TypeError(f"schedule must be a sequence of temperatures, got {schedule!r}")
    if sig.ndim != 1:
        raise ValueError(f"schedule must be 1-D, got shape {sig.shape}")
    if sig.size == 0:
        raise ValueError("schedule must hold at least one temperature")
    for s in sig:
        check_sigma(float(s), name="schedule entries")
    if np.any(np.diff(sig) > 0):
        raise ValueError("schedule must be non-increasing (annealing lowers σ)")
    return sig.astype(np.float64)


def check_schedule_bounds(
    sigma_max: Any, sigma_min: Any, n_levels: Any
) -> tuple[float | None, float | None, int | None]:
    """``sigma_max``, ``sigma_min`` (positive or ``None``, ``sigma_min <= sigma_max``) and
    ``n_levels`` (in ``[1, MAX_LEVELS]`` or ``None``) of a default schedule."""
    bound = Interval(numbers.Real, 0, None, "neither")
    sigma_max = check_param("sigma_max", real_scalar(sigma_max, "sigma_max"), NONE, bound)
    sigma_min = check_param("sigma_min", real_scalar(sigma_min, "sigma_min"), NONE, bound)
    n_levels = check_param("n_levels", n_levels, NONE, Interval(numbers.Integral, 1, MAX_LEVELS))
    if sigma_max is not None and sigma_min is not None and sigma_min > sigma_max:
        raise ValueError(
            f"sigma_min must be <= sigma_max (annealing lowers σ), got sigma_min={sigma_min} "
            f"and sigma_max={sigma_max}"
        )
    return sigma_max, sigma_min, n_levels


def schedule_from(
    s_c: float,
    margin: float | None,
    sigma_max: float | None,
    sigma_min: float | None,
    n_levels: int | None,
) -> np.ndarray:
    """The default schedule from the host values it depends on (data units): the critical
    temperature ``s_c`` and the smallest margin at the initial centers (``None``: no
    centers); the bounds checked by :func:`check_schedule_bounds`."""
    if s_c == 0 and sigma_max is None and sigma_min is None:
        # constant data: every temperature gives the same (hard) answer
        return np.zeros(1)
    hi = sigma_max if sigma_max is not None else s_c
    if sigma_min is not None:
        lo = sigma_min
    else:
        lo = 1e-3 * s_c
        if margin is not None and np.isfinite(margin) and margin > 0:
            lo = min(lo, margin / 2)
    if lo > hi:  # a data-driven end above the given start: one level at the start
        lo = hi
    return seam.geometric(hi, lo, 30 if n_levels is None else n_levels)
