"""Global configuration: which implementations run, how much memory a chunk may use, threads.

One :class:`contextvars.ContextVar` holds the configuration (scikit-learn's and
array-api-extra's convention): :func:`config_context` changes it for a ``with`` block,
:func:`set_config` for the rest of the current context, :func:`get_config` reads it.  Each
thread and each asyncio task sees its own value; a new thread starts from the defaults.

Options
-------
``fast_paths`` (bool, default True)
    Use the compiled NumPy kernels (and their Dask and CPU-torch routes) where they apply.
    ``False`` runs the pure Array API reference everywhere (its segment sums use the
    backend's own scatter-add where it has one, as every route does).  The environment variable
    ``ARBF_DISABLE_FAST_PATHS=1`` (read at import) makes ``False`` the default.
``working_memory`` (float in MiB, or ``"auto"``; default ``"auto"``)
    Memory budget for the temporaries of one chunk of rows.  ``"auto"``: 64 MiB on the
    CPU, a fraction of the free device memory on a GPU (:mod:`arbf._chunking`).  A
    ``working_memory=`` argument of a function or estimator overrides it.
``n_threads`` (int >= 1 or None, default None)
    Worker threads of the compiled kernels, each calling BLAS with one thread (so ``1``
    runs a call on one CPU); ``None`` uses as many as NumPy's BLAS does.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["Config", "config_context", "get_config", "set_config"]

_ENV_DISABLE = "ARBF_DISABLE_FAST_PATHS"


def _env_fast_paths() -> bool:
    return os.environ.get(_ENV_DISABLE, "").strip().lower() not in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Config:
    """The configuration in effect (frozen; read it with :func:`arbf.get_config`).

    Attributes
    ----------
    fast_paths : bool
        Use the compiled kernels where they apply (``False``: the pure Array API path).
    working_memory : float or "auto"
        MiB for the temporaries of one chunk of rows (``"auto"``: 64 MiB on the CPU, an
        eighth of the free memory on a GPU, 256 MiB – 16 GiB).
    n_threads : int or None
        Worker threads of the compiled kernels, each calling BLAS with one thread
        (``None``: as many as NumPy's BLAS uses).
    """

    fast_paths: bool = True
    working_memory: float | str = "auto"
    n_threads: int | None = None


def check_working_memory(value: Any, name: str = "working_memory") -> float | str:
    """``"auto"`` or a positive, finite number of MiB (returned as ``float``)."""
    if isinstance(value, str):
        if value == "auto":
            return value
        raise ValueError(f"{name} must be a positive number of MiB or 'auto', got {value!r}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number of MiB or 'auto', got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number of MiB or 'auto', got {value!r}")
    return value


def _check(name: str, value: Any) -> Any:
    if name == "fast_paths":
        if not isinstance(value, bool):
            raise TypeError(f"fast_paths must be True or False, got {value!r}")
        return value
    if name == "working_memory":
        return check_working_memory(value)
    if name == "n_threads":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"n_threads must be None or an integer >= 1, got {value!r}")
        if value < 1:
            raise ValueError(f"n_threads must be None or an integer >= 1, got {value!r}")
        return int(value)
    raise TypeError(f"unknown configuration option {name!r}")  # pragma: no cover


# the default is a frozen dataclass: immutable, safe to share
_CONFIG: ContextVar[Config] = ContextVar(
    "arbf_config",
    default=Config(_env_fast_paths()),  # noqa: B039
)
_UNSET: Any = object()


def get_config() -> Config:
    """The configuration in effect in this context (a frozen ``Config`` dataclass).

    Examples
    --------
    >>> import arbf
    >>> arbf.get_config().working_memory
    'auto'
    """
    return _CONFIG.get()


def _updated(fast_paths: Any, working_memory: Any, n_threads: Any) -> Config:
    changes = {
        name: _check(name, value)
        for name, value in (
            ("fast_paths", fast_paths),
            ("working_memory", working_memory),
            ("n_threads", n_threads),
        )
        if value is not _UNSET
    }
    return replace(_CONFIG.get(), **changes)


def set_config(
    *, fast_paths: Any = _UNSET, working_memory: Any = _UNSET, n_threads: Any = _UNSET
) -> None:
    """Change the configuration for the rest of the current context.

    Only the options given change.  Prefer :func:`config_context`, which restores the
    previous values.

    Parameters
    ----------
    fast_paths : bool
        Use the compiled kernels where they apply (``False``: the pure Array API path).
    working_memory : float or "auto"
        MiB for the temporaries of one chunk.
    n_threads : int or None
        Worker threads of the compiled kernels (``None``: as many as the BLAS uses).
    """
    _CONFIG.set(_updated(fast_paths, working_memory, n_threads))


@contextmanager
def config_context(
    *, fast_paths: Any = _UNSET, working_memory: Any = _UNSET, n_threads: Any = _UNSET
) -> Iterator[Config]:
    """Change the configuration inside a ``with`` block (thread- and task-safe).

    Takes the options of :func:`set_config`; yields the configuration in effect.

    Examples
    --------
    >>> import numpy as np
    >>> import arbf
    >>> X = np.array([[0.0], [1.0], [10.0], [11.0]])
    >>> with arbf.config_context(fast_paths=False, working_memory=1):
    ...     float(arbf.inertia(X, np.array([[0.5], [10.5]])))
    1.0
    >>> arbf.get_config().fast_paths
    True
    """
    token = _CONFIG.set(_updated(fast_paths, working_memory, n_threads))
    try:
        yield _CONFIG.get()
    finally:
        _CONFIG.reset(token)
