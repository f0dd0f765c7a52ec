"""The backend layer: the one module that talks to ``array_api_compat``.

Everything else in :mod:`arbf` asks this module for the namespace of its arrays, their
device and the memory free on it, the working floating dtype, zero-copy host views, and
how to move small results to the host.  It decides nothing about which implementation of
an operation runs (that is :mod:`arbf._math.seam`).  Arrows point here and never out.
"""

from __future__ import annotations

import contextlib
from types import ModuleType
from typing import Any

import array_api_compat as aac
import numpy as np

Array = Any

__all__ = [
    "Array",
    "array_namespace",
    "check_same_device",
    "device_free_memory",
    "device_of",
    "float_range",
    "from_host",
    "has_float64",
    "has_take_along_axis",
    "host_view",
    "host_views",
    "is_array",
    "is_cupy",
    "is_dask",
    "is_jax",
    "is_numpy",
    "is_sparse",
    "is_strict",
    "is_torch",
    "is_traced",
    "itemsize",
    "like_view",
    "map_rows",
    "materialize",
    "quiet_overflow",
    "to_host",
    "working_dtype",
]


def is_sparse(x: Any) -> bool:
    """Whether ``x`` is a :mod:`scipy.sparse` matrix or array (scipy is not imported)."""
    return type(x).__module__.startswith("scipy.sparse") and hasattr(x, "tocsr")


def array_namespace(*arrays: Any) -> ModuleType:
    """Return the (compat-wrapped) namespace shared by ``arrays``.

    ``None`` and Python scalars are ignored; a :mod:`scipy.sparse` matrix counts as a
    NumPy array (its data live in NumPy arrays on the host).  Arrays from different
    libraries raise a :class:`TypeError` that names them, rather than an obscure error
    later.
    """
    arrs = [a for a in arrays if a is not None and not isinstance(a, int | float | bool)]
    if not arrs:
        return aac.array_namespace(np.empty(0))
    try:
        return aac.array_namespace(*(np.empty(0) if is_sparse(a) else a for a in arrs))
    except TypeError as exc:
        kinds = sorted({type(a).__module__.split(".")[0] + "." + type(a).__name__ for a in arrs})
        raise TypeError(
            f"arrays from different array libraries cannot be mixed: {', '.join(kinds)}"
        ) from exc


def is_array(x: Any) -> bool:
    """Whether ``x`` is an array of a library that array-api-compat knows."""
    return bool(aac.is_array_api_obj(x))


def device_of(x: Array) -> Any:
    """The device of ``x`` (``"cpu"`` for NumPy and :mod:`scipy.sparse`)."""
    if is_sparse(x):
        return "cpu"
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

    NumPy arrays (and subclasses with array semantics such as ``np.memmap``; not
    ``np.matrix``) are returned as plain ``ndarray`` views; CPU torch tensors that do not
    require a gradient (and are not being traced by ``torch.compile``) as
    ``Tensor.numpy()`` -- float32/float64 ones only, unless ``floats_only=False``.
    Anything else gives ``None`` (the caller then stays in the array's own namespace), so
    native NumPy kernels can serve torch CPU without breaking autograd.
    """
    if isinstance(x, np.ndarray):
        return None if isinstance(x, np.matrix) else np.asarray(x)
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
    kinds = {np.ndarray if isinstance(a, np.ndarray) else type(a) for a in arrays}
    if len(kinds - {type(None)}) > 1:
        return None
    views = tuple(None if a is None else host_view(a) for a in arrays)
    if any(v is None for a, v in zip(arrays, views, strict=True) if a is not None):
        return None
    return views


def like_view(a: np.ndarray, x: Array) -> Array:
    """``a`` (host) as an array of ``x``'s kind, without a copy (inverse of host_view)."""
    if isinstance(x, np.ndarray):
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


def from_host(a: np.ndarray, *, xp: ModuleType, device: Any = None, dtype: Any = None) -> Array:
    """Move a host NumPy array into namespace ``xp`` on ``device``."""
    a = np.ascontiguousarray(a)
    if is_dask(xp):
        import dask.array as da

        out = da.from_array(a, chunks=a.shape or ())
        return out if dtype is None else xp.astype(out, dtype)
    if is_strict(xp) or is_jax(xp) or is_torch(xp) or is_cupy(xp) or is_numpy(xp):
        # converted on the way in: a float64 host array reaches a device without float64
        # (array-api-strict's "no_float64", MPS) already in the dtype asked for
        kw = {} if dtype is None else {"dtype": dtype}
        return xp.asarray(a, device=device, **kw) if device is not None else xp.asarray(a, **kw)
    out = xp.asarray(a)
    return out if dtype is None else xp.astype(out, dtype)


def has_float64(xp: ModuleType, device: Any = None) -> bool:
    """Whether ``xp`` can hold float64 on ``device`` (JAX without x64 cannot; MPS cannot;
    elsewhere the namespace's ``__array_namespace_info__().dtypes(device=...)`` says)."""
    if is_jax(xp):
        import jax

        return bool(jax.config.read("jax_enable_x64"))
    if device is None:
        return True
    if is_torch(xp):
        return getattr(device, "type", "") != "mps"
    info = getattr(xp, "__array_namespace_info__", None)
    if info is None:
        return True
    try:  # the standard's per-device dtype table (array-api-strict's "no_float64")
        return "float64" in info().dtypes(device=device, kind="real floating")
    except (TypeError, ValueError):  # a namespace whose table does not know the device
        return True


def working_dtype(xp: ModuleType, dtype: Any, device: Any = None) -> Any:
    """The floating dtype computations run in for inputs of ``dtype``.

    float32/float64 are kept; integer and bool are promoted to the namespace's default
    float; half precision is computed in float32 (results are cast back by the caller
    only where it says so).  NumPy floats are recognised by kind and size, not by
    identity: a non-native byte order (``'>f8'``, ``'>f4'``) works in the native
    float64/float32, and ``np.longdouble`` (extended precision) is computed -- and
    returned -- in float64, the widest dtype the kernels and every other backend have.
    """
    if dtype == xp.float64 or dtype == xp.float32:
        return dtype
    if isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        npdt = np.dtype(dtype)
        if npdt.kind == "f" and npdt.itemsize >= 4:
            native = np.float64 if npdt.itemsize >= 8 else np.float32
            return getattr(xp, native.__name__, native)
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


def float_range(xp: ModuleType, dtype: Any) -> tuple[float, float]:
    """``(smallest normal, largest finite)`` of the floating ``dtype``, as host floats."""
    fi = xp.finfo(dtype)
    return float(fi.smallest_normal), float(fi.max)


def quiet_overflow(xp: ModuleType) -> Any:
    """A context in which NumPy-computed arithmetic (NumPy, array-api-strict, Dask
    blocks) overflows to ``±inf`` without a :class:`RuntimeWarning`: for values the
    caller documents as ``±inf`` beyond the dtype's range.  Other libraries never warn."""
    if is_numpy(xp) or is_strict(xp) or is_dask(xp):
        return np.errstate(over="ignore")
    return contextlib.nullcontext()


def has_take_along_axis(xp: ModuleType) -> bool:
    """Whether ``xp.take_along_axis`` exists and works (missing on Dask)."""
    return hasattr(xp, "take_along_axis") and not is_dask(xp)


def itemsize(x: Array) -> int:
    """Bytes per element of ``x``'s dtype."""
    try:
        return int(x.dtype.itemsize)
    except AttributeError:
        return 8 if "64" in str(x.dtype) else 4


def device_free_memory(x: Array) -> tuple[int, int] | None:
    """``(free, total)`` bytes of the GPU that holds ``x``, or ``None`` (CPU, unknown).

    Asks the array's own library: ``torch.cuda.mem_get_info`` for CUDA tensors, CuPy's
    ``cudaMemGetInfo`` for CuPy arrays, the device's ``memory_stats`` for JAX on a GPU.
    """
    mod = type(x).__module__
    try:
        if mod.startswith("torch"):
            dev = x.device
            if dev.type == "cuda":
                import torch

                free, total = torch.cuda.mem_get_info(dev)
                return int(free), int(total)
            return None
        if mod.startswith("cupy"):  # pragma: no cover - needs a GPU
            import cupy

            with cupy.cuda.Device(x.device.id):
                free, total = cupy.cuda.runtime.memGetInfo()
            return int(free), int(total)
        if mod.startswith("jax"):
            dev = next(iter(x.devices())) if hasattr(x, "devices") else None
            if dev is None or dev.platform != "gpu":
                return None
            stats = dev.memory_stats() or {}  # pragma: no cover - needs a GPU
            total = int(stats.get("bytes_limit", 0))  # pragma: no cover
            if total:  # pragma: no cover
                return total - int(stats.get("bytes_in_use", 0)), total
    except Exception:  # pragma: no cover - a backend without the query
        return None
    return None
