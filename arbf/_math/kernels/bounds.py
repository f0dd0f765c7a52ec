r"""Exact accelerated Lloyd steps: distance bounds carried between iterations.

Lloyd's assignment computes all :math:`n k` distances every iteration, although after the
first few iterations almost no label changes.  The triangle inequality lets a step skip a
point whose label cannot change: with :math:`u_i \ge \lVert x_i - c_{a_i}\rVert` an upper
bound on the distance to its center and :math:`l_i \le \min_{j \ne a_i}\lVert x_i -
c_j\rVert` a lower bound on the distance to every other center, :math:`u_i < l_i` proves
that :math:`a_i` is still the nearest center.  When the centers move by
:math:`\delta_j = \lVert c'_j - c_j\rVert`, :math:`u_i + \delta_{a_i}` and
:math:`l_i - \max_{j \ne a_i}\delta_j` are valid bounds again, at the cost of one addition
each; only points whose test fails are looked at.

- **Hamerly** (G. Hamerly, "Making k-means even faster", SDM 2010): one upper and one lower
  bound per point, plus :math:`s_a = \tfrac12\min_{j\ne a}\lVert c_a - c_j\rVert`
  (:math:`u < s_a` also proves the label).  Memory: 12 bytes per point (int32 label,
  float32 bounds rounded outwards); best for few centers or few features.
- **Yinyang** (Y. Ding, Y. Zhao, X. Shen, M. Musuvathi, T. Mytkowicz, "Yinyang K-Means",
  ICML 2015): the centers are grouped once (a small K-Means of the initial centers,
  :math:`t \approx k/10` groups) and each point keeps one lower bound per group, lowered
  by the group's largest drift; a group whose bound exceeds the upper bound is skipped
  whole, and inside a group that is looked at, a center whose own bound
  (the group's bound before the drift minus the center's drift) exceeds it is skipped
  too.  Memory :math:`8 + 4t` bytes per point; best for many features.
- **Elkan** (C. Elkan, "Using the triangle inequality to accelerate k-means", ICML 2003):
  one lower bound per point and center -- here Yinyang with one group per center
  (:math:`8 + 4k` bytes per point), as scikit-learn's ``algorithm="elkan"``.

A step first samples the first bound test on every ``n / 4096``-th point; when more than
:data:`REINIT_FRACTION` of them would fail (early iterations, when the centers still move
far), it recomputes every point from Lloyd's scores instead, which is then cheaper.
Points that fail a test are handled in blocks: first the tests of a block, then a short
loop that touches its failing rows (so their cache misses are in flight together), then
their distances.

Exactness.  Only the skipping differs from Lloyd: a point that is looked at gets its
distances computed exactly (float64, :func:`arbf._math.kernels.hard.get_sq_dist`), its
label is their first minimum (ties to the lowest index, as Lloyd's), and the bounds are
made *rigorous for the computed distances*: every bound computed from a float64 distance
is widened by its rounding error (:math:`(d + 8)\,2^{-52}` relative), every drift update
by :math:`2^{-50}`, and the skip tests are strict, so an exact tie is always looked at.
The first step is Lloyd's pass itself (the BLAS product ``X_c C^T`` per chunk, the same
scores and labels), whose lower bounds come from the scores minus a bound on their
rounding error.  The sums, weights and per-cluster inertia of the current labels are kept
in float64 and updated by the points that move (the inertia by the exact identity
:math:`\sum_{i \in j} w_i\lVert x_i - c'\rVert^2 = E_j + 2(c - c')\cdot(S_j - W_j c) +
W_j\lVert c - c'\rVert^2` when center :math:`j` moves from :math:`c` to :math:`c'`); a
cluster left without positive weight has exactly zero sums, as in Lloyd's pass.  So the
labels equal the labels Lloyd computes (to rounding: where two distances agree to about
:math:`10^{-15}` relative, or to the float32 rounding of Lloyd's scores, either may win),
and with them the centers, ``n_iter`` and the final inertia, which is computed exactly.

Nothing here writes into its inputs.  Threads and chunks as :mod:`.hard` (per-thread
float64 partial sums reduced in block order).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import hard as _hard
from .runtime import MIN_ROWS, chunk_plan, lock, n_threads, run_chunks, single_threaded_blas

__all__ = ["METHODS", "BoundedLloyd", "make_groups"]

#: The bound methods (``"elkan"`` is Yinyang with one group per center).
METHODS = ("hamerly", "yinyang", "elkan")

_DRIFT = 2.0**-50  # relative widening of every drift update (a few float64 roundings)
_UP32 = 1.0 + 2.0**-23  # stored bounds are float32: rounded outwards through these
_DN32 = 1.0 - 2.0**-23
_BIG32 = 3.0e38  # "no other center": a finite float32 stand-in for +inf
_BLOCK = 256  # points whose bound tests run before their distances (overlapped loads)
_VERTICAL_D = 32  # Yinyang: up to this many features a looked-at group is computed whole
#: Fraction of points failing the first bound test above which a step recomputes every
#: point from Lloyd's scores (the BLAS product) instead of point by point; measured
#: (docs, "Choosing an algorithm"): a failing Hamerly point costs a scattered row read
#: and its k distances, a Yinyang one above ``_VERTICAL_D`` features only its few
#: looked-at groups (at most ``_VERTICAL_D`` features, whole groups: as Hamerly).
REINIT_FRACTION = {"hamerly": 0.35, "yinyang": 0.85, "elkan": 0.85}
#: A full pass keeps bounds for the next step unless more than this share of the
#: sampled points would fail their first test there by its forecast
#: (:meth:`BoundedLloyd._next_fail_fraction`, a pessimistic one).
KEEP_FRACTION = 0.9
_FORECAST_ROWS = 512  # rows per block of the forecast's distances
_FORECAST_POINTS = 1024  # the forecast's sample: every n/1024-th point (a float64 product)


def _widen(d: int) -> tuple[float, float]:
    """``(up, down)``: factors that make ``sqrt(D)`` an upper / lower bound of the exact
    distance when ``D`` is a float64 sum of ``d`` squares (rounding ``<= (d + 2) 2^-53``
    relative)."""
    e = (d + 8) * 2.0**-52
    return 1.0 + e, 1.0 - e


# --------------------------------------------------------------------------------------
# compiled pieces
# --------------------------------------------------------------------------------------


def _sq_norm_python(X, i):
    """``||x_i||^2`` in float64 (reassociated, as the distance helper)."""
    tot = 0.0
    for c in range(X.shape[1]):
        t = np.float64(X[i, c])
        tot += t * t
    return tot


def _move_python(X, i, wi, a, b, Da, Db, sums, wsum, esum, cnt, pos):
    """Point ``i`` (weight ``wi``, squared distances ``Da``, ``Db``) leaves cluster ``a``
    for ``b``: this thread's partial sums."""
    for c in range(X.shape[1]):
        xv = wi * np.float64(X[i, c])
        sums[a, c] -= xv
        sums[b, c] += xv
    wsum[a] -= wi
    wsum[b] += wi
    esum[a] -= wi * Da
    esum[b] += wi * Db
    cnt[a] -= 1
    cnt[b] += 1
    if wi > 0.0:
        pos[a] -= 1
        pos[b] += 1


def _scores_argmin(GT: Any, c_sq: Any, best: Any, second: Any, lab: Any) -> None:
    """Labels as :mod:`.hard`'s kernel (first minimum of the scores ``c_sq - 2 g``,
    ``GT = C X_c^T``, vectorised along the rows) and the second smallest score: the
    certified pass's compiled scan (:func:`arbf._math.kernels.hard._argmin_second_python`)
    called directly, not through a kernel of its own (one compile fewer)."""
    _argmin_second(GT, c_sq, lab, best, second)


_argmin_second: Any = None  # .hard's compiled scan, bound by _get_kernels


def _group_mins_python(GT, c_sq, gstart, gmem, lab, gm):
    """``gm[q, i]``: the smallest score over the centers of group ``q`` (``gmem[gstart[q]:
    gstart[q + 1]]``, ascending) but the label; four centers per sweep over the rows, the
    running minimum in registers (see :func:`_scores_argmin`)."""
    m = GT.shape[1]
    for q in range(gm.shape[0]):
        p = gstart[q]
        p1 = gstart[q + 1]
        for i in range(m):
            gm[q, i] = np.inf
        while p + 3 < p1:
            j0, j1, j2, j3 = gmem[p], gmem[p + 1], gmem[p + 2], gmem[p + 3]
            c0, c1, c2, c3 = c_sq[j0], c_sq[j1], c_sq[j2], c_sq[j3]
            for i in range(m):
                li = lab[i]
                g = gm[q, i]
                g = _group_min(g, c0, GT[j0, i], j0, li)
                g = _group_min(g, c1, GT[j1, i], j1, li)
                g = _group_min(g, c2, GT[j2, i], j2, li)
                g = _group_min(g, c3, GT[j3, i], j3, li)
                gm[q, i] = g
            p += 4
        while p < p1:
            j = gmem[p]
            cj = c_sq[j]
            for i in range(m):
                gm[q, i] = _group_min(gm[q, i], cj, GT[j, i], j, lab[i])
            p += 1


def _touch_python(X, fl, nf):
    """Load one element in eight (and the last) of the rows ``fl[:nf]`` and return
    their sum: a loop of a few instructions per row, so the cache misses of the scattered
    rows that failed a bound test are in flight together before the distance loop, whose
    long iterations would wait for them one or two at a time (a Hamerly step 0.82-0.97x
    its time, measured: docs/benchmarks.md)."""
    d = X.shape[1]
    tch = 0.0
    for f in range(nf):
        i = fl[f]
        for c in range(0, d, 8):
            tch += X[i, c]
        tch += X[i, d - 1]
    return tch


_touch: Any = None  # compiled by _get_kernels


def _group_min_python(g, cj, gt, j, li):
    """``min(g, c_j - 2 gt)`` in float64, skipping the label ``li`` (``v < g`` keeps
    ``g`` on ties and NaN, as ``min(g, v)``)."""
    v = np.float64(cj - (gt + gt))
    v = np.inf if li == j else v
    return v if v < g else g


_group_min: Any = None  # the compiled _group_min_python, set by _get_kernels


def _scores_bounds_python(
    X, C, w, coef, cmax, up, dn, labels, ub, glb, second, lab, gm, mg, mode, bnd,
    sums, wsum, esum, cnt, pos, out,
):  # fmt: skip
    """Every point of one chunk from Lloyd's scores (after :func:`_scores_argmin`,
    and :func:`_group_mins_python` when there are groups): the exact distance to the
    label (upper bound) and per group ``q`` the smallest score of the other centers
    turned into a lower bound on their distance, ``||x||^2 + s - margin``, the margin
    ``coef (||x|| + max ||c||)^2`` bounding the scores' rounding.  ``mode`` 0: the first
    pass (fresh sums, counts, inertia); 1: a later step (the points whose label
    changed move their sums); 2: a later step with fresh sums (cheaper when many
    labels change).  ``bnd`` False: no bounds are written (a pass whose
    bounds the next step would not use; ``second``, ``gm`` unread).  ``out[0] +=``
    labels changed (modes 1 and 2), ``out[1] += Σ w D``; ``mg`` (float64) is scratch."""
    m = lab.shape[0]
    t = glb.shape[1]
    has_w = w.shape[0] > 0
    if bnd:
        for i in range(m):
            xsq = _sq_norm(X, i)
            r = math.sqrt(xsq) + cmax
            mg[i] = xsq - coef * r * r
        for q in range(t):  # vectorised along the rows
            for i in range(m):
                lo = mg[i] + (np.float64(second[i]) if t == 1 else gm[q, i])
                lo = math.sqrt(max(lo, 0.0)) * dn
                glb[i, q] = np.float32(min(lo, _BIG32) * _DN32)
    changed = 0
    inert = 0.0
    for i in range(m):
        b = lab[i]
        Db = _sq_dist(X, C, i, b)
        if bnd:
            ub[i] = np.float32(math.sqrt(Db) * up * _UP32)
        wi = np.float64(w[i]) if has_w else 1.0
        inert += wi * Db
        if mode != 1:
            changed += 1 if labels[i] != b else 0  # mode 2 counts them
            labels[i] = b
            esum[b] += wi * Db
            wsum[b] += wi
            cnt[b] += 1
            if wi > 0.0:
                pos[b] += 1
            for c in range(X.shape[1]):
                sums[b, c] += wi * np.float64(X[i, c])
        else:
            a = labels[i]
            if a != b:
                labels[i] = b
                changed += 1
                Da = _sq_dist(X, C, i, np.intp(a))
                _move(X, i, wi, np.intp(a), np.intp(b), Da, Db, sums, wsum, esum, cnt, pos)
    out[0] += changed
    out[1] += inert


def _hamerly_chunk_python(
    X, M, w, C, CT, delta, s, dmax1, amax, dmax2, up, dn, labels, ub, lb, D, fl, fb, flo, fd,
    XB,
    sums, wsum, esum, cnt, pos, out, final,
):  # fmt: skip
    """One Hamerly step over a chunk, point by point (centers ``C`` moved by ``delta``
    since the bounds held; ``dmax1``/``dmax2`` the largest drifts, ``amax`` the center
    of the largest; ``CT`` the centers float64 and transposed, ``D`` scratch of length
    ``k``, ``fl``, ``fb``, ``flo``, ``fd`` of one block's length, ``XB`` a block of rows).
    The data are ``X - M`` (``M`` a row: the centring done row by row, zeros for none).
    ``out[0] +=`` labels changed, ``out[1] += Σ w D`` (exact with ``final``, where every
    point's distance is computed and no sums are kept)."""
    m, d = X.shape
    k = C.shape[0]
    has_w = w.shape[0] > 0
    B = fl.shape[0]
    changed = 0
    inert = 0.0
    for blk in range(0, m, B):
        # first the bound tests of a block, then the distances its failures need:
        # independent loads, which the processor overlaps
        nf = 0
        for i in range(blk, min(blk + B, m)):
            a = labels[i]
            u = (np.float64(ub[i]) + delta[a]) * (1.0 + _DRIFT)
            dl = dmax2 if a == amax else dmax1
            l0 = np.float64(lb[i, 0])
            lo = (l0 - dl) - (l0 + dl) * _DRIFT
            bnd = max(s[a], lo)
            if u < bnd and not final:
                ub[i] = np.float32(u * _UP32)
                lb[i, 0] = np.float32(max(lo, 0.0) * _DN32)
                continue
            fl[nf] = i
            fb[nf] = bnd
            flo[nf] = lo
            nf += 1
        fd[0] = _touch(X, fl, np.intp(nf))  # (scratch: the store keeps the loads)
        for f in range(nf):  # the rows of X - M that are needed, gathered
            i = fl[f]
            for c in range(d):
                XB[f, c] = X[i, c] - M[c]
            fd[f] = _sq_dist(XB, C, f, np.intp(labels[i]))
        for f in range(nf):
            i = fl[f]
            a = labels[i]
            wi = np.float64(w[i]) if has_w else 1.0
            Da = fd[f]
            u = math.sqrt(Da) * up
            if u < fb[f]:
                ub[i] = np.float32(u * _UP32)
                lb[i, 0] = np.float32(max(flo[f], 0.0) * _DN32)
                inert += wi * Da
                continue
            # every distance, vectorised over the centers
            for j in range(k):
                D[j] = 0.0
            for c in range(d):
                xc = np.float64(XB[f, c])
                for j in range(k):
                    tj = xc - CT[c, j]
                    D[j] += tj * tj
            b = 0
            Db = np.inf
            D2 = np.inf
            for j in range(k):
                Dj = D[j]
                if Dj < Db:
                    D2 = Db
                    Db = Dj
                    b = j
                elif Dj < D2:
                    D2 = Dj
            ub[i] = np.float32(math.sqrt(Db) * up * _UP32)
            lb[i, 0] = np.float32(min(math.sqrt(D2) * dn, _BIG32) * _DN32)
            inert += wi * Db
            if b != a:
                labels[i] = b
                changed += 1
                if not final:
                    _move(XB, f, wi, np.intp(a), np.intp(b), D[a], Db, sums, wsum, esum, cnt, pos)
    out[0] += changed
    out[1] += inert


def _yinyang_chunk_python(
    X, M, w, C, CT, vertical, delta, gdelta, s, grp, gstart, gmem, gpos, up, dn, labels, ub,
    glb, nb, v1, v2, j1, exam, D, fl, fb, fd, XB, sums, wsum, esum, cnt, pos, out, final,
):  # fmt: skip
    """One Yinyang step over a chunk, point by point: groups ``q`` of centers
    ``gmem[gstart[q]:gstart[q + 1]]`` (ascending; ``gpos`` the inverse: the position of
    every center in ``gmem``), ``gdelta[a, q]`` the largest drift
    in group ``q`` of a center other than ``a``; ``nb``, ``v1``, ``v2``, ``j1``,
    ``exam`` are scratch of length ``t``, ``D`` of length ``k``, ``fl``, ``fb``, ``fd``
    of one block's length, ``XB`` a block of rows; the data are ``X - M``.  With ``vertical`` a
    group that is looked at has all its distances computed at once, vectorised over
    its centers (``CT``: float64, ``d x k``, columns in group order; small ``d``), else
    center by center after the local filter.  ``out`` and ``final`` as
    :func:`_hamerly_chunk_python`."""
    m, d = X.shape
    t = glb.shape[1]
    has_w = w.shape[0] > 0
    B = fl.shape[0]
    changed = 0
    inert = 0.0
    for blk in range(0, m, B):
        nf = 0
        for i in range(blk, min(blk + B, m)):
            a = labels[i]
            u = (np.float64(ub[i]) + delta[a]) * (1.0 + _DRIFT)
            gmin = 3.0e38
            for q in range(t):
                ob = np.float64(glb[i, q])
                dq = gdelta[a, q]
                v = (ob - dq) - (ob + dq) * _DRIFT
                nb[q] = v
                gmin = min(gmin, v)
            bnd = max(s[a], gmin)
            if u < bnd and not final:
                ub[i] = np.float32(u * _UP32)
                for q in range(t):
                    glb[i, q] = np.float32(max(nb[q], 0.0) * _DN32)
                continue
            fl[nf] = i
            fb[nf] = bnd
            nf += 1
        fd[0] = _touch(X, fl, np.intp(nf))  # (scratch: the store keeps the loads)
        for f in range(nf):  # the rows of X - M that are needed, gathered
            i = fl[f]
            for c in range(d):
                XB[f, c] = X[i, c] - M[c]
            fd[f] = _sq_dist(XB, C, f, np.intp(labels[i]))
        for f in range(nf):
            i = fl[f]
            a = labels[i]
            for q in range(t):  # the tests above, again (the bounds are not written yet)
                ob = np.float64(glb[i, q])
                dq = gdelta[a, q]
                nb[q] = (ob - dq) - (ob + dq) * _DRIFT
            wi = np.float64(w[i]) if has_w else 1.0
            Da = fd[f]
            u = math.sqrt(Da) * up
            if u < fb[f]:
                ub[i] = np.float32(u * _UP32)
                for q in range(t):
                    glb[i, q] = np.float32(max(nb[q], 0.0) * _DN32)
                inert += wi * Da
                continue
            if vertical:  # a's distance in the arithmetic of the vertical loop below
                pa = gpos[a]
                Da = 0.0
                for c in range(d):
                    tc = np.float64(XB[f, c]) - CT[c, pa]
                    Da += tc * tc
            b = a
            Db = Da
            bd = math.sqrt(Da) * up
            for q in range(t):
                if nb[q] > bd:  # the whole group is farther than the best so far
                    exam[q] = 0
                    continue
                exam[q] = 1
                ob = np.float64(glb[i, q])
                x1 = 3.0e38
                xj = -1
                x2 = 3.0e38
                p0 = gstart[q]
                p1 = gstart[q + 1]
                if vertical:
                    for p in range(p0, p1):
                        D[p] = 0.0
                    for c in range(d):
                        xc = np.float64(XB[f, c])
                        for p in range(p0, p1):
                            tp = xc - CT[c, p]
                            D[p] += tp * tp
                for p in range(p0, p1):
                    j = gmem[p]
                    if j == a:
                        continue
                    dj = delta[j]
                    bj = (ob - dj) - (ob + dj) * _DRIFT
                    jj = -1
                    if bj > bd and not vertical:  # this center is farther than the best so far
                        val = bj
                    else:
                        Dj = D[p] if vertical else _sq_dist(XB, C, f, j)
                        if Dj < Db or (Dj == Db and j < b):
                            b = j
                            Db = Dj
                            bd = math.sqrt(Dj) * up
                        val = math.sqrt(Dj) * dn
                        jj = j
                    if val < x1:
                        x2 = x1
                        x1 = val
                        xj = jj
                    elif val < x2:
                        x2 = val
                v1[q] = x1
                v2[q] = x2
                j1[q] = xj
            if b != a:  # a is one of the others now
                qa = grp[a]
                da = math.sqrt(Da) * dn
                if exam[qa]:
                    if da < v1[qa]:
                        v2[qa] = v1[qa]
                        v1[qa] = da
                        j1[qa] = a
                    elif da < v2[qa]:
                        v2[qa] = da
                else:
                    nb[qa] = min(nb[qa], da)
            for q in range(t):
                v = (v1[q] if j1[q] != b else v2[q]) if exam[q] else nb[q]
                glb[i, q] = np.float32(max(v, 0.0) * _DN32)
            ub[i] = np.float32(bd * _UP32)
            inert += wi * Db
            if b != a:
                labels[i] = b
                changed += 1
                if not final:
                    _move(XB, f, wi, np.intp(a), np.intp(b), Da, Db, sums, wsum, esum, cnt, pos)
    out[0] += changed
    out[1] += inert


_sq_dist: Any = None  # .hard's compiled distance helper, bound by _get_kernels
_sq_norm: Any = None
_move: Any = None
_kernels: dict[str, Any] = {}


def _get_kernels() -> dict[str, Any]:
    """The compiled kernels (jitted on first use).  No fast-math: the bounds rely on
    IEEE comparisons and on the order of their roundings; the distance and norm
    helpers alone reassociate their feature sums."""
    global _sq_dist, _sq_norm, _move, _argmin_second, _group_min, _touch
    if not _kernels:
        _sq_dist = _hard.get_sq_dist()
        _argmin_second = _hard.get_take()[2]
        _hard._get_kernels()  # binds .hard's compiled scans (it takes the lock itself)
        with lock:
            if not _kernels:
                import numba

                jit = numba.njit(nogil=True, cache=True, fastmath=False)
                _sq_norm = numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})(
                    _sq_norm_python
                )
                _move = jit(_move_python)
                _group_min = jit(_group_min_python)
                _touch = jit(_touch_python)
                _kernels["argmin2"] = _scores_argmin
                _kernels["argmin"] = _hard._argmin  # Lloyd's own scan (passes without bounds)
                _kernels["group_mins"] = jit(_group_mins_python)
                _kernels["scores"] = jit(_scores_bounds_python)
                _kernels["hamerly"] = jit(_hamerly_chunk_python)
                _kernels["yinyang"] = jit(_yinyang_chunk_python)
    return _kernels


# --------------------------------------------------------------------------------------
# the state carried between steps
# --------------------------------------------------------------------------------------


def make_groups(C: np.ndarray, t: int, iters: int = 5) -> np.ndarray:
    """Group index of every center: ``iters`` Lloyd iterations on the centers themselves
    (Yinyang's grouping) from ``t`` evenly spaced centers; empty groups are dropped and
    the groups numbered in order of their first center."""
    C = np.asarray(C, dtype=np.float64)
    k = C.shape[0]
    t = max(1, min(t, k))
    G = C[np.linspace(0, k - 1, t).round().astype(np.intp)].copy()
    grp = np.zeros(k, dtype=np.intp)
    c_sq = np.sum(C * C, axis=1)[:, None]
    for _ in range(iters):
        grp = np.argmin(c_sq - 2.0 * C @ G.T + np.sum(G * G, axis=1)[None, :], axis=1)
        for q in range(t):
            members = grp == q
            if members.any():
                G[q] = C[members].mean(axis=0)
    used, first = np.unique(grp, return_index=True)
    renum = np.empty(t, dtype=np.intp)
    renum[used[np.argsort(first, kind="stable")]] = np.arange(used.size)
    return renum[grp]


class _Partials:
    """One thread's float64 partial sums and scratch."""

    def __init__(self, k: int, d: int, t: int, dtype: Any = np.float64) -> None:
        self.XB = np.empty((_BLOCK, d), dtype=dtype)
        self.sums = np.zeros((k, d), dtype=np.float64)
        self.wsum = np.zeros(k, dtype=np.float64)
        self.esum = np.zeros(k, dtype=np.float64)
        self.cnt = np.zeros(k, dtype=np.int64)
        self.pos = np.zeros(k, dtype=np.int64)
        self.out = np.zeros(2, dtype=np.float64)
        self.nb = np.empty(t, dtype=np.float64)
        self.D = np.empty(k, dtype=np.float64)
        self.v1 = np.empty(t, dtype=np.float64)
        self.v2 = np.empty(t, dtype=np.float64)
        self.j1 = np.empty(t, dtype=np.intp)
        self.exam = np.zeros(t, dtype=np.uint8)
        self.fl = np.empty(_BLOCK, dtype=np.intp)
        self.fb = np.empty(_BLOCK, dtype=np.float64)
        self.flo = np.empty(_BLOCK, dtype=np.float64)
        self.fd = np.empty(_BLOCK, dtype=np.float64)


class BoundedLloyd:
    """Lloyd's assignment-and-sums step with bounds carried from step to step.

    The data are ``X - shift`` (``shift``: a row, or ``None``), centred chunk by chunk
    and row by row, never as a whole.  ``step(C)`` has the contract of
    :func:`arbf._math.kernels.hard.lloyd_sums` --
    ``(labels, sums, weights, inertia)`` for the nearest-center labels of ``C`` -- and
    also returns how many labels changed since the previous step (``None`` at the
    first).  ``final(C)`` is :func:`arbf._math.kernels.hard.assign_inertia` (labels and
    exact inertia) and ends the run.  ``C`` may be any centers (the steps' own update,
    relocated empty clusters, anything): the bounds are moved by the drift since the
    previous call.  The labels returned by ``step`` are this object's state (int32):
    valid until its next call.

    A step whose sampled first bound test fails for more than
    :data:`REINIT_FRACTION` of the points (early iterations, when the centers still
    move far) recomputes every point from Lloyd's scores, chunk by chunk, which is
    then cheaper than point by point; such a pass keeps bounds only where the next
    step is forecast to use them (:data:`KEEP_FRACTION`).  The first step keeps
    bounds only when ``warm`` (centers near a fixed point: a hand-over, a refinement);
    from any other start the first move is too large for them.
    """

    def __init__(
        self,
        X: np.ndarray,
        sample_weight: np.ndarray | None,
        *,
        method: str,
        working_memory: Any = None,
        shift: np.ndarray | None = None,
        warm: bool = False,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown bound method {method!r}")
        self.X = X
        # the data are X - shift, formed row by row (the same bits as the centred array)
        self.shift = None if shift is None else np.ascontiguousarray(shift, dtype=X.dtype)
        self.M = np.zeros(X.shape[1], dtype=X.dtype) if shift is None else self.shift
        self.w = None if sample_weight is None else np.ascontiguousarray(sample_weight)
        self.method = method
        self.working_memory = working_memory
        self.P: np.ndarray | None = None  # the centers the bounds hold for (float64)
        self.valid = False  # whether the bounds hold (a pass may skip writing them)
        self.warm = warm  # the first step keeps bounds (centers near a fixed point)
        self._last_drift = 0.0  # the largest drift of the previous step

    # -- bookkeeping -------------------------------------------------------------------

    def _setup(self, C: np.ndarray) -> None:
        n, d = self.X.shape
        k = C.shape[0]
        if self.method == "hamerly":
            grp = np.zeros(k, dtype=np.intp)
        elif self.method == "elkan":
            grp = np.arange(k, dtype=np.intp)
        else:
            grp = make_groups(C, max(1, round(k / 10)))
        t = int(grp.max()) + 1
        order = np.argsort(grp, kind="stable")
        self.grp = grp
        self.gmem = order.astype(np.intp)
        self.gpos = np.argsort(order).astype(np.intp)
        self.gstart = np.searchsorted(grp[order], np.arange(t + 1)).astype(np.intp)
        self.t = t
        self.labels = np.empty(n, dtype=np.int32)
        self.ub = np.empty(n, dtype=np.float32)
        self.glb = np.empty((n, t), dtype=np.float32)
        self.S = np.zeros((k, d), dtype=np.float64)
        self.W = np.zeros(k, dtype=np.float64)
        self.E = np.zeros(k, dtype=np.float64)
        self.cnt = np.zeros(k, dtype=np.int64)
        self.pos = np.zeros(k, dtype=np.int64)

    def _reduce(self, states: list[_Partials]) -> tuple[int, float]:
        changed = 0
        inertia = 0.0
        for st in states:
            self.S += st.sums
            self.W += st.wsum
            self.E += st.esum
            self.cnt += st.cnt
            self.pos += st.pos
            changed += int(st.out[0])
            inertia += float(st.out[1])
        dead = self.pos == 0  # no positive weight left: exactly zero, as Lloyd's sums
        if dead.any():
            self.S[dead] = 0.0
            self.W[dead] = 0.0
            self.E[dead] = 0.0
        return changed, inertia

    def _outputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        dtype = self.X.dtype
        inertia = float(np.sum(np.maximum(self.E, 0.0)))
        return (
            self.labels,
            self.S.astype(dtype),
            self.W.astype(dtype),
            np.asarray(inertia, dtype=dtype),
        )

    def _drift(self, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Move the bookkeeping to centers ``C``: ``(C64, delta)`` with ``delta`` the
        drifts (rounded up); the per-cluster inertia follows the identity of the module
        docstring."""
        assert self.P is not None
        C64 = np.asarray(C, dtype=np.float64)
        diff = self.P - C64
        up, _ = _widen(C64.shape[1])
        moved = np.sum(diff * diff, axis=1)
        delta = np.sqrt(moved) * up
        self.E += 2.0 * np.sum(diff * (self.S - self.W[:, None] * self.P), axis=1)
        self.E += self.W * moved
        return C64, delta

    def _half_gaps(self, C64: np.ndarray) -> np.ndarray:
        """``s_j``: a lower bound of half the distance from ``c_j`` to its nearest other
        center (``inf`` when ``k = 1``): the BLAS expansion, less its rounding bound."""
        k, d = C64.shape
        if k == 1:
            return np.full(1, np.inf)
        sq = np.sum(C64 * C64, axis=1)
        with single_threaded_blas():  # a small product: BLAS threads only wait
            G = C64 @ C64.T
        # min over j != i of ||c_j||^2 - 2 c_i . c_j, in place (k x k temporaries cost
        # more than the product), then + ||c_i||^2 less the expansion's rounding bound
        # 2 (d + 8) 2^-52 (|c_i| + |c_j|)^2, taken at the largest |c_j| (a lower bound)
        G *= -2.0
        G += sq[None, :]
        np.fill_diagonal(G, np.inf)
        norms = np.sqrt(sq)
        err = 2.0 * (d + 8) * 2.0**-52 * (norms + np.max(norms)) ** 2
        D = np.min(G, axis=1) + sq - err
        _, dn = _widen(d)
        return 0.5 * np.sqrt(np.maximum(D, 0.0)) * dn

    def _group_drifts(self, delta: np.ndarray) -> np.ndarray:
        """``gd[a, q]``: the largest drift in group ``q`` of a center other than ``a``
        (so a point's own center does not lower its bounds)."""
        t = self.t
        k = delta.shape[0]
        top = np.zeros(t)
        arg = np.full(t, -1, dtype=np.intp)
        nxt = np.zeros(t)
        for j in np.argsort(-delta, kind="stable"):
            q = self.grp[j]
            if arg[q] < 0:
                top[q], arg[q] = delta[j], j
            elif nxt[q] == 0.0:
                nxt[q] = delta[j]
        gd = np.broadcast_to(top, (k, t)).copy()
        own = arg[self.grp] == np.arange(k)
        gd[own, self.grp[own]] = nxt[self.grp[own]]
        return gd

    def _sample(self, points: int = 4096) -> slice:
        """Every ``n / points``-th point: the sample of the share forecasts."""
        return slice(None, None, max(1, self.labels.shape[0] // points))

    def _fail_fraction(self, delta: np.ndarray, gd: np.ndarray, s: np.ndarray) -> float:
        """The share of (every ``n / 4096``-th) points whose first bound test would fail
        (nothing is written): how much work a step point by point would be."""
        pick = self._sample()
        a = self.labels[pick]
        u = (self.ub[pick].astype(np.float64) + delta[a]) * (1.0 + _DRIFT)
        ob = self.glb[pick].astype(np.float64)
        dq = gd[a]
        lo = np.min((ob - dq) - (ob + dq) * _DRIFT, axis=1)
        return float(np.mean(~(u < np.maximum(s[a], lo))))

    # -- the passes --------------------------------------------------------------------

    def _scores_pass(self, C: np.ndarray, mode: int, bounds: bool = True) -> tuple[int, float]:
        """Every point from Lloyd's scores (``mode`` as :func:`_scores_bounds_python`);
        with ``bounds`` False no bounds are kept (the next step makes a full pass)."""
        self.valid = bounds
        if mode != 1:  # fresh sums
            for acc in (self.S, self.W, self.E, self.cnt, self.pos):
                acc[...] = 0
        X, w = self.X, self.w
        n, d = X.shape
        k = C.shape[0]
        t = self.t
        dtype = X.dtype
        Cc = np.ascontiguousarray(C)
        c_sq = np.sum(Cc * Cc, axis=1)  # as hard's pass (the same labels)
        C64 = Cc.astype(np.float64)
        cmax = float(np.sqrt(np.max(np.sum(C64 * C64, axis=1))))
        coef = 2.0 * (d + 4) * float(np.finfo(dtype).eps) / 2  # scores' rounding
        up, dn = _widen(d)
        rows, threads = chunk_plan(n, k + (8 * t if t > 1 else 0), d, dtype.itemsize,
                                   self.working_memory)  # fmt: skip
        kernels = _get_kernels()
        kernel, argmin2, group_mins = kernels["scores"], kernels["argmin2"], kernels["group_mins"]
        argmin = kernels["argmin"]
        x_contig = X.flags.c_contiguous
        shift = self.shift
        empty_w = np.empty(0, dtype=dtype if w is None else w.dtype)

        class _St(_Partials):
            def __init__(self) -> None:
                super().__init__(k, d, t, dtype)
                self.GT = np.empty((k, rows), dtype=dtype)
                self.best = np.empty(rows, dtype=dtype)
                self.second = np.empty(rows, dtype=dtype)
                self.lab = np.empty(rows, dtype=np.intp)
                self.mg = np.empty(rows, dtype=np.float64)
                self.gm = np.empty((t if t > 1 else 0, rows), dtype=np.float64)
                copy = shift is not None or not x_contig
                self.xbuf = np.empty((rows, d), dtype=dtype) if copy else None

        def work(a: int, st: _St) -> None:
            b = min(a + rows, n)
            m = b - a
            Xc = X[a:b]
            if st.xbuf is not None:
                Xc = st.xbuf[:m]
                if shift is None:
                    np.copyto(Xc, X[a:b])
                else:
                    np.subtract(X[a:b], shift, out=Xc)
            full = m == rows
            GT = st.GT if full else np.empty((k, m), dtype=dtype)
            gm = st.gm if full else np.empty((st.gm.shape[0], m), dtype=np.float64)
            np.dot(Cc, Xc.T, out=GT)
            lab = st.lab[:m]
            if bounds:
                argmin2(GT, c_sq, st.best, st.second, lab)
                if t > 1:
                    group_mins(GT, c_sq, self.gstart, self.gmem, lab, gm)
            else:  # the labels alone: Lloyd's own scan
                argmin(GT, c_sq, lab, st.best)
            kernel(
                Xc, Cc, empty_w if w is None else w[a:b], coef, cmax, up, dn,
                self.labels[a:b], self.ub[a:b], self.glb[a:b], st.second, lab, gm, st.mg,
                mode, bounds, st.sums, st.wsum, st.esum, st.cnt, st.pos, st.out,
            )  # fmt: skip

        states = run_chunks(n, rows, threads, work, _St)
        return self._reduce(states)

    def _bounds_pass(
        self, C: np.ndarray, C64: np.ndarray, delta: np.ndarray, s: np.ndarray, final: bool
    ) -> tuple[int, float]:
        X, w = self.X, self.w
        n, d = X.shape
        k = C.shape[0]
        t = self.t
        up, dn = _widen(d)
        threads = max(1, min(n_threads(), -(-n // MIN_ROWS)))
        rows = -(-n // threads)
        Cc = np.ascontiguousarray(C)
        empty_w = np.empty(0, dtype=X.dtype if w is None else w.dtype)
        kernels = _get_kernels()
        if self.method == "hamerly":
            CT = np.ascontiguousarray(C64.T)
            amax = int(np.argmax(delta))
            dmax1 = float(delta[amax])
            dmax2 = float(np.max(np.delete(delta, amax))) if k > 1 else 0.0
            kernel = kernels["hamerly"]

            def work(a: int, st: _Partials) -> None:
                b = min(a + rows, n)
                kernel(
                    X[a:b], self.M, empty_w if w is None else w[a:b], Cc, CT, delta, s, dmax1,
                    amax, dmax2, up, dn, self.labels[a:b], self.ub[a:b], self.glb[a:b], st.D,
                    st.fl, st.fb, st.flo, st.fd, st.XB, st.sums, st.wsum, st.esum, st.cnt, st.pos,
                    st.out, final,
                )  # fmt: skip

        else:
            gdelta = self._group_drifts(delta)
            vertical = d <= _VERTICAL_D
            CTg = np.ascontiguousarray(C64[self.gmem].T)  # columns in group order
            kernel = kernels["yinyang"]

            def work(a: int, st: _Partials) -> None:
                b = min(a + rows, n)
                kernel(
                    X[a:b], self.M, empty_w if w is None else w[a:b], Cc, CTg, vertical, delta,
                    gdelta, s, self.grp, self.gstart, self.gmem, self.gpos, up, dn,
                    self.labels[a:b], self.ub[a:b], self.glb[a:b], st.nb, st.v1, st.v2,
                    st.j1, st.exam, st.D, st.fl, st.fb, st.fd, st.XB, st.sums, st.wsum, st.esum,
                    st.cnt, st.pos, st.out, final,
                )  # fmt: skip

        states = run_chunks(n, rows, threads, work, lambda: _Partials(k, d, t, X.dtype))
        if final:
            return int(sum(st.out[0] for st in states)), float(sum(st.out[1] for st in states))
        return self._reduce(states)

    def _bound_drifts(self, delta: np.ndarray) -> np.ndarray:
        """``gd[a, q]``: how far the lower bound of group ``q`` of a point labelled ``a``
        falls when the centers move by ``delta`` (Hamerly: one group, the largest drift
        of another center)."""
        if self.method != "hamerly":
            return self._group_drifts(delta)
        gd = np.zeros((delta.shape[0], 1))
        order = np.argsort(-delta, kind="stable")
        gd[:, 0] = delta[order[0]]
        if delta.shape[0] > 1:
            gd[order[0], 0] = delta[order[1]]
        return gd

    def _next_fail_fraction(
        self, C64: np.ndarray, delta: np.ndarray, s: np.ndarray, shrink: float
    ) -> float:
        """The share of (every ``n / 1024``-th) points whose first bound test would fail
        at the next step if this step's pass kept bounds: the sample's distances to
        ``C64`` (BLAS expansion, float64: a forecast, not a bound), tested against the
        next drifts, guessed as these times ``shrink`` (the ratio of the last two
        largest drifts).  Above :data:`REINIT_FRACTION` the next step makes a full pass anyway,
        so this one need not pay for bounds."""
        X = self.X[self._sample(_FORECAST_POINTS)]
        m = X.shape[0]
        Cg = C64[self.gmem]  # columns in group order: each group's minimum is a slice
        cg_sq = np.sum(Cg * Cg, axis=1)
        starts = self.gstart[:-1]  # no group is empty (make_groups)
        nd = delta * shrink
        gd = self._bound_drifts(nd)
        shift = None if self.shift is None else self.shift.astype(np.float64)
        fails = 0
        with single_threaded_blas():
            # blocks of rows whose distances stay in cache (one array of 4096 x k float64
            # took ~10x longer, mostly its fresh pages)
            for a0 in range(0, m, _FORECAST_ROWS):
                Xs = X[a0 : a0 + _FORECAST_ROWS].astype(np.float64)
                if shift is not None:
                    Xs -= shift
                D = np.sum(Xs * Xs, axis=1)[:, None] + cg_sq[None, :] - 2.0 * (Xs @ Cg.T)
                np.maximum(D, 0.0, out=D)
                rows = np.arange(D.shape[0])
                p = np.argmin(D, axis=1)
                u = np.sqrt(D[rows, p])
                D[rows, p] = np.inf
                lq = np.sqrt(np.minimum.reduceat(D, starts, axis=1))
                a = self.gmem[p]
                lo = np.min(lq - gd[a], axis=1)
                fails += int(np.count_nonzero(~(u + nd[a] < np.maximum(s[a], lo))))
        return fails / m

    def _later(self, C: np.ndarray, final: bool) -> tuple[int, float]:
        C64, delta = self._drift(C)
        self.P = C64
        s = self._half_gaps(C64)
        wide = self.method == "hamerly" or self.X.shape[1] <= _VERTICAL_D
        limit = REINIT_FRACTION["hamerly" if wide else self.method]
        top = float(np.max(delta))
        shrink = min(1.0, top / self._last_drift) if self._last_drift > 0.0 else 1.0
        self._last_drift = top
        if self.valid and self._fail_fraction(delta, self._bound_drifts(delta), s) <= limit:
            return self._bounds_pass(C, C64, delta, s, final)
        if final:  # no bounds wanted: Lloyd's own pass
            labels, inertia = _hard.assign_inertia(
                self.X, C, self.w, working_memory=self.working_memory, shift=self.shift
            )
            self.labels = labels
            return -1, float(inertia)
        keep = self._next_fail_fraction(C64, delta, s, shrink) <= KEEP_FRACTION
        return self._scores_pass(C, 1 if keep else 2, bounds=keep)

    # -- the steps ---------------------------------------------------------------------

    def step(
        self, C: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int | None]:
        """``(labels, sums, weights, inertia, changed)`` for the nearest centers of ``C``."""
        if self.P is None:
            self._setup(C)
            self._scores_pass(C, 0, bounds=self.warm)
            self.P = np.asarray(C, dtype=np.float64)
            return (*self._outputs(), None)
        changed, _ = self._later(C, final=False)
        return (*self._outputs(), changed)

    def final(self, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(labels, inertia)`` for the nearest centers of ``C`` (the inertia exact)."""
        if self.P is None:
            return _hard.assign_inertia(
                self.X, C, self.w, working_memory=self.working_memory, shift=self.shift
            )
        _, inertia = self._later(C, final=True)
        return self.labels.astype(np.intp, copy=False), np.asarray(inertia, dtype=self.X.dtype)
