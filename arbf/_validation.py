"""Input validation shared by every public function.

Each check raises an exception whose message names the argument and the problem, so bad
input never reaches the math (no crash deep inside, no silent NaN).  One error type per
kind of mistake: a value of the wrong *type* (a string for a number, a bool for an
integer, a float for a count) is a :class:`TypeError`; a value of the right type that is
out of range or not among the options is a :class:`ValueError`.

Scalar options are declared, not hand-checked: :func:`check_param` takes the value and
its constraints (:class:`Interval`, :class:`Options`, :data:`NONE`, :data:`BOOLEAN`,
:data:`CALLABLE`), e.g. ``check_param("max_iter", v, Interval(numbers.Integral, 1))``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ._backend import (
    Array,
    array_namespace,
    check_same_device,
    device_of,
    from_host,
    is_array,
    is_sparse,
    is_traced,
    to_host,
    working_dtype,
)

__all__ = [
    "BOOLEAN",
    "CALLABLE",
    "NONE",
    "Interval",
    "Options",
    "as_array",
    "check_centers",
    "check_data",
    "check_finite",
    "check_fit_inputs",
    "check_kind",
    "check_lr",
    "check_n_clusters",
    "check_param",
    "check_random_state",
    "check_sample_weight",
    "check_sigma",
    "check_x_centers_weights",
    "check_x_squared_norms",
]


# --------------------------------------------------------------------------------------
# scalar options, declared
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """Numbers of type ``kind`` (``numbers.Integral`` or ``numbers.Real``; never bool)
    between ``low`` and ``high`` (``None``: unbounded), ``closed`` on
    ``"both"``/``"left"``/``"right"``/``"neither"`` side(s).  Reals must be finite."""

    kind: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"

    def accepts_type(self, value: Any) -> bool:
        if isinstance(value, bool | np.bool_):
            return False
        if self.kind is numbers.Integral:
            return isinstance(value, numbers.Integral)
        return isinstance(value, numbers.Real)

    def accepts(self, value: Any) -> bool:
        v = float(value)
        if not math.isfinite(v):
            return False
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and (v < self.low or (v == self.low and not left)):
            return False
        return self.high is None or not (v > self.high or (v == self.high and not right))

    def normalize(self, value: Any) -> Any:
        return int(value) if self.kind is numbers.Integral else float(value)

    def __str__(self) -> str:
        integral = self.kind is numbers.Integral
        noun = "integer" if integral else "number"
        lo, hi = self.low, self.high
        if hi is None and lo is not None:
            if lo == 0 and self.closed in ("neither", "right"):
                return f"a positive {noun}"
            if lo == 0:
                return f"a non-negative {noun}"
            if lo == 1 and integral:
                return "a positive integer"
            op = ">=" if self.closed in ("both", "left") else ">"
            return f"{'an' if integral else 'a'} {noun} {op} {lo:g}"
        if lo is None and hi is None:
            return f"{'an' if integral else 'a'} {noun}" + ("" if integral else " (finite)")
        left = "[" if self.closed in ("both", "left") and lo is not None else "("
        right = "]" if self.closed in ("both", "right") and hi is not None else ")"
        a = "-inf" if lo is None else f"{lo:g}"
        b = "inf" if hi is None else f"{hi:g}"
        return f"{'an' if integral else 'a'} {noun} in {left}{a}, {b}{right}"


@dataclass(frozen=True)
class Options:
    """One of the given strings."""

    values: tuple[str, ...]

    def __init__(self, *values: str) -> None:
        object.__setattr__(self, "values", tuple(values))

    def accepts_type(self, value: Any) -> bool:
        return isinstance(value, str)

    def accepts(self, value: Any) -> bool:
        return value in self.values

    def normalize(self, value: Any) -> Any:
        return str(value)

    def __str__(self) -> str:
        quoted = [repr(v) for v in self.values]
        return quoted[0] if len(quoted) == 1 else "one of " + ", ".join(quoted)


@dataclass(frozen=True)
class _Kind:
    """A type-only constraint (``None``, a bool, a callable)."""

    name: str
    test: Callable[[Any], bool]

    def accepts_type(self, value: Any) -> bool:
        return self.test(value)

    def accepts(self, value: Any) -> bool:
        return True

    def normalize(self, value: Any) -> Any:
        return bool(value) if self.name == "True or False" else value

    def __str__(self) -> str:
        return self.name


NONE = _Kind("None", lambda v: v is None)
BOOLEAN = _Kind("True or False", lambda v: isinstance(v, bool | np.bool_))
CALLABLE = _Kind("a callable", callable)


def check_param(name: str, value: Any, *constraints: Any) -> Any:
    """``value`` if it satisfies one of ``constraints`` (normalised: ``int``/``float``/
    ``str``), else a :class:`TypeError` (no constraint takes its type) or a
    :class:`ValueError` (one does, but not this value) naming ``name`` and what it must be.
    """
    typed = [c for c in constraints if c.accepts_type(value)]
    for c in typed:
        if c.accepts(value):
            return c.normalize(value)
    allowed = " or ".join(str(c) for c in constraints)
    err = ValueError if typed else TypeError
    raise err(f"{name} must be {allowed}, got {value!r}")


def _is_sparse(x: Any) -> bool:
    mod = type(x).__module__
    return mod.startswith(("scipy.sparse", "sparse")) or (
        hasattr(x, "tocsr") and hasattr(x, "nnz")
    )


def _complex_error(name: str, dtype: Any) -> ValueError:
    return ValueError(
        f"Complex data not supported: {name} has dtype {dtype}; clustering needs real data"
    )


def _check_torch_layout(x: Any, name: str) -> None:
    """A clear ``TypeError`` for torch tensors that hold no dense values: sparse layouts
    and the ``meta`` device (instead of a ``NotImplementedError`` from deep inside)."""
    import torch

    if x.layout != torch.strided:
        raise TypeError(
            f"{name} is a torch sparse tensor (layout {x.layout}); arbf computes on dense "
            "tensors: pass X.to_dense(), or a scipy.sparse matrix for sparse data on the host"
        )
    if x.device.type == "meta":
        raise TypeError(
            f"{name} is a torch tensor on the 'meta' device: it has a shape but no values "
            "to cluster"
        )


def as_array(x: Any, name: str = "X", *, accept_sparse: bool = False) -> Any:
    """Return ``x`` if it is an array-API array, else a NumPy array made from it.

    A :mod:`scipy.sparse` matrix or array is returned as it is when ``accept_sparse``
    (data matrices: :func:`check_data` makes it canonical CSR) and refused
    (``TypeError``) otherwise; other sparse containers (pydata ``sparse``) and torch
    sparse or ``meta`` tensors are refused with a ``TypeError`` that says why.
    """
    if is_sparse(x) and accept_sparse:
        return x
    if _is_sparse(x):
        kind = f"{type(x).__module__}.{type(x).__name__}"
        if accept_sparse:
            raise TypeError(
                f"Sparse data of type {kind} was passed for {name}; arbf takes dense arrays "
                "and scipy.sparse matrices (convert it, e.g. with x.to_scipy_sparse())."
            )
        raise TypeError(
            f"Sparse data was passed for {name}, but dense data is required. "
            "Use '.toarray()' to convert to a dense array."
        )
    if type(x).__module__.startswith("torch") and is_array(x):
        _check_torch_layout(x, name)
    if is_array(x) and not isinstance(x, np.generic):
        return x
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise TypeError(f"{name} cannot be converted to an array: {exc}") from exc


def check_finite(x: Array, name: str, xp: ModuleType) -> None:
    """Raise ``ValueError("<name> contains NaN or infinity")`` when an entry of the dense
    array ``x`` is not finite (nothing under ``jax.jit``/``grad``: values cannot be read)."""
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


def _check_sparse(X: Any, name: str) -> Any:
    """A :mod:`scipy.sparse` data matrix as canonical CSR (sorted indices, no duplicate
    entries; explicit zeros are kept) of the working float dtype, never densified.  The
    caller's matrix is never modified: it is reused as it is when it already qualifies,
    else converted (a copy of its nonzeros)."""
    dt = X.dtype
    if dt.kind == "c":
        raise _complex_error(name, dt)
    if dt.kind not in "biuf":
        raise TypeError(f"{name} has unsupported dtype {dt}; expected real numbers")
    import array_api_compat.numpy as npx

    wdt = working_dtype(npx, dt)
    X = X.tocsr()  # the same object when it is CSR already
    if X.dtype != wdt:
        X = X.astype(wdt)  # a new matrix
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()  # sorts the indices too (in the copy)
    if not bool(np.isfinite(X.data).all()):
        raise ValueError(f"{name} contains NaN or infinity")
    return X


def check_data(
    X: Any, *, name: str = "X", min_samples: int = 1, finite: bool = True
) -> tuple[Array, ModuleType]:
    """Validate a data matrix: 2-D, non-empty, real, finite; promote to a float dtype.

    Returns ``(X, xp)``.  Integer and bool input is promoted to the namespace's default
    floating dtype; half precision to float32.  A :mod:`scipy.sparse` matrix or array
    (any format) comes back as canonical CSR of that dtype (never densified), with the
    NumPy namespace.  ``X`` itself is never modified.  ``finite=False`` leaves out the
    finiteness check of dense data (for a caller that proves it otherwise: the front door
    of K-Means, whose extent pass propagates NaN and inf, then calls :func:`check_finite`).
    """
    X = as_array(X, name, accept_sparse=True)
    sparse = is_sparse(X)
    xp = array_namespace(X)
    if X.ndim != 2:
        hint = (
            "A leading batch axis (B, n_samples, n_features) is taken by arbf.kmeans, "
            "arbf.kmeans_plusplus, arbf.kmeans_parallel, arbf.rbf_kmeans, arbf.anneal, "
            "arbf.deterministic_annealing, arbf.anneal_init, arbf.pq_train, the "
            "responsibilities, steps and objectives, and "
            "arbf.torch.RBFClustering(n_heads=B); call this one once per problem."
            if X.ndim == 3
            else "Reshape your data with X.reshape(-1, 1) for a single feature or "
            "X.reshape(1, -1) for a single sample."
        )
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features); "
            f"got an array with {X.ndim} dimension(s) and shape {tuple(X.shape)}. {hint}"
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
    if sparse:
        return _check_sparse(X, name), xp
    X = _convert_dtype(X, name, xp)
    xp = array_namespace(X)
    if finite:
        check_finite(X, name, xp)
    return X, xp


def check_n_clusters(n_clusters: Any, n_samples: int) -> int:
    """``n_clusters`` must be an integer with ``1 <= n_clusters <= n_samples``."""
    n_clusters = check_param("n_clusters", n_clusters, Interval(numbers.Integral, 1))
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
    check_finite(sw, "sample_weight", xp)
    if is_traced(sw):
        return sw
    mn, total = to_host(xp.stack([xp.min(sw), xp.sum(sw)]))
    if mn < 0:
        raise ValueError("sample_weight contains negative values; weights must be >= 0")
    if not total > 0:
        raise ValueError("sample_weight sums to zero; at least one weight must be positive")
    return sw


def check_x_squared_norms(
    x_squared_norms: Any, n: int, *, xp: ModuleType, dtype: Any, device: Any, like: Array
) -> Array:
    """Precomputed squared row norms ``||x_i||^2`` (scikit-learn's ``x_squared_norms``):
    ``n`` finite, non-negative values, in ``X``'s namespace, device and dtype."""
    v = as_array(x_squared_norms, "x_squared_norms")
    if isinstance(v, np.ndarray):
        if v.dtype.kind not in "iuf":
            raise TypeError(
                f"x_squared_norms has unsupported dtype {v.dtype}; expected real numbers"
            )
        if not isinstance(like, np.ndarray) and not is_sparse(like):
            v = from_host(np.asarray(v, dtype=np.float64), xp=xp, device=device)
    if array_namespace(v) is not xp:
        raise TypeError(
            "x_squared_norms and X come from different array libraries: "
            f"{type(v).__module__} and {type(like).__module__}"
        )
    check_same_device(like, v)
    if v.ndim < 1 or v.shape[0] != n:
        got = v.shape[0] if v.ndim else 0
        raise ValueError(
            f"The length of x_squared_norms {got} should be equal to the length of n_samples {n}."
        )
    if v.ndim != 1:
        raise ValueError(f"x_squared_norms must be 1-D, got shape {tuple(v.shape)}")
    v = xp.astype(v, dtype)
    check_finite(v, "x_squared_norms", xp)
    if not is_traced(v) and float(to_host(xp.min(v))) < 0:
        raise ValueError("x_squared_norms contains negative values")
    return v


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
    check_finite(C, name, xp)
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
        if random_state < 0:
            raise ValueError(
                f"random_state must be None, a non-negative int, a numpy Generator or "
                f"RandomState, got {random_state!r}"
            )
        return np.random.default_rng(int(random_state))
    raise TypeError(
        f"random_state must be None, an int, a numpy Generator or RandomState, "
        f"got {random_state!r}"
    )


def real_scalar(value: Any, name: str) -> Any:
    """A real number given as a Python/NumPy number or a 0-d real array (read on the
    host) -> ``float``; anything else (a string, a bool, a complex, a non-scalar array)
    is returned unchanged for :func:`check_param` to reject."""
    if isinstance(value, bool | np.bool_ | str | bytes) or isinstance(value, numbers.Real):
        return value
    if is_array(value) or isinstance(value, np.generic):
        try:
            host = to_host(value)
        except Exception:  # pragma: no cover - an exotic array without a host copy
            return value
        if host.shape == () and host.dtype.kind in "iuf":
            return float(host)
    return value


def check_sigma(sigma: Any, *, allow_zero: bool = True, name: str = "sigma") -> float:
    """σ must be a finite real number (a 0-d real array is read), ``>= 0`` (``0`` meaning
    hard) or ``> 0`` when ``allow_zero`` is False.  Strings and bools are refused."""
    closed = "both" if allow_zero else "right"
    return check_param(name, real_scalar(sigma, name), Interval(numbers.Real, 0, None, closed))


def check_lr(lr: Any) -> float | str:
    """The step size: ``"lloyd"`` (:math:`\\eta_j = 1/(2N_j)`) or a positive number."""
    return check_param("lr", lr, Options("lloyd"), Interval(numbers.Real, 0, None, "neither"))


_KINDS = ("softmax", "entmax15", "hard")


def check_kind(kind: Any, allowed: tuple[str, ...] = _KINDS) -> str:
    """``kind`` must be one of ``allowed``."""
    return str(check_param("kind", kind, Options(*allowed)))


def check_fit_inputs(
    X: Any,
    n_clusters: Any,
    sample_weight: Any = None,
    random_state: Any = None,
    *,
    finite: bool = True,
) -> tuple[Array, ModuleType, int, Array | None, np.random.Generator]:
    """The inputs of every clustering entry point: ``(X, xp, n_clusters, w, rng)``.

    ``X`` as :func:`check_data` (``finite`` passed on), ``n_clusters`` as
    :func:`check_n_clusters`, the weights as :func:`check_sample_weight` (in ``X``'s
    namespace, device and dtype) and one host Generator (:func:`check_random_state`).
    """
    X, xp = check_data(X, finite=finite)
    n = X.shape[0]
    k = check_n_clusters(n_clusters, n)
    w = check_sample_weight(sample_weight, n, xp=xp, dtype=X.dtype, device=device_of(X), like=X)
    return X, xp, k, w, check_random_state(random_state)


def check_x_centers_weights(
    X: Any, centers: Any, sample_weight: Any = None, *, centers_name: str = "centers"
) -> tuple[Array, Array, Array | None, ModuleType]:
    """Validate the ``(X, centers, sample_weight)`` triple of the math functions.

    Returns them in one namespace, device and floating dtype (that of ``X``, promoted as
    in :func:`check_data`; ``centers`` are cast to it).
    """
    X_in = as_array(X, "X", accept_sparse=True)
    C_in = as_array(centers, centers_name)
    if is_array(X_in) and is_array(C_in):
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
