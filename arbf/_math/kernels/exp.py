"""A vectorisable ``exp`` for the compiled soft-statistics kernels.

``e^v = p · 2^e`` for ``v <= 0``: Cody–Waite reduction ``v = q ln 2 + r`` (two-part
``ln 2``), a Taylor polynomial for ``e^r`` (degree 13 in float64, 7 in float32) and the
exponent written directly into the bits of ``2^e`` — branch-free, so LLVM vectorises the
kernel loops that inline it.  Within 1 ulp of NumPy's ``exp`` over the whole range,
gradual underflow included (tested).  Must be compiled without reassociation, which would
merge the two parts of ``ln 2``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .runtime import lock

__all__ = ["FASTMATH", "compiled"]

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that q * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_TWO_M600 = 2.0**-600
# 1/i! for the Taylor polynomial of e^r, |r| <= ln(2)/2 (truncation error < 1e-17)
_E3, _E4, _E5, _E6, _E7, _E8, _E9, _E10, _E11, _E12, _E13 = (
    1.0 / math.factorial(i) for i in range(3, 14)
)


def _exp_parts_python(v):
    """``e^v = p · 2^e`` for ``v <= 0``: returns ``p`` and the float64 bit pattern of
    ``2^e`` (as int64), so a caller writes the bits, reads them back as a float and
    multiplies — branch-free, hence vectorised.  ``v = q ln 2 + r`` with
    ``q = round(v / ln 2)`` (Cody–Waite: the two-part ``ln 2`` keeps ``r`` exact to
    rounding), ``e^r`` by Horner.  Results below the normal range take ``2^-600`` into
    ``p`` first (gradual underflow, one rounding); ``v < -1100`` gives 0.  Must be
    compiled without reassociation, which would merge the two parts of ``ln 2``."""
    v = max(v, -1100.0)
    # np.floor (a float), not math.floor (an int64): AVX2 has no vector conversion
    # from float64 to int64, and that one conversion kept the loop scalar on such
    # processors (AMD Zen 3: 3.9 against 1.9 ns per exponential)
    q = np.floor(v * _LOG2E + 0.5)
    r = (v - q * _LN2_HI) - q * _LN2_LO
    p = _E12 + r * _E13  # Horner, highest degree first
    p = _E11 + r * p
    p = _E10 + r * p
    p = _E9 + r * p
    p = _E8 + r * p
    p = _E7 + r * p
    p = _E6 + r * p
    p = _E5 + r * p
    p = _E4 + r * p
    p = _E3 + r * p
    p = 0.5 + r * p
    p = 1.0 + r * p
    p = 1.0 + r * p
    low = q < -1000.0
    p = p * (_TWO_M600 if low else 1.0)
    # via int32 (a vector conversion on AVX2; |q| <= 1100), then widened
    bits = np.int64(np.int32(q + (600.0 if low else 0.0)) + np.int32(1023)) << 52
    return p, bits


_exp_parts: Any = None  # the compiled _exp_parts_python, set by compiled()

# float32: the same scheme in float32 arithmetic (16 lanes per AVX-512 vector)
_F_LOG2E = np.float32(1.4426950408889634)
_F_LN2_HI = np.float32(0.693359375)  # 8 significant bits: q * _F_LN2_HI is exact
_F_LN2_LO = np.float32(-2.12194440e-4)
_F_TWO_M64 = np.float32(2.0**-64)
_F_HALF = np.float32(0.5)
_F_ONE = np.float32(1.0)
# 1/i!, i = 2..7: truncation error < 6e-9 for |r| <= ln(2)/2
_F2, _F3, _F4, _F5, _F6, _F7 = (np.float32(1.0 / math.factorial(i)) for i in range(2, 8))


def _exp_parts32_python(v):
    """float32 version of :func:`_exp_parts_python` (``v <= 0``): ``(p, bits)`` with
    ``bits`` the float32 bit pattern (int32) of ``2^e``; results below the normal range
    take ``2^-64`` into ``p`` first; ``v < -104`` gives 0."""
    v = max(v, np.float32(-104.0))
    q = np.floor(v * _F_LOG2E + _F_HALF)
    r = (v - q * _F_LN2_HI) - q * _F_LN2_LO
    p = _F6 + r * _F7
    p = _F5 + r * p
    p = _F4 + r * p
    p = _F3 + r * p
    p = _F2 + r * p
    p = _F_ONE + r * p
    p = _F_ONE + r * p
    low = q < np.float32(-125.0)
    p = p * (_F_TWO_M64 if low else _F_ONE)
    bits = (np.int32(q + (np.float32(64.0) if low else np.float32(0.0))) + np.int32(127)) << 23
    return p, bits


_exp_parts32: Any = None  # compiled by compiled()


#: The flags every user of these helpers compiles with: no reassociation, which would
#: merge the two parts of ``ln 2``.
FASTMATH = {"contract", "nsz", "arcp"}

_inline: tuple[Any, Any] | None = None


def compiled(*, inline: bool = False) -> tuple[Any, Any]:
    """The compiled ``(exp_parts, exp_parts32)`` (jitted on first use).

    ``inline=True``: versions that numba inlines into the calling kernel (a call per
    element would keep the caller's loop from vectorising); the caller must itself be
    compiled with :data:`FASTMATH` (no reassociation), whose flags the inlined code
    takes."""
    global _exp_parts, _exp_parts32, _inline
    with lock:
        if _exp_parts32 is None:
            import numba

            exp_jit = numba.njit(nogil=True, cache=True, fastmath=FASTMATH)
            _exp_parts = exp_jit(_exp_parts_python)
            _exp_parts32 = exp_jit(_exp_parts32_python)
            inl = numba.njit(nogil=True, fastmath=FASTMATH, inline="always")
            _inline = (inl(_exp_parts_python), inl(_exp_parts32_python))
    if inline:
        assert _inline is not None
        return _inline
    return _exp_parts, _exp_parts32
