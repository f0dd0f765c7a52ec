"""Compiled hard-assignment kernels: nearest centers, the fused Lloyd sums, column means.

The contracts are those of :mod:`arbf._math.core.distances` (the tested reference); the
arithmetic is the same -- scores ``s_ij = ||c_j||^2 - 2 x_i . c_j`` (argmin, ties to the
lowest index), exact ``||x_i - c_{l_i}||^2`` for the inertia -- organised for a CPU:

- cache-sized chunks of rows (:func:`arbf._math.kernels.runtime.chunk_plan`) over a few
  threads, each reusing one preallocated ``k x rows`` buffer
  (``np.dot(C, X_chunk.T, out=buf)``): allocating fresh large temporaries costs page
  faults, which dominate this problem;
- a compiled ``nogil`` kernel (:mod:`numba`) that fuses the argmin (over the centers,
  vectorised along the rows of the transposed buffer), the exact distance and the
  weighted accumulation into per-thread partial sums;
- partial sums, weights and inertia accumulated in float64 whatever the input dtype, so
  float32 results agree with a float64 reference to about ``1e-6`` relative;
- float64 passes with many centers (``k >=`` :data:`CERTIFIED_MIN_K`) take the product in
  float32 -- half the time of BLAS's float64 product -- and keep each row's float32
  argmin only where the gap to the runner-up exceeds twice a rigorous bound on the
  difference between the float32 and the float64 scores; the few other rows are
  recomputed by the float64 product, so the labels, sums and inertia are the plain
  float64 pass's, bit for bit (tested on exact and near ties, offsets, overflow and
  underflow).

Nothing here writes into its inputs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .runtime import CACHE_BYTES, chunk_plan, lock, n_threads, run_chunks

__all__ = [
    "assign",
    "assign_inertia",
    "get_sq_dist",
    "labelled_inertia",
    "labelled_sq_distances",
    "largest",
    "lloyd_sums",
    "mean_rows",
    "mean_variance",
    "pairwise_distances",
]

#: Expanded squared distances at most this fraction of ``||x||^2 + ||c||^2`` are
#: recomputed directly by :func:`pairwise_distances` (there the expansion cancels).
RECOMPUTE_BELOW = 2.0**-10


def _sq_dist_python(X, C, i, j):
    """``||x_i - c_j||^2`` in float64.  Compiled with reassociation, so the sum over the
    features vectorises (a strict sequential sum is a latency-bound chain that dominated
    the kernel's time); every kernel that needs the exact nearest distance calls this
    one helper, so they agree to the bit."""
    dist = 0.0
    for c in range(X.shape[1]):
        t = np.float64(X[i, c]) - np.float64(C[j, c])
        dist += t * t
    return dist


_sq_dist: Any = None  # the compiled _sq_dist_python, set by get_sq_dist


def _sq_dist_shift_python(X, S, C, i, j):
    """:func:`_sq_dist_python` of the row ``x_i - s`` (subtracted in ``X``'s dtype, as
    ``np.subtract(X, S)`` rounds it): the same bits as the helper on the shifted copy."""
    dist = 0.0
    for c in range(X.shape[1]):
        t = np.float64(X[i, c] - S[c]) - np.float64(C[j, c])
        dist += t * t
    return dist


_sq_dist_shift: Any = None  # compiled by _get_kernels, with _sq_dist's flags


def _cast_sq_norms_python(X, x32, sq):
    """``x32 = float32(X)`` and ``sq_i = ||x_i||^2`` (float64) in one read of the rows
    (compiled with reassociation, as :func:`_sq_dist_python`: only a bound is made of
    ``sq``)."""
    m, d = X.shape
    for i in range(m):
        s = 0.0
        for c in range(d):
            v = X[i, c]
            x32[i, c] = np.float32(v)
            s += v * v
        sq[i] = s


def _chunk_python(X, GT, C, c_sq, w, labels, best, min_sq, sums, wsum, inertia, do_sums):
    """Fused argmin, exact distance and weighted accumulation for one chunk (compiled).

    ``GT`` holds ``C @ X_c.T`` (centers by rows, so the argmin over the centers runs
    along the contiguous rows axis and vectorises for any ``k``); ``best`` is scratch.
    ``w`` and ``min_sq`` of length 0 mean unit weights and "not wanted".  ``sums``,
    ``wsum`` and ``inertia`` (float64) are this thread's partial sums, accumulated row
    by row.  Scores ``c_sq[j] - (g + g)`` are rounded exactly as the pure path's
    ``c_sq - 2.0 * G`` (doubling is exact), so labels agree, ties to the lowest index.
    """
    _argmin(GT, c_sq, labels, best)
    _accumulate(X, X[0, :0], C, w, labels, min_sq, sums, wsum, inertia, do_sums)


def _take_python(b, lab, v, j):
    """``(v, j)`` if ``v < b`` else ``(b, lab)``: one step of a first-minimum scan (ties
    and NaN scores keep the earlier center).  Inlined by the compiled scans, which keep
    a row's running minimum in registers over several centers: the one-center form
    ``best[i] = v if v < best[i] else best[i]`` is compiled (LLVM) into *masked* vector
    stores, which are microcoded and several times slower on some processors (AMD Zen 3
    measured: 1.0 against 0.3 ns per score, ``benchmarks/ab_argmin_unroll.py``)."""
    lt = v < b
    return (v if lt else b), (j if lt else lab)


def _take_second_python(b, s, lab, v, j):
    """:func:`_take_python` that also keeps the runner-up ``s``: the new runner-up is
    ``min(s, max(v, b))`` (strict comparisons, as written)."""
    lt = v < b
    hi = b if lt else v  # max(v, b)
    return (v if lt else b), (hi if hi < s else s), (j if lt else lab)


_take: Any = None  # the compiled _take_python, set by get_take
_take_second: Any = None  # the compiled _take_second_python, set by get_take


def _argmin_python(GT, c_sq, labels, best):
    """``labels_i = argmin_j (c_sq[j] - 2 GT[j, i])`` (ties to the lowest index) and the
    minimum in ``best``, along the contiguous rows axis (compiled).  Four centers per
    sweep over the rows, in order (:func:`_take_python`), so each row's minimum is read
    and written once per four centers with plain vector loads and stores."""
    k, m = GT.shape
    c0 = c_sq[0]
    for i in range(m):
        g = GT[0, i]
        best[i] = c0 - (g + g)
        labels[i] = 0
    j = np.intp(1)  # not a literal: one compiled _take for every call
    while j + 3 < k:
        c1, c2, c3, c4 = c_sq[j], c_sq[j + 1], c_sq[j + 2], c_sq[j + 3]
        for i in range(m):
            b, lab = best[i], labels[i]
            g = GT[j, i]
            b, lab = _take(b, lab, c1 - (g + g), j)
            g = GT[j + 1, i]
            b, lab = _take(b, lab, c2 - (g + g), j + 1)
            g = GT[j + 2, i]
            b, lab = _take(b, lab, c3 - (g + g), j + 2)
            g = GT[j + 3, i]
            b, lab = _take(b, lab, c4 - (g + g), j + 3)
            best[i] = b
            labels[i] = lab
        j += 4
    while j < k:
        cj = c_sq[j]
        for i in range(m):
            g = GT[j, i]
            b, lab = _take(best[i], labels[i], cj - (g + g), j)
            best[i] = b
            labels[i] = lab
        j += 1


_argmin: Any = None  # the compiled _argmin_python, set by _get_kernels


def _accumulate_python(X, S, C, w, labels, min_sq, sums, wsum, inertia, do_sums):
    """The exact distances ``||x_i - s - c_{l_i}||^2`` (into ``min_sq`` if it has length
    ``m``) and the weighted float64 accumulation of one chunk's rows ``x_i - s`` into
    this thread's partial sums, row by row (compiled; shared by :func:`_chunk_python`,
    :func:`_chunk_shift_python` and the certified float64 pass, so equal labels give
    equal bits).  ``S`` of length 0 means no shift; otherwise ``x_i - s`` is rounded in
    ``X``'s dtype, as ``np.subtract(X, S)`` rounds it (the bits of the shifted copy)."""
    m, d = X.shape
    shifted = S.shape[0] > 0
    has_w = w.shape[0] > 0
    want_min = min_sq.shape[0] > 0
    tot = 0.0
    for i in range(m):
        lab = labels[i]
        dist = _sq_dist_shift(X, S, C, i, lab) if shifted else _sq_dist(X, C, i, lab)
        if want_min:
            min_sq[i] = dist
        wi = np.float64(w[i]) if has_w else 1.0
        tot += wi * dist
        if do_sums:
            wsum[lab] += wi
            if shifted:
                for c in range(d):
                    sums[lab, c] += wi * np.float64(X[i, c] - S[c])
            else:
                for c in range(d):
                    sums[lab, c] += wi * np.float64(X[i, c])
    inertia[0] += tot


_accumulate: Any = None  # the compiled _accumulate_python, set by _get_kernels


def _chunk_shift_python(X, S, GT, C, c_sq, w, labels, best, min_sq, sums, wsum, inertia, do_sums):
    """:func:`_chunk_python` for the rows ``x_i - s`` of ``X`` without their copy (the
    shift folded into the product): ``GT`` holds ``C @ X.T`` of the unshifted rows and
    ``c_sq`` the scores' offsets ``||c_j||^2 + 2 s . c_j``, so ``c_sq[j] - 2 g`` is the
    score of the shifted row; the exact distances and sums subtract ``s`` row by row,
    with the bits of the shifted copy (see :data:`FOLD_SHIFT`)."""
    _argmin(GT, c_sq, labels, best)
    _accumulate(X, S, C, w, labels, min_sq, sums, wsum, inertia, do_sums)


def _argmin_second_python(GT, c_sq, labels, best, second):
    """:func:`_argmin_python` that also keeps each row's runner-up score in ``second``
    (:func:`_take_second_python`; ``inf`` for ``k = 1``), four centers per sweep
    (compiled; the certified float64 pass and the bound methods' first pass)."""
    k, m = GT.shape
    c0 = c_sq[0]
    for i in range(m):
        g = GT[0, i]
        best[i] = c0 - (g + g)
        second[i] = np.inf
        labels[i] = 0
    j = np.intp(1)  # not a literal: one compiled _take for every call
    while j + 3 < k:  # four centers per sweep, as _argmin_python
        c1, c2, c3, c4 = c_sq[j], c_sq[j + 1], c_sq[j + 2], c_sq[j + 3]
        for i in range(m):
            b, s, lab = best[i], second[i], labels[i]
            g = GT[j, i]
            b, s, lab = _take_second(b, s, lab, c1 - (g + g), j)
            g = GT[j + 1, i]
            b, s, lab = _take_second(b, s, lab, c2 - (g + g), j + 1)
            g = GT[j + 2, i]
            b, s, lab = _take_second(b, s, lab, c3 - (g + g), j + 2)
            g = GT[j + 3, i]
            b, s, lab = _take_second(b, s, lab, c4 - (g + g), j + 3)
            best[i], second[i], labels[i] = b, s, lab
        j += 4
    while j < k:
        cj = c_sq[j]
        for i in range(m):
            g = GT[j, i]
            b, s, lab = _take_second(best[i], second[i], labels[i], cj - (g + g), j)
            best[i], second[i], labels[i] = b, s, lab
        j += 1


_argmin_second: Any = None  # the compiled _argmin_second_python, set by get_take


def _certify_python(sq, GT, c_sq32, cmax, rel, csq_term, abs_term, labels, best, second, fail):
    """Labels of one float64 chunk from float32 scores, each certified or flagged.

    ``GT`` holds ``C32 @ X32_c.T`` (float32 copies of the float64 rows and centers),
    ``sq`` the rows' squared norms (float64, :func:`_cast_sq_norms_python`) and
    ``c_sq32`` the centers' float64 squared norms rounded to float32; the scores
    ``c_sq32[j] - (g + g)`` are formed in float32, with the argmin (ties to the lowest
    index) and the runner-up (``best`` and ``second``: float32 scratch).  Every float32
    score lies within ``B_i = rel ||x_i|| max_j ||c_j|| + csq_term + abs_term (1 + ||x_i||
    + max_j ||c_j||)`` of the float64
    score the plain pass computes (see :func:`_certified_bound_terms`), so a gap
    ``runner-up - best > 2 B_i`` proves that the float64 argmin is the same center:
    ``fail[i]`` is 0 there and 1 where the gap is smaller (the caller recomputes those
    rows in float64).  Rows whose norm is not below ``2**120`` (an entry could round to
    an infinite float32, and ``inf * 0`` make a score NaN, which the argmin skips) or
    whose norm times ``cmax`` is not below ``2**100`` (the float32 scores could
    overflow) are flagged too.  Returns the number flagged.
    """
    _argmin_second(GT, c_sq32, labels, best, second)
    m = GT.shape[1]
    flagged = 0
    for i in range(m):
        xn = math.sqrt(sq[i]) * 1.0009765625  # ≥ ||x_i|| (rounding: ≤ d ulp)
        bound = rel * xn * cmax + csq_term + abs_term * (1.0 + xn + cmax)
        gap = np.float64(second[i] - best[i])  # float32 difference: ≤ (1 + 2**-24) x true
        # float32 rows finite (no inf * 0 = NaN score) and products below the range
        ok = xn < 2.0**120 and xn * cmax < 2.0**100 and gap > 2.0 * bound
        fail[i] = 0 if ok else 1
        flagged += 0 if ok else 1
    return flagged


def _labelled_python(X, C, w, labels, inertia):
    """``inertia[0] += Σ_i w_i ||x_i - c_{labels_i}||^2`` over one chunk, accumulated as
    :func:`_chunk_python` accumulates it (so equal labels give equal bits)."""
    m = X.shape[0]
    has_w = w.shape[0] > 0
    tot = 0.0
    for i in range(m):
        wi = np.float64(w[i]) if has_w else 1.0
        tot += wi * _sq_dist(X, C, i, labels[i])
    inertia[0] += tot


def _pairwise_python(X, C, G, c_sq, tau, out):
    """``out_ij = ||x_i - c_j||`` for one chunk from ``G = X C^T`` (float64): the expansion
    ``||x_i||^2 + ||c_j||^2 - 2 G_ij`` clamped at 0, recomputed directly (float64) where
    it is at most ``tau (||x_i||^2 + ||c_j||^2)`` -- where it cancels; so a point on a
    center is at exactly 0."""
    m, k = G.shape
    d = X.shape[1]
    for i in range(m):
        xs = 0.0
        for c in range(d):
            v = np.float64(X[i, c])
            xs += v * v
        for j in range(k):
            scale = xs + c_sq[j]
            v = scale - 2.0 * G[i, j]
            if v <= tau * scale:
                v = _sq_dist(X, C, i, j)
            out[i, j] = math.sqrt(v) if v > 0.0 else 0.0


_kernels: dict[str, Any] = {}


def get_sq_dist() -> Any:
    """The compiled :func:`_sq_dist_python` (also used by the soft-statistics kernels)."""
    global _sq_dist
    if _sq_dist is None:
        import numba

        # fastmath given explicitly (numba lets a callee that leaves it unset inherit
        # its caller's flags); reassociation only where it is wanted, the feature sum
        _sq_dist = numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})(
            _sq_dist_python
        )
    return _sq_dist


def get_take() -> Any:
    """The compiled :func:`_take_python`, :func:`_take_second_python` and
    :func:`_argmin_second_python` (strict: no fast-math; also used by :mod:`.soft` and
    :mod:`.bounds`)."""
    global _take, _take_second, _argmin_second
    if _take is None:
        import numba

        strict = numba.njit(nogil=True, cache=True, fastmath=False)
        _take_second = strict(_take_second_python)
        _take = strict(_take_python)
        _argmin_second = strict(_argmin_second_python)
    return _take, _take_second, _argmin_second


def _get_kernels() -> dict[str, Any]:
    """The compiled chunk kernels (numba imported and the kernels jitted on first use)."""
    if not _kernels:
        with lock:
            if not _kernels:
                get_sq_dist()
                get_take()
                import numba

                # no fast-math (given explicitly: a callee that leaves it unset inherits
                # its caller's flags); the distance helper alone reassociates
                strict = numba.njit(nogil=True, cache=True, fastmath=False)
                global _accumulate
                _kernels["cast_sq_norms"] = numba.njit(
                    nogil=True, cache=True, fastmath={"reassoc", "contract"}
                )(_cast_sq_norms_python)
                global _sq_dist_shift, _argmin
                _sq_dist_shift = numba.njit(
                    nogil=True, cache=True, fastmath={"reassoc", "contract"}
                )(_sq_dist_shift_python)
                _argmin = strict(_argmin_python)
                _accumulate = strict(_accumulate_python)
                _kernels["certify"] = strict(_certify_python)
                _kernels["labelled"] = strict(_labelled_python)
                _kernels["pairwise"] = strict(_pairwise_python)
                _kernels["column_sums"] = strict(_column_sums_python)
                _kernels["column_moments"] = strict(_column_moments_python)
                global _pairwise_block
                _pairwise_block = strict(_pairwise_block_python)
                _kernels["labelled_sq"] = strict(_labelled_sq_python)
                _kernels["chunk"] = strict(_chunk_python)
                _kernels["chunk_shift"] = strict(_chunk_shift_python)
    return _kernels


class _State:
    """One thread's buffers and float64 partial sums."""

    def __init__(
        self,
        rows: int,
        k: int,
        d: int,
        dtype: Any,
        x_contig: bool,
        scores: bool = True,
        shift: np.ndarray | None = None,
        certified: bool = False,
    ) -> None:
        # the certified float64 pass keeps float32 scores and rows, and a runner-up
        self.GT = np.empty((k, rows if scores else 0), dtype=np.float32 if certified else dtype)
        self.best = np.empty(rows if scores else 0, dtype=dtype)
        self.best32 = np.empty(rows if certified else 0, dtype=np.float32)
        self.second = np.empty(rows if certified else 0, dtype=np.float32)
        self.sq = np.empty(rows if certified else 0, dtype=np.float64)
        self.fail = np.empty(rows if certified else 0, dtype=np.uint8)
        self.x32 = np.empty((rows if certified else 0, d), dtype=np.float32)
        self.shift = shift
        copy = shift is not None or not x_contig
        self.xbuf = np.empty((rows, d), dtype=dtype) if copy else None
        self.sums = np.zeros((k, d), dtype=np.float64)
        self.wsum = np.zeros(k, dtype=np.float64)
        self.inertia_arr = np.zeros(1, dtype=np.float64)

    def rows_of(self, X: np.ndarray, a: int, b: int) -> np.ndarray:
        """``X[a:b]`` (minus ``shift``: the same bits as the rows of ``X - shift``),
        copied into this thread's contiguous buffer unless it is contiguous and not
        shifted."""
        if self.xbuf is None:
            return X[a:b]
        out = self.xbuf[: b - a]
        if self.shift is None:
            np.copyto(out, X[a:b])
        else:
            np.subtract(X[a:b], self.shift, out=out)
        return out


def _shift_of(X: np.ndarray, shift: np.ndarray | None) -> np.ndarray | None:
    """``shift`` as a row in ``X``'s dtype (the data are ``X - shift``), or ``None``."""
    return None if shift is None else np.ascontiguousarray(shift, dtype=X.dtype).reshape(-1)


def _weights(sample_weight: np.ndarray | None) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = np.ascontiguousarray(sample_weight)
    return w if w.dtype in (np.float32, np.float64) else w.astype(np.float64)


#: Whether float64 hard passes compute their scores in float32 and certify each label
#: (:func:`_certify_python`); rows without a certificate are recomputed in float64, so
#: the labels are those of the plain float64 pass.  Tests switch it off to compare.
CERTIFIED_FLOAT64: bool = True

#: Whether a pass over ``X - shift`` (lazy centring, C-contiguous ``X``) multiplies
#: the unshifted rows and folds the shift into the scores (``||c||^2 + 2 s.c - 2 x.c``)
#: instead of copying each chunk shifted (a memory pass: one-iteration fits take
#: 0.86-0.99 of their time without it, docs/benchmarks.md).  Only where ``||s||^2`` is at most the
#: median ``||c_j||^2`` of the (shifted) centers: the shift is then within the spread of
#: the centers, which lies within the data's, so the product's rounding error,
#: ``u ||x|| ||c||`` instead of ``u ||x - s|| ||c||``, grows about twofold at most for
#: typical rows (a few far-out centers do not count; data far from the origin are
#: copied shifted, as before).  The distances, sums and inertia still subtract the
#: shift row by row, with the copy's bits.  Tests switch it off to compare.
FOLD_SHIFT: bool = True

#: The fewest centers for which the certified pass is used: it reads the float64 rows
#: once more (to round them to float32), a memory-bound pass that the halved product
#: repays only where the product is long per row (measured, docs/benchmarks.md: 0.7-0.8
#: of the plain pass at k = 256, 300; 0.9-1.05 at k = 16, 64).
CERTIFIED_MIN_K: int = 128


def _certified_bound_terms(d: int, c_sq: np.ndarray) -> tuple[float, float, float] | None:
    """``(cmax, rel, csq_term)`` of the bound of :func:`_certify_python`, or ``None``
    where the certified pass does not apply (switched off, ``d`` too large, centers too
    large or not finite).

    With ``u = 2**-24`` (float32), ``v = 2**-53`` (float64), ``γ_n(u) = n u / (1 - n u)``
    and ``T = Σ_c |c_jc| |x_ic| ≤ ||x_i|| ||c_j||``: the float32 product of the rounded
    rows and centers is within ``e32 T`` of ``c_j · x_i``, ``e32 = γ_d(u)(1 + u)^2 + 2u +
    u^2`` (any summation order, fused or not); BLAS's float64 product within ``e64 T``,
    ``e64 = γ_d(v)``.  The plain pass's score ``c_sq_j - 2 g`` adds at most
    ``v (c_sq_j + 2 |g|)`` to it; the float32 score (``c_sq_j`` rounded to float32, then
    one float32 subtraction) at most ``u c_sq_j + u (c_sq_j (1 + u) + 2 |g|)``.  With
    ``|g| ≤ 1.1 T`` the two scores differ by at most
    ``2 (e32 + e64) T + 2.2 (u + v) T + (2.1 u + v) c_sq_j``, taken with 1 % to spare;
    underflow adds the absolute term of :func:`_certify_python`.
    """
    if not CERTIFIED_FLOAT64 or d >= 2**20 or c_sq.shape[0] < CERTIFIED_MIN_K:
        return None
    csq_max = float(np.max(c_sq)) if c_sq.size else 0.0
    if not math.isfinite(csq_max) or csq_max >= 2.0**100:
        return None
    cmax = math.sqrt(csq_max) * 1.0009765625
    u, v = 2.0**-24, 2.0**-53
    e32 = d * u / (1 - d * u) * (1 + u) ** 2 + 2 * u + u * u
    e64 = d * v / (1 - d * v)
    rel = (2 * (e32 + e64) + 2.2 * (u + v)) * 1.01
    return cmax, rel, (2.1 * u + v) * csq_max * 1.01


def _certified_work(
    X: np.ndarray,
    C: np.ndarray,
    c_sq: np.ndarray,
    terms: tuple[float, float, float],
    w: np.ndarray | None,
    labels: np.ndarray,
    min_sq: np.ndarray | None,
    rows: int,
    do_sums: bool,
    empty_w: np.ndarray,
    empty_min: np.ndarray,
) -> Any:
    """The chunk work of the certified float64 pass (see :data:`CERTIFIED_FLOAT64`):
    float32 product and certified argmin, the flagged rows' scores by BLAS's float64
    product (as the plain pass computes them), then the plain pass's accumulation."""
    n, k = X.shape[0], C.shape[0]
    kernels = _get_kernels()
    certify = kernels["certify"]
    cast_sq_norms = kernels["cast_sq_norms"]
    abs_term = X.shape[1] * 2.0**-140  # underflow (subnormal float32): see _certify_python
    C32 = C.astype(np.float32)
    c_sq32 = c_sq.astype(np.float32)
    cmax, rel, csq_term = terms

    def work(a: int, st: _State) -> None:
        b = min(a + rows, n)
        Xc = st.rows_of(X, a, b)
        x32 = st.x32[: b - a]
        cast_sq_norms(Xc, x32, st.sq)
        GT = st.GT if b - a == rows else np.empty((k, b - a), dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):  # such rows are flagged
            np.dot(C32, x32.T, out=GT)
        lab = labels[a:b]
        flagged = certify(
            st.sq, GT, c_sq32, cmax, rel, csq_term, abs_term, lab, st.best32, st.second, st.fail
        )  # fmt: skip
        if flagged:
            idx = np.flatnonzero(st.fail[: b - a])
            G = np.dot(C, Xc[idx].T)
            lab[idx] = np.argmin(c_sq[:, None] - (G + G), axis=0)
        _accumulate(
            Xc,
            Xc[0, :0],
            C,
            empty_w if w is None else w[a:b],
            lab,
            empty_min if min_sq is None else min_sq[a:b],
            st.sums,
            st.wsum,
            st.inertia_arr,
            do_sums,
        )

    return work


def _folds(shift: np.ndarray, c_sq: np.ndarray) -> bool:
    """Whether a pass folds ``shift`` into its scores (:data:`FOLD_SHIFT`)."""
    if not FOLD_SHIFT or c_sq.size == 0:
        return False
    s_sq = float(np.dot(shift.astype(np.float64), shift.astype(np.float64)))
    return s_sq <= float(np.median(c_sq))  # False for NaN


def _folded_work(
    X: np.ndarray,
    C: np.ndarray,
    shift: np.ndarray,
    c_sq: np.ndarray,
    w: np.ndarray | None,
    labels: np.ndarray,
    min_sq: np.ndarray | None,
    rows: int,
    do_sums: bool,
    empty_w: np.ndarray,
    empty_min: np.ndarray,
) -> Any:
    """The chunk work of a pass over ``X - shift`` with the shift folded into the scores
    (:data:`FOLD_SHIFT`): the product of the unshifted rows, read in place."""
    n, k = X.shape[0], C.shape[0]
    dtype = X.dtype
    kernel = _get_kernels()["chunk_shift"]
    C64 = C.astype(np.float64)
    offsets = (c_sq.astype(np.float64) + 2.0 * (C64 @ shift.astype(np.float64))).astype(dtype)

    def work(a: int, st: _State) -> None:
        b = min(a + rows, n)
        Xr = X[a:b]
        GT = st.GT if b - a == rows else np.empty((k, b - a), dtype=dtype)
        np.dot(C, Xr.T, out=GT)
        kernel(
            Xr, shift, GT, C, offsets, empty_w if w is None else w[a:b], labels[a:b],
            st.best, empty_min if min_sq is None else min_sq[a:b], st.sums, st.wsum,
            st.inertia_arr, do_sums,
        )  # fmt: skip

    return work


def _pass(
    X: np.ndarray,
    C: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    working_memory: Any,
    do_sums: bool,
    want_min_sq: bool,
    shift: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray, float]:
    """One pass over ``X - shift``: labels, optional min distances, float64
    sums/weights/inertia.  ``shift`` (a row, or ``None``) is subtracted chunk by chunk in
    cache: the result is that of the centred array, bit for bit, without making it --
    or, where :func:`_folds`, folded into the scores (:data:`FOLD_SHIFT`): the same bits
    except for samples within rounding of a tie between two centers."""
    n, d = X.shape
    k = C.shape[0]
    dtype = X.dtype
    C = np.ascontiguousarray(C)
    c_sq = np.sum(C * C, axis=1)  # the same expression as the pure path's sq_norms
    w = _weights(sample_weight)
    labels = np.empty(n, dtype=np.intp)
    min_sq = np.empty(n, dtype=np.float64) if want_min_sq else None
    rows, threads = chunk_plan(n, k, d, dtype.itemsize, working_memory)
    kernel = _get_kernels()["chunk"]
    x_contig = X.flags.c_contiguous
    empty_w = np.empty(0, dtype=dtype if w is None else w.dtype)
    empty_min = np.empty(0, dtype=np.float64)

    def work(a: int, st: _State) -> None:
        b = min(a + rows, n)
        Xc = st.rows_of(X, a, b)
        # a partial last chunk gets a fresh contiguous buffer
        GT = st.GT if b - a == rows else np.empty((k, b - a), dtype=dtype)
        np.dot(C, Xc.T, out=GT)
        kernel(
            Xc,
            GT,
            C,
            c_sq,
            empty_w if w is None else w[a:b],
            labels[a:b],
            st.best,
            empty_min if min_sq is None else min_sq[a:b],
            st.sums,
            st.wsum,
            st.inertia_arr,
            do_sums,
        )

    sh = _shift_of(X, shift)
    terms = _certified_bound_terms(d, c_sq) if dtype == np.float64 else None
    if terms is not None:
        work = _certified_work(
            X, C, c_sq, terms, w, labels, min_sq, rows, do_sums, empty_w, empty_min
        )
    elif sh is not None and x_contig and _folds(sh, c_sq):
        work = _folded_work(X, C, sh, c_sq, w, labels, min_sq, rows, do_sums, empty_w, empty_min)
        sh = None  # no shifted copies
    states = run_chunks(
        n, rows, threads, work, lambda: _State(rows, k, d, dtype, x_contig, shift=sh,
                                               certified=terms is not None)
    )  # fmt: skip
    sums = states[0].sums
    wsum = states[0].wsum
    inertia = 0.0
    for i, st in enumerate(states):
        inertia += float(st.inertia_arr[0])
        if i:
            sums += st.sums
            wsum += st.wsum
    return labels, min_sq, sums, wsum, inertia


def lloyd_sums(
    X: np.ndarray,
    C: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    working_memory: Any,
    shift: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`arbf._math.core.distances.lloyd_sums` for NumPy: ``(labels, sums, weights,
    inertia)`` in ``X``'s dtype (accumulated in float64), of ``X - shift``."""
    dtype = X.dtype
    labels, _, sums, wsum, inertia = _pass(
        X, C, sample_weight, working_memory=working_memory, do_sums=True, want_min_sq=False,
        shift=shift,
    )  # fmt: skip
    return labels, sums.astype(dtype), wsum.astype(dtype), np.asarray(inertia, dtype=dtype)


def assign(X: np.ndarray, C: np.ndarray, *, working_memory: Any) -> tuple[np.ndarray, np.ndarray]:
    """:func:`arbf._math.core.distances.assign` for NumPy: ``(labels, min_sq)``."""
    labels, min_sq, _, _, _ = _pass(
        X, C, None, working_memory=working_memory, do_sums=False, want_min_sq=True
    )
    assert min_sq is not None
    return labels, min_sq.astype(X.dtype, copy=False)


def assign_inertia(
    X: np.ndarray,
    C: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    working_memory: Any,
    shift: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`arbf._math.core.distances.assign_inertia` for NumPy: ``(labels, inertia)``
    of ``X - shift``."""
    labels, _, _, _, inertia = _pass(
        X, C, sample_weight, working_memory=working_memory, do_sums=False, want_min_sq=False,
        shift=shift,
    )  # fmt: skip
    return labels, np.asarray(inertia, dtype=X.dtype)


def labelled_inertia(
    X: np.ndarray,
    C: np.ndarray,
    labels: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    working_memory: Any,
    shift: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`arbf._math.core.distances.labelled_inertia` for NumPy: the inertia of given
    labels (of ``X - shift``), chunked and accumulated exactly as :func:`assign_inertia`
    (so the inertia of the nearest-center labels equals :func:`assign_inertia`'s to the
    bit)."""
    n, d = X.shape
    k = C.shape[0]
    dtype = X.dtype
    C = np.ascontiguousarray(C)
    w = _weights(sample_weight)
    lab = np.ascontiguousarray(labels, dtype=np.intp)
    rows, threads = chunk_plan(n, k, d, dtype.itemsize, working_memory)
    kernel = _get_kernels()["labelled"]
    empty_w = np.empty(0, dtype=dtype if w is None else w.dtype)
    x_contig = X.flags.c_contiguous

    def work(a: int, st: _State) -> None:
        b = min(a + rows, n)
        wc = empty_w if w is None else w[a:b]
        kernel(st.rows_of(X, a, b), C, wc, lab[a:b], st.inertia_arr)

    sh = _shift_of(X, shift)

    def make_state() -> _State:
        return _State(rows, k, d, dtype, x_contig, scores=False, shift=sh)

    states = run_chunks(n, rows, threads, work, make_state)
    inertia = 0.0
    for st in states:
        inertia += float(st.inertia_arr[0])
    return np.asarray(inertia, dtype=dtype)


def _column_sums_python(X, a, b, out):
    """``out = Σ_{a <= i < b} x_i`` in float64, row after row (each column in row order)."""
    d = X.shape[1]
    for c in range(d):
        out[c] = 0.0
    for i in range(a, b):
        for c in range(d):
            out[c] += np.float64(X[i, c])


def _column_moments_python(X, a, b, out, mom):
    """:func:`_column_sums_python` into ``out`` (the same additions in the same order:
    the same bits) and, in the same sweep, ``mom[0] = Σ_{a <= i < b} (x_i - x_a)`` and
    ``mom[1] = Σ_{a <= i < b} (x_i - x_a)^2`` in float64: moments about the block's
    first row, which do not cancel.  Fresh accumulators (no alias with ``X`` or the
    outputs: the loop over the columns vectorises)."""
    d = X.shape[1]
    acc = np.zeros(d, dtype=np.float64)
    s1 = np.zeros(d, dtype=np.float64)
    s2 = np.zeros(d, dtype=np.float64)
    ref = np.empty(d, dtype=np.float64)
    for c in range(d):
        ref[c] = np.float64(X[a, c])
    for i in range(a, b):
        for c in range(d):
            x = np.float64(X[i, c])
            acc[c] += x
            t = x - ref[c]
            s1[c] += t
            s2[c] += t * t
    for c in range(d):
        out[c] = acc[c]
        mom[0, c] = s1[c]
        mom[1, c] = s2[c]


def _sweep(X: np.ndarray, extent: bool, variance: bool = False) -> tuple[float, np.ndarray, float]:
    """One threaded sweep over ``X``: the column means (and the extent, and the mean
    column variance) -- see :func:`extent_mean_rows` and :func:`mean_variance`."""
    n, d = X.shape
    kernels = _get_kernels()
    sums, moments = kernels["column_sums"], kernels["column_moments"]
    rows = max(1, min(n, CACHE_BYTES // (8 * d)))
    n_chunks = -(-n // rows)
    part = np.empty((n_chunks, d), dtype=np.float64)
    mom = np.empty((n_chunks if variance else 0, 2, d), dtype=np.float64)
    hi = np.zeros(n_chunks, dtype=np.float64)
    lo = np.zeros(n_chunks, dtype=np.float64)

    def work(a: int, st: None) -> None:
        c = a // rows
        b = min(a + rows, n)
        if extent:
            chunk = X[a:b]
            hi[c] = chunk.max()
            lo[c] = chunk.min()
        if variance:
            moments(X, a, b, part[c], mom[c])
        else:
            sums(X, a, b, part[c])

    run_chunks(n, rows, min(n_threads(), n_chunks), work, lambda: None)
    total = np.zeros(d, dtype=np.float64)
    for c in range(n_chunks):  # in chunk order: the result does not depend on the threads
        total += part[c]
    ext = float(np.max(np.stack([hi, -lo]))) if extent else 0.0  # NaN propagates
    mean64 = total / n
    mv = _mean_variance_of(X, rows, mom, mean64) if variance else 0.0
    return ext, mean64.astype(X.dtype), mv


def _mean_variance_of(X: np.ndarray, rows: int, mom: np.ndarray, mean64: np.ndarray) -> float:
    """``mean_f Var(X[:, f])`` from the blocks' moments about their first rows
    (:func:`_sweep`), combined by Chan, Golub and LeVeque's pairwise update:
    ``M2 = Σ_b (M2_b + m_b (μ_b - μ)^2)`` over the blocks ``b`` of ``m_b`` rows, with
    ``μ_b = r_b + s_b / m_b`` and ``M2_b = q_b - s_b^2 / m_b`` from the first row
    ``r_b`` and the moments ``s_b = Σ (x_i - r_b)``, ``q_b = Σ (x_i - r_b)^2``; all in
    float64."""
    n = X.shape[0]
    m = np.full((mom.shape[0], 1), float(rows))
    m[-1] = n - rows * (mom.shape[0] - 1)
    first = X[::rows].astype(np.float64)  # each block's first row
    s1, s2 = mom[:, 0], mom[:, 1]
    m2 = np.maximum(s2 - s1 * s1 / m, 0.0) + m * (first + s1 / m - mean64) ** 2
    return float(np.mean(np.sum(m2, axis=0) / n))


def mean_rows(X: np.ndarray) -> np.ndarray:
    """Column means of ``X`` in ``X``'s dtype, accumulated in float64.

    Cache-sized chunks over the worker threads, each summed row after row by a compiled
    kernel (float64 partial sums, no float64 copy of the chunk), the chunk sums added
    in chunk order -- so the bits do not depend on the number of threads.  (NumPy's own
    ``X.mean(axis=0)`` accumulates in ``X``'s dtype, and a BLAS ``ones @ chunk`` needs
    a float64 copy of each float32 chunk: 3x slower at ``(10^6, 16)``.)
    """
    return _sweep(X, extent=False)[1]


def extent_mean_rows(X: np.ndarray) -> tuple[float, np.ndarray]:
    """``(max |x|, column means)`` of ``X`` in one threaded sweep.

    The extent is ``max(max X, -min X)`` (NaN where ``X`` holds a NaN, ``inf`` where it
    holds an infinity: :func:`arbf._math.seam.extent`'s value); the means are
    :func:`mean_rows`' to the bit.  Each chunk is read once, for all three reductions,
    while it is in cache (the extent was two more sweeps over ``X``, on one thread).
    """
    ext, mean, _ = _sweep(X, extent=True)
    return ext, mean


def extent_mean_variance(X: np.ndarray) -> tuple[float, np.ndarray, float]:
    """``(max |x|, column means, mean_f Var(X[:, f]))`` in one threaded sweep: the
    extent and means of :func:`extent_mean_rows` (the same bits) and
    :func:`mean_variance`'s value (the same bits), each chunk read once."""
    return _sweep(X, extent=True, variance=True)


def pairwise_distances(X: np.ndarray, C: np.ndarray, *, working_memory: Any) -> np.ndarray:
    """Euclidean distances ``||x_i - c_j||`` (``n x k``, ``X``'s dtype) for NumPy.

    ``X C^T`` in float64 by BLAS (float32 chunks are converted first), the expansion
    ``||x||^2 + ||c||^2 - 2 x.c`` clamped at 0, and the entries where that cancels (at
    most :data:`RECOMPUTE_BELOW` of ``||x||^2 + ||c||^2``) computed directly: a point on a
    center is at exactly 0, and every entry is at least as precise as the float64
    expansion (scikit-learn's ``euclidean_distances``).
    """
    n, d = X.shape
    k = C.shape[0]
    C64 = np.ascontiguousarray(C, dtype=np.float64)
    c_sq = np.einsum("ij,ij->i", C64, C64)
    CT = C64.T
    out = np.empty((n, k), dtype=X.dtype)
    rows, threads = chunk_plan(n, 2 * k, 2 * d, 8, working_memory)
    kernel = _get_kernels()["pairwise"]
    upcast = X.dtype != np.float64

    def make_state() -> tuple[np.ndarray, np.ndarray | None]:
        buf = np.empty((rows, d), dtype=np.float64) if upcast else None
        return np.empty((rows, k), dtype=np.float64), buf

    def work(a: int, st: tuple[np.ndarray, np.ndarray | None]) -> None:
        b = min(a + rows, n)
        G, buf = st
        Xc = X[a:b]
        if buf is not None:
            np.copyto(buf[: b - a], Xc)
            Xc = buf[: b - a]
        np.matmul(Xc, CT, out=G[: b - a])
        kernel(Xc, C64, G[: b - a], c_sq, RECOMPUTE_BELOW, out[a:b])

    run_chunks(n, rows, threads, work, make_state)
    return out


#: Longest rows :func:`labelled_sq_distances` takes: NumPy sums up to 128 entries as
#: one block of eight accumulators (longer rows are split recursively).
PAIRWISE_BLOCK = 128


def _pairwise_block_python(a, n):
    """NumPy's pairwise summation of ``a[:n]``, ``n <= 128``, in ``a``'s dtype (the
    order of ``np.sum`` along a contiguous axis: eight accumulators, then the rest)."""
    if n < 8:
        res = a[0]
        for i in range(1, n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[0], a[1], a[2], a[3]
    r4, r5, r6, r7 = a[4], a[5], a[6], a[7]
    i = 8
    while i < n - n % 8:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[i]
        i += 1
    return res


_pairwise_block: Any = None


def _labelled_sq_python(X, M, C, labels, buf, out):
    """``out_i = Σ_c ((x_ic - m_c) - c_{l_i c})^2`` in ``X``'s dtype, rounded as the pure
    ``np.sum(((X - M) - C[labels]) ** 2, axis=1)`` (``M``: the shift row, zeros for
    none; ``buf``: scratch of length ``d``)."""
    m, d = X.shape
    for i in range(m):
        lab = labels[i]
        for c in range(d):
            t = (X[i, c] - M[c]) - C[lab, c]
            buf[c] = t * t
        out[i] = _pairwise_block(buf, d)


def labelled_sq_distances(
    X: np.ndarray,
    C: np.ndarray,
    labels: np.ndarray,
    *,
    working_memory: Any = None,
    shift: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`arbf._math.core.distances.labelled_sq_distances` for NumPy, to the bit
    (NumPy's own summation order), without its ``n x d`` temporaries, over threads;
    ``d <= PAIRWISE_BLOCK``; of ``X - shift`` (``x - 0`` is ``x``: no shift is zeros)."""
    n, d = X.shape
    assert d <= PAIRWISE_BLOCK
    M = np.zeros(d, dtype=X.dtype) if shift is None else _shift_of(X, shift)
    C = np.ascontiguousarray(C, dtype=X.dtype)
    lab = np.ascontiguousarray(labels)
    out = np.empty(n, dtype=X.dtype)
    kernel = _get_kernels()["labelled_sq"]
    threads = max(1, min(n_threads(), n // 4096))
    rows = -(-n // threads)

    def work(a: int, buf: np.ndarray) -> None:
        b = min(a + rows, n)
        kernel(X[a:b], M, C, lab[a:b], buf, out[a:b])

    run_chunks(n, rows, threads, work, lambda: np.empty(d, dtype=X.dtype))
    return out


def largest(values: np.ndarray, m: int) -> np.ndarray:
    """Indices of the ``m`` largest ``values``, largest first, ties to the lowest index:
    ``np.argsort(-values, kind="stable")[:m]`` in ``O(n)`` (a partition finds the
    ``m``-th largest value ``v``; the entries above ``v`` and the first ones equal to it
    are then sorted)."""
    n = values.shape[0]
    m = min(m, n)
    if m <= 0:
        return np.empty(0, dtype=np.intp)
    v = np.partition(values, n - m)[n - m]
    above = np.flatnonzero(values > v)
    ties = np.flatnonzero(values == v)[: m - above.size]
    pick = np.concatenate([above, ties])
    return pick[np.argsort(-values[pick], kind="stable")]


def mean_variance(X: np.ndarray, *, working_memory: Any = None) -> float:
    """``mean_f Var(X[:, f])`` -- scikit-learn's tolerance scale -- in float64, in one
    threaded sweep over ``X`` (:func:`_sweep`: each block's moments about its first
    row, combined by Chan, Golub and LeVeque's pairwise formula), with no temporary the size of
    ``X``.  NumPy's ``np.var`` of float32 data sums in float32 (two sweeps, on one
    thread); this is the float64 value, within ``1e-12`` relative of
    ``np.var(X.astype(np.float64))`` (tested).  ``working_memory`` is accepted for the
    seam's signature (the sweep's blocks are cache-sized)."""
    return _sweep(X, extent=False, variance=True)[2]
