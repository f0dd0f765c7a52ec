"""Input validation shared by every public function.

Each check raises an exception whose message names the argument and the problem, so bad
input never reaches the math (no crash deep inside, no silent NaN).
"""

from __future__ import annotations

import numbers
from types import ModuleType
from typing import Any

import array_api_compat as aac
import numpy as np

from ._backend import (
    Array,
    array_namespace,
    check_same_device,
    device_of,
    from_host,
    is_dask,
    is_traced,
    to_host,
    working_dtype,
)

__all__ = [
    "as_array",
    "check_centers",
    "check_data",
    "check_kind",
    "check_n_clusters",
    "check_random_state",
    "check_sample_weight",
    "check_sigma",
]


def _is_sparse(x: Any) -> bool:
    mod = type(x).__module__
    return mod.startswith(("scipy.sparse", "sparse")) or (
        hasattr(x, "tocsr") and hasattr(x, "nnz")
    )


def _complex_error(name: str, dtype: Any) -> ValueError:
    return ValueError(
        f"Complex data not supported: {name} has dtype {dtype}; clustering needs real data"
    )


def as_array(x: Any, name: str = "X") -> Any:
    """Return ``x`` if it is an array-API array, else a NumPy array made from it.

    Sparse matrices are refused (``TypeError``): every algorithm here needs dense data.
    """
    if _is_sparse(x):
        raise TypeError(
            f"Sparse data was passed for {name}, but dense data is required. "
            "Use '.toarray()' to convert to a dense array."
        )
    if aac.is_array_api_obj(x) and not isinstance(x, np.generic):
        return x
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise TypeError(f"{name} cannot be converted to an array: {exc}") from exc


def _check_finite(x: Array, name: str, xp: ModuleType) -> None:
    if is_traced(x):  # under jax.jit/grad values cannot be read; the math stays NaN-safe
        return
    # a finite sum proves every entry finite (NaN and inf propagate); only when it is not
    # (a non-finite entry, or a sum that overflows) is the elementwise scan needed
    if bool(to_host(xp.isfinite(xp.sum(x)))):
        return
    if not bool(to_host(xp.all(xp.isfinite(x)))):
        raise ValueError(f"{name} contains NaN or infinity")


def _convert_dtype(x: Array, name: str, xp: ModuleType) -> Array:
    if isinstance(x, np.ndarray) and x.dtype == object:
        try:
            x = x.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise type(exc)(
                f"{name} has dtype object with entries that are not real numbers ({exc})"
            ) from exc
        xp = array_namespace(x)
    dt = x.dtype
    if isinstance(x, np.ndarray) and dt.kind not in "biuf":
        if dt.kind == "c":
            raise _complex_error(name, dt)
        raise TypeError(f"{name} has unsupported dtype {dt}; expected real numbers")
    if xp.isdtype(dt, "complex floating"):
        raise _complex_error(name, dt)
    try:
        wdt = working_dtype(xp, dt, device_of(x))
    except TypeError as exc:
        raise TypeError(f"{name}: {exc}") from exc
    if wdt != dt:
        x = xp.astype(x, wdt)
    return x


def check_data(X: Any, *, name: str = "X", min_samples: int = 1) -> tuple[Array, ModuleType]:
    """Validate a data matrix: 2-D, non-empty, real, finite; promote to a float dtype.

    Returns ``(X, xp)``.  Integer and bool input is promoted to the namespace's default
    floating dtype; half precision to float32.  ``X`` itself is never modified.
    """
    X = as_array(X, name)
    xp = array_namespace(X)
    if X.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features); "
            f"got an array with {X.ndim} dimension(s) and shape {tuple(X.shape)}. "
            "Reshape your data with X.reshape(-1, 1) for a single feature or "
            "X.reshape(1, -1) for a single sample."
        )
    n, d = X.shape
    if n is None or d is None or (isinstance(n, float) and n != n):
        raise ValueError(
            f"{name} has unknown chunk sizes (shape {X.shape}); call "
            "X.compute_chunk_sizes() on the Dask array first"
        )
    if n < min_samples:
        raise ValueError(
            f"{name} has {n} sample(s) (shape={tuple(X.shape)}) while a minimum of "
            f"{min_samples} is required."
        )
    if d < 1:
        raise ValueError(
            f"{name} has 0 feature(s) (shape={tuple(X.shape)}) while a minimum of 1 is required."
        )
    X = _convert_dtype(X, name, xp)
    xp = array_namespace(X)
    _check_finite(X, name, xp)
    return X, xp


def check_n_clusters(n_clusters: Any, n_samples: int) -> int:
    """``n_clusters`` must be an integer with ``1 <= n_clusters <= n_samples``."""
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, numbers.Integral):
        raise TypeError(f"n_clusters must be an integer, got {n_clusters!r}")
    n_clusters = int(n_clusters)
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
    if n_clusters > n_samples:
        raise ValueError(f"n_samples={n_samples} should be >= n_clusters={n_clusters}")
    return n_clusters


def check_sample_weight(
    sample_weight: Any, n: int, *, xp: ModuleType, dtype: Any, device: Any, like: Array
) -> Array | None:
    """Validate weights: 1-D of length n, finite, non-negative, not all zero.

    ``None`` stays ``None`` (unit weights, handled by the callers without an array).
    Scalars broadcast to all samples.
    """
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Real) and not isinstance(sample_weight, bool):
        if not np.isfinite(float(sample_weight)) or sample_weight <= 0:
            raise ValueError(f"sample_weight must be positive and finite, got {sample_weight}")
        return xp.full((n,), float(sample_weight), dtype=dtype, device=device)
    sw = as_array(sample_weight, "sample_weight")
    if isinstance(sw, np.ndarray):
        if sw.dtype.kind == "c":
            raise _complex_error("sample_weight", sw.dtype)
        if sw.dtype.kind not in "biuf":
            raise TypeError(f"sample_weight has unsupported dtype {sw.dtype}; expected numbers")
        if not isinstance(like, np.ndarray):
            sw = from_host(sw, xp=xp, device=device)
    swxp = array_namespace(sw)
    if swxp is not xp:
        raise TypeError(
            "sample_weight and X come from different array libraries: "
            f"{type(sw).__module__} and {type(like).__module__}"
        )
    check_same_device(like, sw)
    if sw.ndim != 1 or sw.shape[0] != n:
        raise ValueError(
            f"sample_weight must be 1-D with n_samples={n} entries, got shape {tuple(sw.shape)}"
        )
    if xp.isdtype(sw.dtype, "complex floating"):
        raise _complex_error("sample_weight", sw.dtype)
    sw = xp.astype(sw, dtype)
    _check_finite(sw, "sample_weight", xp)
    if is_traced(sw):
        return sw
    mn, total = to_host(xp.stack([xp.min(sw), xp.sum(sw)]))
    if mn < 0:
        raise ValueError("sample_weight contains negative values; weights must be >= 0")
    if not total > 0:
        raise ValueError("sample_weight sums to zero; at least one weight must be positive")
    return sw


def check_centers(
    centers: Any,
    n_clusters: int | None,
    n_features: int,
    *,
    xp: ModuleType,
    dtype: Any,
    device: Any,
    like: Array,
    name: str = "init",
) -> Array:
    """Validate a ``(n_clusters, n_features)`` array of centers (copied, never aliased)."""
    C = as_array(centers, name)
    if isinstance(C, np.ndarray):
        if C.dtype.kind == "c":
            raise _complex_error(name, C.dtype)
        if C.dtype.kind not in "biuf":
            raise TypeError(f"{name} has unsupported dtype {C.dtype}; expected real numbers")
        if not isinstance(like, np.ndarray):
            C = from_host(np.asarray(C, dtype=np.float64), xp=xp, device=device)
    cxp = array_namespace(C)
    if cxp is not xp:
        raise TypeError(
            f"{name} and X come from different array libraries: "
            f"{type(C).__module__} and {type(like).__module__}"
        )
    check_same_device(like, C)
    if C.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_clusters, n_features), got shape {tuple(C.shape)}"
        )
    if n_clusters is not None and C.shape[0] != n_clusters:
        raise ValueError(
            f"The shape of the initial centers {tuple(C.shape)} does not match the number "
            f"of clusters {n_clusters}."
        )
    if C.shape[1] != n_features:
        raise ValueError(
            f"The shape of the initial centers {tuple(C.shape)} does not match the number "
            f"of features of the data {n_features}."
        )
    if xp.isdtype(C.dtype, "complex floating"):
        raise _complex_error(name, C.dtype)
    C = xp.astype(C, dtype, copy=True)
    _check_finite(C, name, xp)
    return C


def check_random_state(random_state: Any) -> np.random.Generator:
    """One seeded host NumPy Generator (None, int, Generator or legacy RandomState)."""
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return np.random.default_rng(int(random_state))
    raise ValueError(
        f"random_state must be None, an int, a numpy Generator or RandomState, "
        f"got {random_state!r}"
    )


def check_sigma(sigma: Any, *, allow_zero: bool = True) -> float:
    """σ must be a finite real number, > 0 (or == 0 meaning hard when allowed)."""
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
        try:
            sigma = float(to_host(sigma).reshape(()))
        except Exception as exc:
            raise TypeError(f"sigma must be a real number, got {sigma!r}") from exc
    sigma = float(sigma)
    if not np.isfinite(sigma) or sigma < 0 or (sigma == 0 and not allow_zero):
        lo = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"sigma must be finite and {lo}, got {sigma}")
    return sigma


_KINDS = ("softmax", "entmax15", "hard")


def check_kind(kind: Any, allowed: tuple[str, ...] = _KINDS) -> str:
    if kind not in allowed:
        raise ValueError(f"kind must be one of {', '.join(map(repr, allowed))}; got {kind!r}")
    return str(kind)


def is_lazy(xp: ModuleType) -> bool:
    return is_dask(xp)


def check_x_centers_weights(
    X: Any, centers: Any, sample_weight: Any = None, *, centers_name: str = "centers"
) -> tuple[Array, Array, Array | None, ModuleType]:
    """Validate the ``(X, centers, sample_weight)`` triple of the math functions.

    Returns them in one namespace, device and floating dtype (that of ``X``, promoted as
    in :func:`check_data`; ``centers`` are cast to it).
    """
    X_in = as_array(X, "X")
    C_in = as_array(centers, centers_name)
    if aac.is_array_api_obj(X_in) and aac.is_array_api_obj(C_in):
        # mixed libraries are an error, except plain NumPy centers/weights (host data)
        if not isinstance(C_in, np.ndarray) or isinstance(X_in, np.ndarray):
            array_namespace(X_in, C_in)
    X, xp = check_data(X_in)
    dev = device_of(X)
    C = check_centers(
        C_in, None, X.shape[1], xp=xp, dtype=X.dtype, device=dev, like=X, name=centers_name
    )
    if C.shape[0] < 1:
        raise ValueError(f"{centers_name} must hold at least one center")
    w = check_sample_weight(sample_weight, X.shape[0], xp=xp, dtype=X.dtype, device=dev, like=X)
    return X, C, w, xp
