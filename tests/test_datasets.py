"""arbf.datasets: seeded synthetic geometries in any namespace, dtype and device."""

from __future__ import annotations

import numpy as np
import pytest

from arbf.datasets import (
    DATASETS,
    make_blobs,
    make_circles,
    make_highdim,
    make_moons,
    make_unbalanced,
)

NAMES = sorted(DATASETS)


def _xp_module(backend):
    """The plain module a user would pass as ``xp`` (torch, jax.numpy, ...)."""
    name = backend.name
    if name.startswith("numpy"):
        return np
    if name.startswith("torch"):
        import torch

        return torch
    if name == "jax":
        import jax.numpy as jnp

        return jnp
    if name == "dask":
        import dask.array as da

        return da
    return backend.xp


@pytest.mark.parametrize("name", NAMES)
class TestGenerators:
    def test_shapes_dtype_namespace_device(self, backend, name):
        spec = DATASETS[name]
        X, y = spec(50, random_state=0, xp=_xp_module(backend), device=backend.device)
        backend.check_same_kind(X, dtype=backend.xp.float64)
        backend.check_same_kind(y)
        assert tuple(X.shape) == (50, 2 if name != "highdim" else 10)
        assert tuple(y.shape) == (50,)
        assert backend.xp.isdtype(y.dtype, "integral")
        labels = np.unique(backend.to_numpy(y))
        assert set(labels.tolist()) == set(range(spec.n_clusters))

    def test_same_seed_same_data_on_every_backend(self, backend, name):
        spec = DATASETS[name]
        X, y = spec(40, random_state=7, xp=_xp_module(backend), device=backend.device)
        Xn, yn = spec(40, random_state=7)
        np.testing.assert_array_equal(backend.to_numpy(X), Xn)
        np.testing.assert_array_equal(backend.to_numpy(y), yn)

    def test_float32(self, backend, name):
        X, _ = DATASETS[name](
            30, random_state=1, xp=_xp_module(backend), dtype="float32", device=backend.device
        )
        backend.check_same_kind(X, dtype=backend.xp.float32)


@pytest.mark.parametrize("name", NAMES)
def test_seed_determinism_and_defaults(name):
    spec = DATASETS[name]
    X1, y1 = spec(random_state=3)
    X2, y2 = spec(random_state=np.random.default_rng(3))
    X3, _ = spec(random_state=4)
    assert isinstance(X1, np.ndarray) and X1.dtype == np.float64
    assert X1.shape[0] == spec.n_samples
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)
    assert np.all(np.isfinite(X1))


def test_rows_are_shuffled():
    _, y = make_blobs(90, random_state=0)
    assert not np.all(np.diff(y) >= 0)


def test_unbalanced_sizes():
    _, y = make_unbalanced(610, random_state=0)
    np.testing.assert_array_equal(np.bincount(y), [500, 100, 10])
    _, y = make_unbalanced(3, random_state=0)
    np.testing.assert_array_equal(np.bincount(y), [1, 1, 1])


def test_geometry():
    X, y = make_circles(400, noise=0.0, random_state=0)
    r = np.linalg.norm(X, axis=1)
    np.testing.assert_allclose(r[y == 0], 1.0)
    np.testing.assert_allclose(r[y == 1], 0.5)
    X, y = make_moons(200, noise=0.0, random_state=0)
    np.testing.assert_allclose(np.linalg.norm(X[y == 0], axis=1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(X[y == 1] - [1.0, 0.5], axis=1), 1.0)
    X, y = make_highdim(100, n_clusters=4, n_features=6, random_state=0)
    assert X.shape == (100, 6) and set(np.unique(y)) == {0, 1, 2, 3}


def test_blob_centers_are_separated():
    X, y = make_blobs(3000, cluster_std=0.1, random_state=5)
    means = np.stack([X[y == j].mean(axis=0) for j in range(3)])
    gaps = np.linalg.norm(means[:, None] - means[None], axis=-1)[np.triu_indices(3, 1)]
    assert gaps.min() > 5.5


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"n_samples": 2}, ValueError, "n_samples must be an integer >= 3"),
        ({"n_samples": 10.0}, TypeError, "n_samples"),
        ({"n_samples": 10, "dtype": "int64"}, ValueError, "floating"),
        ({"n_samples": 10, "dtype": "float128x"}, ValueError, "not a dtype"),
        ({"n_samples": 10, "random_state": "seed"}, TypeError, "random_state"),
        ({"n_samples": 10, "xp": object()}, TypeError, "namespace"),
    ],
)
def test_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        make_blobs(**kwargs)


def test_circles_factor_checked():
    with pytest.raises(ValueError, match="factor"):
        make_circles(10, factor=1.5)


def test_registry():
    assert set(DATASETS) == {
        "blobs", "anisotropic", "varied", "unbalanced", "moons", "circles", "highdim",
    }  # fmt: skip
    for name, spec in DATASETS.items():
        assert spec.name == name and spec.n_clusters >= 2 and spec.n_samples >= 100
