r"""Exact power-of-two rescaling: data whose squared distances would leave the dtype.

K-Means and the RBF relaxation are scale-equivariant: with data and centers divided by
:math:`s`, the labels and responsibilities are those of the original problem at
temperature :math:`\sigma/s^2`, the centers come back multiplied by :math:`s` and the
objectives by :math:`s^2`.  Squared distances are not range-proof: float32 data of size
``1e20`` square to ``1e40`` (beyond float32's ``3.4e38``), data of size ``1e-30`` to
``1e-60`` (below its smallest number).  So every front door rescales once, by a power of
two (exact: no rounding, unless an entry falls below the smallest normal number, where
it is negligible against the largest one), before any distance is formed:

- :func:`scale_for` picks :math:`s = 2^e` from the *extent* (the largest absolute
  entry) of the data, and of the centers where a function takes them: ``1`` while the
  extent lies within :math:`2^{\pm E/4}` (:math:`E` = 128 for float32, 1024 for
  float64: squared distances, and their sums over many samples, then stay far inside
  the range), so ordinary data are neither copied nor changed in any bit; else the
  extent divided by :math:`s` lies in ``[0.5, 1)``;
- :func:`rescale` divides by :math:`s` (a multiplication by :math:`2^{-e}`),
  :func:`unscale` multiplies back.

The extent itself is an operation (one host synchronisation): :func:`arbf._math.seam.extent`.
"""

from __future__ import annotations

import math
import warnings
from types import ModuleType
from typing import Any

import numpy as np

from ._backend import Array, is_traced, materialize, to_host

__all__ = [
    "check_finite_result",
    "check_representable",
    "in_units",
    "rescale",
    "scale_for",
    "sigma_in",
    "sigma_out",
    "units",
    "unscale",
]


def _max_exponent(xp: ModuleType, dtype: Any) -> int:
    """``E`` with ``2**(E-1) <= max < 2**E`` (128 for float32, 1024 for float64)."""
    return math.frexp(float(xp.finfo(dtype).max))[1]


def scale_for(extent: float, dtype: Any, *, xp: ModuleType) -> float:
    """The power of two :math:`s` to divide data of this ``extent`` (max ``|x|``) by.

    ``1.0`` when the extent is 0, not finite (a traced array: unknown) or within
    :math:`2^{\\pm E/4}`; otherwise :math:`2^e` with ``extent / s`` in ``[0.5, 1)``, ``e``
    kept within :math:`\\pm(E - 3)` so that :math:`s` and :math:`1/s` are normal numbers
    of ``dtype``.
    """
    if not (extent > 0 and math.isfinite(extent)):
        return 1.0
    e_max = _max_exponent(xp, dtype)
    e = math.frexp(extent)[1]  # extent = m 2**e, m in [0.5, 1)
    band = e_max // 4
    if -band <= e <= band:
        return 1.0
    e = min(max(e, -(e_max - 3)), e_max - 3)
    return math.ldexp(1.0, e)


def rescale(x: Array, scale: float) -> Array:
    """``x / scale`` (exact for a power of two); ``x`` itself when ``scale == 1``."""
    return x if scale == 1.0 else x * (1.0 / scale)


def unscale(x: Array, scale: float) -> Array:
    """``x * scale``; ``x`` itself when ``scale == 1``."""
    return x if scale == 1.0 else x * scale


def sigma_in(sigma: float, scale: float) -> float:
    """A temperature in the units of data divided by ``scale``: ``sigma / scale**2``
    (float64; a positive σ stays positive, so that it keeps its soft meaning)."""
    if sigma == 0 or scale == 1.0:
        return float(sigma)
    return max(float(sigma) / scale / scale, 5e-324)


def units(value: Any, scale: float) -> Any:
    """A host value (float or NumPy array) of a squared-distance quantity measured on
    data divided by ``scale``, in the data's units: ``value * scale**2`` in float64,
    ``±inf`` beyond float64's range (data beyond about ``1e154``), without warnings --
    documented where such values are returned."""
    if isinstance(value, np.ndarray):
        with np.errstate(over="ignore"):
            return value.astype(np.float64) * scale * scale
    return float(value) * scale * scale


def sigma_out(sigma: float, scale: float) -> float:
    """A temperature in the units of data divided by ``scale`` back in the data's."""
    return units(sigma, scale)


def in_units(value: float, scale: float, *, what: str = "inertia") -> float:
    """A host value of a squared-distance quantity measured on data divided by
    ``scale``, in the data's units: ``value * scale**2`` (float64).  A value beyond
    float64's range is ``inf``, with a :class:`RuntimeWarning` that says so."""
    out = float(value) * scale * scale
    if math.isinf(out) and math.isfinite(float(value)):
        warnings.warn(
            f"the {what} is {float(value):.6g} * 2**{2 * round(math.log2(scale))}, beyond "
            "float64's range: reported as inf (centers and labels are exact)",
            RuntimeWarning,
            stacklevel=3,
        )
    return out


def check_representable(value: float, dtype: Any, *, xp: ModuleType, what: str) -> None:
    """Raise a :class:`ValueError` naming ``what`` when the (float64) ``value`` of a
    result is outside the finite range of ``dtype``: the result cannot be returned in
    the input's dtype without becoming ``±inf``."""
    hi = float(xp.finfo(dtype).max)
    if not abs(value) <= hi:
        name = getattr(dtype, "name", None) or str(dtype).rsplit(".", 1)[-1]
        raise ValueError(
            f"{what} is {value:.6g}, beyond the range of {name} (largest finite "
            f"{hi:.4g}): it cannot be returned in the data's dtype; pass float64 data"
        )


def check_finite_result(x: Array, *, xp: ModuleType, what: str) -> Array:
    """``x`` (a small result: centers, a gradient) if every entry is finite, else a
    :class:`ValueError` naming ``what``: its true value is beyond the dtype's range.
    Traced arrays are returned unchecked."""
    if is_traced(x):
        return x
    (x,) = materialize(x, xp=xp)
    host = to_host(x)
    if not bool(np.all(np.isfinite(host))):
        name = getattr(x.dtype, "name", None) or str(x.dtype).rsplit(".", 1)[-1]
        raise ValueError(
            f"{what} is beyond the range of {name}: it cannot be returned in the data's "
            "dtype; pass float64 data (or, for a gradient step, a smaller lr)"
        )
    return x
