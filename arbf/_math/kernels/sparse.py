r"""Compiled kernels for :mod:`scipy.sparse` data: CSR rows against dense centers.

A sparse matrix is not an Array API array, so it has no pure reference in
:mod:`arbf._math.core`; :mod:`arbf._math.seam` sends every operation on a CSR matrix
(canonical: sorted indices, no duplicates, from :func:`arbf._validation.check_data`)
here.  The contracts are those of the dense operations (the tests compare each one with
the dense reference on ``X.toarray()``); nothing densifies ``X``.  Only the centers
(``k x d``) are dense, held in float64 (and transposed, ``d x k``, for the products).

The arithmetic, per row :math:`x` with nonzeros :math:`(c_t, v_t)`:

- scores :math:`s_j = \lVert\mu_j\rVert^2 - 2\, x\cdot\mu_j`, with
  :math:`x\cdot\mu_j = \sum_t v_t \mu_{j c_t}` accumulated in float64 over the nonzeros
  (``nnz x k`` multiply-adds per row, along the contiguous rows of :math:`\mu^\top`); the
  nearest center is their argmin (ties to the lowest index), as scikit-learn's sparse
  Lloyd step; the gaps :math:`D_{ij} - D_{il} = s_j - s_l` need no :math:`\lVert x\rVert^2`;
- the squared distance to a center (inertia, nearest distance), in float64:

  .. math:: \lVert x - \mu_j\rVert^2 = \sum_t (v_t - \mu_{j c_t})^2
            + \Bigl(\lVert\mu_j\rVert^2 - \sum_t \mu_{j c_t}^2\Bigr),

  the bracket (the part of :math:`\mu_j` off the row's support) clamped at 0, exactly 0
  when every nonzero of :math:`\mu_j` lies in the support (so a row equal to a center
  is at distance exactly 0), and taken in double-double arithmetic when it is small
  beside :math:`\lVert\mu_j\rVert^2` (where the plain difference cancels): no
  :math:`O(d)` walk over the center, and full float64 precision;
- sums, weights, masses and objectives accumulated in float64 (per thread, reduced in
  block order: results do not depend on thread timing).

Rows are processed in blocks over the worker threads of :mod:`.runtime` (compiled
``nogil`` kernels); each thread owns its float64 ``k x d`` partial sums when a pass needs
sums, which the ``working_memory`` budget bounds by limiting the threads.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..._chunking import budget_mb
from .hard import RECOMPUTE_BELOW  # the same threshold as the dense transform
from .runtime import lock, n_threads, run_chunks

__all__ = [
    "assign",
    "assign_inertia",
    "dense_rows",
    "dist_to_rows",
    "labelled_distances",
    "labelled_inertia",
    "lloyd_sums",
    "mean_rows",
    "mean_variance",
    "min_margin",
    "pairwise_distances",
    "principal_axis",
    "responsibilities",
    "soft_stats",
    "sq_norms",
    "take_rows",
    "unit_rows",
]


# --------------------------------------------------------------------------------------
# compiled helpers (plain Python here, compiled by _get_kernels)
# --------------------------------------------------------------------------------------


def _scores_python(data, indices, lo, hi, CT, g):
    """``g_j = Σ_t v_t CT[c_t, j]`` (float64) for the nonzeros ``lo..hi`` of one row."""
    k = g.shape[0]
    for j in range(k):
        g[j] = 0.0
    for t in range(lo, hi):
        v = np.float64(data[t])
        c = indices[t]
        for j in range(k):
            g[j] += v * CT[c, j]


def _two_square_python(a):
    """``(p, e)`` with ``p + e == a * a`` exactly (Dekker's product, Veltkamp's split)."""
    p = a * a
    t = 134217729.0 * a  # 2^27 + 1
    hi = t - (t - a)
    lo = a - hi
    return p, ((hi * hi - p) + 2.0 * hi * lo) + lo * lo


def _sq_norms_dd_python(C, hi_out, lo_out):
    """Row-wise ``||c_j||^2`` as a double-double ``hi + lo`` (error ~ d u^2 ||c_j||^2)."""
    for j in range(C.shape[0]):
        s_hi = 0.0
        s_lo = 0.0
        for c in range(C.shape[1]):
            p, e = _two_square(C[j, c])
            t = s_hi + p
            bb = t - s_hi
            s_lo += ((s_hi - (t - bb)) + (p - bb)) + e
            s_hi = t
        hi_out[j] = s_hi + s_lo
        lo_out[j] = s_lo - (hi_out[j] - s_hi)


def _sq_dist_python(data, indices, lo, hi, C, j, c_sq, c_aux):
    """``||x - c_j||^2`` (float64) of one row: the support part plus the off-support
    rest of ``c_j``, ``||c_j||^2 - Σ_t c_{j c_t}^2`` -- exactly 0 when ``c_j``'s nonzeros
    all lie in the support (``c_aux[j, 0]`` counts them), and taken in double-double
    (``||c_j||^2 = c_aux[j, 1] + c_aux[j, 2]``) when it is small beside ``||c_j||^2``,
    where the plain difference would cancel."""
    inside = 0.0
    c_in = 0.0
    covered = 0.0
    for t in range(lo, hi):
        cv = C[j, indices[t]]
        diff = np.float64(data[t]) - cv
        inside += diff * diff
        c_in += cv * cv
        if cv != 0.0:
            covered += 1.0
    if covered == c_aux[j, 0]:
        return inside
    rest = c_sq[j] - c_in
    if rest <= 0.0625 * c_sq[j]:
        s_hi = 0.0
        s_lo = 0.0
        for t in range(lo, hi):
            p, e = _two_square(C[j, indices[t]])
            u = s_hi + p
            bb = u - s_hi
            s_lo += ((s_hi - (u - bb)) + (p - bb)) + e
            s_hi = u
        rest = (c_aux[j, 1] - s_hi) + (c_aux[j, 2] - s_lo)
    return inside + rest if rest > 0.0 else inside


def _nearest_python(g, c_sq):
    """``(argmin_j s_j, min_j s_j)`` of the scores ``s_j = c_sq_j - 2 g_j`` (ties to the
    lowest index)."""
    best = c_sq[0] - 2.0 * g[0]
    lab = 0
    for j in range(1, g.shape[0]):
        v = c_sq[j] - 2.0 * g[j]
        if v < best:
            best = v
            lab = j
    return lab, best


def _hard_python(
    data, indices, indptr, a, b, CT, C, c_sq, c_aux, w, labels, min_sq, sums, wsum, acc, g,
    do_sums,
):  # fmt: skip
    """Rows ``a..b``: nearest labels, (optional) their distances, ``acc[0] += Σ w_i d_i``
    and (``do_sums``) the weighted sums and weights by cluster."""
    has_w = w.shape[0] > 0
    want_min = min_sq.shape[0] > 0
    tot = 0.0
    for i in range(a, b):
        lo = indptr[i]
        hi = indptr[i + 1]
        _scores(data, indices, lo, hi, CT, g)
        lab, _ = _nearest(g, c_sq)
        labels[i] = lab
        dist = _sq_dist(data, indices, lo, hi, C, lab, c_sq, c_aux)
        if want_min:
            min_sq[i] = dist
        wi = np.float64(w[i]) if has_w else 1.0
        tot += wi * dist
        if do_sums:
            wsum[lab] += wi
            for t in range(lo, hi):
                sums[lab, indices[t]] += wi * np.float64(data[t])
    acc[0] += tot


def _labelled_python(data, indices, indptr, a, b, C, c_sq, c_aux, w, labels, out, acc):
    """Rows ``a..b`` with given labels: ``acc[0] += Σ w_i ||x_i - c_{l_i}||^2`` (summed as
    :func:`_hard_python` sums it) and, when ``out`` has entries, the distances."""
    has_w = w.shape[0] > 0
    want = out.shape[0] > 0
    tot = 0.0
    for i in range(a, b):
        dist = _sq_dist(data, indices, indptr[i], indptr[i + 1], C, labels[i], c_sq, c_aux)
        if want:
            out[i] = dist
        tot += (np.float64(w[i]) if has_w else 1.0) * dist
    acc[0] += tot


def _soft_row_python(g, c_sq, lab, best, softmax, sigma, r, gap):
    """Responsibilities ``r`` of one row from its scores (``g``: ``x.c_j``), and
    ``(Σ_j r_j G_j, entropy term)``: softmax ``log Σ_j e^{-G_j/σ}``, entmax-1.5
    ``Σ_j (r_j - r_j^{3/2})``, with the gaps ``G_j = s_j - s_l >= 0`` (in ``gap``)."""
    k = g.shape[0]
    for j in range(k):
        v = (c_sq[j] - 2.0 * g[j]) - best
        gap[j] = v if v > 0.0 else 0.0
    gap[lab] = 0.0
    ext = 0.0
    if softmax:
        s = 0.0
        for j in range(k):
            e = math.exp(-gap[j] / sigma)
            r[j] = e
            s += e
        for j in range(k):
            r[j] = r[j] / s
            ext += r[j] * gap[j]
        return ext, math.log(s)
    for j in range(k):  # entmax-1.5 scores y = -G/(2σ), maximum 0 at the nearest
        r[j] = -gap[j] / (2.0 * sigma)
    tau, _ = _entmax_tau(r)
    ent = 0.0
    for j in range(k):
        u = r[j] - tau
        u = u if u > 0.0 else 0.0
        p = u * u
        r[j] = p
        ext += p * gap[j]
        ent += p - p * u
    return ext, ent


def _soft_python(
    data, indices, indptr, a, b, CT, C, c_sq, c_aux, w, softmax, sigma, sums, mass, acc, g,
    r, gap,
):  # fmt: skip
    """Rows ``a..b`` at σ > 0: ``acc += (Σ w_i L_i, Σ w_i F_i, Σ w_i d_i, Σ w_i T_i)``
    (``T_i`` the entropy term, :class:`arbf._math.core.soft.SoftStats`) and the soft
    sums and masses ``Σ_i w_i r_ij x_i``, ``Σ_i w_i r_ij``."""
    has_w = w.shape[0] > 0
    k = g.shape[0]
    tot_l = 0.0
    tot_f = 0.0
    tot_j = 0.0
    tot_t = 0.0
    c43 = sigma * (4.0 / 3.0)
    for i in range(a, b):
        lo = indptr[i]
        hi = indptr[i + 1]
        _scores(data, indices, lo, hi, CT, g)
        lab, best = _nearest(g, c_sq)
        dist = _sq_dist(data, indices, lo, hi, C, lab, c_sq, c_aux)
        ext, aux = _soft_row(g, c_sq, lab, best, softmax, sigma, r, gap)
        wi = np.float64(w[i]) if has_w else 1.0
        tot_j += wi * dist
        tot_l += wi * (dist + ext)
        if softmax:
            tot_f += wi * (dist - sigma * aux)
            tot_t += wi * aux
        else:
            tot_f += wi * (dist + ext - c43 * aux)
            tot_t += wi * (4.0 / 3.0) * aux
        for j in range(k):
            p = r[j]
            if p > 0.0:
                wp = wi * p
                mass[j] += wp
                for t in range(lo, hi):
                    sums[j, indices[t]] += wp * np.float64(data[t])
    acc[0] += tot_l
    acc[1] += tot_f
    acc[2] += tot_j
    acc[3] += tot_t


def _resp_python(data, indices, indptr, a, b, CT, c_sq, kind, sigma, out, g, r, gap):
    """Rows ``a..b``: responsibilities into ``out`` (kind 0 hard, 1 softmax, 2 entmax)."""
    k = g.shape[0]
    for i in range(a, b):
        _scores(data, indices, indptr[i], indptr[i + 1], CT, g)
        lab, best = _nearest(g, c_sq)
        if kind == 0:
            for j in range(k):
                out[i, j] = 0.0
            out[i, lab] = 1.0
            continue
        _soft_row(g, c_sq, lab, best, kind == 1, sigma, r, gap)
        for j in range(k):
            out[i, j] = r[j]


def _pairwise_python(
    data, indices, indptr, a, b, CT, C, c_sq, c_aux, x_sq, tau, take_sqrt, out, g
):
    """Rows ``a..b``: ``out_ij = ||x_i - c_j||^2`` (or its square root), expanded and
    clamped at 0, recomputed exactly where the expansion is at most ``tau`` times
    ``||x_i||^2 + ||c_j||^2`` (where it cancels)."""
    k = g.shape[0]
    for i in range(a, b):
        lo = indptr[i]
        hi = indptr[i + 1]
        _scores(data, indices, lo, hi, CT, g)
        xs = np.float64(x_sq[i])
        for j in range(k):
            scale = xs + c_sq[j]
            v = scale - 2.0 * g[j]
            if v <= tau * scale:
                v = _sq_dist(data, indices, lo, hi, C, j, c_sq, c_aux)
            v = v if v > 0.0 else 0.0
            out[i, j] = math.sqrt(v) if take_sqrt else v


def _margin_python(data, indices, indptr, a, b, CT, c_sq, acc, g):
    """Rows ``a..b``: ``acc[0] = min(acc[0], min_i (s_(2) - s_(1)))`` (the gap between
    the two nearest centers)."""
    k = g.shape[0]
    lo_gap = acc[0]
    for i in range(a, b):
        _scores(data, indices, indptr[i], indptr[i + 1], CT, g)
        b1 = np.inf
        b2 = np.inf
        for j in range(k):
            v = c_sq[j] - 2.0 * g[j]
            if v < b1:
                b2 = b1
                b1 = v
            elif v < b2:
                b2 = v
        gp = b2 - b1
        if gp < lo_gap:
            lo_gap = gp
    acc[0] = lo_gap


def _row_norms_python(data, indptr, out):
    """``out_i = Σ_t v_t^2`` over each row's nonzeros (float64)."""
    for i in range(indptr.shape[0] - 1):
        s = 0.0
        for t in range(indptr[i], indptr[i + 1]):
            v = np.float64(data[t])
            s += v * v
        out[i] = s


def _column_moments_python(data, indices, n, d):
    """Column means and variances (float64) of an ``n x d`` CSR matrix, as
    scikit-learn's ``mean_variance_axis``: ``Σ_t (v_t - m_c)^2`` over the nonzeros plus
    ``(n - nnz_c) m_c^2`` for the zeros, over ``n``."""
    mean = np.zeros(d)
    cnt = np.zeros(d)
    for t in range(data.shape[0]):
        mean[indices[t]] += np.float64(data[t])
        cnt[indices[t]] += 1.0
    for c in range(d):
        mean[c] /= n
    var = np.zeros(d)
    for t in range(data.shape[0]):
        diff = np.float64(data[t]) - mean[indices[t]]
        var[indices[t]] += diff * diff
    for c in range(d):
        var[c] = (var[c] + (n - cnt[c]) * mean[c] * mean[c]) / n
    return mean, var


_scores: Any = None
_two_square: Any = None
_sq_dist: Any = None
_nearest: Any = None
_soft_row: Any = None
_entmax_tau: Any = None
_kernels: dict[str, Any] = {}


def _get_kernels() -> dict[str, Any]:
    """The compiled kernels (numba imported and the helpers jitted on first use)."""
    global _scores, _two_square, _sq_dist, _nearest, _soft_row, _entmax_tau
    if not _kernels:
        from . import entmax as _kentmax

        _, tau = _kentmax.threshold_helpers()
        with lock:
            if not _kernels:
                import numba

                # strict arithmetic (no fast-math): results do not depend on the
                # compiler's reassociation; the loops over the k centers vectorise as is
                jit = numba.njit(nogil=True, cache=True, fastmath=False)
                _entmax_tau = tau
                _scores = jit(_scores_python)
                _two_square = jit(_two_square_python)
                _sq_dist = jit(_sq_dist_python)
                _nearest = jit(_nearest_python)
                _soft_row = jit(_soft_row_python)
                for name, fn in (
                    ("hard", _hard_python),
                    ("labelled", _labelled_python),
                    ("soft", _soft_python),
                    ("resp", _resp_python),
                    ("pairwise", _pairwise_python),
                    ("margin", _margin_python),
                    ("row_norms", _row_norms_python),
                    ("moments", _column_moments_python),
                    ("norms_dd", _sq_norms_dd_python),
                ):
                    _kernels[name] = jit(fn)
    return _kernels


# --------------------------------------------------------------------------------------
# the Python side
# --------------------------------------------------------------------------------------


class _Centers:
    """The centers in float64 (``k x d``), transposed (``d x k``: in float32 when the
    centers are float32 -- exact, and half the memory traffic of the gathers), their
    squared norms (``c_sq``; and as a double-double ``c_aux[:, 1] + c_aux[:, 2]``) and
    their numbers of nonzeros (``c_aux[:, 0]``)."""

    def __init__(self, C: Any) -> None:
        self.C = np.ascontiguousarray(C, dtype=np.float64)
        low = np.asarray(C).dtype == np.float32
        self.CT = np.ascontiguousarray(np.asarray(C).T if low else self.C.T)
        self.k = self.C.shape[0]
        # the scores use scikit-learn's row norms (einsum), so that ties and near-ties
        # between centers break as in its sparse Lloyd step
        self.c_sq = np.einsum("ij,ij->i", self.C, self.C)
        # [number of nonzeros, ||c||^2 as a double-double hi + lo]
        self.c_aux = np.empty((self.k, 3))
        self.c_aux[:, 0] = np.count_nonzero(self.C, axis=1)
        hi, lo = np.empty(self.k), np.empty(self.k)
        _get_kernels()["norms_dd"](self.C, hi, lo)
        self.c_aux[:, 1] = hi
        self.c_aux[:, 2] = lo


def _csr(X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return X.data, X.indices, X.indptr


def _plan(n: int, per_thread_bytes: int, working_memory: Any) -> tuple[int, int]:
    """``(rows, threads)``: as many threads as the configuration gives and the budget
    holds (each owns ``per_thread_bytes`` of partial sums), about eight blocks each."""
    budget = int(budget_mb(working_memory) * 2**20)
    threads = max(1, min(n_threads(), budget // max(per_thread_bytes, 1), n))
    rows = max(1, -(-n // (8 * threads)))
    return rows, threads


def _weights(w: Any) -> np.ndarray:
    if w is None:
        return np.empty(0, dtype=np.float64)
    return np.ascontiguousarray(w)


class _HardState:
    def __init__(self, k: int, d: int, do_sums: bool) -> None:
        self.sums = np.zeros((k, d) if do_sums else (0, 0), dtype=np.float64)
        self.wsum = np.zeros(k, dtype=np.float64)
        self.acc = np.zeros(1, dtype=np.float64)
        self.g = np.empty(k, dtype=np.float64)


def _hard_pass(
    X: Any, C: Any, w: Any, *, working_memory: Any, do_sums: bool, want_min: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray, float]:
    kern = _get_kernels()["hard"]
    n, d = X.shape
    cen = _Centers(C)
    k = cen.k
    data, indices, indptr = _csr(X)
    ww = _weights(w)
    labels = np.empty(n, dtype=np.intp)
    min_sq = np.empty(n if want_min else 0, dtype=np.float64)
    rows, threads = _plan(n, (k * d * 8 if do_sums else 0) + 64 * k, working_memory)

    def work(a: int, st: _HardState) -> None:
        b = min(a + rows, n)
        kern(
            data, indices, indptr, a, b, cen.CT, cen.C, cen.c_sq, cen.c_aux, ww, labels,
            min_sq, st.sums, st.wsum, st.acc, st.g, do_sums,
        )  # fmt: skip

    states = run_chunks(n, rows, threads, work, lambda: _HardState(k, d, do_sums))
    sums, wsum = states[0].sums, states[0].wsum
    inertia = 0.0
    for i, st in enumerate(states):
        inertia += float(st.acc[0])
        if i:
            sums += st.sums
            wsum += st.wsum
    return labels, (min_sq if want_min else None), sums, wsum, inertia


def lloyd_sums(
    X: Any, C: np.ndarray, w: np.ndarray | None, *, working_memory: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, sums, weights, inertia)`` of :func:`arbf._math.core.distances.lloyd_sums`
    for CSR ``X``, in ``X``'s dtype (accumulated in float64)."""
    labels, _, sums, wsum, inertia = _hard_pass(
        X, C, w, working_memory=working_memory, do_sums=True, want_min=False
    )
    dt = X.dtype
    return labels, sums.astype(dt), wsum.astype(dt), np.asarray(inertia, dtype=dt)


def assign(X: Any, C: np.ndarray, *, working_memory: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, min_sq)`` of :func:`arbf._math.core.distances.assign` for CSR ``X``."""
    labels, min_sq, _, _, _ = _hard_pass(
        X, C, None, working_memory=working_memory, do_sums=False, want_min=True
    )
    assert min_sq is not None
    return labels, min_sq.astype(X.dtype)


def assign_inertia(
    X: Any, C: np.ndarray, w: np.ndarray | None, *, working_memory: Any
) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, inertia)`` of :func:`arbf._math.core.distances.assign_inertia`."""
    labels, _, _, _, inertia = _hard_pass(
        X, C, w, working_memory=working_memory, do_sums=False, want_min=False
    )
    return labels, np.asarray(inertia, dtype=X.dtype)


def _labelled(
    X: Any, C: np.ndarray, labels: np.ndarray, w: Any, *, working_memory: Any, want: bool
) -> tuple[np.ndarray, float]:
    kern = _get_kernels()["labelled"]
    n = X.shape[0]
    cen = _Centers(C)
    data, indices, indptr = _csr(X)
    ww = _weights(w)
    lab = np.ascontiguousarray(labels, dtype=np.intp)
    out = np.empty(n if want else 0, dtype=np.float64)
    rows, threads = _plan(n, 64, working_memory)

    def work(a: int, acc: np.ndarray) -> None:
        kern(data, indices, indptr, a, min(a + rows, n), cen.C, cen.c_sq, cen.c_aux, ww, lab,
             out, acc)  # fmt: skip

    states = run_chunks(n, rows, threads, work, lambda: np.zeros(1))
    return out, sum(float(s[0]) for s in states)


def labelled_inertia(
    X: Any, C: np.ndarray, labels: np.ndarray, w: np.ndarray | None, *, working_memory: Any
) -> np.ndarray:
    """``Σ_i w_i ||x_i - c_{labels_i}||^2`` (0-d, ``X``'s dtype), summed as
    :func:`assign_inertia` sums it (equal labels give equal bits)."""
    _, tot = _labelled(X, C, labels, w, working_memory=working_memory, want=False)
    return np.asarray(tot, dtype=X.dtype)


def labelled_distances(
    X: Any, C: np.ndarray, labels: np.ndarray, *, working_memory: Any
) -> np.ndarray:
    """``||x_i - c_{labels_i}||^2`` for every row (``X``'s dtype)."""
    out, _ = _labelled(X, C, labels, None, working_memory=working_memory, want=True)
    return out.astype(X.dtype)


class _SoftState:
    def __init__(self, k: int, d: int) -> None:
        self.sums = np.zeros((k, d), dtype=np.float64)
        self.mass = np.zeros(k, dtype=np.float64)
        self.acc = np.zeros(4, dtype=np.float64)
        self.g = np.empty(k, dtype=np.float64)
        self.r = np.empty(k, dtype=np.float64)
        self.gap = np.empty(k, dtype=np.float64)


def soft_stats(
    X: Any, C: np.ndarray, w: np.ndarray | None, *, sigma: float, kind: str, working_memory: Any
) -> tuple[np.ndarray, ...]:
    """``(sums, mass, L, F, J, T)`` of :func:`arbf._math.core.soft.soft_stats` for CSR
    ``X`` (``X``'s dtype; accumulated in float64).  σ = 0 or ``kind="hard"``: the Lloyd
    sums, with ``L = F = J`` and ``T = 0``."""
    dt = X.dtype
    if sigma == 0 or kind == "hard":
        _, _, sums, wsum, inertia = _hard_pass(
            X, C, w, working_memory=working_memory, do_sums=True, want_min=False
        )
        J = np.asarray(inertia, dtype=dt)
        return sums.astype(dt), wsum.astype(dt), J, J.copy(), J.copy(), np.zeros((), dtype=dt)
    kern = _get_kernels()["soft"]
    n, d = X.shape
    cen = _Centers(C)
    k = cen.k
    data, indices, indptr = _csr(X)
    ww = _weights(w)
    softmax = kind == "softmax"
    rows, threads = _plan(n, k * d * 8 + 64 * k, working_memory)

    def work(a: int, st: _SoftState) -> None:
        kern(
            data, indices, indptr, a, min(a + rows, n), cen.CT, cen.C, cen.c_sq, cen.c_aux,
            ww, softmax, float(sigma), st.sums, st.mass, st.acc, st.g, st.r, st.gap,
        )  # fmt: skip

    states = run_chunks(n, rows, threads, work, lambda: _SoftState(k, d))
    sums, mass, acc = states[0].sums, states[0].mass, states[0].acc
    for st in states[1:]:
        sums += st.sums
        mass += st.mass
        acc += st.acc
    L, F, J, T = (np.asarray(v, dtype=dt) for v in acc)
    return sums.astype(dt), mass.astype(dt), L, F, J, T


def responsibilities(
    X: Any, C: np.ndarray, *, sigma: float, kind: str, working_memory: Any
) -> np.ndarray:
    """``n x k`` responsibilities (:func:`arbf._math.core.responsibilities.
    responsibilities`) for CSR ``X``, in ``X``'s dtype."""
    kern = _get_kernels()["resp"]
    n = X.shape[0]
    cen = _Centers(C)
    k = cen.k
    data, indices, indptr = _csr(X)
    code = 0 if (sigma == 0 or kind == "hard") else (1 if kind == "softmax" else 2)
    out = np.empty((n, k), dtype=X.dtype)
    rows, threads = _plan(n, 64 * k, working_memory)

    def work(a: int, st: tuple[np.ndarray, ...]) -> None:
        kern(data, indices, indptr, a, min(a + rows, n), cen.CT, cen.c_sq, code,
             float(sigma), out, *st)  # fmt: skip

    run_chunks(n, rows, threads, work, lambda: tuple(np.empty(k) for _ in range(3)))
    return out


def _pairwise(
    X: Any, C: np.ndarray, x_sq: np.ndarray, *, take_sqrt: bool, working_memory: Any
) -> np.ndarray:
    kern = _get_kernels()["pairwise"]
    n = X.shape[0]
    cen = _Centers(C)
    k = cen.k
    data, indices, indptr = _csr(X)
    xs = np.ascontiguousarray(x_sq, dtype=np.float64)
    out = np.empty((n, k), dtype=X.dtype)
    rows, threads = _plan(n, 64 * k, working_memory)

    def work(a: int, g: np.ndarray) -> None:
        kern(data, indices, indptr, a, min(a + rows, n), cen.CT, cen.C, cen.c_sq, cen.c_aux,
             xs, RECOMPUTE_BELOW, take_sqrt, out, g)  # fmt: skip

    run_chunks(n, rows, threads, work, lambda: np.empty(k))
    return out


def pairwise_distances(X: Any, C: np.ndarray, *, working_memory: Any) -> np.ndarray:
    """Euclidean distances ``||x_i - c_j||`` (``n x k``, ``X``'s dtype): expanded in
    float64, the entries where that cancels (at most
    :data:`arbf._math.kernels.hard.RECOMPUTE_BELOW` of ``||x||^2 + ||c||^2``) recomputed
    exactly, so a row on a center is at 0."""
    return _pairwise(X, C, _row_norms64(X), take_sqrt=True, working_memory=working_memory)


def dist_to_rows(X: Any, rows: np.ndarray, x_sq: Any, *, working_memory: Any) -> np.ndarray:
    """Squared distances ``n x m`` to ``m`` (few, dense) rows, with the given squared
    row norms ``x_sq`` (as :func:`arbf._math.core.distances.dist_to_rows`)."""
    return _pairwise(X, rows, np.asarray(x_sq), take_sqrt=False, working_memory=working_memory)


def min_margin(X: Any, C: np.ndarray, *, working_memory: Any) -> np.ndarray:
    """``min_i (D_i(2) - D_i(1))`` (0-d; ``inf`` with one center)."""
    n = X.shape[0]
    if C.shape[0] < 2:
        return np.asarray(np.inf, dtype=X.dtype)
    kern = _get_kernels()["margin"]
    cen = _Centers(C)
    data, indices, indptr = _csr(X)
    rows, threads = _plan(n, 64 * cen.k, working_memory)

    def work(a: int, st: tuple[np.ndarray, np.ndarray]) -> None:
        kern(data, indices, indptr, a, min(a + rows, n), cen.CT, cen.c_sq, st[0], st[1])

    states = run_chunks(n, rows, threads, work, lambda: (np.full(1, np.inf), np.empty(cen.k)))
    return np.asarray(min(float(s[0][0]) for s in states), dtype=X.dtype)


def _row_norms64(X: Any) -> np.ndarray:
    out = np.empty(X.shape[0], dtype=np.float64)
    _get_kernels()["row_norms"](X.data, X.indptr, out)
    return out


def sq_norms(X: Any) -> np.ndarray:
    """Squared row norms ``||x_i||^2`` (``X``'s dtype; summed in float64)."""
    return _row_norms64(X).astype(X.dtype)


def unit_rows(X: Any) -> tuple[Any, np.ndarray]:
    """``(U, zero)``: a new canonical CSR matrix whose rows are those of ``X`` divided by
    their norm (float64 norms, the nonzeros scaled in ``X``'s dtype; the pattern and
    ``X`` unchanged), and the host mask of the rows of norm 0."""
    nrm = np.sqrt(_row_norms64(X))
    zero = nrm == 0
    scale = 1.0 / np.where(zero, 1.0, nrm)
    U = X.copy()
    U.data = (U.data * np.repeat(scale, np.diff(U.indptr))).astype(X.dtype)
    return U, zero


def mean_rows(X: Any) -> np.ndarray:
    """Column means (``X``'s dtype; summed in float64)."""
    mean, _ = _get_kernels()["moments"](X.data, X.indices, X.shape[0], X.shape[1])
    return mean.astype(X.dtype)


def mean_variance(X: Any) -> float:
    """The mean over the features of the column variances (scikit-learn's tolerance
    scale for sparse data: ``mean_variance_axis``), in float64."""
    _, var = _get_kernels()["moments"](X.data, X.indices, X.shape[0], X.shape[1])
    return float(np.mean(var))


def dense_rows(X: Any, idx: Any) -> np.ndarray:
    """The rows ``idx`` (host integers, few) as a dense ``m x d`` array."""
    return np.asarray(X[np.asarray(idx, dtype=np.intp)].toarray(), dtype=X.dtype)


def take_rows(X: Any, idx: Any) -> Any:
    """The rows ``idx`` (host integers) as a CSR matrix (sparse stays sparse)."""
    return X[np.asarray(idx, dtype=np.intp)]


def principal_axis(
    X: Any,
    w: np.ndarray | None,
    *,
    v0: np.ndarray | None = None,
    max_iter: int = 300,
    rtol: float = 1e-10,
    eigh_max_features: int = 1024,
) -> tuple[float, np.ndarray]:
    """``(λ_max, v)`` of the weighted covariance of CSR ``X`` (host float64), without
    centring ``X``: :math:`\\mathrm{Cov}_w = X^\\top W X / \\sum w - m m^\\top`.  Up to
    ``eigh_max_features`` features it is formed (sparse product) and diagonalised;
    above, power iteration with products :math:`X^\\top (W X v) / \\sum w - m (m\\cdot v)`."""
    n, d = X.shape
    wv = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    total = float(wv.sum())
    X64 = X.astype(np.float64)
    m = np.asarray(X64.T @ wv).ravel() / total
    if d <= eigh_max_features:
        XW = X64.multiply(wv[:, None]).tocsr()
        cov = np.asarray((X64.T @ XW).toarray()) / total - np.outer(m, m)
        vals, vecs = np.linalg.eigh(cov)
        return float(max(vals[-1], 0.0)), vecs[:, -1]
    v = np.random.default_rng(0).standard_normal(d) if v0 is None else np.array(v0, float)
    v /= np.linalg.norm(v)
    lam = 0.0
    for _ in range(max_iter):
        a = np.asarray(X64.T @ (wv * np.asarray(X64 @ v).ravel())).ravel() / total
        a -= m * float(m @ v)
        new = float(a @ v)
        norm = float(np.linalg.norm(a))
        if norm == 0.0:
            return 0.0, v
        v = a / norm
        if abs(new - lam) <= rtol * abs(new):
            lam = new
            break
        lam = new
    return max(lam, 0.0), v
