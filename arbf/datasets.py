"""Seeded synthetic geometries for clustering experiments (SPEC §3).

Each generator draws its samples on the host from one NumPy :class:`~numpy.random.Generator`
(so a seed gives the same data on every backend), then returns ``(X, y)`` in the namespace,
dtype and device asked for:

- :func:`make_blobs` — isotropic Gaussian blobs,
- :func:`make_anisotropic` — the same blobs under a linear shear,
- :func:`make_varied` — blobs of unequal variances,
- :func:`make_unbalanced` — blobs of very unequal sizes,
- :func:`make_moons` — two interleaving half circles,
- :func:`make_circles` — two concentric circles,
- :func:`make_highdim` — a well separated Gaussian mixture in 10 dimensions.

``X`` is ``(n_samples, n_features)`` floating (float64 by default, float32 where the
backend has no float64); ``y`` is the ``(n_samples,)`` ground-truth component of each
sample, in the namespace's default integer dtype. :data:`DATASETS` lists them with the
default sizes and numbers of clusters used by ``python -m arbf reproduce``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ._backend import Array, array_namespace, from_host, has_float64
from ._validation import Interval, check_param, check_random_state

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "make_anisotropic",
    "make_blobs",
    "make_circles",
    "make_highdim",
    "make_moons",
    "make_unbalanced",
    "make_varied",
]


# --------------------------------------------------------------------------------------
# host -> requested namespace / dtype / device
# --------------------------------------------------------------------------------------


def _namespace(xp: Any) -> ModuleType:
    """The array-api-compat namespace for a module such as ``torch`` or ``jax.numpy``."""
    if xp is None:
        return array_namespace(np.empty(0))
    try:
        return array_namespace(xp.asarray([0.0]))
    except Exception as exc:
        raise TypeError(
            f"xp must be an array namespace such as numpy or torch, got {xp!r}"
        ) from exc


def _float_dtype(xp: ModuleType, dtype: Any, device: Any) -> Any:
    if dtype is None:
        return xp.float64 if has_float64(xp, device) else xp.float32
    if isinstance(dtype, str):
        if not hasattr(xp, dtype):
            raise ValueError(f"dtype {dtype!r} is not a dtype of {xp.__name__}")
        dtype = getattr(xp, dtype)
    if not xp.isdtype(dtype, "real floating"):
        raise ValueError(f"dtype must be a real floating dtype, got {dtype!r}")
    return dtype


def _index_dtype(xp: ModuleType, device: Any) -> Any:
    try:
        return xp.__array_namespace_info__().default_dtypes(device=device)["integral"]
    except Exception:  # pragma: no cover - namespace without the inspection API
        return xp.int64


def _check_n(n_samples: Any, minimum: int) -> int:
    return int(check_param("n_samples", n_samples, Interval(numbers.Integral, minimum)))


def _split(n_samples: int, proportions: Sequence[float]) -> list[int]:
    """Integer sizes summing to ``n_samples``, each >= 1, proportional to ``proportions``."""
    p = np.asarray(proportions, dtype=np.float64)
    p = p / p.sum()
    sizes = np.maximum(1, np.floor(p * n_samples + 1e-9).astype(np.int64))
    sizes[int(np.argmax(p))] += n_samples - int(sizes.sum())
    return [int(s) for s in sizes]


def _finish(
    X: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    *,
    xp: Any,
    dtype: Any,
    device: Any,
) -> tuple[Array, Array]:
    """Shuffle the rows (so components are interleaved) and move to the namespace asked for."""
    order = rng.permutation(X.shape[0])
    X, y = X[order], y[order]
    ns = _namespace(xp)
    fdt = _float_dtype(ns, dtype, device)
    Xo = from_host(np.ascontiguousarray(X, dtype=np.float64), xp=ns, device=device, dtype=fdt)
    yo = from_host(y.astype(np.int64), xp=ns, device=device, dtype=_index_dtype(ns, device))
    return Xo, yo


def _gaussian_blobs(
    rng: np.random.Generator,
    sizes: Sequence[int],
    centers: np.ndarray,
    stds: Sequence[float],
) -> tuple[np.ndarray, np.ndarray]:
    parts, labels = [], []
    for j, (m, c, s) in enumerate(zip(sizes, centers, stds, strict=True)):
        parts.append(c + s * rng.standard_normal((m, centers.shape[1])))
        labels.append(np.full(m, j, dtype=np.int64))
    return np.concatenate(parts, axis=0), np.concatenate(labels)


def _blob_centers(
    rng: np.random.Generator, k: int, d: int, *, box: float = 10.0, min_sep: float = 6.0
) -> np.ndarray:
    """``k`` centers uniform in ``[-box, box]^d``, redrawn until pairwise ``>= min_sep`` apart."""
    for _ in range(1000):
        C = rng.uniform(-box, box, size=(k, d))
        gaps = np.sqrt(((C[:, None, :] - C[None, :, :]) ** 2).sum(-1))
        if k < 2 or gaps[np.triu_indices(k, 1)].min() >= min_sep:
            return C
    return C  # pragma: no cover - only for tiny boxes


# --------------------------------------------------------------------------------------
# the generators
# --------------------------------------------------------------------------------------


def make_blobs(
    n_samples: int = 600,
    *,
    n_clusters: int = 3,
    n_features: int = 2,
    cluster_std: float = 1.0,
    random_state: Any = None,
    xp: Any = None,
    dtype: Any = None,
    device: Any = None,
) -> tuple[Array, Array]:
    """Isotropic Gaussian blobs of equal sizes.

    ``n_clusters`` centers drawn uniformly in ``[-10, 10]^n_features`` (redrawn until they
    are at least 6 apart); each sample is its component's center plus ``cluster_std``
    times a standard normal vector.

    Parameters
    ----------
    n_samples : int
        Total number of samples (split as evenly as possible between components).
    n_clusters : int
        Number of components.
    n_features : int
        Dimension of the samples.
    cluster_std : float
        Standard deviation of every component.
    random_state : int, numpy Generator or None
        Seed of the host generator that draws everything.
    xp : array namespace, optional
        Where to put the output (``numpy`` by default); e.g. ``torch``, ``jax.numpy``,
        ``dask.array``, ``array_api_strict``.
    dtype : dtype or str, optional
        Floating dtype of ``X``; default float64 (float32 where ``xp`` has no float64).
    device : optional
        Device of the outputs (the namespace's default device by default).

    Returns
    -------
    X : array of shape (n_samples, n_features)
    y : array of shape (n_samples,)
        The component each sample was drawn from (default integer dtype).

    Examples
    --------
    >>> import array_api_strict as xp
    >>> from arbf.datasets import make_blobs
    >>> X, y = make_blobs(90, random_state=0, xp=xp)
    >>> X.shape, X.dtype, y.shape
    ((90, 2), array_api_strict.float64, (90,))
    >>> int(xp.max(y)) + 1
    3
    """
    n = _check_n(n_samples, n_clusters)
    rng = check_random_state(random_state)
    centers = _blob_centers(rng, n_clusters, n_features)
    sizes = _split(n, [1.0] * n_clusters)
    X, y = _gaussian_blobs(rng, sizes, centers, [cluster_std] * n_clusters)
    return _finish(X, y, rng, xp=xp, dtype=dtype, device=device)


_SHEAR = np.array([[0.6, -0.6], [-0.4, 0.8]])


def make_anisotropic(
    n_samples: int = 600,
    *,
    random_state: Any = None,
    xp: Any = None,
    dtype: Any = None,
    device: Any = None,
) -> tuple[Array, Array]:
    """Three Gaussian blobs sheared by one linear map (elongated, tilted clusters).

    The isotropic blobs of :func:`make_blobs` (2-D, ``cluster_std=1``) multiplied on the
    right by ``[[0.6, -0.6], [-0.4, 0.8]]`` — the anisotropic example of scikit-learn's
    K-Means assumptions demo, where K-Means' spherical bias shows.

    Parameters
    ----------
    n_samples : int
    random_state : int, numpy Generator or None
    xp : array namespace, optional
    dtype : dtype or str, optional
    device : optional
        As in :func:`make_blobs`.

    Returns
    -------
    X : array of shape (n_samples, 2)
    y : array of shape (n_samples,)

    Examples
    --------
    >>> import array_api_strict as xp
    >>> from arbf.datasets import make_anisotropic
    >>> X, y = make_anisotropic(60, random_state=1, xp=xp, dtype="float32")
    >>> X.shape, X.dtype
    ((60, 2), array_api_strict.float32)
    """
    n = _check_n(n_samples, 3)
    rng = check_random_state(random_state)
    centers = _blob_centers(rng, 3, 2)
    X, y = _gaussian_blobs(rng, _split(n, [1.0, 1.0, 1.0]), centers, [1.0, 1.0, 1.0])
    return _finish(X @ _SHEAR, y, rng, xp=xp, dtype=dtype, device=device)


def make_varied(
    n_samples: int = 600,
    *,
    random_state: Any = None,
    xp: Any = None,
    dtype: Any = None,
    device: Any = None,
) -> tuple[Array, Array]:
    """Three 2-D Gaussian blobs of unequal variances (standard deviations 1, 2.5, 0.5).

    Parameters
    ----------
    n_samples : int
    random_state : int, numpy Generator or None
    xp : array namespace, optional
    dtype : dtype or str, optional
    device : optional
        As in :func:`make_blobs`.

    Returns
    -------
    X : array of shape (n_samples, 2)
    y : array of shape (n_samples,)

    Examples
    --------
    >>> import array_api_strict as xp
    >>> from arbf.datasets import make_varied
    >>> X, y = make_varied(60, random_state=2, xp=xp)
    >>> X.shape
    (60, 2)
    """
    n = _check_n(n_samples, 3)
    rng = check_random_state(random_state)
    centers = _blob_centers(rng, 3, 2, box=12.0)
    X, y = _gaussian_blobs(rng, _split(n, [1.0, 1.0, 1.0]), centers, [1.0, 2.5, 0.5])
    return _finish(X, y, rng, xp=xp, dtype=dtype, device=device)


def make_unbalanced(
    n_samples: int = 610,
    *,
    random_state: Any = None,
    xp: Any = None,
    dtype: Any = None,
    device: Any = None,
) -> tuple[Array, Array]:
    """Three 2-D unit-variance Gaussian blobs of sizes in the ratio 50 : 10 : 1.

    Parameters
    ----------
    n_samples : int
        At least 3 (every component keeps at least one sample).
    random_state : int, numpy Generator or None
    xp : array namespace, optional
    dtype : dtype or str, optional
    device : optional
        As in :func:`make_blobs`.

    Returns
    -------
    X : array of shape (n_samples, 2)
    y : array of shape (n_samples,)

    Examples
    --------
    >>> import array_api_strict as xp
    >>> from arbf.datasets import make_unbalanced
    >>> X, y = make_unbalanced(610, random_state=3, xp=xp)
    >>> [int(xp.sum(xp.astype(y == j, xp.int64))) for j in range(3)]
    [500, 100, 10]
    """
    n = _check_n(n_samples, 3)
    rng = check_random_state(random_state)
    centers = _blob_centers(rng, 3, 2)
    X, y = _gaussian_blobs(rng, _split(n, [50.0, 10.0, 1.0]), centers, [1.0, 1.0, 1.0])
    return _finish(X, y, rng, xp=xp, dtype=dtype, device=device)


def make_moons(
    n_samples: int = 400,
    *,
    noise: float = 0.08,
    random_state: Any = None,
    xp: Any = None,
    dtype: Any = None,
    device: Any = None,
) -> tuple[Array, Array]:
    """Two interleaving half circles (radius 1) with Gaussian noise of std ``noise``.

    The upper moon is centred at ``(0, 0)``, the lower one at ``(1, 0.5)`` and flipped; the
    angle of each sample is uniform on ``[0, π]``.

    Parameters
    ----------
    n_samples : int
    noise : float
        Standard deviation of the Gaussian noise added to every coordinate.
    random_state : int, numpy Generator or None
    xp : array namespace, optional
    dtype : dtype or str, optional
    device : optional
        As in :func:`make_blobs`.

    Returns
    -------
    X : array of shape (n_samples, 2)
    y : array of shape (n_samples,)

    Examples
    --------
    >>> import array_api_strict as xp
    >>> from arbf.datasets import make_moons
    >>> X, y = make_moons(50, random_state=4, xp=xp)
    >>> X.shape, y.shape
    ((50, 2), (50,))
    """
    n = _check_n(n_samples, 2)
    rng = check_random_state(random_state)
    n_out, n_in = _split(n, [1.0, 1.0])
    t_out = rng.uniform(0.0, np.pi, n_out)
    t_in = rng.uniform(0.0, np.pi, n_in)
    outer = np.stack([np.cos(t_out), np.sin(t_out)], axis=1)
    inner = np.stack([1.0 - np.cos(t_in), 0.5 - np.sin(t_in)], axis=1)
    X = np.concatenate([outer, inner]) + noise * rng.standard_normal((n, 2))
    y = np.concatenate([np.zeros(n_out, np.int64), np.ones(n_in, np.int64)])
    return _finish(X, y, rng, xp=xp, dtype=dtype, device=device)


def make_circles(
    n_samples: int = 400,
    *,
    factor: float = 0.5,
    noise: float = 0.05,
    random_state: Any = None,
    xp: Any = None,
    dtype: Any = None,
    device: Any = None,
) -> tuple[Array, Array]:
    """Two concentric circles (radii 1 and ``factor``) with Gaussian noise of std ``noise``.

    Parameters
    ----------
    n_samples : int
    factor : float
        Radius of the inner circle, in ``(0, 1)``.
    noise : float
        Standard deviation of the Gaussian noise added to every coordinate.
    random_state : int, numpy Generator or None
    xp : array namespace, optional
    dtype : dtype or str, optional
    device : optional
        As in :func:`make_blobs`.

    Returns
    -------
    X : array of shape (n_samples, 2)
    y : array of shape (n_samples,)
        0 for the outer circle, 1 for the inner one.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> from arbf.datasets import make_circles
    >>> X, y = make_circles(40, random_state=5, xp=xp)
    >>> X.shape
    (40, 2)
    """
    n = _check_n(n_samples, 2)
    factor = check_param("factor", factor, Interval(numbers.Real, 0, 1, "neither"))
    rng = check_random_state(random_state)
    n_out, n_in = _split(n, [1.0, 1.0])
    t_out = rng.uniform(0.0, 2.0 * np.pi, n_out)
    t_in = rng.uniform(0.0, 2.0 * np.pi, n_in)
    outer = np.stack([np.cos(t_out), np.sin(t_out)], axis=1)
    inner = factor * np.stack([np.cos(t_in), np.sin(t_in)], axis=1)
    X = np.concatenate([outer, inner]) + noise * rng.standard_normal((n, 2))
    y = np.concatenate([np.zeros(n_out, np.int64), np.ones(n_in, np.int64)])
    return _finish(X, y, rng, xp=xp, dtype=dtype, device=device)


def make_highdim(
    n_samples: int = 1000,
    *,
    n_clusters: int = 5,
    n_features: int = 10,
    random_state: Any = None,
    xp: Any = None,
    dtype: Any = None,
    device: Any = None,
) -> tuple[Array, Array]:
    """A Gaussian mixture in ``n_features`` dimensions with random covariances.

    Centers are drawn uniformly in ``[-5, 5]^n_features``; component ``j`` is
    ``N(c_j, A_j A_j^T)`` with ``A_j`` a random matrix with i.i.d. ``N(0, 1 / d)``
    entries (elliptical clusters of unit average variance), equal sizes.

    Parameters
    ----------
    n_samples : int
    n_clusters : int
    n_features : int
    random_state : int, numpy Generator or None
    xp : array namespace, optional
    dtype : dtype or str, optional
    device : optional
        As in :func:`make_blobs`.

    Returns
    -------
    X : array of shape (n_samples, n_features)
    y : array of shape (n_samples,)

    Examples
    --------
    >>> import array_api_strict as xp
    >>> from arbf.datasets import make_highdim
    >>> X, y = make_highdim(100, random_state=6, xp=xp)
    >>> X.shape
    (100, 10)
    """
    n = _check_n(n_samples, n_clusters)
    rng = check_random_state(random_state)
    d = int(n_features)
    centers = rng.uniform(-5.0, 5.0, size=(n_clusters, d))
    parts, labels = [], []
    for j, m in enumerate(_split(n, [1.0] * n_clusters)):
        A = rng.standard_normal((d, d)) / np.sqrt(d)
        parts.append(centers[j] + rng.standard_normal((m, d)) @ A.T)
        labels.append(np.full(m, j, dtype=np.int64))
    return _finish(
        np.concatenate(parts), np.concatenate(labels), rng, xp=xp, dtype=dtype, device=device
    )


# --------------------------------------------------------------------------------------
# the registry
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """One entry of :data:`DATASETS`.

    Attributes
    ----------
    name : str
        Registry key (also the ``--datasets`` name of ``python -m arbf reproduce``).
    make : callable
        The generator, ``make(n_samples, *, random_state, xp, dtype, device)``.
    n_samples : int
        Default size used by the reproduction.
    n_clusters : int
        Number of clusters ``k`` the reproduction fits.
    title : str
        Human-readable name.
    """

    name: str
    make: Callable[..., tuple[Array, Array]]
    n_samples: int
    n_clusters: int
    title: str

    def __call__(self, n_samples: int | None = None, **kwargs: Any) -> tuple[Array, Array]:
        """Generate the data set (``n_samples`` defaults to :attr:`n_samples`)."""
        return self.make(self.n_samples if n_samples is None else n_samples, **kwargs)


#: The synthetic geometries of SPEC §3, by name, with the default size and ``k``.
DATASETS: dict[str, DatasetSpec] = {
    s.name: s
    for s in (
        DatasetSpec("blobs", make_blobs, 600, 3, "isotropic blobs"),
        DatasetSpec("anisotropic", make_anisotropic, 600, 3, "anisotropic blobs"),
        DatasetSpec("varied", make_varied, 600, 3, "unequal variances"),
        DatasetSpec("unbalanced", make_unbalanced, 610, 3, "unbalanced sizes"),
        DatasetSpec("moons", make_moons, 400, 2, "two moons"),
        DatasetSpec("circles", make_circles, 400, 2, "concentric circles"),
        DatasetSpec("highdim", make_highdim, 1000, 5, "10-D mixture"),
    )
}
