"""The backend seam: the one module that talks to ``array_api_compat``.

Everything else in :mod:`arbf` asks this module for the namespace of its arrays, their
device, the working floating dtype, how to move small results to the host, and for the
few operations where a backend has a native fast path that the standard lacks (a
segment-sum).  Arrows point here and never out of here.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import array_api_compat as aac
import numpy as np

Array = Any

__all__ = [
    "Array",
    "array_namespace",
    "device_of",
    "from_host",
    "has_float64",
    "has_take_along_axis",
    "is_cupy",
    "is_dask",
    "is_jax",
    "is_numpy",
    "is_strict",
    "is_torch",
    "segment_sum",
    "segment_sum_onehot",
    "to_host",
    "to_scalar",
    "working_dtype",
]


def array_namespace(*arrays: Any) -> ModuleType:
    """Return the (compat-wrapped) namespace shared by ``arrays``.

    ``None`` and Python scalars are ignored.  Arrays from different libraries raise a
    :class:`TypeError` that names them, rather than an obscure error later.
    """
    arrs = [a for a in arrays if a is not None and not isinstance(a, int | float | bool)]
    if not arrs:
        return aac.array_namespace(np.empty(0))
    try:
        return aac.array_namespace(*arrs)
    except TypeError as exc:
        kinds = sorted({type(a).__module__.split(".")[0] + "." + type(a).__name__ for a in arrs})
        raise TypeError(
            f"arrays from different array libraries cannot be mixed: {', '.join(kinds)}"
        ) from exc


def device_of(x: Array) -> Any:
    """The device of ``x`` (``"cpu"`` for NumPy)."""
    return aac.device(x)


def _same_device(a: Any, b: Any) -> bool:
    return str(a) == str(b)


def is_traced(x: Any) -> bool:
    """Whether ``x`` is a JAX tracer (under ``jax.jit``/``jax.grad``: no values, no device)."""
    if not type(x).__module__.startswith("jax"):
        return False
    import jax

    return isinstance(x, jax.core.Tracer)


def check_same_device(*arrays: Any) -> Any:
    """Return the common device of ``arrays``; raise ``ValueError`` if they differ.

    Traced JAX arrays have no device and are left out of the comparison.
    """
    arrs = [a for a in arrays if a is not None and not is_traced(a)]
    if not arrs:
        return None
    dev = device_of(arrs[0])
    for a in arrs[1:]:
        other = device_of(a)
        if not _same_device(dev, other):
            raise ValueError(f"arrays are on different devices: {dev} and {other}")
    return dev


def is_numpy(xp: ModuleType) -> bool:
    return bool(aac.is_numpy_namespace(xp))


def is_torch(xp: ModuleType) -> bool:
    return bool(aac.is_torch_namespace(xp))


def is_jax(xp: ModuleType) -> bool:
    return bool(aac.is_jax_namespace(xp))


def is_dask(xp: ModuleType) -> bool:
    return bool(aac.is_dask_namespace(xp))


def is_cupy(xp: ModuleType) -> bool:
    return bool(aac.is_cupy_namespace(xp))


def is_strict(xp: ModuleType) -> bool:
    return bool(aac.is_array_api_strict_namespace(xp))


def to_host(x: Array) -> np.ndarray:
    """Copy ``x`` to a NumPy array on the host (a synchronisation point).

    Drivers call this once per iteration on small arrays (scalars, k-vectors); step
    functions never do.
    """
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, int | float | bool | np.generic):
        return np.asarray(x)
    mod = type(x).__module__
    if mod.startswith("dask"):
        return np.asarray(x.compute())
    if mod.startswith("cupy"):
        return x.get()
    if mod.startswith("torch"):
        return x.detach().cpu().numpy()
    if mod.startswith("array_api_strict"):
        return np.from_dlpack(x)
    return np.asarray(x)


def materialize(*arrays: Array, xp: ModuleType) -> tuple[Array, ...]:
    """Evaluate lazy arrays once, together, and keep the results (Dask: ``persist``).

    Drivers call this on what an iteration produced (the new centers and the host-bound
    statistics) so that the next iteration's graph starts from concrete chunks instead
    of re-running every earlier iteration.  Eager backends return the arrays unchanged.
    """
    if is_dask(xp):
        import dask

        return tuple(dask.persist(*arrays))
    return arrays


def host_view(x: Array, *, floats_only: bool = True) -> np.ndarray | None:
    """A zero-copy NumPy view of ``x`` when one exists and is safe to compute with.

    NumPy arrays are returned as they are; CPU torch tensors that do not require a
    gradient (and are not being traced by ``torch.compile``) as ``Tensor.numpy()`` --
    float32/float64 ones only, unless ``floats_only=False``.  Anything else gives
    ``None`` (the caller then stays in the array's own namespace), so native NumPy
    kernels can serve torch CPU without breaking autograd.
    """
    if type(x) is np.ndarray:
        return x
    if type(x).__module__.startswith("torch"):
        import torch

        if (
            x.device.type == "cpu"
            and not x.requires_grad
            and not torch.compiler.is_compiling()
            and (not floats_only or x.dtype in (torch.float32, torch.float64))
        ):
            try:
                return x.numpy()
            except RuntimeError:  # e.g. a lazily negated view: no NumPy view exists
                return None
    return None


def host_views(*arrays: Array | None) -> tuple[np.ndarray | None, ...] | None:
    """:func:`host_view` of every array (``None`` entries stay ``None``), or ``None``
    unless each of them has one and they are all of one kind (all NumPy, or all torch)."""
    present = [a for a in arrays if a is not None]
    if len({type(a) for a in present}) > 1:
        return None
    views = tuple(None if a is None else host_view(a) for a in arrays)
    if any(v is None for a, v in zip(arrays, views, strict=True) if a is not None):
        return None
    return views


def like_view(a: np.ndarray, x: Array) -> Array:
    """``a`` (host) as an array of ``x``'s kind, without a copy (inverse of host_view)."""
    if type(x) is np.ndarray:
        return a
    import torch

    return torch.from_numpy(a)


def map_rows(fn: Any, x: Array, *, xp: ModuleType) -> Array:
    """Apply a row-wise (last-axis) function ``fn(block, xp=...)``.

    Lazy chunked backends (Dask) evaluate ``fn`` once per block of rows with the NumPy
    namespace (one task per block, instead of a graph node per elementary operation);
    every other backend calls ``fn(x, xp=xp)`` directly.  ``fn`` must treat rows
    independently and keep the shape.
    """
    if is_dask(xp):
        import array_api_compat.numpy as npx

        if x.ndim and x.numblocks[-1] != 1:
            x = x.rechunk({x.ndim - 1: -1})
        return x.map_blocks(lambda b: fn(b, xp=npx), dtype=x.dtype)
    return fn(x, xp=xp)


def to_scalar(x: Array) -> float:
    """A 0-d array (or scalar) as a Python float (a host sync)."""
    return float(to_host(x).reshape(()))


def from_host(a: np.ndarray, *, xp: ModuleType, device: Any = None, dtype: Any = None) -> Array:
    """Move a host NumPy array into namespace ``xp`` on ``device``."""
    a = np.ascontiguousarray(a)
    if is_dask(xp):
        import dask.array as da

        out = da.from_array(a, chunks=a.shape or ())
        return out if dtype is None else xp.astype(out, dtype)
    if is_strict(xp) or is_jax(xp) or is_torch(xp) or is_cupy(xp) or is_numpy(xp):
        out = xp.asarray(a, device=device) if device is not None else xp.asarray(a)
        return out if dtype is None else xp.astype(out, dtype)
    out = xp.asarray(a)
    return out if dtype is None else xp.astype(out, dtype)


def has_float64(xp: ModuleType, device: Any = None) -> bool:
    """Whether ``xp`` can hold float64 on ``device`` (JAX without x64 cannot; MPS cannot)."""
    if is_jax(xp):
        import jax

        return bool(jax.config.read("jax_enable_x64"))
    if is_torch(xp) and device is not None and getattr(device, "type", "") == "mps":
        return False
    return True


def working_dtype(xp: ModuleType, dtype: Any, device: Any = None) -> Any:
    """The floating dtype computations run in for inputs of ``dtype``.

    float32/float64 are kept; integer and bool are promoted to the namespace's default
    float; half precision is computed in float32 (results are cast back by the caller
    only where it says so).
    """
    if dtype == xp.float64 or dtype == xp.float32:
        return dtype
    if xp.isdtype(dtype, "complex floating"):
        raise TypeError("complex input is not supported: clustering needs real data")
    if xp.isdtype(dtype, "real floating"):  # float16 / bfloat16
        return xp.float32
    if xp.isdtype(dtype, ("integral", "bool")):
        default = None
        if hasattr(xp, "__array_namespace_info__"):
            try:
                default = xp.__array_namespace_info__().default_dtypes(device=device)[
                    "real floating"
                ]
            except Exception:  # pragma: no cover - backend without the info API
                default = None
        if default is None:
            default = xp.float64 if has_float64(xp, device) else xp.float32
        return default
    raise TypeError(f"unsupported dtype {dtype!r}: expected a real numeric array")


def eps(xp: ModuleType, dtype: Any) -> float:
    return float(xp.finfo(dtype).eps)


def has_take_along_axis(xp: ModuleType) -> bool:
    """Whether ``xp.take_along_axis`` exists and works (missing on Dask)."""
    return hasattr(xp, "take_along_axis") and not is_dask(xp)


# --------------------------------------------------------------------------------------
# segment sums: sum_{i : labels_i = j} values_i  (values n x d, labels n) -> k x d
# --------------------------------------------------------------------------------------


def segment_sum_onehot(values: Array, labels: Array, k: int, *, xp: ModuleType) -> Array:
    """Pure-standard segment sum: ``onehot(labels)^T @ values`` (the tested reference).

    Builds an ``n_chunk x k`` one-hot matrix, so callers pass one chunk at a time.
    """
    ks = xp.arange(k, dtype=labels.dtype, device=device_of(labels))
    onehot = xp.astype(labels[:, None] == ks[None, :], values.dtype)
    return onehot.T @ values


def segment_sum(values: Array, labels: Array, k: int, *, xp: ModuleType) -> Array:
    """Rows of ``values`` summed by ``labels`` into a ``k x d`` array.

    Uses the backend's native scatter-add where there is one (NumPy ``bincount`` over
    the flattened ``(label, column)`` index, accumulated in float64; CuPy
    ``scatter_add``; torch ``index_add``; JAX ``segment_sum``), else
    :func:`segment_sum_onehot`.  Bool/integer ``values`` are not expected (callers pass
    the working float dtype).
    """
    if values.ndim == 1:
        return segment_sum(values[:, None], labels, k, xp=xp)[:, 0]
    d = values.shape[1]
    if is_numpy(xp):
        lab = np.asarray(labels, dtype=np.intp)
        vals = np.asarray(values)
        # one bincount over the flattened (label, column) index, accumulated in float64
        flat = (lab[:, None] * d + np.arange(d, dtype=np.intp)).ravel()
        sums = np.bincount(flat, weights=vals.ravel(), minlength=k * d)
        return sums.reshape(k, d).astype(vals.dtype, copy=False)
    if is_torch(xp):
        import torch

        acc = torch.zeros((k, d), dtype=values.dtype, device=values.device)
        return acc.index_add_(0, labels.to(torch.int64), values)
    if is_jax(xp):
        import jax

        return jax.ops.segment_sum(values, labels, num_segments=k)
    if is_cupy(xp):  # pragma: no cover - needs a GPU
        import cupy
        import cupyx

        out = cupy.zeros((k, d), dtype=values.dtype)
        cupyx.scatter_add(out, labels, values)
        return out
    return segment_sum_onehot(values, labels, k, xp=xp)


def isfinite_all(x: Array, *, xp: ModuleType) -> bool:
    """Whether every entry of ``x`` is finite (a host sync)."""
    return bool(to_host(xp.all(xp.isfinite(x))))


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def log(x: float) -> float:
    return math.log(x)
