"""The scikit-learn-style ``RBFKMeans`` estimator (work done by :func:`arbf.rbf_kmeans` and
:func:`arbf.anneal`)."""

from __future__ import annotations

import numbers
from typing import Any

from .._backend import Array, device_of, to_host
from .._drivers.init import kmeans_plusplus_impl, random_init_impl
from .._drivers.kmeans import _mean_rows
from .._drivers.rbf import anneal, rbf_kmeans
from .._math.distances import assign
from .._math.objectives import inertia_impl
from .._math.rbf_objectives import soft_stats_impl
from .._math.responsibilities import responsibilities
from .._validation import (
    check_centers,
    check_data,
    check_kind,
    check_n_clusters,
    check_random_state,
    check_sample_weight,
    check_sigma,
)
from ._base import CenterEstimator, ClusterMixin, TransformerMixin

__all__ = ["RBFKMeans"]


class RBFKMeans(ClusterMixin, TransformerMixin, CenterEstimator):
    r"""Clustering with a normalised Gaussian RBF network at temperature σ, or annealed.

    The responsibilities of center :math:`j` for sample :math:`x_i` are a softmax or
    entmax-1.5 of the logits :math:`z_{ij} = -\lVert x_i-\mu_j\rVert^2/\sigma` (σ divides
    the squared distance; a Gaussian of width ``s`` is ``σ = 2 s²``).  With a float
    ``sigma`` the centers are trained to a fixed point of the free energy
    :math:`F_\sigma` (:func:`arbf.rbf_kmeans`); with ``sigma="anneal"`` σ is lowered
    along a schedule down to K-Means (:func:`arbf.anneal`), ending in an exact K-Means
    fixed point, and the path of centers is kept in ``path_``.

    Parameters
    ----------
    n_clusters : int, default=8
    sigma : float or "anneal", default="anneal"
    kind : {"softmax", "entmax15"}, default="softmax"
    init : {"k-means++", "random"}, array or callable, default="k-means++"
        Initial centers (a callable is called as ``init(X, n_clusters,
        random_state=rng)``).
    schedule : sequence of float, optional
        Temperatures for ``sigma="anneal"`` (default: :func:`arbf.anneal`'s, chosen
        from the data).
    max_iter : int, default=300
        Iterations at a fixed σ (per level when annealing).
    tol : float, default=1e-6
        Relative tolerance on the squared center shift.
    update : {"fixed_point", "gradient"}, default="fixed_point"
    lr : "lloyd" or float, default="lloyd"
    random_state : int, numpy Generator or None
    verbose : bool, default=False
    working_memory : float or None
        Memory budget in MiB for one chunk.

    Attributes
    ----------
    cluster_centers_ : array of shape (n_clusters, n_features)
    labels_ : array of shape (n_samples,)
        ``argmax_j r_ij`` = nearest center (Voronoi preservation).
    inertia_ : float
        K-Means distortion J of the training data at ``cluster_centers_``.
    sigma_ : float
        The temperature of ``predict_proba`` (the last level when annealing).
    n_iter_ : int
        Total iterations.
    path_ : numpy array (n_levels, n_clusters, n_features)
        Centers at the end of each level (``sigma="anneal"`` only).
    sigmas_ : numpy array (n_levels,)
        The levels (``sigma="anneal"`` only).
    n_features_in_ : int

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [1.0], [10.0], [11.0]])
    >>> est = arbf.RBFKMeans(2, sigma=0.5, kind="entmax15", random_state=0).fit(X)
    >>> xp.sort(est.cluster_centers_, axis=0)
    Array([[ 0.5],
           [10.5]], dtype=array_api_strict.float64)
    >>> est.predict_proba(xp.asarray([[0.5]])).shape
    (1, 2)
    """

    cluster_centers_: Array
    labels_: Array
    sigma_: float

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        sigma: float | str = "anneal",
        kind: str = "softmax",
        init: Any = "k-means++",
        schedule: Any = None,
        max_iter: int = 300,
        tol: float = 1e-6,
        update: str = "fixed_point",
        lr: Any = "lloyd",
        random_state: Any = None,
        verbose: bool = False,
        working_memory: float | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.sigma = sigma
        self.kind = kind
        self.init = init
        self.schedule = schedule
        self.max_iter = max_iter
        self.tol = tol
        self.update = update
        self.lr = lr
        self.random_state = random_state
        self.verbose = verbose
        self.working_memory = working_memory

    def _initial_centers(self, X: Array, w: Array | None, xp: Any) -> Array:
        rng = check_random_state(self.random_state)
        k = self.n_clusters
        dev = device_of(X)
        if isinstance(self.init, str):
            if self.init not in ("k-means++", "random"):
                raise ValueError(
                    f"init must be 'k-means++', 'random', an array or a callable, "
                    f"got {self.init!r}"
                )
            mean = _mean_rows(X, xp=xp)
            if self.init == "k-means++":
                C, _ = kmeans_plusplus_impl(
                    X - mean, k, w, rng, xp=xp, working_memory=self.working_memory
                )
            else:
                C, _ = random_init_impl(X - mean, k, w, rng, xp=xp)
            return C + mean
        given = self.init(X, k, random_state=rng) if callable(self.init) else self.init
        return check_centers(given, k, X.shape[1], xp=xp, dtype=X.dtype, device=dev, like=X)

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> RBFKMeans:
        """Train the centers on ``X``.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
        y : ignored
        sample_weight : array of shape (n_samples,), optional

        Returns
        -------
        self : RBFKMeans
        """
        X_raw = X
        X, xp = check_data(X)
        n, d = X.shape
        check_n_clusters(self.n_clusters, n)
        kind = check_kind(self.kind, ("softmax", "entmax15"))
        annealing = isinstance(self.sigma, str)
        if annealing and self.sigma != "anneal":
            raise ValueError(f"sigma must be a float >= 0 or 'anneal', got {self.sigma!r}")
        sigma = None if annealing else check_sigma(self.sigma)
        w = check_sample_weight(
            sample_weight, n, xp=xp, dtype=X.dtype, device=device_of(X), like=X
        )
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, numbers.Integral):
            raise ValueError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        C0 = self._initial_centers(X, w, xp)
        common = dict(
            sample_weight=w,
            tol=self.tol,
            update=self.update,
            lr=self.lr,
            working_memory=self.working_memory,
            verbose=bool(self.verbose),
        )
        for attr in ("path_", "sigmas_"):
            if hasattr(self, attr):
                delattr(self, attr)
        if annealing:
            res = anneal(
                X, C0, kind=kind, schedule=self.schedule, max_iter=self.max_iter, **common
            )
            C = res.centers
            self.path_ = res.path
            self.sigmas_ = res.sigmas
            self.sigma_ = float(res.sigmas[-1])
            self.n_iter_ = int(res.n_iter.sum()) + (res.kmeans.n_iter if res.kmeans else 0)
        else:
            assert sigma is not None
            r = rbf_kmeans(X, C0, sigma=sigma, kind=kind, max_iter=self.max_iter, **common)
            C = r.centers
            self.sigma_ = sigma
            self.n_iter_ = int(r.n_iter)
        self._reset_input_meta(X_raw, d)
        self.cluster_centers_ = C
        self.labels_, _ = assign(X, C, xp=xp, working_memory=self.working_memory)
        self.inertia_ = float(
            to_host(inertia_impl(X, C, w, xp=xp, working_memory=self.working_memory))
        )
        return self

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> Array:
        """Fit, then return ``labels_``."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def predict(self, X: Any) -> Array:
        """Nearest center of each sample (= the most responsible one, for every σ)."""
        X, C, xp = self._validate_after_fit(X)
        labels, _ = assign(X, C, xp=xp, working_memory=self.working_memory)
        return labels

    def predict_proba(self, X: Any) -> Array:
        """Responsibilities ``r_ij`` at ``sigma_`` (rows sum to 1; entmax-1.5 is sparse)."""
        X, C, _ = self._validate_after_fit(X)
        return responsibilities(
            X, C, sigma=self.sigma_, kind=self.kind, working_memory=self.working_memory
        )

    def transform(self, X: Any) -> Array:
        """Euclidean distance of each sample to each center (chunked)."""
        X, C, xp = self._validate_after_fit(X)
        return self._distances(X, C, xp=xp)

    def fit_transform(self, X: Any, y: Any = None, sample_weight: Any = None) -> Array:
        """Fit, then return :meth:`transform` of the same data."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        r"""Opposite of the free energy at ``sigma_``: :math:`-F_\sigma(\mu)` (higher is better).

        :math:`F_\sigma \le J`, and equals J at σ = 0.
        """
        X, C, xp = self._validate_after_fit(X)
        w = check_sample_weight(
            sample_weight, X.shape[0], xp=xp, dtype=X.dtype, device=device_of(X), like=X
        )
        st = soft_stats_impl(
            X,
            C,
            w,
            sigma=self.sigma_,
            kind="hard" if self.sigma_ == 0 else self.kind,
            xp=xp,
            working_memory=self.working_memory,
        )
        return -float(to_host(st.free_energy))
