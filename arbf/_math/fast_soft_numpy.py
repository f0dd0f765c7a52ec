r"""Native NumPy fast path for the soft statistics of the RBF relaxation.

The pure-standard :func:`arbf._math.rbf_objectives.soft_stats_impl` is the tested
reference; for NumPy float32/float64 inputs it dispatches here.  The arithmetic is the
same — gaps :math:`G_{ij} = D_{ij} - D_{i,l_i}` to the nearest center :math:`l_i`, the
exact nearest distance :math:`d_i = \lVert x_i - \mu_{l_i}\rVert^2`, responsibilities from
the gaps (softmax, or entmax-1.5 by its exact threshold), then
:math:`L_i = d_i + \sum_j r_{ij}G_{ij}`, :math:`F_i = d_i - \sigma\log\sum_j e^{-G_{ij}/\sigma}`
(softmax) or :math:`F_i = L_i - \sigma\,\tfrac43\sum_j (r_{ij} - r_{ij}^{3/2})` (entmax-1.5).

Organisation (measured on the benchmark shapes, ``benchmarks/bench_rbf.py``): cache-sized
chunks of rows over a few threads, as the hard fast path of :mod:`arbf._math.fast_numpy`;
per chunk one BLAS product ``C X_c^T`` into a *transposed* ``k x rows`` buffer, one
compiled ``nogil`` kernel (numba, the ``arbf[fast]`` extra) whose loops all run along the
rows — so they vectorise for any ``k`` — and, for the soft sums, one BLAS product
``(w r)^T X_c`` (entmax-1.5 with a small support adds its few nonzeros directly instead,
and a chunk where every entmax-1.5 row is one-hot is accumulated with the hard path's own
arithmetic and chunking, so it equals the hard pass bit for bit).
The exponentials are computed in the kernel by a vectorisable ``exp`` (Cody–Waite
reduction, degree-13 Taylor polynomial, exponent bits written directly; 1 ulp against
NumPy's, with gradual underflow), so the kernel and the two products are the only calls
per chunk and the threads rarely wait for the GIL.  ``Σ_i w_i log Σ_j e_ij`` for the
softmax free energy is taken over many chunks at once with NumPy's ``log``.  Partial sums
are float64.

Without numba this path is not used (the pure path is already vectorised NumPy).
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from . import fast_numpy as _fast

__all__ = ["applies", "soft_stats"]

_KINDS = ("softmax", "entmax15", "hard")


def applies(X: Any, C: Any, sample_weight: Any, kind: str) -> bool:
    """Whether this fast path handles the call (NumPy floats, numba installed, enabled)."""
    return (
        _fast.HAVE_NUMBA
        and _fast.USE_NUMBA
        and kind in _KINDS
        and _fast.applies(X, C, sample_weight)
    )


# --------------------------------------------------------------------------------------
# a vectorisable exp (the kernels inline it; compiled without reassociation)
# --------------------------------------------------------------------------------------

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
    q = math.floor(v * _LOG2E + 0.5)
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
    bits = (np.int64(q + (600.0 if low else 0.0)) + 1023) << 52
    return p, bits


_exp_parts: Any = None  # the compiled _exp_parts_python, set by _get_kernels

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


_exp_parts32: Any = None  # compiled by _get_kernels


# --------------------------------------------------------------------------------------
# strict (no fast-math) pieces: the hard path's arithmetic, operation for operation, so a
# one-hot chunk gives its sums, weights and inertia bit for bit
# --------------------------------------------------------------------------------------


def _nearest_inertia_python(X, C, lab, w, m):
    """``Σ_i w_i ||x_i - c_{l_i}||^2`` over the first ``m`` rows, in the order and rounding
    of :func:`arbf._math.fast_numpy._chunk_python` (the same distance helper)."""
    has_w = w.shape[0] > 0
    tot = 0.0
    for i in range(m):
        tot += (np.float64(w[i]) if has_w else 1.0) * _sq_dist(X, C, i, lab[i])
    return tot


_sq_dist: Any = None  # fast_numpy's compiled distance helper, set by _get_kernels


def _onehot_sums_python(X, lab, w, m, sums, mass):
    """``mass[l_i] += w_i``, ``sums[l_i] += w_i x_i`` row by row, as the hard path."""
    d = X.shape[1]
    has_w = w.shape[0] > 0
    for i in range(m):
        li = lab[i]
        wi = np.float64(w[i]) if has_w else 1.0
        mass[li] += wi
        for c in range(d):
            sums[li, c] += wi * np.float64(X[i, c])


def _sparse_sums_python(P, X, lab, n_sup, m, sums, mass):
    """``mass[j] += P_ji``, ``sums[j] += P_ji x_i`` over the nonzeros of the first ``m``
    columns of ``P``, row by row (the hard path's order and rounding, so one-hot rows add
    exactly what the hard pass adds).  A row with support size ``n_sup[i] == 1`` has its
    only nonzero at its nearest center ``lab[i]``."""
    k = P.shape[0]
    d = X.shape[1]
    for i in range(m):
        if n_sup[i] == 1.0:
            j = lab[i]
            p = np.float64(P[j, i])
            mass[j] += p
            for c in range(d):
                sums[j, c] += p * np.float64(X[i, c])
        else:
            for j in range(k):
                p = np.float64(P[j, i])
                if p != 0.0:
                    mass[j] += p
                    for c in range(d):
                        sums[j, c] += p * np.float64(X[i, c])


_nearest_inertia: Any = None  # compiled by _get_kernels (strict)
_nearest_inertia_fast: Any = None  # the same, with the kernels' fast-math flags
_onehot_sums: Any = None
_sparse_sums: Any = None


# --------------------------------------------------------------------------------------
# the entmax-1.5 threshold of one row (shared by the chunk kernel and entmax15_rows)
# --------------------------------------------------------------------------------------


def _support_root_python(n_in, a1, a2):
    """The smaller root ``τ`` of ``Σ_{j∈S} (y_j - τ)^2 = 1`` for a support ``S`` of size
    ``n_in`` with ``Σ y_j = a1`` and ``Σ y_j^2 = a2`` (the sort-based formula)."""
    mean = a1 / n_in
    delta = (1.0 - (a2 - a1 * mean)) / n_in
    return mean - math.sqrt(delta if delta > 0.0 else 0.0)


def _entmax_tau_python(y):
    """``(τ, support size)`` with ``Σ_j [y_j - τ]_+^2 = 1`` for scores ``y`` whose maximum
    is 0: Newton on that convex decreasing function from ``τ = -1`` (left of the root, so
    the iterates increase), stopping as soon as the exact root for the current support is
    consistent with that support."""
    t = -1.0
    n_in = 0.0
    for _ in range(200):
        n_in = 0.0
        a1 = 0.0
        a2 = 0.0
        least = np.inf
        top_out = -np.inf
        for j in range(y.shape[0]):
            v = np.float64(y[j])
            if v > t:
                n_in += 1.0
                a1 += v
                a2 += v * v
                least = min(least, v)
            else:
                top_out = max(top_out, v)
        tq = _support_root(n_in, a1, a2)
        if least >= tq and top_out <= tq:
            return tq, n_in
        f = a2 - 2.0 * t * a1 + n_in * t * t - 1.0
        t = t + f / (2.0 * (a1 - n_in * t))
    return t, n_in


_support_root: Any = None  # compiled by _threshold_helpers
_entmax_tau: Any = None


def _threshold_helpers() -> None:
    """Compile the two threshold helpers (before any kernel that calls them)."""
    global _support_root, _entmax_tau
    if _entmax_tau is None:
        import numba

        # strict, and fastmath set explicitly: numba lets a callee that leaves it unset
        # inherit its caller's flags
        strict = numba.njit(nogil=True, cache=True, fastmath=False)
        _support_root = strict(_support_root_python)
        _entmax_tau = strict(_entmax_tau_python)


# --------------------------------------------------------------------------------------
# the chunk kernel
# --------------------------------------------------------------------------------------


def _chunk_python(
    X,
    GT,
    E,
    C,
    c_sq,
    w,
    scale,
    scale32,
    softmax,
    sigma,
    best,
    lab,
    scr,
    scr32,
    s_out,
    mass,
    sums,
    acc,
):
    """Soft statistics of one chunk, on the transposed ``k x m`` layout (rows of the
    chunk along the contiguous axis: every loop over ``i`` below vectorises).

    On entry ``GT = C X_c^T``.  Adds ``w_i d_i`` to ``acc = [L, F, J]`` (and the rest of
    L and F) and, for every center, the soft mass.  Then either leaves the weighted
    responsibilities ``w_i r_ij`` for the caller's product with ``X_c`` and returns True
    (softmax in ``E``, entmax-1.5 in ``GT``), or adds that product to ``sums`` itself and
    returns False (entmax-1.5 with a small support; a one-hot chunk exactly as the hard
    pass).  ``scale`` is ``-1/σ`` (softmax) or ``-1/(2σ)`` (entmax-1.5).  Softmax writes
    ``S_i = Σ_j e^{-G_ij/σ}`` to ``s_out`` (the caller adds ``-σ w_i log S_i`` to F).
    ``scale32`` is ``scale`` in float32 (clipped to its range).  ``best``, ``lab``
    (length >= m), ``scr`` (float64, ``8 x`` >= m) and ``scr32`` (float32, ``2 x`` >= m
    for float32 softmax) are scratch."""
    k, m = GT.shape
    d = X.shape[1]
    has_w = w.shape[0] > 0
    # scores ||c_j||^2 - 2 x.c_j (||x||^2 cancels in the gaps), rounded in X's dtype as
    # the hard path's, and their first minimum (ties to the lowest index)
    c0 = c_sq[0]
    for i in range(m):
        g = GT[0, i]
        v = c0 - (g + g)
        GT[0, i] = v
        best[i] = v
        lab[i] = 0
    for j in range(1, k):
        cj = c_sq[j]
        for i in range(m):
            g = GT[j, i]
            v = cj - (g + g)
            GT[j, i] = v
            b = best[i]
            lt = v < b
            best[i] = v if lt else b
            lab[i] = j if lt else lab[i]
    ext = scr[0]
    for i in range(m):
        ext[i] = 0.0
    if softmax:
        J = _nearest_inertia_fast(X, C, lab, w, m)  # exact nearest distances
        acc[0] += J
        acc[1] += J
        acc[2] += J
        S = scr[1]
        P = scr[2]
        B = scr[3]
        Bi = B.view(np.int64)
        P32 = scr32[0]
        B32 = scr32[1]
        Bi32 = B32.view(np.int32)
        for i in range(m):
            S[i] = 0.0
        for j in range(k):
            if X.itemsize == 4:  # float32 exponentials in float32 arithmetic
                for i in range(m):
                    g = GT[j, i] - best[i]  # exactly 0 at the nearest center
                    GT[j, i] = g
                    p32, bits32 = _exp_parts32(np.float32(g) * scale32)
                    P32[i] = p32
                    Bi32[i] = bits32
                for i in range(m):
                    E[j, i] = P32[i] * B32[i]
                    S[i] += np.float64(E[j, i])
            else:
                for i in range(m):
                    g = GT[j, i] - best[i]
                    GT[j, i] = g
                    p, bits = _exp_parts(np.float64(g) * scale)
                    P[i] = p
                    Bi[i] = bits
                for i in range(m):
                    E[j, i] = P[i] * B[i]
                    S[i] += np.float64(E[j, i])
        for i in range(m):
            s_out[i] = S[i]
            S[i] = (np.float64(w[i]) if has_w else 1.0) / S[i]
        for j in range(k):
            mj = 0.0
            for i in range(m):
                r = np.float64(E[j, i]) * S[i]
                E[j, i] = r
                ext[i] += r * np.float64(GT[j, i])
                mj += r
            mass[j] += mj
        L = 0.0
        for i in range(m):
            L += ext[i]
        acc[0] += L
        return True
    # entmax-1.5: p_ij = [y_ij - tau_i]_+^2 with y = -G/(2σ) (max 0) and tau_i the root of
    # Σ_j [y_ij - tau]_+^2 = 1: Newton on that convex decreasing function from tau = -1
    # (left of the root, so the iterates increase), stopping as soon as the exact root for
    # the current support (the sort-based formula for that support size) is consistent
    # with that support.  The first sweep (at tau = -1) runs here over all rows at once;
    # most rows finish there, the rest continue one by one.  The scores y replace the
    # gaps in ``GT``, and then the weighted probabilities replace the scores (``E`` is
    # not used).
    cnt = scr[1]
    s1 = scr[2]
    s2 = scr[3]
    lo = scr[4]
    tau = scr[5]
    ent = scr[6]
    n_sup = scr[7]
    for i in range(m):
        cnt[i] = 0.0
        s1[i] = 0.0
        s2[i] = 0.0
        lo[i] = 0.0  # y = 0 (the nearest center) is always inside
    for j in range(k):
        for i in range(m):
            GT[j, i] = np.float64(GT[j, i] - best[i]) * scale
            y = np.float64(GT[j, i])  # as stored
            inside = y > -1.0
            yi = y if inside else 0.0
            cnt[i] += 1.0 if inside else 0.0
            s1[i] += yi
            s2[i] += yi * yi
            lo[i] = min(lo[i], yi)
    n_onehot = 0.0
    for i in range(m):
        n_onehot += 1.0 if cnt[i] == 1.0 else 0.0
    one_hot = n_onehot == m
    # exact nearest distances; a one-hot chunk (every gap >= 2σ) is exactly the hard
    # pass, bit for bit
    if one_hot:
        J = _nearest_inertia(X, C, lab, w, m)
    else:
        J = _nearest_inertia_fast(X, C, lab, w, m)
    acc[0] += J
    acc[1] += J
    acc[2] += J
    if one_hot:
        _onehot_sums(X, lab, w, m, sums, mass)
        return False
    supp = 0.0  # support sizes, summed
    for i in range(m):
        # the first sweep's root; every y outside is <= -1
        tq = _support_root(cnt[i], s1[i], s2[i])
        if lo[i] >= tq and -1.0 <= tq:
            t = tq
            n_in = cnt[i]
        else:  # Newton, one row
            t, n_in = _entmax_tau(GT[:, i])
        tau[i] = t
        ent[i] = 0.0
        n_sup[i] = n_in
        supp += n_in
    # the soft sums: row by row over the nonzeros, in the hard pass's order and rounding
    # (so the few rows with a second center barely perturb an otherwise hard pass), when
    # the support is small -- at most 1.1 centers per row on average, or cheaper than
    # the dense product by rough cycle counts (a scan plus a short row update per
    # nonzero, against BLAS speed); else the caller's dense product
    scan_cost = k * m + supp * (d / 8.0 + 4.0)
    sparse = supp <= 1.1 * m or scan_cost < k * m * d * X.itemsize / 128.0
    to_gap = 1.0 / scale  # G = -2σ y
    for j in range(k):
        mj = 0.0
        for i in range(m):
            y = np.float64(GT[j, i])
            u = y - tau[i]
            u = u if u > 0.0 else 0.0
            p = u * u
            ext[i] += p * (y * to_gap)
            ent[i] += p - p * u
            wp = p * (np.float64(w[i]) if has_w else 1.0)
            GT[j, i] = wp
            mj += wp
        if not sparse:
            mass[j] += mj
    L = 0.0
    F = 0.0
    c43 = sigma * (4.0 / 3.0)
    for i in range(m):
        wi = np.float64(w[i]) if has_w else 1.0
        L += wi * ext[i]
        F += wi * (ext[i] - c43 * ent[i])
    acc[0] += L
    acc[1] += F
    if not sparse:
        return True
    _sparse_sums(GT, X, lab, n_sup, m, sums, mass)
    return False


# reassociation lets LLVM vectorise the reductions; no-NaN/no-inf flags are not used
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}

_kernels: dict[str, Any] = {}
_kernel_lock = threading.Lock()


def _get_kernels() -> dict[str, Any]:
    global \
        _exp_parts, \
        _exp_parts32, \
        _nearest_inertia, \
        _nearest_inertia_fast, \
        _onehot_sums, \
        _sparse_sums
    global _sq_dist
    if not _kernels:
        with _kernel_lock:
            if not _kernels:
                import numba

                # helpers first: the kernel resolves (and inlines) them when compiled
                _sq_dist = _fast.get_sq_dist()
                _threshold_helpers()
                exp_jit = numba.njit(nogil=True, cache=True, fastmath={"contract", "nsz", "arcp"})
                _exp_parts = exp_jit(_exp_parts_python)
                _exp_parts32 = exp_jit(_exp_parts32_python)
                # fastmath must be given explicitly: numba lets a callee that leaves it
                # unset inherit the caller's flags
                strict = numba.njit(nogil=True, cache=True, fastmath=False)
                _nearest_inertia = strict(_nearest_inertia_python)
                # not cached: numba's cache would not tell it from the strict variant
                # (same function); the kernels that inline it are cached
                _nearest_inertia_fast = numba.njit(nogil=True, fastmath=_FASTMATH)(
                    _nearest_inertia_python
                )
                _onehot_sums = strict(_onehot_sums_python)
                _sparse_sums = strict(_sparse_sums_python)
                jit = numba.njit(nogil=True, cache=True, fastmath=_FASTMATH)
                _kernels["chunk"] = jit(_chunk_python)
    return _kernels


class _State:
    """One thread's buffers and float64 partial sums."""

    def __init__(self, rows: int, k: int, d: int, dtype: Any, s_rows: int, softmax: bool) -> None:
        self.GT = np.empty((k, rows), dtype=dtype)
        # entmax-1.5 overwrites the gaps with its scores: one k x rows buffer
        self.E = np.empty((k, rows), dtype=dtype) if softmax else self.GT
        self.best = np.empty(rows, dtype=dtype)
        self.lab = np.empty(rows, dtype=np.intp)
        self.scr = np.empty((8, rows), dtype=np.float64)
        self.scr32 = np.empty((2, rows if softmax and dtype == np.float32 else 0), np.float32)
        self.prod = np.empty((k, d), dtype=dtype)
        self.sums = np.zeros((k, d), dtype=np.float64)
        self.mass = np.zeros(k, dtype=np.float64)
        self.acc = np.zeros(3, dtype=np.float64)
        self.xbuf: np.ndarray | None = None
        # softmax row sums S_i of rows [s_start, s_start + s_len), logged in batches
        self.s_buf = np.empty(s_rows, dtype=np.float64)
        self.s_start = 0
        self.s_len = 0


def soft_stats(
    X: np.ndarray,
    C: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    sigma: float,
    kind: str,
    working_memory: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(sums, mass, L, F, J)`` in ``X``'s dtype, as
    :func:`arbf._math.rbf_objectives.soft_stats_impl` (accumulated in float64)."""
    n, d = X.shape
    k = C.shape[0]
    dtype = X.dtype
    if sigma == 0 or kind == "hard" or not math.isfinite(1.0 / float(sigma)):
        _, sums, wsum, inertia = _fast.lloyd_sums(
            X, C, sample_weight, working_memory=working_memory
        )
        return sums, wsum, inertia, inertia.copy(), inertia.copy()
    softmax = kind == "softmax"
    sigma = float(sigma)
    C = np.ascontiguousarray(C)
    c_sq = np.sum(C * C, axis=1)  # in X's dtype, as the hard path's
    w = None
    if sample_weight is not None:
        w = np.ascontiguousarray(sample_weight)
    empty_w = np.empty(0, dtype=dtype if w is None else w.dtype)
    kernel = _get_kernels()["chunk"]
    # softmax holds two k x rows buffers per thread: budget them as 2k columns.
    # entmax-1.5 holds one, and chunks exactly as the hard path (a one-hot pass then
    # reproduces the hard pass bit for bit, partial sums included)
    rows, threads = _fast._chunk_plan(
        n, 2 * k if softmax else k, d, dtype.itemsize, working_memory
    )
    budget = _fast.DEFAULT_WORKING_MEMORY_MB if working_memory is None else working_memory
    # the softmax row sums of up to 32 chunks are logged at once (<= 1/8 of the budget)
    s_chunks = int(min(32, max(1, budget * 2**20 / (64 * threads * rows))))
    s_rows = rows * s_chunks if softmax else 0
    x_contig = X.flags.c_contiguous
    scale = -1.0 / sigma if softmax else -0.5 / sigma
    scale32 = np.float32(max(scale, -float(np.finfo(np.float32).max)))

    def make_state() -> _State:
        st = _State(rows, k, d, dtype, s_rows, softmax)
        if not x_contig:
            st.xbuf = np.empty((rows, d), dtype=dtype)
        return st

    def flush(st: _State) -> None:
        if st.s_len:
            logs = np.log(st.s_buf[: st.s_len])
            a = st.s_start
            total = logs.sum() if w is None else np.dot(w[a : a + st.s_len], logs)
            st.acc[1] -= sigma * float(total)
            st.s_len = 0

    def work(a: int, st: _State) -> None:
        b = min(a + rows, n)
        m = b - a
        Xc = X[a:b]
        if st.xbuf is not None:
            np.copyto(st.xbuf[:m], Xc)
            Xc = st.xbuf[:m]
        wc = empty_w if w is None else w[a:b]
        # a partial last chunk gets fresh contiguous buffers
        GT = st.GT if m == rows else np.empty((k, m), dtype=dtype)
        if not softmax:
            E = GT
        elif m == rows:
            E = st.E
        else:
            E = np.empty((k, m), dtype=dtype)
        # np.dot rather than np.matmul: for the k x m @ m x d product matmul did not run
        # in parallel across threads (measured); dot does
        np.dot(C, Xc.T, out=GT)
        s_out = st.s_buf[:0]
        if softmax:
            if st.s_len + m > s_rows:
                flush(st)
            if not st.s_len:
                st.s_start = a
            s_out = st.s_buf[st.s_len : st.s_len + m]
            st.s_len += m
        dense = kernel(
            Xc, GT, E, C, c_sq, wc, scale, scale32, softmax, sigma, st.best, st.lab,
            st.scr, st.scr32, s_out, st.mass, st.sums, st.acc,
        )  # fmt: skip
        if dense:
            st.sums += np.dot(E, Xc, out=st.prod)

    states = _fast._run_chunks(n, rows, threads, work, make_state)
    for st in states:
        flush(st)
    sums, mass, acc = states[0].sums, states[0].mass, states[0].acc
    for st in states[1:]:
        sums += st.sums
        mass += st.mass
        acc += st.acc
    return (
        sums.astype(dtype),
        mass.astype(dtype),
        np.asarray(acc[0], dtype=dtype),
        np.asarray(acc[1], dtype=dtype),
        np.asarray(acc[2], dtype=dtype),
    )


# --------------------------------------------------------------------------------------
# entmax-1.5 of a score matrix (rows independent)
# --------------------------------------------------------------------------------------


def _entmax15_rows_python(z, out):
    """``out_i = entmax15(z_i)`` for each row: the threshold τ of ``y = (z - max z)/2``
    by :func:`_entmax_tau_python` (as in the soft-statistics kernel); ``-inf`` scores
    get 0."""
    m, k = z.shape
    y = np.empty(k, dtype=np.float64)
    for i in range(m):
        mx = -np.inf
        for j in range(k):
            mx = max(mx, np.float64(z[i, j]))
        for j in range(k):
            y[j] = (np.float64(z[i, j]) - mx) * 0.5
        tau, _ = _entmax_tau(y)
        for j in range(k):
            u = y[j] - tau
            out[i, j] = u * u if u > 0.0 else 0.0


_row_kernels: dict[str, Any] = {}


def entmax15_applies(z: Any) -> bool:
    """Whether :func:`entmax15_rows` handles ``z`` (2-D NumPy float, numba, enabled)."""
    return (
        _fast.ENABLED
        and _fast.HAVE_NUMBA
        and _fast.USE_NUMBA
        and type(z) is np.ndarray
        and z.ndim == 2
        and z.dtype in (np.float32, np.float64)
        and z.shape[0] > 0
        and z.shape[1] > 0
    )


def entmax15_rows(z: np.ndarray) -> np.ndarray:
    """Exact entmax-1.5 of every row of ``z`` (compiled, over threads); never writes ``z``."""
    if not _row_kernels:
        with _kernel_lock:
            if not _row_kernels:
                _threshold_helpers()
                import numba

                _row_kernels["entmax15"] = numba.njit(nogil=True, cache=True)(
                    _entmax15_rows_python
                )
    kernel = _row_kernels["entmax15"]
    n, k = z.shape
    out = np.empty_like(z, order="C")
    rows, threads = _fast._chunk_plan(n, 2 * k, 0, z.dtype.itemsize, None)

    def work(a: int, _: None) -> None:
        b = min(a + rows, n)
        kernel(z[a:b], out[a:b])

    _fast._run_chunks(n, rows, threads, work, lambda: None)
    return out
