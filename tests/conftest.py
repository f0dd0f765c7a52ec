"""The backend matrix.

Every test that takes the ``backend`` fixture (or ``xp``) runs once per backend:

- ``numpy``, ``numpy_readonly`` (inputs are read-only: proves they are never written),
- ``array_api_strict`` and ``array_api_strict_strictest`` (data-dependent shapes off),
  ``array_api_strict_device1`` (a non-default device: proves outputs stay on it),
- ``torch`` (CPU), ``jax`` (CPU, x64), ``dask``,
- ``cupy`` and ``torch_cuda`` when a GPU is usable, shown as *skipped* otherwise.

Select a subset with ``ARBF_BACKENDS=numpy,torch pytest``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.backends import Backend, make_backend, selected_backends

try:  # JAX: x64 on, CPU only
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
except Exception:  # pragma: no cover - jax not installed
    pass

try:  # small arrays: torch's intra-op threads only contend with the test workers
    import torch

    torch.set_num_threads(1)
except Exception:  # pragma: no cover - torch not installed
    pass

try:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "ci",
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=25,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        print_blob=True,
    )
    # mutation testing (nox -s mutation): the same derandomised examples, fewer of them
    settings.register_profile(
        "mutation",
        derandomize=True,
        database=None,
        deadline=None,
        max_examples=10,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,  # mutmut runs each test from its own process
        ],
    )
    settings.register_profile(
        "dev",
        deadline=None,
        max_examples=25,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(params=selected_backends())
def backend(request: pytest.FixtureRequest) -> Backend:
    b = make_backend(request.param)  # skips when unavailable
    b.setup()
    request.addfinalizer(b.teardown)
    return b


@pytest.fixture(params=selected_backends(with_device1=True))
def dbackend(request: pytest.FixtureRequest) -> Backend:
    """The backend matrix plus array-api-strict's non-default ``device1`` (whenever
    array-api-strict is selected): kills every dropped ``device=``."""
    b = make_backend(request.param)
    b.setup()
    request.addfinalizer(b.teardown)
    return b


@pytest.fixture
def xp(backend: Backend):
    return backend.xp


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
