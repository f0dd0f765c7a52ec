"""A fuzz suite over the public API (issue 15, point 5), on every backend of the matrix.

Hypothesis draws shapes (``n = k``, duplicate rows, constant columns), data scales
(float32 ``1e-30 … 1e30``, float64 ``1e-200 … 1e200``), temperatures over the whole float64
range relative to the squared data scale, weights with zeros, and bad values and bad
types for every scalar parameter.  Asserted for every example:

- no exception other than a :class:`TypeError`/:class:`ValueError` that names the
  parameter (or, for valid input, the documented "beyond the range of <dtype>" error of
  an objective whose true value the dtype cannot hold -- checked against float64);
- no NaN or infinity in any output of valid input (the one documented ``inf``: an
  inertia beyond float64's range, with its :class:`RuntimeWarning`), and no other
  ``RuntimeWarning`` (no hidden overflow);
- no input is written (``numpy_readonly`` also proves it by construction);
- outputs in the input's namespace, device and floating dtype;
- scale equivariance: K-Means on ``X * 2**a`` is K-Means on ``X`` times ``2**a`` bit for
  bit; the RBF steps, responsibilities and objectives at ``σ * 4**a`` are those at σ
  scaled (to the dtype's precision).

Cost: the derandomised ``ci`` profile of ``tests/conftest.py`` with
``FUZZ_EXAMPLES = 8`` examples per test and backend (``HYPOTHESIS_PROFILE=dev`` and a
larger ``FUZZ_EXAMPLES`` environment value fuzz harder).
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import arbf  # noqa: E402
from arbf._backend import to_host  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
fuzz = settings(max_examples=FUZZ_EXAMPLES)

# exponents e of the data scale 2**e: float32 about 1e-30 … 1e30, float64 1e-200 … 1e200
SCALE_EXP = {"float32": (-100, 100), "float64": (-664, 664)}


# --------------------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------------------


@st.composite
def problems(draw: Any, *, min_k: int = 1) -> dict[str, Any]:
    """A data set: ``n`` rows from a pool of distinct rows (duplicates when the pool is
    small), constant columns, ``k <= n`` clusters, weights with zeros, a dtype, a scale."""
    dtype = draw(st.sampled_from(["float32", "float64"]))
    d = draw(st.integers(1, 3))
    n = draw(st.integers(max(min_k, 1), 14))
    pool = draw(st.integers(1, n))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(pool, d)) * rng.choice([1.0, 10.0, 0.01], size=(1, d))
    X = base[rng.integers(0, pool, size=n)]
    if draw(st.booleans()):
        X[:, draw(st.integers(0, d - 1))] = rng.normal()  # a constant column
    k = draw(st.integers(min_k, n))
    w = None
    if draw(st.booleans()):
        w = rng.uniform(0.0, 2.0, n) * (rng.uniform(size=n) > 0.3)
        w[rng.integers(0, n)] = rng.uniform(0.5, 2.0)  # at least one positive
    lo, hi = SCALE_EXP[dtype]
    e = draw(st.integers(lo, hi))
    return {"X": X, "w": w, "k": k, "dtype": dtype, "e": e, "seed": seed}


def _asarray(backend, a, dtype):
    return None if a is None else backend.asarray(np.asarray(a, dtype=dtype))


def _host(x) -> np.ndarray:
    return np.asarray(to_host(x))


class _Watch:
    """Runs a call with RuntimeWarnings as errors (except the documented one), and
    checks that the inputs are not written."""

    def __init__(self, *inputs: Any) -> None:
        self.inputs = [(a, _host(a).copy()) for a in inputs if a is not None]

    def __enter__(self) -> _Watch:
        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("error", RuntimeWarning)
        warnings.filterwarnings(
            "ignore", message=".*beyond float64's range", category=RuntimeWarning
        )
        warnings.simplefilter("ignore", arbf.ConvergenceWarning)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._cm.__exit__(*exc)
        if exc[0] is None:
            for a, before in self.inputs:
                np.testing.assert_array_equal(_host(a), before, err_msg="an input was written")


def _finite(*arrays: Any) -> None:
    for a in arrays:
        assert np.all(np.isfinite(_host(a))), "non-finite output for valid input"


# --------------------------------------------------------------------------------------
# K-Means: scale-proof, exact
# --------------------------------------------------------------------------------------


@fuzz
@given(p=problems(), a=st.integers(-40, 40))
def test_kmeans(backend, p, a):
    dtype, k = p["dtype"], p["k"]
    f = 2.0 ** p["e"]
    X = _asarray(backend, p["X"] * f, dtype)
    w = _asarray(backend, p["w"], dtype)
    # max_iter 50: with zero weights and duplicates, scikit-learn's relocation of empty
    # clusters can cycle until max_iter (as scikit-learn's own does); slow on Dask
    with _Watch(X, w):
        res = arbf.kmeans(X, k, sample_weight=w, random_state=p["seed"], max_iter=50)
    backend.check_same_kind(res.centers, dtype=backend.dtype(dtype))
    assert tuple(res.centers.shape) == (k, p["X"].shape[1])
    _finite(res.centers)
    labels = _host(res.labels)
    assert labels.min() >= 0 and labels.max() < k
    assert res.inertia >= 0 and (math.isfinite(res.inertia) or p["e"] > 500)
    # equivariance: the same run on X * 2**a, bit for bit (within the dtype's exponents)
    g = 2.0**a
    if abs(p["e"] + a) <= SCALE_EXP[dtype][1]:
        Xg = _asarray(backend, p["X"] * f * g, dtype)
        with _Watch(Xg):
            r2 = arbf.kmeans(Xg, k, sample_weight=w, random_state=p["seed"], max_iter=50)
        np.testing.assert_array_equal(_host(r2.labels), labels)
        np.testing.assert_array_equal(_host(r2.centers), _host(res.centers) * g)
        if math.isfinite(res.inertia * g * g):
            assert r2.inertia == res.inertia * g * g


@fuzz
@given(p=problems(), method=st.sampled_from(["predict", "transform", "score", "anneal"]))
def test_estimators_and_annealing(backend, p, method):
    dtype, k = p["dtype"], p["k"]
    if method == "anneal" and backend.name in ("dask", "jax"):
        # a host round trip per fixed-point iteration, op by op: minutes per example
        # there (their annealing is tested in test_deterministic_annealing.py)
        return
    X = _asarray(backend, p["X"] * 2.0 ** p["e"], dtype)
    w = _asarray(backend, p["w"], dtype)
    with _Watch(X, w):
        if method == "anneal":
            res = arbf.deterministic_annealing(X, k, sample_weight=w, random_state=0, refine=1)
            assert tuple(res.centers.shape) == (k, p["X"].shape[1])  # always k centers
            backend.check_same_kind(res.centers, dtype=backend.dtype(dtype))
            _finite(res.centers)
            if p["e"] < 500:  # beyond, σ ~ (2**e)**2 itself exceeds float64: inf (documented)
                _finite(res.sigmas)
            return
        km = arbf.KMeans(k, random_state=p["seed"], max_iter=50).fit(X, sample_weight=w)
        out = getattr(km, method)(X)
    if method == "score":
        assert out <= 0 and (math.isfinite(out) or p["e"] > 500)
    else:
        backend.check_same_kind(out)
        _finite(out)
        if method == "predict":  # a nearest center (ties may break either way)
            X64 = p["X"].astype(np.float64)
            C64 = _host(km.cluster_centers_).astype(np.float64) / 2.0 ** p["e"]
            D = ((X64[:, None, :] - C64[None]) ** 2).sum(-1)
            got = D[np.arange(D.shape[0]), _host(out)]
            assert np.all(got <= D.min(1) * (1 + 1e-4) + 1e-4 * D.max() + 1e-300)


# --------------------------------------------------------------------------------------
# the RBF relaxation over the whole σ range
# --------------------------------------------------------------------------------------

RBF_FUNCTIONS = ["responsibilities", "soft_lloyd_step", "gradient_step", "center_gradient",
                 "soft_distortion", "free_energy", "rbf_kmeans"]  # fmt: skip


def _rbf_call(name: str, X, C, w, sigma: float, kind: str):
    if name == "responsibilities":
        return arbf.responsibilities(X, C, sigma=sigma, kind=kind)
    if name == "rbf_kmeans":
        return arbf.rbf_kmeans(X, C, sigma=sigma, kind=kind, sample_weight=w, max_iter=5).centers
    return getattr(arbf, name)(X, C, sigma=sigma, kind=kind, sample_weight=w)


# what each output is multiplied by when the data are multiplied by g
_UNITS = {"responsibilities": 0, "soft_lloyd_step": 1, "gradient_step": 1, "rbf_kmeans": 1,
          "center_gradient": 1, "soft_distortion": 2, "free_energy": 2}  # fmt: skip


@fuzz
@given(
    p=problems(),
    name=st.sampled_from(RBF_FUNCTIONS),
    kind=st.sampled_from(["softmax", "entmax15", "hard"]),
    log_sigma=st.floats(-300, 300),
    a=st.integers(-30, 30),
)
def test_rbf(backend, p, name, kind, log_sigma, a):
    dtype, k = p["dtype"], p["k"]
    f = 2.0 ** p["e"]
    sigma = 10.0**log_sigma * f * f  # relative to the squared data scale
    assume(0 < sigma < math.inf)
    rng = np.random.default_rng(p["seed"] + 1)
    C0 = p["X"][rng.integers(0, p["X"].shape[0], size=k)] + rng.normal(size=(k, 1)) * 0.1
    X, C = _asarray(backend, p["X"] * f, dtype), _asarray(backend, C0 * f, dtype)
    w = _asarray(backend, p["w"], dtype)
    try:
        with _Watch(X, C, w):
            out = _rbf_call(name, X, C, w, sigma, kind)
    except ValueError as exc:  # only: an objective whose true value the dtype cannot hold
        assert "beyond the range of" in str(exc), exc
        assert name in ("free_energy", "soft_distortion", "center_gradient", "gradient_step")
        ref = _rbf_call(name, p["X"] * f, C0 * f, p["w"], sigma, kind)  # float64, NumPy
        assert dtype == "float32" and not np.all(np.abs(ref) <= np.finfo(np.float32).max)
        return
    backend.check_same_kind(out, dtype=backend.dtype(dtype))
    _finite(out)
    if name == "responsibilities":
        R = _host(out)
        np.testing.assert_allclose(R.sum(1), 1.0, rtol=1e-5)
        assert np.all(R >= 0)
    # equivariance: data * g, σ * g**2 -> output * g**units
    g = 2.0**a
    if abs(p["e"] + a) <= SCALE_EXP[dtype][1] and 0 < sigma * g * g < math.inf:
        Xg, Cg = _asarray(backend, p["X"] * f * g, dtype), _asarray(backend, C0 * f * g, dtype)
        with _Watch(Xg, Cg):
            try:
                out_g = _rbf_call(name, Xg, Cg, w, sigma * g * g, kind)
            except ValueError as exc:
                assert "beyond the range of" in str(exc)
                return
        want = _host(out).astype(np.float64) * g ** _UNITS[name]
        got = _host(out_g).astype(np.float64)
        scale = max(float(np.max(np.abs(want))), np.finfo(np.float64).tiny)
        tol = 2e-3 if dtype == "float32" else 1e-9
        if name == "rbf_kmeans":  # a few iterations: not every path is a fixed point yet
            tol = 5e-2
        assert float(np.max(np.abs(got - want))) <= tol * scale + 1e-300


@fuzz
@given(
    fn=st.sampled_from(["entmax15", "sparsemax", "entmax_bisect"]),
    rows=st.integers(1, 4),
    k=st.integers(1, 5),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from(["float32", "float64"]),
    scale_exp=st.integers(-30, 30),
)
def test_entmax_family(backend, fn, rows, k, seed, dtype, scale_exp):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(rows, k)) * 10.0**scale_exp
    z[rng.uniform(size=z.shape) < 0.3] = -np.inf
    all_inf = np.all(np.isneginf(z), axis=1)
    Z = _asarray(backend, z, dtype)
    if all_inf.any():
        with pytest.raises(ValueError, match="all -inf"):
            getattr(arbf, fn)(Z)
        return
    with _Watch(Z):
        P = getattr(arbf, fn)(Z)
    backend.check_same_kind(P, dtype=backend.dtype(dtype))
    h = _host(P)
    _finite(h)
    assert np.all(h >= 0) and np.all(h[np.isneginf(z)] == 0)
    np.testing.assert_allclose(h.sum(1), 1.0, rtol=1e-5)


# --------------------------------------------------------------------------------------
# bad values and bad types for every scalar parameter
# --------------------------------------------------------------------------------------

_BAD = st.one_of(
    st.text(max_size=4),
    st.booleans(),
    st.none(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(max_magnitude=10),
    st.lists(st.floats(0, 1), max_size=2),
)


def _data():
    X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0], [9.0, 0.0], [9.0, 0.2]])
    return X, X[[0, 2, 4]].copy()


def _positive_int(v: Any, hi: float = math.inf) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= hi


def _real(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


X0, C0 = _data()

# (name, call with the parameter set to v, which values are valid)
PARAMS: list[tuple[str, Callable[[Any], Any], Callable[[Any], bool]]] = [
    ("n_clusters", lambda v: arbf.kmeans(X0, v), lambda v: _positive_int(v, 6)),
    ("max_iter", lambda v: arbf.kmeans(X0, 3, max_iter=v), _positive_int),
    ("tol", lambda v: arbf.kmeans(X0, 3, tol=v), lambda v: _real(v) and v >= 0),
    ("n_init", lambda v: arbf.kmeans(X0, 3, n_init=v), lambda v: v == "auto" or _positive_int(v)),
    ("init", lambda v: arbf.kmeans(X0, 3, init=v), lambda v: v in arbf._drivers.init.INIT_NAMES),
    (
        "verbose",
        lambda v: arbf.kmeans(X0, 3, verbose=v),
        lambda v: isinstance(v, bool) or (isinstance(v, int) and v >= 0),
    ),
    (
        "random_state",
        lambda v: arbf.kmeans(X0, 3, random_state=v),
        lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0),
    ),
    (
        "working_memory",
        lambda v: arbf.kmeans(X0, 3, working_memory=v),
        lambda v: v is None or v == "auto" or (_real(v) and v > 0),
    ),
    (
        "sample_weight",
        lambda v: arbf.kmeans(X0, 3, sample_weight=v),
        lambda v: v is None or (_real(v) and v > 0),
    ),
    (
        "n_local_trials",
        lambda v: arbf.kmeans_plusplus(X0, 3, n_local_trials=v),
        lambda v: v is None or _positive_int(v, 6),
    ),
    (
        "n_rounds",
        lambda v: arbf.kmeans_parallel(X0, 3, n_rounds=v),
        lambda v: _positive_int(v, 100),
    ),
    (
        "oversampling_factor",
        lambda v: arbf.kmeans_parallel(X0, 3, oversampling_factor=v),
        lambda v: _real(v) and v > 0,
    ),
    ("sigma", lambda v: arbf.responsibilities(X0, C0, sigma=v), lambda v: _real(v) and v >= 0),
    ("sigma", lambda v: arbf.free_energy(X0, C0, sigma=v), lambda v: _real(v) and v >= 0),
    (
        "kind",
        lambda v: arbf.soft_lloyd_step(X0, C0, sigma=1.0, kind=v),
        lambda v: v in ("softmax", "entmax15", "hard"),
    ),
    (
        "lr",
        lambda v: arbf.gradient_step(X0, C0, sigma=1.0, lr=v),
        lambda v: v == "lloyd" or (_real(v) and v > 0),
    ),
    ("sigma", lambda v: arbf.rbf_kmeans(X0, C0, sigma=v), lambda v: _real(v) and v >= 0),
    (
        "update",
        lambda v: arbf.rbf_kmeans(X0, C0, sigma=1.0, update=v),
        lambda v: v in ("fixed_point", "gradient"),
    ),
    (
        "schedule",
        lambda v: arbf.anneal(X0, C0, schedule=v),
        lambda v: (
            isinstance(v, list)
            and len(v) > 0
            and all(_real(s) and s >= 0 for s in v)
            and all(a >= b for a, b in itertools.pairwise(v))
        ),
    ),
    (
        "n_levels",
        lambda v: arbf.anneal(X0, C0, n_levels=v),
        lambda v: v is None or _positive_int(v, 10_000),
    ),
    (
        "sigma_max",
        lambda v: arbf.anneal(X0, C0, sigma_max=v),
        lambda v: v is None or (_real(v) and v > 0),
    ),
    ("perturbation", lambda v: arbf.anneal(X0, C0, perturbation=v), lambda v: _real(v) and v >= 0),
    ("finish", lambda v: arbf.anneal(X0, C0, finish=v), lambda v: isinstance(v, bool)),
    (
        "cooling",
        lambda v: arbf.deterministic_annealing(X0, 3, cooling=v),
        lambda v: _real(v) and 0 < v <= 0.99,
    ),
    ("max_rounds", lambda v: arbf.deterministic_annealing(X0, 3, max_rounds=v), _positive_int),
    (
        "refine",
        lambda v: arbf.deterministic_annealing(X0, 3, refine=v),
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    ),
    (
        "axis",
        lambda v: arbf.entmax15(X0, axis=v),
        lambda v: isinstance(v, int) and not isinstance(v, bool) and -2 <= v <= 1,
    ),
    ("alpha", lambda v: arbf.entmax_bisect(X0, alpha=v), lambda v: _real(v) and v > 1),
    ("n_iter", lambda v: arbf.entmax_bisect(X0, n_iter=v), lambda v: _positive_int(v, 10_000)),
    ("n_clusters", lambda v: arbf.KMeans(v).fit(X0), lambda v: _positive_int(v, 6)),
    ("batch_size", lambda v: arbf.MiniBatchKMeans(3, batch_size=v).fit(X0), _positive_int),
    (
        "sigma",
        lambda v: arbf.RBFKMeans(3, sigma=v).fit(X0),
        lambda v: v == "anneal" or (_real(v) and v >= 0),
    ),
    (
        "sigma",
        lambda v: arbf.MiniBatchRBFKMeans(3, sigma=v).fit(X0),
        lambda v: _real(v) and v >= 0,
    ),
]


@fuzz
@given(case=st.sampled_from(range(len(PARAMS))), value=_BAD)
def test_bad_parameters_are_named(case, value):
    name, call, valid = PARAMS[case]
    assume(not valid(value))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises((TypeError, ValueError)) as info:
            call(value)
    assert name in str(info.value), (name, value, str(info.value))


@fuzz
@given(case=st.sampled_from(range(len(PARAMS))))
def test_parameter_table_is_honest(case):
    # every row's first valid value is accepted (the table describes the API)
    name, call, valid = PARAMS[case]
    for v in (1, 3, 0.5, 0.0, "auto", "k-means++", "softmax", "lloyd", "fixed_point", True,
              None, [1.0, 0.5], 2.0):  # fmt: skip
        if valid(v):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                call(v)
            return
    pytest.fail(f"no valid value tried for {name}")


# --------------------------------------------------------------------------------------
# the network layers over the σ range
# --------------------------------------------------------------------------------------


@fuzz
@given(
    p=problems(min_k=1),
    kind=st.sampled_from(["softmax", "entmax15"]),
    objective=st.sampled_from(["free_energy", "distortion", "nll"]),
    log_sigma=st.floats(-300, 300),
)
def test_torch_layer(p, kind, objective, log_sigma):
    torch = pytest.importorskip("torch")
    from arbf.torch import RBFClustering

    assume(not (objective == "nll" and kind != "softmax"))
    dt = torch.float32 if p["dtype"] == "float32" else torch.float64
    X = torch.asarray(p["X"], dtype=dt)
    C = X[: p["k"]].clone()
    try:
        layer = RBFClustering(p["k"], X.shape[1], sigma=10.0**log_sigma, kind=kind,
                              objective=objective, centers=C, dtype=dt)  # fmt: skip
    except ValueError as exc:  # the documented refusals: the loss itself is out of range
        assert "beyond the range of" in str(exc)
        return
    w = None if p["w"] is None else torch.asarray(p["w"], dtype=dt)
    R, loss = layer(X, sample_weight=w)
    assert torch.isfinite(R).all() and torch.allclose(R.sum(1), torch.ones(1, dtype=dt))
    loss.backward()
    if torch.isfinite(loss):
        assert torch.isfinite(layer.centers.grad).all()


@fuzz
@given(
    k=st.sampled_from([1, 3]),
    dtype=st.sampled_from(["float32", "float64"]),
    kind=st.sampled_from(["softmax", "entmax15"]),
    log_sigma=st.floats(-300, 300),
)
def test_jax_functions(k, dtype, kind, log_sigma):
    # fixed shapes, jitted: every new shape is a new compilation in JAX
    pytest.importorskip("jax")
    from arbf import jax as ajax

    X = np.random.default_rng(0).normal(size=(8, 2)).astype(dtype)
    w = np.array([0.0, 1.0, 2.0, 0.0, 1.0, 1.0, 0.5, 3.0], dtype=dtype)
    params = ajax.init_params(centers=X[:k], sigma=10.0**log_sigma)
    R = _jax_apply()(params, X, kind=kind)
    assert np.all(np.isfinite(np.asarray(R)))
    np.testing.assert_allclose(np.asarray(R).sum(1), 1.0, rtol=1e-5)
    g = _jax_grad()(params, X, kind=kind, objective="distortion", sample_weight=w)
    assert np.all(np.isfinite(np.asarray(g["centers"])))


_JITTED: dict[str, Any] = {}


def _jax_apply():
    if "apply" not in _JITTED:
        import jax

        from arbf import jax as ajax

        _JITTED["apply"] = jax.jit(ajax.apply, static_argnames=("kind",))
    return _JITTED["apply"]


def _jax_grad():
    if "grad" not in _JITTED:
        import jax

        from arbf import jax as ajax

        _JITTED["grad"] = jax.jit(
            jax.grad(ajax.loss), static_argnames=("kind", "objective", "reduction")
        )
    return _JITTED["grad"]
