r"""Native NumPy fast path for the soft statistics of the RBF relaxation.

The pure-standard :func:`arbf._math.core.soft.soft_stats` is the tested reference;
:mod:`arbf._math.seam` sends NumPy float32/float64 inputs here.  The arithmetic is the
same — gaps :math:`G_{ij} = D_{ij} - D_{i,l_i}` to the nearest center :math:`l_i`, the
exact nearest distance :math:`d_i = \lVert x_i - \mu_{l_i}\rVert^2`, responsibilities from
the gaps (softmax, or entmax-1.5 by its exact threshold), then
:math:`L_i = d_i + \sum_j r_{ij}G_{ij}`, :math:`F_i = d_i - \sigma\log\sum_j e^{-G_{ij}/\sigma}`
(softmax) or :math:`F_i = L_i - \sigma\,\tfrac43\sum_j (r_{ij} - r_{ij}^{3/2})` (entmax-1.5).

Organisation (measured on the benchmark shapes, ``benchmarks/bench_rbf.py``): cache-sized
chunks of rows over a few threads, as the hard kernels of :mod:`.hard`;
per chunk one BLAS product ``C X_c^T`` into a *transposed* ``k x rows`` buffer, one
compiled ``nogil`` kernel (numba) whose loops all run along the
rows — so they vectorise for any ``k`` — and, for the soft sums, one BLAS product:
softmax leaves the unnormalised ``e_ij = e^{-G_ij/σ}`` in place and scales the rows
instead, ``e^T (s x)`` with ``s_i = w_i / S_i`` giving the sums (an ``m x d`` scaling
instead of a pass that writes the ``k x m`` responsibilities);
entmax-1.5 takes ``(w p)^T X_c`` (with a small support it adds its few nonzeros directly instead,
and a chunk where every entmax-1.5 row is one-hot is accumulated with the hard path's own
arithmetic and chunking, so it equals the hard pass bit for bit).
The exponentials are computed by a vectorisable ``exp`` (:mod:`.exp`), inlined into a
helper compiled without reassociation; the kernel and the two products are the only calls
per chunk, so the threads rarely wait for the GIL.  ``Σ_i w_i log Σ_j e_ij`` for the
softmax free energy is taken over many chunks at once with NumPy's ``log``.  Partial sums
are float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._chunking import budget_mb
from . import entmax as _entmax
from . import exp as _exp
from . import hard as _hard
from .runtime import chunk_plan, lock, run_chunks

__all__ = ["soft_stats"]

_support_root: Any = None  # .entmax's compiled threshold helpers, bound by _get_kernels
_entmax_tau: Any = None


# --------------------------------------------------------------------------------------
# strict (no fast-math) pieces: the hard path's arithmetic, operation for operation, so a
# one-hot chunk gives its sums, weights and inertia bit for bit
# --------------------------------------------------------------------------------------


def _nearest_inertia_python(X, C, lab, w, m):
    """``Σ_i w_i ||x_i - c_{l_i}||^2`` over the first ``m`` rows, in the order and rounding
    of the hard chunk kernel (:mod:`.hard`, the same distance helper)."""
    has_w = w.shape[0] > 0
    tot = 0.0
    for i in range(m):
        tot += (np.float64(w[i]) if has_w else 1.0) * _sq_dist(X, C, i, lab[i])
    return tot


_sq_dist: Any = None  # .hard's compiled distance helper, bound by _get_kernels
_take: Any = None  # .hard's compiled first-minimum step, bound by _get_kernels


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
# the chunk kernel
# --------------------------------------------------------------------------------------

# Subnormal numbers: an arithmetic operation with a subnormal operand or result takes a
# slow microcode path on many x86 processors (about 100x on the Intel Xeons measured), and
# softmax at a small σ makes most e^{-G/σ} of far centers subnormal -- in this kernel and in
# the BLAS product (w r)^T X_c that follows.  So the kernel flushes to 0 every exponential
# whose argument is below _CUT (e^-87 > float32's smallest normal, e^-708 > float64's) and
# every weighted responsibility below the dtype's smallest normal.  Each dropped term is
# below 1.7e-38 (float32) or 3.4e-308 (float64) relative to its row's sum (>= 1, the
# nearest center's term is e^0), far below the rounding of that sum; the pure reference
# keeps them (and pays for it).
_CUT32 = np.float32(-87.0)
_ZERO32 = np.float32(0.0)
_CUT64 = -708.0
_TINY32 = float(np.finfo(np.float32).tiny)
_TINY64 = float(np.finfo(np.float64).tiny)


def _softmax_exp(GT, best, scale, scale32, m, scr, scr32):
    """Softmax exponentials of one chunk, in place: on entry ``GT`` holds the scores and
    ``best`` their row minima; on exit ``GT[j, i] = e_ij = e^{-G_ij/σ}`` with
    ``G_ij = GT[j, i] - best[i]`` (0 for ``-G_ij/σ`` below ``_CUT``), ``scr[1] = S_i =
    Σ_j e_ij`` and ``scr[0] = Σ_j e_ij G_ij`` (float64).  float32 inputs take float32
    exponentials (:func:`_softmax_exp32_python`), float64 float64 ones
    (:func:`_softmax_exp64_python`): the compiled kernels call this name, and numba picks
    one of the two by ``GT``'s dtype when it types the call (an overload registered by
    :func:`_get_kernels`), so a kernel compiles only its own dtype's code.  Both are
    compiled without reassociation (the Cody–Waite reduction of the inlined ``exp``
    needs it) and with that ``exp`` inlined, so every loop vectorises; nothing here
    reduces across rows, so reassociation would buy nothing."""
    if GT.dtype == np.float32:
        _softmax_exp32_python(GT, best, scale, scale32, m, scr, scr32)
    else:
        _softmax_exp64_python(GT, best, scale, scale32, m, scr, scr32)


def _softmax_exp32_python(GT, best, scale, scale32, m, scr, scr32):
    """:func:`_softmax_exp` for float32 ``GT``: float32 exponentials in float32
    arithmetic (``scale32``), float64 sums."""
    k = GT.shape[0]
    ext = scr[0]
    S = scr[1]
    P32 = scr32[0]
    B32 = scr32[1]
    Bi32 = B32.view(np.int32)
    for i in range(m):
        ext[i] = 0.0
        S[i] = 0.0
    for j in range(k):
        for i in range(m):
            a32 = np.float32(GT[j, i] - best[i]) * scale32  # the gap: exactly 0 at the nearest
            p32, bits32 = _exp_parts32_inline(a32)
            # flush e^a below float32's normal range to 0 (see _CUT32)
            P32[i] = p32 if a32 >= _CUT32 else _ZERO32
            Bi32[i] = bits32
        for i in range(m):
            g = GT[j, i] - best[i]
            e = P32[i] * B32[i]
            GT[j, i] = e
            e64 = np.float64(e)
            S[i] += e64
            ext[i] += e64 * np.float64(g)


def _softmax_exp64_python(GT, best, scale, scale32, m, scr, scr32):
    """:func:`_softmax_exp` for float64 ``GT``."""
    k = GT.shape[0]
    ext = scr[0]
    S = scr[1]
    P = scr[2]
    Bi = scr[3].view(np.int64)
    B = scr[3]
    for i in range(m):
        ext[i] = 0.0
        S[i] = 0.0
    for j in range(k):
        for i in range(m):
            a64 = np.float64(GT[j, i] - best[i]) * scale
            p, bits = _exp_parts_inline(a64)
            P[i] = p if a64 >= _CUT64 else 0.0  # flush, as float32 above
            Bi[i] = bits
        for i in range(m):
            g = GT[j, i] - best[i]
            e = P[i] * B[i]
            GT[j, i] = e
            S[i] += e
            ext[i] += e * g


def _entmax_first_python(GT, j, i, b, scale, c, a1, a2, lw):
    """Entmax-1.5's first sweep at one score: ``y = (GT[j, i] - b) * scale`` clamped at
    -2 (a score below -2 is never in the support, τ >= -1; clamped so that a tiny σ
    cannot overflow it to -inf, whose gap would then be 0 * inf) and stored in ``GT``;
    then, where ``y > -1`` (inside at τ = -1), the count ``c``, the sums ``a1``, ``a2``
    of ``y`` and ``y^2`` and the minimum ``lw`` updated (returned)."""
    v = np.float64(GT[j, i] - b) * scale
    GT[j, i] = v if v > -2.0 else -2.0
    y = np.float64(GT[j, i])  # as stored
    inside = y > -1.0
    yi = y if inside else 0.0
    return c + (1.0 if inside else 0.0), a1 + yi, a2 + yi * yi, (yi if yi < lw else lw)


_entmax_first: Any = None  # compiled by _get_kernels (the kernel's flags but reassociation)


_exp_parts_inline: Any = None  # .exp's helpers for inlining, bound by _get_kernels
_exp_parts32_inline: Any = None
_softmax_exp_overloaded = False  # the overload of _softmax_exp, registered by _get_kernels


def _scan_python(GT, c_sq, best, lab, m):
    """The scores of one chunk and their first minimum, in place: on entry ``GT = C X_c^T``
    (``k x m``); on exit ``GT[j, i] = ||c_j||^2 - 2 x_i.c_j`` (``||x_i||^2`` cancels in
    the gaps), rounded in X's dtype as the hard path's, ``best[i]`` the row minimum and
    ``lab[i]`` its first index (ties to the lowest index)."""
    k = GT.shape[0]
    c0 = c_sq[0]
    for i in range(m):
        g = GT[0, i]
        v = c0 - (g + g)
        GT[0, i] = v
        best[i] = v
        lab[i] = 0
    j = np.intp(1)  # not a literal: one compiled _take for every call
    while j + 3 < k:  # four centers per sweep, as the hard pass's scan (.hard._take_python)
        c1, c2, c3, c4 = c_sq[j], c_sq[j + 1], c_sq[j + 2], c_sq[j + 3]
        for i in range(m):
            b, li = best[i], lab[i]
            g = GT[j, i]
            v = c1 - (g + g)
            GT[j, i] = v
            b, li = _take(b, li, v, j)
            g = GT[j + 1, i]
            v = c2 - (g + g)
            GT[j + 1, i] = v
            b, li = _take(b, li, v, j + 1)
            g = GT[j + 2, i]
            v = c3 - (g + g)
            GT[j + 2, i] = v
            b, li = _take(b, li, v, j + 2)
            g = GT[j + 3, i]
            v = c4 - (g + g)
            GT[j + 3, i] = v
            b, li = _take(b, li, v, j + 3)
            best[i] = b
            lab[i] = li
        j += 4
    while j < k:
        cj = c_sq[j]
        for i in range(m):
            g = GT[j, i]
            v = cj - (g + g)
            GT[j, i] = v
            b, li = _take(best[i], lab[i], v, j)
            best[i] = b
            lab[i] = li
        j += 1


_scan: Any = None  # compiled by _get_kernels


def _chunk_softmax_python(
    X, GT, XS, C, c_sq, w, scale, scale32, sigma, best, lab, scr, scr32, s_out, mass, sums, acc
):
    """Softmax statistics of one chunk (see :func:`chunk`); returns True (the caller's
    product ``GT^T XS`` is the soft sums)."""
    k, m = GT.shape
    d = X.shape[1]
    has_w = w.shape[0] > 0
    _scan(GT, c_sq, best, lab, m)
    J = _nearest_inertia_fast(X, C, lab, w, m)  # exact nearest distances
    acc[0] += J
    acc[1] += J
    acc[2] += J
    # e_ij = e^{-G_ij/σ} into GT, S_i = Σ_j e_ij and Σ_j e_ij G_ij (float64)
    _softmax_exp(GT, best, scale, scale32, m, scr, scr32)
    ext = scr[0]
    S = scr[1]
    # r_ij = s_i e_ij with s_i = w_i / S_i: the responsibilities are never
    # normalised in place -- the caller's product e^T (s x) gives Σ_i r_ij x_i (an
    # m x d scaling instead of a k x m pass that writes), and the soft mass
    # Σ_i r_ij = Σ_i e_ij s_i is one read-only pass here, in float64
    sv = scr[2]
    L = 0.0
    for i in range(m):
        s_out[i] = S[i]
        si = (np.float64(w[i]) if has_w else 1.0) / S[i]
        sv[i] = si
        L += ext[i] * si
        for c in range(d):
            XS[i, c] = X[i, c] * si
    acc[0] += L
    for j in range(k):
        mj = 0.0
        for i in range(m):
            mj += np.float64(GT[j, i]) * sv[i]
        mass[j] += mj
    return True


def _chunk_entmax_python(
    X, GT, XS, C, c_sq, w, scale, scale32, sigma, best, lab, scr, scr32, s_out, mass, sums, acc
):
    """Entmax-1.5 statistics of one chunk (see :func:`chunk`); returns whether the caller
    adds the dense product ``GT^T X_c`` to the sums."""
    k, m = GT.shape
    d = X.shape[1]
    has_w = w.shape[0] > 0
    _scan(GT, c_sq, best, lab, m)
    ext = scr[0]
    for i in range(m):
        ext[i] = 0.0
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
    # four centers per sweep over the rows, each row's counts and sums in registers
    # (see .hard._take_python: the one-center form compiles into masked stores)
    j = 0
    while j + 3 < k:
        for i in range(m):
            bi = best[i]
            c, a1, a2, lw = cnt[i], s1[i], s2[i], lo[i]
            c, a1, a2, lw = _entmax_first(GT, j, i, bi, scale, c, a1, a2, lw)
            c, a1, a2, lw = _entmax_first(GT, j + 1, i, bi, scale, c, a1, a2, lw)
            c, a1, a2, lw = _entmax_first(GT, j + 2, i, bi, scale, c, a1, a2, lw)
            c, a1, a2, lw = _entmax_first(GT, j + 3, i, bi, scale, c, a1, a2, lw)
            cnt[i], s1[i], s2[i], lo[i] = c, a1, a2, lw
        j += 4
    while j < k:
        for i in range(m):
            c, a1, a2, lw = _entmax_first(GT, j, i, best[i], scale, cnt[i], s1[i], s2[i], lo[i])
            cnt[i], s1[i], s2[i], lo[i] = c, a1, a2, lw
        j += 1
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
    n_multi = 0.0  # rows with more than one center in their support
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
        n_multi += 1.0 if n_in > 1.0 else 0.0
    # the soft sums: row by row over the nonzeros, in the hard pass's order and rounding
    # (so the few rows with a second center barely perturb an otherwise hard pass), when
    # the support is small -- at most 1.1 centers per row on average -- or when that is
    # cheaper than the caller's dense product by a cost model fitted to both routes'
    # measured times (ns; 60 shapes, d 8-256, k 8-1024, both dtypes:
    # benchmarks/calibrate_soft_routes.py): a row visit, a scan of the k entries of a
    # row with several centers, an update of d sums per nonzero, against BLAS's flops
    # and its passes over the k x m and m x d operands
    kmd = float(k) * m * d
    if X.itemsize == 4:
        sparse_ns = 6.8 * m + 1.1 * n_multi * k + 0.14 * supp * d
        dense_ns = 0.010 * kmd + 0.11 * m * (k + d)
    else:
        sparse_ns = 3.3 * m + 1.4 * n_multi * k + 0.14 * supp * d
        dense_ns = 0.022 * kmd + 0.15 * m * (k + d)
    sparse = supp <= 1.1 * m or sparse_ns < dense_ns
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
    T = 0.0
    c43 = sigma * (4.0 / 3.0)
    for i in range(m):
        wi = np.float64(w[i]) if has_w else 1.0
        L += wi * ext[i]
        F += wi * (ext[i] - c43 * ent[i])
        T += wi * ent[i]
    acc[0] += L
    acc[1] += F
    acc[3] += T * (4.0 / 3.0)
    if not sparse:
        return True
    _sparse_sums(GT, X, lab, n_sup, m, sums, mass)
    return False


def chunk(
    X,
    GT,
    XS,
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

    On entry ``GT = C X_c^T``.  Adds ``w_i d_i`` to ``acc = [L, F, J, T]`` (and the rest
    of L, F and the entropy term T) and, for every center, the soft mass.  Softmax then
    leaves ``e_ij = e^{-G_ij/σ}`` in ``GT`` and ``s_i x_i`` (``s_i = w_i / S_i``) in the
    first ``m`` rows of ``XS`` (``m x d``) and returns True: the caller's product
    ``GT^T XS`` (:func:`dense_sums`) is the soft sums, ``r_ij = s_i e_ij``.  Entmax-1.5
    then either leaves the weighted probabilities
    ``w_i p_ij`` in ``GT`` for the caller's product with ``X_c`` and returns True, or
    adds that product to ``sums`` itself and returns False (a small support; a one-hot
    chunk exactly as the hard pass; ``XS`` unused).  ``scale`` is ``-1/σ`` (softmax) or
    ``-1/(2σ)`` (entmax-1.5).  Softmax writes ``S_i = Σ_j e^{-G_ij/σ}`` to ``s_out``
    (the caller adds ``w_i log S_i`` to T and ``-σ w_i log S_i`` to F).
    ``scale32`` is ``scale`` in float32 (clipped to its range).  ``best``, ``lab``
    (length >= m), ``scr`` (float64, ``8 x`` >= m) and ``scr32`` (float32, ``2 x`` >= m
    for float32 softmax) are scratch."""
    kernels = _get_kernels()
    kernel = kernels["softmax"] if softmax else kernels["entmax"]
    return kernel(
        X, GT, XS, C, c_sq, w, scale, scale32, sigma, best, lab, scr, scr32, s_out, mass,
        sums, acc,
    )  # fmt: skip


# reassociation lets LLVM vectorise the reductions; no-NaN/no-inf flags are not used
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}

_kernels: dict[str, Any] = {}


def _overload_softmax_exp(numba: Any) -> None:
    """Register the compiled form of :func:`_softmax_exp`: the float32 or the float64
    variant, chosen by ``GT``'s dtype at typing time."""
    from numba.extending import overload

    @overload(_softmax_exp, jit_options={"nogil": True, "fastmath": _exp.FASTMATH})
    def _impl(GT, best, scale, scale32, m, scr, scr32):
        if GT.dtype == numba.float32:
            return _softmax_exp32_python
        return _softmax_exp64_python


def _get_kernels() -> dict[str, Any]:
    global _exp_parts_inline, _exp_parts32_inline, _support_root, _entmax_tau
    global _nearest_inertia, _nearest_inertia_fast, _onehot_sums, _sparse_sums, _sq_dist, _take
    global _entmax_first, _scan, _softmax_exp_overloaded
    if not _kernels:
        # helpers first: the kernel resolves (and inlines) them when compiled
        _sq_dist = _hard.get_sq_dist()
        _take = _hard.get_take()[0]
        _support_root, _entmax_tau = _entmax.threshold_helpers()
        _exp_parts_inline, _exp_parts32_inline = _exp.compiled(inline=True)
        with lock:
            if not _kernels:
                import numba

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
                if not _softmax_exp_overloaded:
                    _overload_softmax_exp(numba)
                    _softmax_exp_overloaded = True
                jit = numba.njit(nogil=True, cache=True, fastmath=_FASTMATH)
                # no reassociation: the sums run over the centers in order, as when
                # they were kept in memory (the same bits)
                _entmax_first = numba.njit(
                    nogil=True, cache=True, fastmath={"contract", "nsz", "arcp"}
                )(_entmax_first_python)
                _scan = jit(_scan_python)
                # one kernel per kind, each compiled at its first call (a first softmax
                # pass does not compile entmax-1.5's code, nor the reverse)
                _kernels["softmax"] = jit(_chunk_softmax_python)
                _kernels["entmax"] = jit(_chunk_entmax_python)
                _kernels["chunk"] = chunk
    return _kernels


class _State:
    """One thread's buffers and float64 partial sums."""

    def __init__(self, rows: int, k: int, d: int, dtype: Any, s_rows: int, softmax: bool) -> None:
        # one k x rows buffer: scores, then the exponentials (softmax) or the weighted
        # probabilities (entmax-1.5), in place
        self.GT = np.empty((k, rows), dtype=dtype)
        # softmax: the rows scaled by s_i = w_i / S_i (see _chunk_softmax_python)
        self.XS = np.empty((rows, d) if softmax else (0, 0), dtype=dtype)
        self.best = np.empty(rows, dtype=dtype)
        self.lab = np.empty(rows, dtype=np.intp)
        self.scr = np.empty((8, rows), dtype=np.float64)
        self.scr32 = np.empty((2, rows if softmax and dtype == np.float32 else 0), np.float32)
        self.prod = np.empty((k, d), dtype=dtype)
        self.sums = np.zeros((k, d), dtype=np.float64)
        self.mass = np.zeros(k, dtype=np.float64)
        self.acc = np.zeros(4, dtype=np.float64)
        self.xbuf: np.ndarray | None = None
        # softmax row sums S_i of rows [s_start, s_start + s_len), logged in batches
        self.s_buf = np.empty(s_rows, dtype=np.float64)
        self.s_start = 0
        self.s_len = 0


def dense_sums(
    GT: np.ndarray,
    Xc: np.ndarray,
    XS: np.ndarray,
    softmax: bool,
    prod: np.ndarray,
    sums: np.ndarray,
    mass: np.ndarray,
) -> None:
    """The dense soft sums of a chunk the kernel left to its caller: one BLAS product.

    Softmax: ``e^T (s x)`` (``XS`` as the kernel filled it) adds ``Σ_i r_ij x_i`` to
    ``sums``; entmax-1.5: ``GT`` holds the weighted probabilities, ``GT^T X_c`` adds the
    sums.  The kernel has added the masses."""
    sums += np.dot(GT, XS if softmax else Xc, out=prod)


def soft_stats(
    X: np.ndarray,
    C: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    sigma: float,
    kind: str,
    working_memory: Any = None,
) -> tuple[np.ndarray, ...]:
    """``(sums, mass, L, F, J, T)`` in ``X``'s dtype, as
    :func:`arbf._math.core.soft.soft_stats` (accumulated in float64).  σ is clamped to
    the dtype's normal range as the pure pass clamps it
    (:func:`arbf._math.core.responsibilities.score_sigma`)."""
    n, d = X.shape
    k = C.shape[0]
    dtype = X.dtype
    if sigma == 0 or kind == "hard":
        _, sums, wsum, inertia = _hard.lloyd_sums(
            X, C, sample_weight, working_memory=working_memory
        )
        return sums, wsum, inertia, inertia.copy(), inertia.copy(), np.zeros_like(inertia)
    softmax = kind == "softmax"
    fi = np.finfo(dtype)
    sigma = min(max(float(sigma), float(fi.smallest_normal)), float(fi.max))
    C = np.ascontiguousarray(C)
    c_sq = np.sum(C * C, axis=1)  # in X's dtype, as the hard path's
    w = None
    if sample_weight is not None:
        w = np.ascontiguousarray(sample_weight)
    empty_w = np.empty(0, dtype=dtype if w is None else w.dtype)
    kernel = _get_kernels()["chunk"]
    # one k x rows buffer per thread, chunked exactly as the hard path (an entmax-1.5
    # one-hot pass then reproduces the hard pass bit for bit, partial sums included)
    rows, threads = chunk_plan(n, k, d, dtype.itemsize, working_memory)
    budget = budget_mb(working_memory)
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
            st.acc[3] += float(total)
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
            Xc, GT, st.XS, C, c_sq, wc, scale, scale32, softmax, sigma, st.best, st.lab,
            st.scr, st.scr32, s_out, st.mass, st.sums, st.acc,
        )  # fmt: skip
        if dense:
            dense_sums(GT, Xc, st.XS[:m], softmax, st.prod, st.sums, st.mass)

    states = run_chunks(n, rows, threads, work, make_state)
    for st in states:
        flush(st)
    sums, mass, acc = states[0].sums, states[0].mass, states[0].acc
    for st in states[1:]:
        sums += st.sums
        mass += st.mass
        acc += st.acc
    with np.errstate(over="ignore"):  # F beyond the dtype's range is -inf (documented)
        return (
            sums.astype(dtype),
            mass.astype(dtype),
            np.asarray(acc[0], dtype=dtype),
            np.asarray(acc[1], dtype=dtype),
            np.asarray(acc[2], dtype=dtype),
            np.asarray(acc[3], dtype=dtype),
        )
