"""The certified float64 hard pass (:data:`arbf._math.kernels.hard.CERTIFIED_FLOAT64`).

Float64 hard passes with many centers compute their scores from a float32 product and
keep a label only where a rigorous error bound proves it is the float64 argmin; the other
rows are recomputed in float64.  The reference here is the plain float64 pass (the same
module with the certificate switched off), which the pure path and scikit-learn are
tested against elsewhere: labels, minimum distances, sums, weights and inertia must be
equal to the bit, on inputs made to break a float32 shortcut (exact ties, near ties
below float32's resolution, large offsets, values beyond float32's range, subnormal
ones).  The bound itself is checked against the two products it compares.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import arbf
from arbf._math.kernels import hard, runtime

pytestmark = pytest.mark.skipif(not runtime.HAVE_NUMBA, reason="numba not installed")


@pytest.fixture
def certified_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """The certified pass for any ``k`` (it is used from ``CERTIFIED_MIN_K`` centers)."""
    monkeypatch.setattr(hard, "CERTIFIED_MIN_K", 1)
    monkeypatch.setattr(hard, "CERTIFIED_FLOAT64", True)


def _passes(X, C, w, shift, monkeypatch, certified: bool):
    monkeypatch.setattr(hard, "CERTIFIED_FLOAT64", certified)
    out = []
    for threads in (1, 2):
        with arbf.config_context(n_threads=threads):
            out.append(hard.lloyd_sums(X, C, w, working_memory=None, shift=shift))
            out.append(hard.assign(X, C, working_memory=None))
            out.append(hard.assign_inertia(X, C, w, working_memory=None, shift=shift))
    return out


def _assert_same(X, C, monkeypatch, w=None, shift=None):
    Xc = X.copy()
    plain = _passes(X, C, w, shift, monkeypatch, certified=False)
    cert = _passes(X, C, w, shift, monkeypatch, certified=True)
    for p, c in zip(plain, cert, strict=True):
        for a, b in zip(p, c, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(X, Xc)  # nothing written into the input


def _near_tie_rows(rng, n: int, d: int, eps: float, offset: float = 1e3):
    """Rows within ``eps`` (relative) of the bisector of two centers, ``offset`` from
    the origin: their two scores differ about at float32's resolution."""
    C = offset + rng.standard_normal((2, d))
    mid, step = (C[0] + C[1]) / 2, C[1] - C[0]
    X = mid + np.outer(rng.uniform(-eps, eps, n), step)
    return X, C


def _cases():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((4000, 16))
    yield "random", X, X[:10].copy()
    C = rng.standard_normal((4, 8))
    mid = (C[[0]] + C[[1]]) / 2
    yield "exact ties", np.vstack([mid] * 40 + [C, C]), C
    C = rng.standard_normal((6, 5))
    C[3] = C[1]
    yield "duplicate centers", rng.standard_normal((3000, 5)), C
    X = 1e8 + rng.standard_normal((3000, 4))
    yield "large offset", X, X[:7].copy()
    X = 1e200 * rng.standard_normal((500, 3))
    yield "beyond float32", X, X[:3].copy()
    X = 1e30 * rng.standard_normal((500, 3))
    yield "large", X, X[:3].copy()
    X = 1e-40 * rng.standard_normal((500, 3))
    yield "float32 subnormal", X, X[:3].copy()
    X = 1e-300 * rng.standard_normal((500, 3))
    yield "float32 zero", X, X[:3].copy()
    X, C = _near_tie_rows(rng, 3000, 32, 1e-7)
    yield "near ties", X, C
    # a row beyond float32's range against tiny centers (||x|| max||c|| = 1e30 < 2**100):
    # in float32 the first center scores -inf and the second NaN (inf * 0), but the
    # second is float64's argmin (<x, c_1> = 1e29 against 1e-5)
    X = np.array([[1e39, 1e38], [1.0, 2.0]])
    yield "float32 inf times 0", X, np.array([[1e-44, 0.0], [0.0, 1e-9]])
    X = rng.standard_normal((6000, 64))
    yield "k=300", X, X[rng.choice(6000, 300, replace=False)] + 0.01


@pytest.mark.parametrize("case", list(_cases()), ids=lambda c: c[0])
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_certified_pass_equals_plain_float64_pass(case, certified_everywhere, monkeypatch):
    _, X, C = case
    rng = np.random.default_rng(1)
    _assert_same(X, C, monkeypatch)
    _assert_same(X, C, monkeypatch, w=rng.uniform(0, 2, X.shape[0]))
    _assert_same(X, C, monkeypatch, shift=X.mean(axis=0))
    _assert_same(np.asfortranarray(X), C, monkeypatch)


def test_certificate_is_what_keeps_the_labels(certified_everywhere, monkeypatch):
    """On near ties the float32 argmin is wrong for some rows; the certificate flags
    them (and only a minority of rows), and the recomputed labels are float64's."""
    rng = np.random.default_rng(3)
    X, C = _near_tie_rows(rng, 4000, 32, 1e-5, offset=0.0)
    monkeypatch.setattr(hard, "CERTIFIED_FLOAT64", False)
    plain, _ = hard.assign(X, C, working_memory=None)
    c_sq = np.sum(C * C, axis=1)
    g32 = C.astype(np.float32) @ X.astype(np.float32).T
    raw32 = np.argmin(c_sq.astype(np.float32)[:, None] - (g32 + g32), axis=0)
    assert np.sum(raw32 != plain) > 5  # the shortcut alone would be wrong

    monkeypatch.setattr(hard, "CERTIFIED_FLOAT64", True)
    certified, _ = hard.assign(X, C, working_memory=None)
    np.testing.assert_array_equal(certified, plain)

    cmax, rel, csq_term = hard._certified_bound_terms(X.shape[1], c_sq)
    kernels = hard._get_kernels()
    x32 = np.empty(X.shape, np.float32)
    sq = np.empty(X.shape[0])
    kernels["cast_sq_norms"](X, x32, sq)
    np.testing.assert_array_equal(x32, X.astype(np.float32))
    np.testing.assert_allclose(sq, np.sum(X * X, axis=1), rtol=1e-13)
    m = X.shape[0]
    labels = np.empty(m, np.intp)
    fail = np.empty(m, np.uint8)
    GT = (C.astype(np.float32) @ x32.T).astype(np.float32)
    flagged = kernels["certify"](
        sq, GT, c_sq.astype(np.float32), cmax, rel, csq_term, X.shape[1] * 2.0**-140,
        labels, np.empty(m, np.float32), np.empty(m, np.float32), fail,
    )  # fmt: skip
    assert flagged == int(fail.sum())
    assert np.all(fail[raw32 != plain] == 1)  # every wrong float32 label is flagged
    assert 0 < flagged < m / 2  # most near-tie rows are still decided in float32
    np.testing.assert_array_equal(labels[fail == 0], plain[fail == 0])
    np.testing.assert_array_equal(labels, raw32)  # the kernel's argmin is float32's


def test_certificate_passes_clear_rows():
    """On clustered data (gaps far above the bound) every row is certified: the bound is
    rigorous, not vacuous."""
    rng = np.random.default_rng(5)
    k, d = 200, 64
    means = 10 * rng.standard_normal((k, d))
    X = means[rng.integers(0, k, 5000)] + rng.standard_normal((5000, d))
    C = means + 0.1 * rng.standard_normal((k, d))
    c_sq = np.sum(C * C, axis=1)
    cmax, rel, csq_term = hard._certified_bound_terms(d, c_sq)
    kernels = hard._get_kernels()
    x32 = np.empty(X.shape, np.float32)
    sq = np.empty(X.shape[0])
    kernels["cast_sq_norms"](X, x32, sq)
    m = X.shape[0]
    fail = np.empty(m, np.uint8)
    flagged = kernels["certify"](
        sq, C.astype(np.float32) @ x32.T, c_sq.astype(np.float32), cmax, rel, csq_term,
        d * 2.0**-140, np.empty(m, np.intp), np.empty(m, np.float32),
        np.empty(m, np.float32), fail,
    )  # fmt: skip
    assert flagged == 0


@settings(max_examples=60, deadline=None)
@given(
    d=st.integers(1, 300),
    k=st.integers(1, 40),
    log_scale=st.floats(-30, 8),  # up to 1e8 x 1e4 x sqrt(300) < 2**50: the pass applies
    offset=st.floats(0, 1e4),
    seed=st.integers(0, 2**32 - 1),
)
def test_score_bound_holds(d, k, log_scale, offset, seed):
    """``|float32 score - float64 score| <= B_i`` for every row and center, with the
    scores formed exactly as the two passes form them (float32: ``c_sq`` rounded, then
    ``c_sq32 - (g + g)``; float64: BLAS's product, ``c_sq - (g + g)``)."""
    rng = np.random.default_rng(seed)
    scale = 10.0**log_scale
    X = scale * (offset + rng.standard_normal((64, d)))
    C = scale * (offset + rng.standard_normal((k, d)))
    c_sq = np.sum(C * C, axis=1)
    terms = hard._certified_bound_terms(d, c_sq) if k >= hard.CERTIFIED_MIN_K else None
    if terms is None:
        hard_min_k, hard.CERTIFIED_MIN_K = hard.CERTIFIED_MIN_K, 1
        try:
            terms = hard._certified_bound_terms(d, c_sq)
        finally:
            hard.CERTIFIED_MIN_K = hard_min_k
    assert terms is not None
    cmax, rel, csq_term = terms
    g64 = C @ X.T
    s64 = c_sq[:, None] - (g64 + g64)
    g32 = C.astype(np.float32) @ X.astype(np.float32).T
    s32 = (c_sq.astype(np.float32)[:, None] - (g32 + g32)).astype(np.float64)
    xn = np.sqrt(np.sum(X * X, axis=1)) * 1.0009765625
    bound = rel * xn * cmax + csq_term + d * 2.0**-140 * (1 + xn + cmax)
    assert np.all(np.abs(s32 - s64) <= bound[None, :])
    # and the bound is not vacuous: about 2 d float32 ulps of the scale (plus the
    # underflow allowance, 2**-140 d, which matters only below float32's normal range)
    scale_terms = (2 * d + 16) * 2.0**-24 * (xn * cmax + c_sq.max())
    assert np.all(bound <= scale_terms + d * 2.0**-139 * (1 + xn + cmax))


def test_when_the_certified_pass_applies(monkeypatch):
    c_sq = np.ones(200)
    assert hard._certified_bound_terms(8, c_sq) is not None
    assert hard._certified_bound_terms(8, c_sq[: hard.CERTIFIED_MIN_K - 1]) is None
    assert hard._certified_bound_terms(2**20, c_sq) is None
    assert hard._certified_bound_terms(8, np.full(200, 2.0**101)) is None
    assert hard._certified_bound_terms(8, np.full(200, np.inf)) is None
    monkeypatch.setattr(hard, "CERTIFIED_FLOAT64", False)
    assert hard._certified_bound_terms(8, c_sq) is None


@pytest.mark.parametrize("algorithm", ["lloyd", "elkan", "hamerly", "yinyang"])
def test_kmeans_float64_many_centers_same_as_plain(algorithm, monkeypatch):
    """``kmeans`` end to end (k = 160 >= CERTIFIED_MIN_K): the same labels, centers,
    inertia and ``n_iter`` with and without the certified pass."""
    rng = np.random.default_rng(11)
    means = 4 * rng.standard_normal((160, 24))
    X = means[rng.integers(0, 160, 8000)] + rng.standard_normal((8000, 24))
    init = X[rng.choice(8000, 160, replace=False)]
    res = {}
    for flag in (False, True):
        monkeypatch.setattr(hard, "CERTIFIED_FLOAT64", flag)
        with arbf.config_context(fast_paths=True):
            res[flag] = arbf.kmeans(X, 160, init=init, algorithm=algorithm)
    a, b = res[False], res[True]
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centers, b.centers)
    assert a.inertia == b.inertia and a.n_iter == b.n_iter
