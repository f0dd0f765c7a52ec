r"""Product quantization (Jégou, Douze & Schmid 2011) on the batched K-Means path.

A vector :math:`x \in \mathbb R^d` is cut into ``M`` sub-vectors of ``d/M``
coordinates, :math:`x = (x^{(1)}, \dots, x^{(M)})`, and sub-space ``m`` gets its own
codebook of ``k`` codewords :math:`c^{(m)}_1 \dots c^{(m)}_k`, the K-Means centers of the
sub-vectors :math:`x_i^{(m)}`.  Training the ``M`` codebooks is one call of the batched
:func:`arbf.kmeans` on the ``(M, n, d/M)`` view of the data: M independent problems in
batched matrix products, not M calls one after another.  A vector is encoded as the
indices of its nearest codewords, :math:`q_m(x) = \operatorname{argmin}_j \lVert x^{(m)} -
c^{(m)}_j\rVert^2`, and decoded by concatenating them; the squared error of
:math:`x \mapsto \operatorname{decode}(\operatorname{encode}(x))` summed over the training
set is the sum of the M sub-space inertias.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import Array, array_namespace, device_of
from .._math import seam
from .._validation import Interval, as_array, check_data, check_param
from .batched import kmeans_batched
from .results import BatchedKMeansResult

__all__ = ["ProductQuantizer", "pq_train"]


def _split(X: Array, M: int, *, xp: Any) -> Array:
    """``(n, d) -> (M, n, d/M)``: sub-space ``m`` holds coordinates ``m d/M .. (m+1) d/M``."""
    n, d = X.shape
    return xp.permute_dims(xp.reshape(X, (n, M, d // M)), (1, 0, 2))


@dataclass(frozen=True)
class ProductQuantizer:
    r"""Trained product-quantization codebooks; what :func:`arbf.pq_train` returns.

    Attributes
    ----------
    codebooks : array of shape (n_subspaces, n_codes, n_features // n_subspaces)
        :math:`c^{(m)}_j`, in the namespace, device and dtype of the training data.
    inertia : numpy array of shape (n_subspaces,)
        Training inertia of each sub-space,
        :math:`\sum_i \min_j \lVert x_i^{(m)} - c^{(m)}_j\rVert^2`.
    kmeans : BatchedKMeansResult
        The batched K-Means run (labels, iterations, convergence per sub-space).
    """

    codebooks: Array
    inertia: np.ndarray
    kmeans: BatchedKMeansResult

    @property
    def n_subspaces(self) -> int:
        return int(self.codebooks.shape[0])

    @property
    def n_codes(self) -> int:
        return int(self.codebooks.shape[1])

    @property
    def n_features(self) -> int:
        return int(self.codebooks.shape[0] * self.codebooks.shape[2])

    def _data(self, X: Any) -> tuple[Array, Any]:
        X, xp = check_data(X)
        if X.shape[1] != self.n_features:
            raise ValueError(
                f"X has {X.shape[1]} features; the codebooks were trained on {self.n_features}"
            )
        return xp.astype(X, self.codebooks.dtype), xp

    def encode(self, X: Any, *, working_memory: Any = None) -> Array:
        r"""Codes of the rows of ``X``: :math:`q_m(x_i) = \operatorname{argmin}_j
        \lVert x_i^{(m)} - c^{(m)}_j\rVert^2` (ties to the lowest index).

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
        working_memory : float, optional
            Memory budget in MiB for one chunk's temporaries.

        Returns
        -------
        codes : array of shape (n_samples, n_subspaces)
            ``uint8`` when ``n_codes <= 256``, else ``int32``; in ``X``'s namespace.
        """
        X, xp = self._data(X)
        labels, _ = seam.batched_assign_inertia(
            _split(X, self.n_subspaces, xp=xp), self.codebooks, None, xp=xp,
            working_memory=working_memory,
        )  # fmt: skip
        dtype = xp.uint8 if self.n_codes <= 256 else xp.int32
        return xp.astype(xp.permute_dims(labels, (1, 0)), dtype)

    def decode(self, codes: Any) -> Array:
        r"""Vectors from codes: :math:`\hat x_i = (c^{(1)}_{q_{i1}}, \dots,
        c^{(M)}_{q_{iM}})`.

        Parameters
        ----------
        codes : integer array of shape (n_samples, n_subspaces)

        Returns
        -------
        X_hat : array of shape (n_samples, n_features)
            In the namespace, device and dtype of the codebooks.
        """
        codes = as_array(codes, "codes")
        xp = array_namespace(self.codebooks)
        if codes.ndim != 2 or codes.shape[1] != self.n_subspaces:
            raise ValueError(
                f"codes must have shape (n, {self.n_subspaces}); got {tuple(codes.shape)}"
            )
        if not xp.isdtype(codes.dtype, "integral"):
            raise TypeError(f"codes must be integers; got dtype {codes.dtype}")
        codes = xp.asarray(codes, device=device_of(self.codebooks))
        n = codes.shape[0]
        labels = xp.astype(xp.permute_dims(codes, (1, 0)), xp.int64)
        if n and not bool(xp.all((labels >= 0) & (labels < self.n_codes))):
            raise ValueError(f"codes must lie in [0, {self.n_codes})")
        rows = seam.batched_gather_centers(self.codebooks, labels, xp=xp)  # (M, n, d/M)
        return xp.reshape(xp.permute_dims(rows, (1, 0, 2)), (n, self.n_features))


def pq_train(
    X: Any,
    n_subspaces: int,
    n_codes: int = 256,
    *,
    init: Any = "k-means++",
    n_init: int | str = "auto",
    max_iter: int = 25,
    tol: float = 1e-4,
    random_state: Any = None,
    working_memory: Any = None,
) -> ProductQuantizer:
    r"""Train product-quantization codebooks: one K-Means per sub-space, all at once.

    The ``d`` coordinates are cut into ``n_subspaces`` = M consecutive blocks of ``d/M``;
    codebook ``m`` is :func:`arbf.kmeans` (``n_codes`` = k clusters) of the sub-vectors
    :math:`x_i^{(m)}`, minimising :math:`\sum_i \min_j \lVert x_i^{(m)} - c_j^{(m)}\rVert^2`.
    The M problems run together on the batched path (``X`` viewed as ``(M, n, d/M)``):
    every Lloyd iteration is one batched distance product for all sub-spaces.  The total
    squared reconstruction error of the training data,
    :math:`\sum_i \lVert x_i - \operatorname{decode}(\operatorname{encode}(x_i))\rVert^2`,
    equals ``inertia.sum()``.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Any Array API array but Dask; ``n_features`` must be a multiple of ``n_subspaces``.
    n_subspaces : int
        M.
    n_codes : int, default 256
        Codewords per sub-space (256: one byte per sub-space, as faiss' 8-bit PQ).
    init : {"k-means++", "random", "k-means||", "anneal"} or array (M, k, d/M)
        As :func:`arbf.kmeans`; "k-means++" and "random" draw for every sub-space at once.
    n_init : "auto" or int
    max_iter : int, default 25
        Lloyd iterations per sub-space (faiss' default for PQ training).
    tol : float, default 1e-4
        scikit-learn's relative tolerance, per sub-space.
    random_state : int, Generator, sequence of M seeds, or None
        Sub-space ``m`` draws from ``np.random.default_rng(random_state).spawn(M)[m]``
        (see :func:`arbf.kmeans` with batched data).
    working_memory : float, optional
        Memory budget in MiB for one chunk's temporaries.

    Returns
    -------
    ProductQuantizer
        ``.codebooks`` (M, k, d/M), ``.encode``, ``.decode``, ``.inertia`` (M,).

    Examples
    --------
    >>> import numpy as np
    >>> import arbf
    >>> X = np.random.default_rng(0).normal(size=(500, 8))
    >>> pq = arbf.pq_train(X, 4, 16, random_state=0)
    >>> pq.codebooks.shape
    (4, 16, 2)
    >>> codes = pq.encode(X)
    >>> codes.shape, codes.dtype
    ((500, 4), dtype('uint8'))
    >>> err = float(((X - pq.decode(codes)) ** 2).sum())
    >>> bool(np.isclose(err, pq.inertia.sum()))
    True
    """
    X, xp = check_data(X)
    M = check_param("n_subspaces", n_subspaces, Interval(numbers.Integral, 1))
    k = check_param("n_codes", n_codes, Interval(numbers.Integral, 1))
    d = X.shape[1]
    if d % M:
        raise ValueError(f"n_features={d} is not a multiple of n_subspaces={M}")
    res = kmeans_batched(
        _split(X, M, xp=xp), k, init=init, n_init=n_init, max_iter=max_iter, tol=tol,
        random_state=random_state, working_memory=working_memory,
    )  # fmt: skip
    return ProductQuantizer(codebooks=res.centers, inertia=res.inertia, kmeans=res)
