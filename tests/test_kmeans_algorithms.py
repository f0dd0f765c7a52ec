"""``algorithm=`` of K-Means: every value gives Lloyd's result.

- against scikit-learn's Lloyd (``sklearn.cluster.KMeans(algorithm="lloyd")``) from the
  same initial centers at ``n >= 10^4``, ``d`` up to 128, ``k`` up to 256, float32 and
  float64, with and without weights: labels equal, centers and inertia to the dtype's
  tolerance, ``n_iter`` equal -- for every value of ``algorithm``;
- the bound methods against ``algorithm="lloyd"`` of arbf on adversarial cases (exact
  ties, duplicate points, empty clusters and relocation, zero weights, centers that do
  not move, ``k = 1``, ``k = n``, one iteration): the same labels, ``n_iter`` and history,
  centers and inertia to rounding;
- the bounded step itself (:class:`arbf._math.kernels.bounds.BoundedLloyd`) against
  Lloyd's pass under arbitrary center moves, and its choice (``resolve_algorithm``);
- ``algorithm`` on every entry point, validated (wrong type: ``TypeError``, wrong value:
  ``ValueError``), and on every backend (off the host route every value is Lloyd).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest

import arbf
from arbf._math import seam
from arbf._math.kernels import bounds, hard, runtime
from tests.test_kmeans import CASES, _case

sklearn_cluster = pytest.importorskip("sklearn.cluster")

BOUND_METHODS = ["hamerly", "yinyang", "elkan"]
ALL = ["lloyd", *BOUND_METHODS, "auto"]

needs_numba = pytest.mark.skipif(not runtime.HAVE_NUMBA, reason="numba not installed")


def _separated(
    n: int, d: int, k: int, seed: int, one_per_blob: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian blobs (unit noise) around ``k`` means far apart, and weights.  ``C0``:
    random rows (some blobs start with two centers and some with none: many
    iterations, relocations, and centers that split a blob), or one row of every blob
    (no center ever shares a blob: no sample near a tie, even at float32 rounding)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, d)) * max(8.0, 40.0 / np.sqrt(d))
    blob = rng.integers(k, size=n)
    blob[:k] = np.arange(k)
    X = means[blob] + rng.standard_normal((n, d))
    C0 = X[:k] if one_per_blob else X[rng.choice(n, size=k, replace=False)]
    w = rng.uniform(0.5, 2.0, n)
    return X, C0, w


SHAPES = [(10_000, 2, 5), (12_000, 32, 64), (10_000, 128, 256)]


@functools.cache
def _sk(shape: tuple[int, int, int], dtype: str, weighted: bool) -> tuple[object, ...]:
    # float32: scikit-learn's and arbf's float32 scores round differently, so the test
    # keeps samples away from ties (one center per blob); float64: random rows
    X, C0, w = _separated(*shape, seed=sum(shape), one_per_blob=dtype == "float32")
    X, C0 = X.astype(dtype), C0.astype(dtype)
    sw = w.astype(dtype) if weighted else None
    km = sklearn_cluster.KMeans(
        n_clusters=shape[2], init=C0, n_init=1, max_iter=300, tol=1e-4, algorithm="lloyd"
    ).fit(X, sample_weight=sw)
    return X, C0, sw, km.labels_, km.cluster_centers_, float(km.inertia_), int(km.n_iter_)


@pytest.mark.slow
@needs_numba
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_every_algorithm_matches_sklearn_lloyd(shape, dtype, weighted):
    X, C0, sw, labels, centers, inertia, n_iter = _sk(shape, dtype, weighted)
    rtol = 1e-10 if dtype == "float64" else 2e-5
    scale = float(np.abs(X).max())
    for algorithm in ALL:
        res = arbf.kmeans(X, shape[2], init=C0, n_init=1, sample_weight=sw, algorithm=algorithm)
        np.testing.assert_array_equal(res.labels, labels, err_msg=algorithm)
        np.testing.assert_allclose(res.centers, centers, rtol=rtol, atol=rtol * scale)
        np.testing.assert_allclose(res.inertia, inertia, rtol=rtol)
        assert res.n_iter == n_iter, algorithm


# --------------------------------------------------------------------------------------
# the bound methods against arbf's Lloyd on adversarial cases
# --------------------------------------------------------------------------------------


def _same_as_lloyd(X, k, C0, w=None, dtype="float64", **opts):
    runs = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", arbf.ConvergenceWarning)
        # scikit-learn's warning for algorithm="elkan" with one cluster (tested elsewhere)
        warnings.filterwarnings("ignore", "algorithm='elkan'", RuntimeWarning)
        for algorithm in ["lloyd", *BOUND_METHODS]:
            runs[algorithm] = arbf.kmeans(
                np.asarray(X, dtype=dtype), k, init=np.asarray(C0, dtype=dtype), n_init=1,
                sample_weight=None if w is None else np.asarray(w, dtype=dtype),
                algorithm=algorithm, **opts,
            )  # fmt: skip
    ref = runs.pop("lloyd")
    rtol = 1e-12 if dtype == "float64" else 1e-6
    for name, res in runs.items():
        np.testing.assert_array_equal(res.labels, ref.labels, err_msg=name)
        assert res.labels.dtype == ref.labels.dtype
        assert res.n_iter == ref.n_iter, name
        assert res.converged == ref.converged, name
        np.testing.assert_allclose(res.centers, ref.centers, rtol=rtol, atol=rtol, err_msg=name)
        np.testing.assert_allclose(res.inertia, ref.inertia, rtol=rtol, atol=rtol, err_msg=name)
        for key in ("inertia", "center_shift"):
            np.testing.assert_allclose(
                res.history[key], ref.history[key], rtol=1e-9, atol=1e-9, err_msg=name
            )
    return ref


@needs_numba
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", CASES)
def test_battery_bound_methods_equal_lloyd(name, dtype):
    X, C0, w, opts = _case(name)
    _same_as_lloyd(X, C0.shape[0], C0, w, dtype=dtype, **opts)


@needs_numba
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_exact_ties_everywhere(dtype):
    # a symmetric integer lattice and centers on its axes: many points are exactly
    # equidistant from two or four centers at every iteration (ties to the lowest index)
    g = np.array([[x, y] for x in range(-8, 9) for y in range(-8, 9)], dtype=float)
    X = np.repeat(g, 30, axis=0)  # and every point 30 times
    C0 = np.array([[-4.0, 0.0], [4.0, 0.0], [0.0, -4.0], [0.0, 4.0], [0.0, 0.0]])
    ref = _same_as_lloyd(X, 5, C0, dtype=dtype)
    assert ref.n_iter >= 1


@needs_numba
def test_relocation_and_duplicate_centers():
    X, C0, w = _separated(6000, 8, 12, seed=5)
    C0 = C0.copy()
    C0[3] = C0[7]  # two identical centers: exact ties between them
    C0[5] = 1e3  # far from everything: empty at once, relocated
    C0[9] = -1e3
    _same_as_lloyd(X, 12, C0)
    _same_as_lloyd(X, 12, C0, w=w)
    # zero weights: clusters whose members all weigh nothing are empty too
    w0 = w.copy()
    w0[X[:, 0] > np.median(X[:, 0])] = 0.0
    _same_as_lloyd(X, 12, C0, w=w0)


@needs_numba
def test_centers_that_do_not_move_and_one_iteration():
    X, C0, _ = _separated(5000, 4, 6, seed=6)
    done = arbf.kmeans(X, 6, init=C0, n_init=1, algorithm="lloyd", tol=0.0)
    # a fixed point (to the rounding of re-centring): labels never change
    ref = _same_as_lloyd(X, 6, done.centers, tol=0.0)
    assert ref.n_iter <= 2 and ref.converged
    np.testing.assert_array_equal(ref.labels, done.labels)
    for max_iter in (1, 2):  # the final assignment after one or two updates
        _same_as_lloyd(X, 6, C0, max_iter=max_iter, tol=0.0)


@needs_numba
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_cluster_and_as_many_clusters_as_points(dtype):
    X, _, w = _separated(3000, 3, 4, seed=7)
    _same_as_lloyd(X, 1, X[:1], w, dtype=dtype)
    Y = X[:300]
    _same_as_lloyd(Y, 300, Y[::-1], dtype=dtype)  # k = n: every point its own cluster


@needs_numba
def test_noncontiguous_and_torch_inputs():
    torch = pytest.importorskip("torch")
    X, C0, w = _separated(4000, 5, 7, seed=8)
    Xf = np.asfortranarray(X)
    ref = arbf.kmeans(X, 7, init=C0, n_init=1, sample_weight=w, algorithm="lloyd")
    for algorithm in BOUND_METHODS:
        got = arbf.kmeans(Xf, 7, init=C0, n_init=1, sample_weight=w, algorithm=algorithm)
        np.testing.assert_array_equal(got.labels, ref.labels)
        tg = arbf.kmeans(
            torch.from_numpy(X), 7, init=torch.from_numpy(C0), n_init=1,
            sample_weight=torch.from_numpy(w), algorithm=algorithm,
        )  # fmt: skip
        assert isinstance(tg.labels, torch.Tensor) and isinstance(tg.centers, torch.Tensor)
        np.testing.assert_array_equal(tg.labels.numpy(), ref.labels)
        np.testing.assert_allclose(tg.centers.numpy(), ref.centers, rtol=1e-12)


def test_every_backend_accepts_every_algorithm(backend):
    X, C0, w = _separated(200, 3, 4, seed=9)
    ref = None
    for algorithm in ALL:
        res = arbf.kmeans(
            backend.asarray(X, "float64"), 4, init=backend.asarray(C0, "float64"),
            sample_weight=backend.asarray(w, "float64"), algorithm=algorithm,
        )  # fmt: skip
        backend.check_same_kind(res.labels)
        labels = backend.to_numpy(res.labels)
        if ref is None:
            ref = (labels, res.inertia, res.n_iter)
        np.testing.assert_array_equal(labels, ref[0])
        np.testing.assert_allclose(res.inertia, ref[1], rtol=1e-12)
        assert res.n_iter == ref[2]


# --------------------------------------------------------------------------------------
# the bounded step itself
# --------------------------------------------------------------------------------------


@needs_numba
@pytest.mark.parametrize("method", BOUND_METHODS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("keep", [None, -1.0, 2.0], ids=["forecast", "never", "always"])
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_step_equals_lloyd_pass_under_arbitrary_moves(method, dtype, seed, keep, warm):
    # keep: the full passes keep bounds by the forecast, never (every step after a
    # failed sample is a fresh pass without bounds), or always; warm: the first step
    # keeps bounds or not -- the same labels, sums and counts of changes every time
    rng = np.random.default_rng(seed)
    X, C, w = _separated(5000, 6, 24, seed=10 + seed)
    X = X.astype(dtype)
    w = w.astype(dtype) if seed else None
    mp = pytest.MonkeyPatch()
    if keep is not None:
        mp.setattr(bounds, "KEEP_FRACTION", keep)
    stepper = bounds.BoundedLloyd(X, w, method=method, warm=warm)
    prev = None
    for it in range(14):
        C = C.astype(dtype)
        labels, sums, weights, inertia, changed = stepper.step(C)
        ref = hard.lloyd_sums(X, C, w, working_memory=None)
        if dtype == "float64":  # float32: Lloyd's scores round; near ties may differ
            np.testing.assert_array_equal(labels, ref[0])
        else:
            assert np.mean(labels == ref[0]) > 0.999
        if prev is not None:
            assert changed == int(np.count_nonzero(labels != prev))
        else:
            assert changed is None
        prev = labels.copy()
        same = labels == ref[0]
        if same.all():
            rtol = 1e-9 if dtype == "float64" else 1e-5
            scale = float(np.abs(ref[1]).max())
            np.testing.assert_allclose(sums, ref[1], rtol=rtol, atol=rtol * scale)
            np.testing.assert_allclose(weights, ref[2], rtol=rtol)
            np.testing.assert_allclose(inertia, ref[3], rtol=rtol)
        # the next centers: an update, no move, a jump, duplicates, a far center
        kind = it % 5
        if kind == 0:
            C = np.where(weights[:, None] > 0, sums / np.maximum(weights, 1e-30)[:, None], C)
            C = C.astype(dtype)
        elif kind == 1:
            pass
        elif kind == 2:
            C = C + rng.normal(size=C.shape) * rng.choice([1e-6, 0.1, 3.0])
        elif kind == 3:
            C = C.copy()
            C[rng.integers(24)] = C[rng.integers(24)]
        else:
            C = C.copy()
            C[rng.integers(24)] = rng.normal(size=C.shape[1]) * 50
    labels, inertia = stepper.final(C.astype(dtype))
    mp.undo()
    ref_labels, ref_inertia = hard.assign_inertia(X, C.astype(dtype), w, working_memory=None)
    assert labels.dtype == np.intp
    if dtype == "float64":
        np.testing.assert_array_equal(labels, ref_labels)
        np.testing.assert_allclose(inertia, ref_inertia, rtol=1e-12)


@needs_numba
@pytest.mark.parametrize("method", BOUND_METHODS)
def test_first_step_keeps_bounds_only_when_warm(method):
    # from random rows the first move is too large for bounds: the first pass writes
    # none (the next step is a full pass, which forecasts whether to keep them); from a
    # fixed point (warm) the first pass keeps them and the next step uses them
    X, C0, _ = _separated(4000, 5, 12, seed=3, one_per_blob=True)
    fixed = arbf.kmeans(X, 12, init=C0, algorithm="lloyd").centers
    for warm, C in ((False, C0), (True, fixed)):
        st = bounds.BoundedLloyd(X, None, method=method, warm=warm)
        st.step(C)
        assert st.valid is warm
    st = bounds.BoundedLloyd(X, None, method=method, warm=True)
    st.step(fixed)
    passes = []
    st._scores_pass = lambda *a, **k: passes.append(a) or (0, 0.0)  # type: ignore[method-assign]
    _, _, _, _, changed = st.step(fixed)
    assert passes == [] and changed == 0  # the bounds proved every label


@needs_numba
@pytest.mark.parametrize("method", BOUND_METHODS)
def test_next_fail_fraction_forecast(method):
    # the forecast is the first bound test on the sample with the given drifts: at a
    # fixed point of well-separated blobs with no drift almost every point passes;
    # drifts larger than the blobs' spacing fail every point
    X, C0, _ = _separated(6000, 4, 10, seed=5, one_per_blob=True)
    C = arbf.kmeans(X, 10, init=C0, algorithm="lloyd").centers.astype(np.float64)
    st = bounds.BoundedLloyd(X, None, method=method)
    st._setup(C)
    s = st._half_gaps(C)
    zero = np.zeros(10)
    assert st._next_fail_fraction(C, zero, s, 1.0) < 0.05
    far = np.full(10, 1e3)
    assert st._next_fail_fraction(C, far, s, 1.0) == 1.0
    assert st._next_fail_fraction(C, far, s, 0.0) < 0.05  # shrunk to no drift


def _forecast_reference(X, shift, C, gmem, gstart, s, gd, nd):
    """The forecast written out: every sampled point's distances at once (float64, the
    groups by fancy indexing), its nearest center ``a``, the first bound test."""
    Xs = X.astype(np.float64) - (0.0 if shift is None else shift)
    D = np.sum((Xs[:, None, :] - C[None, :, :]) ** 2, axis=2)
    rows = np.arange(len(Xs))
    a = np.argmin(D, axis=1)
    u = np.sqrt(D[rows, a])
    D[rows, a] = np.inf
    groups = [gmem[gstart[q] : gstart[q + 1]] for q in range(len(gstart) - 1)]
    lq = np.stack([np.sqrt(D[:, g].min(axis=1)) for g in groups], axis=1)
    lo = np.min(lq - gd[a], axis=1)
    return float(np.mean(~(u + nd[a] < np.maximum(s[a], lo))))


@needs_numba
@pytest.mark.parametrize("method", BOUND_METHODS)
@pytest.mark.parametrize("shifted", [False, True])
def test_next_fail_fraction_matches_the_reference(method, shifted):
    # a sample of several blocks (n / 1024-th points of 20 000: 1 053 rows), k = 40 in
    # several groups, drifts of the order of the blobs' spacing: a share strictly
    # between 0 and 1, equal to the direct formula's (up to points within rounding of
    # the test's threshold)
    X, C0, _ = _separated(20_000, 6, 40, seed=11)
    shift = X.mean(axis=0) if shifted else None
    Xd = X if shift is None else X + shift  # the data the stepper sees are Xd - shift
    C = (C0 + np.random.default_rng(1).normal(size=C0.shape)).astype(np.float64)
    st = bounds.BoundedLloyd(Xd, None, method=method, shift=shift)
    st._setup(C)
    s = st._half_gaps(C)
    delta = np.random.default_rng(2).uniform(0.0, 6.0, size=40)
    got = st._next_fail_fraction(C, delta, s, 0.7)
    nd = delta * 0.7
    pick = st._sample(bounds._FORECAST_POINTS)
    want = _forecast_reference(Xd[pick], shift, C, st.gmem, st.gstart, s, st._bound_drifts(nd), nd)
    assert len(Xd[pick]) > 2 * bounds._FORECAST_ROWS
    assert 0.02 < want < 0.98
    assert abs(got - want) <= 2.0 / len(Xd[pick])


@needs_numba
def test_make_groups_partitions_the_centers():
    C = np.random.default_rng(0).normal(size=(103, 5))
    grp = bounds.make_groups(C, 10)
    assert grp.shape == (103,) and grp.min() == 0
    used = np.unique(grp)
    np.testing.assert_array_equal(used, np.arange(used.size))  # no empty group
    assert 2 <= used.size <= 10
    assert np.all(np.diff([np.flatnonzero(grp == q)[0] for q in used]) > 0)


def test_resolve_algorithm():
    f = seam.resolve_algorithm
    assert f("lloyd", 10**6, 16, 16, np.float32) == "lloyd"
    assert f("elkan", 10**6, 16, 16, np.float32) == "elkan"
    assert f("hamerly", 10**6, 16, 16, np.float32, host=False) == "lloyd"
    assert f("auto", 10**6, 16, 16, np.float32, host=False) == "lloyd"
    assert f("auto", 100, 2, 3, np.float64) == "lloyd"  # too small to pay for bounds
    assert f("auto", 10**6, 16, 1, np.float64) == "lloyd"
    assert f("auto", 10**6, 16, 16, np.float32) == "hamerly"
    assert f("auto", 10**6, 16, 16, np.float32, max_iter=1) == "lloyd"
    assert f("auto", 10**5, 128, 256, np.float32) == "yinyang"
    assert f("auto", 10**5, 4, 8, np.float64) == "lloyd"
    assert f("auto", 10**5, 64, 512, np.float64) == "lloyd"


def test_fast_paths_off_means_lloyd():
    X, C0, _ = _separated(3000, 4, 5, seed=11)
    with arbf.config_context(fast_paths=False):
        stepper = seam.lloyd_stepper(X, None, n_clusters=5, algorithm="hamerly", xp=np)
    assert stepper.step(C0)[-1] is None  # Lloyd's pass: changes not counted


# --------------------------------------------------------------------------------------
# every entry point takes and validates ``algorithm``
# --------------------------------------------------------------------------------------


def _tiny():
    X = np.array([[0.0], [1.0], [10.0], [11.0]])
    return X, np.array([[4.0], [6.0]])


@pytest.mark.parametrize(
    "call",
    [
        lambda X, C, a: arbf.kmeans(X, 2, init=C, algorithm=a),
        lambda X, C, a: arbf.KMeans(2, init=C, n_init=1, algorithm=a).fit(X),
        lambda X, C, a: arbf.RBFKMeans(2, init=C, schedule=[10.0, 1.0], algorithm=a).fit(X),
        lambda X, C, a: arbf.anneal(X, C, schedule=[10.0, 1.0], algorithm=a),
        lambda X, C, a: arbf.deterministic_annealing(X, 2, random_state=0, algorithm=a),
    ],
    ids=["kmeans", "KMeans", "RBFKMeans", "anneal", "deterministic_annealing"],
)
def test_entry_points_take_and_check_algorithm(call):
    X, C = _tiny()
    results = [call(X, C, a) for a in ALL]
    for res in results[1:]:
        assert type(res) is type(results[0])
    with pytest.raises(ValueError, match="algorithm"):
        call(X, C, "full")
    with pytest.raises(TypeError, match="algorithm"):
        call(X, C, 3)
    assert arbf.KMeans(algorithm="elkan").get_params()["algorithm"] == "elkan"


@needs_numba
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("want_min_sq", [False, True])
def test_a_folded_shift_is_the_shifted_copy_bit_for_bit(dtype, weighted, want_min_sq):
    # data near the origin: the pass folds the shift into the scores instead of copying
    # the shifted rows; the labels are those of the shifted copy and so, to the bit, are
    # the exact distances, sums, weights and inertia (the shift is subtracted row by row)
    from arbf._math.kernels import hard

    X, C0, w = _separated(5000, 7, 6, seed=3, one_per_blob=True)
    X = np.ascontiguousarray(X.astype(dtype))
    shift = (X.mean(axis=0) + np.asarray(0.25, dtype)).astype(dtype)  # a shift that matters
    C = (C0.astype(dtype) - shift).astype(dtype)
    c_sq = np.sum(C * C, axis=1)
    assert hard._folds(shift, c_sq)  # this test exercises the fold
    wt = w.astype(dtype) if weighted else None
    out = {}
    for fold in (False, True):
        hard.FOLD_SHIFT = fold
        try:
            out[fold] = hard._pass(
                X, C, wt, working_memory=None, do_sums=True, want_min_sq=want_min_sq,
                shift=shift,
            )  # fmt: skip
        finally:
            hard.FOLD_SHIFT = True
    ref = hard._pass(
        np.ascontiguousarray(X - shift), C, wt, working_memory=None, do_sums=True,
        want_min_sq=want_min_sq,
    )  # fmt: skip
    for got in (out[True], out[False]):
        np.testing.assert_array_equal(got[0], ref[0])
        if want_min_sq:
            np.testing.assert_array_equal(got[1], ref[1])
        np.testing.assert_array_equal(got[2], ref[2])
        np.testing.assert_array_equal(got[3], ref[3])
        assert got[4] == ref[4]


@needs_numba
def test_the_fold_only_where_the_shift_is_within_the_centers_spread():
    from arbf._math.kernels import hard

    c_sq = np.array([1.0, 4.0, 9.0, 1e8])  # median 6.5: one far-out center does not count
    assert hard._folds(np.array([2.0, 1.5]), c_sq)  # 6.25
    assert not hard._folds(np.array([2.0, 1.7]), c_sq)  # 6.89
    assert not hard._folds(np.array([np.nan, 0.0]), c_sq)
    assert not hard._folds(np.zeros(2), np.array([1.0, np.nan, np.nan]))
    assert not hard._folds(np.zeros(2), np.zeros(0))
    # data far from the origin are copied shifted, as the test below relies on
    X, C0, _ = _separated(2000, 6, 9, seed=12)
    X = X + 50.0
    mean = X.mean(axis=0)
    C = C0 + 50.0 - mean
    C[4] = 1e4
    assert not hard._folds(mean, np.sum(C * C, axis=1))


@needs_numba
@pytest.mark.parametrize("algorithm", ["lloyd", *BOUND_METHODS])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("offset", "one_per_blob"), [(50.0, False), (0.5, True)])
def test_lazy_centring_is_the_centred_copy_bit_for_bit(algorithm, dtype, offset, one_per_blob):
    # an explicit init needs no centred data: kmeans centres X chunk by chunk in the
    # kernels instead of making X - mean; the result is the same, bit for bit.  Near the
    # origin Lloyd's passes fold the shift into the scores instead, which rounds the
    # scores differently: the same bits where no sample is within rounding of a tie
    # (one center per blob; with two centers splitting a blob 7 of 6000 float32 labels
    # differed, as they differ between any two float32 products)
    from arbf._drivers import engine

    X, C0, w = _separated(6000, 6, 9, seed=12, one_per_blob=one_per_blob)
    X = (X + offset).astype(dtype)  # far from the origin: centring matters
    C0 = C0.astype(dtype) + np.asarray(offset, dtype)
    C0[4] = 1e4  # empty at once: relocation reads the (lazily) centred rows
    for weights in (None, w.astype(dtype)):
        for Xin in (X, np.asfortranarray(X)):
            got = arbf.kmeans(Xin, 9, init=C0, sample_weight=weights, algorithm=algorithm)
            mean, Xc = engine.center(Xin, xp=np)
            tol = engine.tolerance(Xin, 1e-4, xp=np)
            ref = engine.lloyd(
                Xc, weights, C0 - mean, xp=np, max_iter=300, tol=tol, algorithm=algorithm
            )
            np.testing.assert_array_equal(got.labels, ref.labels)
            np.testing.assert_array_equal(got.centers, ref.centers + mean)
            assert got.inertia == ref.inertia and got.n_iter == ref.n_iter
            np.testing.assert_array_equal(got.history["inertia"], ref.history["inertia"])


@needs_numba
def test_bound_kernels_load_first_in_a_fresh_process():
    # the bound kernels bind .hard's compiled scans: loading them before .hard's own
    # kernels must not wait on the kernels' lock (it did: a deadlock)
    import subprocess
    import sys

    code = (
        "from arbf._math.kernels import bounds, hard\n"
        "bounds._get_kernels()\n"
        "assert bounds._kernels['argmin'] is hard._argmin is not None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def _exact_half_gaps_sq(C: np.ndarray) -> list:
    """``(min_{j != i} ||c_i - c_j||^2) / 4`` of float64 centers, in exact rationals."""
    from fractions import Fraction

    F = [[Fraction(float(v)) for v in row] for row in C]
    out = []
    for i, ci in enumerate(F):
        others = [cj for j, cj in enumerate(F) if j != i]
        gaps = [sum((a - b) ** 2 for a, b in zip(ci, cj, strict=True)) for cj in others]
        out.append(min(gaps) / 4)
    return out


@pytest.mark.parametrize("case", ["plain", "offset", "duplicate", "near"])
def test_half_gaps_is_a_tight_lower_bound(case):
    # s_j <= half the distance to the nearest other center, exactly (rationals), in the
    # cases where the BLAS expansion cancels (an offset, two centers 1e-7 apart, two
    # equal); and within 1e-9 of it where nothing cancels
    from fractions import Fraction

    rng = np.random.default_rng(3)
    C = rng.normal(size=(25, 5)) * 3.0
    if case == "offset":
        C += 1e4
    elif case == "duplicate":
        C[7] = C[3]
    elif case == "near":
        C[7] = C[3] + 1e-7 * rng.normal(size=5)
    st = bounds.BoundedLloyd(np.zeros((4, 5)), None, method="hamerly")
    s = st._half_gaps(C)
    exact = _exact_half_gaps_sq(C)
    for j in range(25):
        assert s[j] >= 0.0
        assert Fraction(float(s[j])) ** 2 <= exact[j], j
    if case == "plain":
        np.testing.assert_allclose(s, np.sqrt(np.array(exact, dtype=float)), rtol=1e-9)
    if case == "duplicate":
        assert s[3] == s[7] == 0.0
    assert np.all(st._half_gaps(C[:1]) == np.inf)
