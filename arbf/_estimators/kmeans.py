"""The scikit-learn-style ``KMeans`` estimator (the work is done by :func:`arbf.kmeans`)."""

from __future__ import annotations

from typing import Any

from .._backend import Array, device_of, to_host
from .._drivers.kmeans import kmeans
from .._math import seam
from .._math.batched import is_batched
from .._math.metric import COSINE
from .._scaling import in_units
from .._validation import check_sample_weight
from ._base import CenterEstimator, ClusterMixin, TransformerMixin

__all__ = ["KMeans"]


class KMeans(ClusterMixin, TransformerMixin, CenterEstimator):
    r"""K-Means clustering (Lloyd's algorithm) with scikit-learn's semantics, on any array.

    Minimises the inertia :math:`J(\mu) = \sum_i w_i \min_j \lVert x_i - \mu_j\rVert^2`;
    :meth:`fit` delegates to :func:`arbf.kmeans` (see there for the exact semantics:
    greedy k-means++, ``n_init="auto"``, tolerance relative to the mean feature
    variance, strict label convergence, empty-cluster relocation).  Fitted arrays and
    the outputs of every method stay in the namespace, on the device and in the floating
    dtype of the input (integer and bool input is promoted to the default float).

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    init : str, array of shape (n_clusters, n_features) or callable, default="k-means++"
        Initial centers: "k-means++", "k-means||", "random" or "anneal" (deterministic
        annealing then center swaps, see :func:`arbf.kmeans`); a callable is called as
        ``init(X, n_clusters, random_state=rng)``.
    n_init : "auto" or int, default="auto"
        Number of runs; "auto" is 1 for "k-means++", "anneal" and arrays, 10 otherwise.
    max_iter : int, default=300
        Maximum number of Lloyd iterations of one run.
    tol : float, default=1e-4
        Relative tolerance on the squared center shift (scaled by the mean feature
        variance).
    verbose : bool or int, default=False
        Print every iteration (as scikit-learn).
    copy_x : bool, default=True
        Accepted for scikit-learn compatibility: arbf never modifies ``X`` (dense data
        are centred into a new array; sparse data are not centred), whatever its value.
    random_state : int, numpy Generator, RandomState or None, default=None
        Seeds the host NumPy Generator of the initialisation: the same integer gives the
        same initial centers on every backend.
    working_memory : float, "auto" or None, default=None
        Memory budget in MiB for one chunk's temporaries (None: the configuration's,
        ``"auto"`` unless set: 64 MiB on the CPU, a share of the free memory on a GPU).
    algorithm : {"auto", "lloyd", "elkan", "hamerly", "yinyang"}, default="auto"
        How the assignments are computed; every value gives the same clustering (see
        :func:`arbf.kmeans`).  "lloyd" and "elkan" are scikit-learn's names.
    metric : {"sqeuclidean", "cosine"}, default="sqeuclidean"
        "cosine": spherical K-Means (see :func:`arbf.kmeans`).  Samples are normalised
        to unit norm (in :meth:`predict`, :meth:`transform` and :meth:`score` too); the
        centers have unit norm; ``inertia_`` and :meth:`score` use the cosine distance
        :math:`1 - \cos(x, \mu)`, and :meth:`transform` returns it.

    Attributes
    ----------
    cluster_centers_ : array of shape (n_clusters, n_features)
    labels_ : array of shape (n_samples,)
        Index of the nearest center of every training sample.
    inertia_ : float
        Weighted sum of squared distances of the samples to their center.
    n_iter_ : int
        Lloyd iterations of the best run.
    converged_ : bool
        Whether the best run converged (rather than stopping at ``max_iter``).
    history_ : dict of numpy arrays
        Per-iteration ``"inertia"`` and ``"center_shift"`` of the best run.
    n_features_in_ : int
    feature_names_in_ : numpy array of str
        Only when fitted on a data frame with string column names.

    See Also
    --------
    arbf.kmeans : the function this estimator calls.
    sklearn.cluster.KMeans : the reference semantics.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0, 0.0], [0.0, 1.0], [9.0, 9.0], [9.0, 10.0]])
    >>> km = arbf.KMeans(n_clusters=2, random_state=0).fit(X)
    >>> km.predict(xp.asarray([[0.0, 0.2], [8.0, 9.0]])) == km.labels_[::2]
    Array([ True,  True], dtype=array_api_strict.bool)
    >>> km.inertia_, km.score(X)
    (1.0, -1.0)
    >>> km.transform(X).shape
    (4, 2)
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Any = "k-means++",
        n_init: int | str = "auto",
        max_iter: int = 300,
        tol: float = 1e-4,
        verbose: bool = False,
        random_state: Any = None,
        copy_x: bool = True,
        working_memory: float | None = None,
        algorithm: str = "auto",
        metric: str = "sqeuclidean",
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.working_memory = working_memory
        self.algorithm = algorithm
        self.metric = metric

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> KMeans:
        """Compute the K-Means clustering of ``X``.

        Parameters
        ----------
        X : array or scipy.sparse matrix of shape (n_samples, n_features)
            Any Array API array, a list, a data frame or a :mod:`scipy.sparse` matrix.
        y : ignored
        sample_weight : array of shape (n_samples,), optional
            Non-negative weights (initialisation, update and inertia).

        Returns
        -------
        self : KMeans
        """
        if is_batched(X):  # the estimator contract is one 2-D problem
            raise ValueError(
                f"{type(self).__name__}.fit takes X of shape (n_samples, n_features), got "
                f"shape {tuple(X.shape)}; for B problems at once call arbf.kmeans(X, k) on "
                "X of shape (B, n_samples, n_features)"
            )
        res = kmeans(
            X,
            self.n_clusters,
            init=self.init,
            n_init=self.n_init,
            max_iter=self.max_iter,
            tol=self.tol,
            sample_weight=sample_weight,
            random_state=self.random_state,
            verbose=self.verbose,
            copy_x=self.copy_x,
            working_memory=self.working_memory,
            algorithm=self.algorithm,
            metric=self.metric,
        )
        self._reset_input_meta(X, res.centers.shape[1])
        self._n_init = len(res.n_init_inertia)
        self.cluster_centers_ = res.centers
        self.labels_ = res.labels
        self.inertia_ = float(res.inertia)
        self.n_iter_ = int(res.n_iter)
        self.converged_ = bool(res.converged)
        self.history_ = res.history
        return self

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> Array:
        """Fit, then return ``labels_``."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def predict(self, X: Any) -> Array:
        """Index of the nearest center of each sample of ``X`` (ties to the lowest).

        Returns
        -------
        labels : array of shape (n_samples,)
            An integer array in the namespace and on the device of ``X``.
        """
        X, C, xp, _ = self._validate_on_metric(X)
        labels, _ = seam.assign(X, C, xp=xp, working_memory=self.working_memory)
        return labels

    def transform(self, X: Any) -> Array:
        r"""Euclidean (not squared) distance of each sample of ``X`` to each center; with
        ``metric="cosine"`` the cosine distance :math:`1 - \cos(x_i, \mu_j)`.

        Returns
        -------
        distances : array of shape (n_samples, n_clusters)
            In the namespace, device and floating dtype of ``X``; computed in chunks.
        """
        X, C, xp, s = self._validate_on_metric(X)
        D = self._distances(X, C, xp=xp, scale=s)
        return D * D / 2 if self.metric == COSINE else D

    def fit_transform(self, X: Any, y: Any = None, sample_weight: Any = None) -> Array:
        """Fit, then return :meth:`transform` of the same data."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        r"""Opposite of the inertia of ``X``: :math:`-\sum_i w_i \min_j \lVert x_i-\mu_j\rVert^2`.

        Returns
        -------
        score : float
            Larger is better (0 at best).
        """
        X, C, xp, s = self._validate_on_metric(X)
        w = check_sample_weight(
            sample_weight, X.shape[0], xp=xp, dtype=X.dtype, device=device_of(X), like=X
        )
        J = in_units(
            float(to_host(seam.inertia(X, C, w, xp=xp, working_memory=self.working_memory))), s
        )
        return -J / 2 if self.metric == COSINE else -J
