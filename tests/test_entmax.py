"""entmax15, entmax_bisect and sparsemax against the ``entmax`` package and closed forms."""

from __future__ import annotations

import numpy as np
import pytest

import arbf
from tests.backends import assert_close, tolerance

torch = pytest.importorskip("torch")
entmax_ref = pytest.importorskip("entmax")


def _scores(rng: np.random.Generator, shape: tuple[int, ...] = (13, 6)) -> np.ndarray:
    z = rng.normal(scale=2.0, size=shape)
    z[0, :] = 0.0  # a fully tied row
    z[1, 1] = z[1, 0] = 5.0  # a tie at the top
    return z


def _ref(fn, z: np.ndarray, **kw) -> np.ndarray:
    return fn(torch.as_tensor(z, dtype=torch.float64), dim=-1, **kw).numpy()


def _rtol(dtype_name: str) -> float:
    return 1e-12 if dtype_name == "float64" else 2e-5


DTYPES = ["float64", "float32"]


class TestEntmax15:
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_matches_entmax_package(self, backend, rng, dtype):
        z = _scores(rng).astype(dtype)
        p = arbf.entmax15(backend.asarray(z))
        expected = _ref(entmax_ref.entmax15, z.astype(np.float64))
        assert_close(
            p,
            expected,
            backend=backend,
            atol=_rtol(dtype),
            rtol=_rtol(dtype),
            dtype=backend.dtype(dtype),
        )

    def test_simplex_and_shift_invariance(self, backend, rng):
        z = _scores(rng)
        p = backend.to_numpy(arbf.entmax15(backend.asarray(z)))
        assert np.all(p >= 0)
        np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-13)
        q = backend.to_numpy(arbf.entmax15(backend.asarray(z + 123.25)))
        np.testing.assert_allclose(p, q, atol=1e-12)

    def test_equals_bisection(self, backend, rng):
        z = _scores(rng)
        a = arbf.entmax15(backend.asarray(z))
        b = arbf.entmax_bisect(backend.asarray(z), alpha=1.5)
        assert_close(a, backend.to_numpy(b), backend=backend, atol=1e-13)

    def test_axis(self, backend, rng):
        z = rng.normal(size=(4, 5, 3))
        p = arbf.entmax15(backend.asarray(z), axis=1)
        expected = np.moveaxis(_ref(entmax_ref.entmax15, np.moveaxis(z, 1, -1)), -1, 1)
        assert_close(p, expected, backend=backend, atol=1e-12)

    def test_closed_form_two_scores(self, backend):
        # z = (0, -2g): p_2 = ((sqrt(2 - g^2) - g) / 2)^2 for g < 1, and 0 for g >= 1
        g = np.array([0.0, 0.25, 0.5, 0.9, 0.999, 1.0, 1.5])
        z = np.stack([np.zeros_like(g), -2 * g], axis=1)
        p = backend.to_numpy(arbf.entmax15(backend.asarray(z)))
        gg = np.minimum(g, 1.0)
        p2 = np.where(g < 1, ((np.sqrt(2 - gg**2) - gg) / 2) ** 2, 0.0)
        np.testing.assert_allclose(p[:, 1], p2, atol=1e-14)
        np.testing.assert_allclose(p[:, 0], 1 - p2, atol=1e-14)

    def test_extreme_scores_finite(self, backend):
        z = np.array([[0.0, -1e300, -np.inf], [1e300, -1e300, 0.0], [1e-300, 0.0, -1e-300]])
        p = backend.to_numpy(arbf.entmax15(backend.asarray(z)))
        assert np.all(np.isfinite(p))
        np.testing.assert_allclose(p[0], [1, 0, 0])
        np.testing.assert_allclose(p[1], [1, 0, 0])
        np.testing.assert_allclose(p[2], [1 / 3] * 3)

    def test_half_precision_in_float32(self, backend, rng):
        if not hasattr(backend.xp, "float16"):
            pytest.skip(f"{backend.name} has no float16")
        z = _scores(rng).astype(np.float16)
        p = arbf.entmax15(backend.asarray(z))
        expected = _ref(entmax_ref.entmax15, z.astype(np.float64))
        assert_close(
            p, expected, backend=backend, atol=2e-3, rtol=2e-3, dtype=backend.dtype("float16")
        )

    def test_integer_input_promoted(self, backend):
        p = arbf.entmax15(backend.asarray(np.array([[2, 0, -9]])))
        backend.check_same_kind(p)
        assert backend.xp.isdtype(p.dtype, "real floating")
        np.testing.assert_allclose(backend.to_numpy(p), [[1.0, 0.0, 0.0]])

    def test_single_entry(self, backend):
        p = arbf.entmax15(backend.asarray(np.array([[-3.0], [7.0]])))
        np.testing.assert_array_equal(backend.to_numpy(p), [[1.0], [1.0]])

    @pytest.mark.parametrize(
        ("z", "exc", "match"),
        [
            (np.array([0.0, np.nan]), ValueError, "NaN"),
            (np.array([0.0, np.inf]), ValueError, r"\+inf"),
            (np.array([1 + 1j, 0]), TypeError, "complex"),
            (np.array(["a", "b"]), TypeError, "dtype"),
            (np.array(1.0), ValueError, "dimension"),
        ],
    )
    def test_invalid(self, z, exc, match):
        with pytest.raises(exc, match=match):
            arbf.entmax15(z)

    def test_bad_axis(self):
        with pytest.raises(ValueError, match="out of bounds"):
            arbf.entmax15(np.zeros((2, 3)), axis=2)
        with pytest.raises(TypeError, match="axis"):
            arbf.entmax15(np.zeros((2, 3)), axis=1.0)  # type: ignore[arg-type]


class TestEntmaxBisect:
    @pytest.mark.parametrize("alpha", [1.25, 1.5, 2.0, 3.0])
    def test_matches_entmax_package(self, backend, rng, alpha):
        z = _scores(rng)
        p = arbf.entmax_bisect(backend.asarray(z), alpha=alpha)
        expected = _ref(entmax_ref.entmax_bisect, z, alpha=alpha, n_iter=200)
        assert_close(p, expected, backend=backend, atol=1e-12, rtol=1e-10)
        pn = backend.to_numpy(p)
        assert np.all(pn >= 0)
        np.testing.assert_allclose(pn.sum(-1), 1.0, rtol=1e-13)

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_sparsemax_is_alpha_2(self, backend, rng, dtype):
        z = _scores(rng).astype(dtype)
        a = arbf.sparsemax(backend.asarray(z))
        b = arbf.entmax_bisect(backend.asarray(z), alpha=2.0)
        tol = tolerance(backend.dtype(dtype), scale=10)
        assert_close(a, backend.to_numpy(b), backend=backend, atol=tol, dtype=backend.dtype(dtype))

    def test_shift_invariance(self, backend, rng):
        z = _scores(rng)
        a = backend.to_numpy(arbf.entmax_bisect(backend.asarray(z), alpha=1.7))
        b = backend.to_numpy(arbf.entmax_bisect(backend.asarray(z - 50.5), alpha=1.7))
        np.testing.assert_allclose(a, b, atol=1e-12)

    def test_near_one_tends_to_softmax(self, rng):
        z = rng.normal(size=(5, 4))
        p = arbf.entmax_bisect(z, alpha=1.0001)
        sm = np.exp(z - z.max(1, keepdims=True))
        np.testing.assert_allclose(p, sm / sm.sum(1, keepdims=True), atol=1e-3)

    @pytest.mark.parametrize("alpha", [1.0, 0.5, -2.0, float("nan"), float("inf")])
    def test_bad_alpha(self, alpha):
        with pytest.raises(ValueError, match="alpha"):
            arbf.entmax_bisect(np.zeros(3), alpha=alpha)

    def test_bad_alpha_type_and_n_iter(self):
        with pytest.raises(TypeError, match="alpha"):
            arbf.entmax_bisect(np.zeros(3), alpha="1.5")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="n_iter"):
            arbf.entmax_bisect(np.zeros(3), n_iter=0)

    def test_nan_rejected(self):
        with pytest.raises(ValueError, match="NaN"):
            arbf.entmax_bisect(np.array([0.0, np.nan]))


class TestSparsemax:
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_matches_entmax_package(self, backend, rng, dtype):
        z = _scores(rng).astype(dtype)
        p = arbf.sparsemax(backend.asarray(z))
        expected = _ref(entmax_ref.sparsemax, z.astype(np.float64))
        assert_close(
            p,
            expected,
            backend=backend,
            atol=_rtol(dtype) * 10,
            rtol=_rtol(dtype),
            dtype=backend.dtype(dtype),
        )

    def test_is_projection_onto_simplex(self, backend):
        p = arbf.sparsemax(backend.asarray(np.array([[0.5, 0.0, -2.0], [0.1, 0.1, 0.1]])))
        np.testing.assert_allclose(backend.to_numpy(p), [[0.75, 0.25, 0], [1 / 3] * 3], atol=1e-15)

    def test_axis_zero(self, backend, rng):
        z = rng.normal(size=(4, 3))
        p = arbf.sparsemax(backend.asarray(z), axis=0)
        assert_close(p, _ref(entmax_ref.sparsemax, z.T).T, backend=backend, atol=1e-12)


class TestBatchedAxes:
    """3-D scores (a leading batch axis, the probabilities along the last or a middle
    axis), on the pure path and the compiled one, against the ``entmax`` package: a
    reduction over the wrong axis cannot hide behind a 2-D shape."""

    @pytest.mark.parametrize("fast_paths", [True, False])
    @pytest.mark.parametrize("axis", [-1, 1])
    def test_entmax_family_3d(self, backend, rng, axis, fast_paths):
        z = rng.normal(scale=2.0, size=(3, 5, 4))
        z[0, 1, :] = 1.0  # a tied slice
        zb = backend.asarray(z)
        move = (lambda a: a) if axis == -1 else (lambda a: np.moveaxis(a, 1, -1))
        back = (lambda a: a) if axis == -1 else (lambda a: np.moveaxis(a, -1, 1))
        cases = [
            (arbf.entmax15, {}, entmax_ref.entmax15, {}),
            (arbf.sparsemax, {}, entmax_ref.sparsemax, {}),
            (
                arbf.entmax_bisect,
                {"alpha": 1.3},
                entmax_ref.entmax_bisect,
                {"alpha": 1.3, "n_iter": 200},
            ),
            (arbf.entmax_bisect, {"alpha": 2.0}, entmax_ref.sparsemax, {}),
        ]
        with arbf.config_context(fast_paths=fast_paths):
            for f, kw, g, kw_ref in cases:
                p = f(zb, axis=axis, **kw)
                expected = back(_ref(g, move(z), **kw_ref))
                assert_close(p, expected, backend=backend, atol=1e-12, rtol=1e-10)
