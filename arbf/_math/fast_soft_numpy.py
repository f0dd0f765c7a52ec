r"""Native NumPy fast path for the soft statistics of the RBF relaxation.

The pure-standard :func:`arbf._math.rbf_objectives.soft_stats_impl` is the tested
reference; for NumPy float32/float64 inputs it dispatches here.  The arithmetic is the
same — gaps :math:`G_{ij} = D_{ij} - D_{i,l_i}` to the nearest center :math:`l_i`, the
exact nearest distance :math:`d_i = \lVert x_i - \mu_{l_i}\rVert^2`, responsibilities from
the gaps (softmax, entmax-1.5 by the exact sort-based threshold, or one-hot), then
:math:`L_i = d_i + \sum_j r_{ij}G_{ij}`, :math:`F_i = d_i - \sigma\log\sum_j e^{-G_{ij}/\sigma}`
(softmax) or :math:`F_i = L_i - \sigma\,\tfrac43\sum_j (r_{ij} - r_{ij}^{3/2})` (entmax-1.5)
— organised as the hard fast path of :mod:`arbf._math.fast_numpy` is: cache-sized chunks
over a few threads, one reused ``rows x k`` buffer per thread holding ``X_c C^T`` and then
``w_i r_ij`` in place, a compiled ``nogil`` row kernel (numba, the ``arbf[fast]`` extra),
and the soft sums as one BLAS product ``(w r)^T X_c`` per chunk.  Partial sums are float64.

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


def _gaps_python(X, G, E, C, c_sq, w, neg_inv, acc):
    """Softmax pass 1: on entry ``G = X C^T``; on exit ``G`` holds the gaps
    ``D_ij - D_{i,l_i}`` (>= 0), ``E`` the logits ``-G/σ`` (``neg_inv = -1/σ``), and
    ``acc`` gets ``[L, F, J] += w_i d_i`` with the exact nearest distance ``d_i``."""
    m, k = G.shape
    d = X.shape[1]
    has_w = w.shape[0] > 0
    J = 0.0
    for i in range(m):
        for j in range(k):  # scores ||c_j||^2 - 2 x.c_j; ||x||^2 cancels in the gaps
            G[i, j] = c_sq[j] - 2.0 * G[i, j]
        best = G[i, 0]
        for j in range(1, k):
            best = min(best, G[i, j])
        lab = 0
        while G[i, lab] != best:  # first minimum: ties to the lowest index
            lab += 1
        for j in range(k):
            g = G[i, j] - best  # exactly 0 at lab
            G[i, j] = g
            E[i, j] = g * neg_inv
        dist = 0.0
        for c in range(d):
            t = np.float64(X[i, c]) - np.float64(C[lab, c])
            dist += t * t
        J += (np.float64(w[i]) if has_w else 1.0) * dist
    acc[0] += J
    acc[1] += J
    acc[2] += J


def _softmax_python(G, E, w, sigma, mass, acc):
    """Softmax pass 2: ``E = exp(-G/σ)`` on entry, ``E_ij = w_i r_ij`` on exit; adds
    ``w_i Σ_j r_ij G_ij`` to L and ``-σ w_i log Σ_j e_ij`` to F, and ``w_i r_ij`` to the
    masses."""
    m, k = G.shape
    has_w = w.shape[0] > 0
    L = 0.0
    F = 0.0
    for i in range(m):
        s = 0.0
        for j in range(k):
            s += np.float64(E[i, j])
        wi = np.float64(w[i]) if has_w else 1.0
        scale = wi / s
        extra = 0.0
        for j in range(k):
            r = np.float64(E[i, j]) * scale
            extra += r * np.float64(G[i, j])
            E[i, j] = r
            mass[j] += r
        L += extra
        F -= wi * sigma * math.log(s)
    acc[0] += L
    acc[1] += F


def _entmax_python(X, G, C, c_sq, w, sigma, sums, mass, acc, drow, ybuf):
    """entmax-1.5 rows: on entry ``G = X C^T``; accumulates sums, masses and
    ``[L, F, J]`` directly (the support is small, so no dense ``r^T X`` product)."""
    m, k = G.shape
    d = X.shape[1]
    has_w = w.shape[0] > 0
    L = 0.0
    F = 0.0
    J = 0.0
    inv2s = 0.5 / sigma
    for i in range(m):
        for j in range(k):  # scores ||c_j||^2 - 2 x.c_j; ||x||^2 cancels in the gaps
            drow[j] = c_sq[j] - 2.0 * G[i, j]
        best = drow[0]
        for j in range(1, k):
            best = min(best, drow[j])
        lab = 0
        while drow[lab] != best:  # first minimum: ties to the lowest index
            lab += 1
        dist = 0.0
        for c in range(d):
            t = np.float64(X[i, c]) - np.float64(C[lab, c])
            dist += t * t
        wi = np.float64(w[i]) if has_w else 1.0
        J += wi * dist
        # p = [z/2 - tau]_+^2 for z = -gaps/σ, sum p = 1.  The threshold: Newton on
        # f(t) = sum_j [y_j - t]_+^2 - 1 from t = max y - 1 = -1 (left of the root; f is
        # convex and decreasing there, so the iterates stay left and increase), stopping
        # as soon as the exact root for the current support (the sort-based formula for
        # that support size) is consistent with that support.
        # gaps, scores y = -gap/(2σ) and the first Newton pass (at t = -1) in one sweep
        tau = -1.0
        cnt = 0.0
        s1 = 0.0
        s2 = 0.0
        min_in = np.inf
        max_out = -np.inf
        for j in range(k):
            g = drow[j] - best
            drow[j] = g
            y = -g * inv2s
            ybuf[j] = y
            if y > tau:
                cnt += 1.0
                s1 += y
                s2 += y * y
                min_in = min(min_in, y)
            else:
                max_out = max(max_out, y)
        for _ in range(200):
            mean = s1 / cnt
            delta = (1.0 - (s2 - s1 * mean)) / cnt
            tq = mean - math.sqrt(delta if delta > 0.0 else 0.0)
            if min_in >= tq and max_out <= tq:
                tau = tq
                break
            f = s2 - 2.0 * tau * s1 + cnt * tau * tau - 1.0
            tau = tau + f / (2.0 * (s1 - cnt * tau))
            cnt = 0.0
            s1 = 0.0
            s2 = 0.0
            min_in = np.inf
            max_out = -np.inf
            for j in range(k):
                y = ybuf[j]
                if y > tau:
                    cnt += 1.0
                    s1 += y
                    s2 += y * y
                    min_in = min(min_in, y)
                else:
                    max_out = max(max_out, y)
        extra = 0.0
        ent = 0.0
        for j in range(k):
            u = ybuf[j] - tau
            if u > 0.0:
                p = u * u
                extra += p * drow[j]
                ent += p - p * u
                wp = wi * p
                mass[j] += wp
                for c in range(d):
                    sums[j, c] += wp * np.float64(X[i, c])
        L += wi * (dist + extra)
        F += wi * (dist + extra - sigma * (4.0 / 3.0) * ent)
    acc[0] += L
    acc[1] += F
    acc[2] += J


# reassociation lets LLVM vectorise the row reductions; no-NaN/no-inf flags are not used
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}

_kernels: dict[str, Any] = {}
_kernel_lock = threading.Lock()


def _get_kernels() -> dict[str, Any]:
    if not _kernels:
        with _kernel_lock:
            if not _kernels:
                import numba

                jit = numba.njit(nogil=True, cache=True, fastmath=_FASTMATH)
                _kernels["gaps"] = jit(_gaps_python)
                _kernels["softmax"] = jit(_softmax_python)
                _kernels["entmax15"] = jit(_entmax_python)
    return _kernels


class _State:
    def __init__(self, rows: int, k: int, d: int, dtype: Any, softmax: bool) -> None:
        self.G = np.empty((rows, k), dtype=dtype)
        self.E = np.empty((rows, k), dtype=dtype) if softmax else self.G[:0]
        self.sums = np.zeros((k, d), dtype=np.float64)
        self.mass = np.zeros(k, dtype=np.float64)
        self.acc = np.zeros(3, dtype=np.float64)
        self.drow = np.empty(k, dtype=np.float64)
        self.ybuf = np.empty(k, dtype=np.float64)
        self.xbuf: np.ndarray | None = None


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
    if sigma == 0 or kind == "hard":
        _, sums, wsum, inertia = _fast.lloyd_sums(
            X, C, sample_weight, working_memory=working_memory
        )
        return sums, wsum, inertia, inertia.copy(), inertia.copy()
    softmax = kind == "softmax"
    C = np.ascontiguousarray(C)
    c_sq = np.sum(C * C, axis=1).astype(np.float64)
    CT = C.T
    w = None
    if sample_weight is not None:
        w = np.ascontiguousarray(sample_weight)
    empty_w = np.empty(0, dtype=dtype if w is None else w.dtype)
    kern = _get_kernels()
    # softmax holds two rows x k buffers per thread: budget them as 2k columns
    rows, threads = _fast._chunk_plan(
        n, 2 * k if softmax else k, d, dtype.itemsize, working_memory
    )
    x_contig = X.flags.c_contiguous
    neg_inv = -1.0 / float(sigma)

    def make_state() -> _State:
        st = _State(rows, k, d, dtype, softmax)
        if not x_contig:
            st.xbuf = np.empty((rows, d), dtype=dtype)
        return st

    def work(a: int, st: _State) -> None:
        b = min(a + rows, n)
        m = b - a
        Xc = X[a:b]
        if st.xbuf is not None:
            np.copyto(st.xbuf[:m], Xc)
            Xc = st.xbuf[:m]
        G = st.G[:m]
        np.matmul(Xc, CT, out=G)
        wc = empty_w if w is None else w[a:b]
        if softmax:
            E = st.E[:m]
            kern["gaps"](Xc, G, E, C, c_sq, wc, neg_inv, st.acc)
            np.exp(E, out=E)  # vectorised; the nearest center gives exp(0) = 1
            kern["softmax"](G, E, wc, float(sigma), st.mass, st.acc)
            st.sums += E.T @ Xc
        else:
            kern["entmax15"](
                Xc,
                G,
                C,
                c_sq,
                wc,
                float(sigma),
                st.sums,
                st.mass,
                st.acc,
                st.drow,
                st.ybuf,
            )

    states = _fast._run_chunks(n, rows, threads, work, make_state)
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
    """``out_i = entmax15(z_i)`` for each row: the threshold τ of ``y = (z - max z)/2`` by
    Newton from ``τ = -1`` with the exact support check (as in the soft-statistics
    kernel); ``-inf`` scores get 0."""
    m, k = z.shape
    for i in range(m):
        mx = -np.inf
        for j in range(k):
            mx = max(mx, np.float64(z[i, j]))
        tau = -1.0
        for _ in range(200):
            cnt = 0.0
            s1 = 0.0
            s2 = 0.0
            min_in = np.inf
            max_out = -np.inf
            for j in range(k):
                y = (np.float64(z[i, j]) - mx) * 0.5
                if y > tau:
                    cnt += 1.0
                    s1 += y
                    s2 += y * y
                    min_in = min(min_in, y)
                else:
                    max_out = max(max_out, y)
            mean = s1 / cnt
            delta = (1.0 - (s2 - s1 * mean)) / cnt
            tq = mean - math.sqrt(delta if delta > 0.0 else 0.0)
            if min_in >= tq and max_out <= tq:
                tau = tq
                break
            f = s2 - 2.0 * tau * s1 + cnt * tau * tau - 1.0
            tau = tau + f / (2.0 * (s1 - cnt * tau))
        for j in range(k):
            u = (np.float64(z[i, j]) - mx) * 0.5 - tau
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
