"""Backend descriptions for the test matrix, and cross-namespace assertions."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import pytest

ALL_BACKENDS = (
    "numpy",
    "numpy_readonly",
    "array_api_strict",
    "array_api_strict_strictest",
    "array_api_strict_device1",
    "torch",
    "jax",
    "dask",
    "cupy",
    "torch_cuda",
)


@dataclass
class Backend:
    name: str
    xp: ModuleType
    device: Any = None
    readonly: bool = False
    lazy: bool = False
    _teardown: list = field(default_factory=list)

    def setup(self) -> None:
        if self.name == "array_api_strict_strictest":
            import array_api_strict

            array_api_strict.set_array_api_strict_flags(data_dependent_shapes=False)
            self._teardown.append(array_api_strict.reset_array_api_strict_flags)

    def teardown(self) -> None:
        for f in self._teardown:
            f()

    # ---- construction -------------------------------------------------------------
    def asarray(self, a: Any, dtype: Any = None) -> Any:
        """A host array/list as an array of this backend (on its device)."""
        a = np.asarray(a)
        if dtype is not None:
            a = a.astype(np.dtype(dtype) if not isinstance(dtype, str) else dtype)
        if self.name.startswith("numpy"):
            out = np.array(a, copy=True)
            if self.readonly:
                out.flags.writeable = False
            return out
        if self.name == "dask":
            import dask.array as da

            chunks = tuple(max(1, -(-s // 3)) for s in a.shape) if a.ndim else ()
            return da.from_array(a, chunks=chunks)
        if self.name in ("torch", "torch_cuda"):
            import torch

            return torch.asarray(a.copy(), device=self.device)
        if self.device is not None:
            return self.xp.asarray(a, device=self.device)
        return self.xp.asarray(a)

    def dtype(self, name: str) -> Any:
        return getattr(self.xp, name)

    # ---- inspection ---------------------------------------------------------------
    def to_numpy(self, x: Any) -> np.ndarray:
        from arbf._backend import to_host

        return to_host(x)

    def check_same_kind(self, x: Any, *, dtype: Any = None) -> None:
        """``x`` is an array of this backend, on its device, of ``dtype`` when given."""
        import array_api_compat as aac

        assert (
            aac.array_namespace(x) is self.xp
            or type(x).__module__.split(".")[0]
            == (type(self.asarray(np.zeros(1))).__module__.split(".")[0])
        ), f"{type(x)} is not a {self.name} array"
        if self.device is not None:
            assert str(aac.device(x)) == str(self.device), (aac.device(x), self.device)
        if dtype is not None:
            assert x.dtype == dtype, (x.dtype, dtype)


def _have(mod: str) -> bool:
    return importlib.util.find_spec(mod) is not None


def selected_backends(*, with_device1: bool = False) -> list[str]:
    """The backends ``ARBF_BACKENDS`` selects (comma-separated; unset or ``all`` selects
    :data:`ALL_BACKENDS`); an unknown name is a usage error.  ``with_device1`` adds
    array-api-strict on its non-default device whenever array-api-strict is selected (a
    call that drops ``device=`` then fails there)."""
    env = os.environ.get("ARBF_BACKENDS", "").strip()
    if not env or env == "all":
        names = list(ALL_BACKENDS)
    else:
        names = [s.strip() for s in env.split(",") if s.strip()]
    unknown = sorted(set(names) - set(ALL_BACKENDS))
    if unknown:
        raise pytest.UsageError(f"unknown backend(s) in ARBF_BACKENDS: {unknown}")
    if with_device1 and "array_api_strict" in names and "array_api_strict_device1" not in names:
        names.append("array_api_strict_device1")
    return names


def skip_unless_selected(name: str) -> None:
    """Skip a test written for one library (``"jax"``, ``"torch"``) unless
    ``ARBF_BACKENDS`` selects it (:func:`selected_backends`).  The mutation session
    selects NumPy and array-api-strict only: JAX started in mutmut's parent process
    deadlocks the forked child that touches a JAX array again."""
    if name not in selected_backends():
        pytest.skip(f"{name} is not selected in ARBF_BACKENDS")


def make_backend(name: str) -> Backend:
    import array_api_compat as aac

    if name in ("numpy", "numpy_readonly"):
        return Backend(name, aac.array_namespace(np.empty(0)), readonly=name == "numpy_readonly")
    if name.startswith("array_api_strict"):
        if not _have("array_api_strict"):
            pytest.skip("array_api_strict not installed")
        import array_api_strict

        device = array_api_strict.Device("device1") if name.endswith("device1") else None
        return Backend(name, array_api_strict, device=device)
    if name == "torch":
        if not _have("torch"):
            pytest.skip("torch not installed")
        import torch

        return Backend(name, aac.array_namespace(torch.empty(0)), device=torch.device("cpu"))
    if name == "torch_cuda":
        if not _have("torch"):
            pytest.skip("torch not installed")
        import torch

        if not torch.cuda.is_available():
            pytest.skip("no usable CUDA GPU for torch")
        return Backend(name, aac.array_namespace(torch.empty(0)), device=torch.device("cuda"))
    if name == "jax":
        if not _have("jax"):
            pytest.skip("jax not installed")
        import jax.numpy as jnp

        return Backend(name, aac.array_namespace(jnp.empty(0)))
    if name == "dask":
        if not _have("dask"):
            pytest.skip("dask not installed")
        import dask.array as da

        return Backend(name, aac.array_namespace(da.empty(0)), lazy=True)
    if name == "cupy":
        if not _have("cupy"):
            pytest.skip("cupy not installed (no usable GPU)")
        try:
            import cupy

            cupy.cuda.runtime.getDeviceCount()
        except Exception:
            pytest.skip("no usable CUDA GPU for cupy")
        return Backend(name, aac.array_namespace(cupy.empty(0)))
    raise ValueError(name)


def tolerance(dtype: Any, *, scale: float = 1.0) -> float:
    """A relative tolerance that scales with the dtype: ~1e-12 float64, ~1e-5 float32."""
    s = str(dtype)
    base = 1e-12 if "64" in s else 2e-5
    return base * scale


def assert_close(
    actual: Any,
    expected: Any,
    *,
    backend: Backend,
    rtol: float | None = None,
    atol: float = 0.0,
    dtype: Any = None,
) -> None:
    """Check namespace, device, dtype (when given) and shape, then values."""
    backend.check_same_kind(actual, dtype=dtype)
    a = backend.to_numpy(actual)
    e = np.asarray(expected)
    assert a.shape == e.shape, (a.shape, e.shape)
    if rtol is None:
        rtol = tolerance(actual.dtype, scale=100)
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)
