"""The scikit-learn-style ``RBFKMeans`` estimator (work done by :func:`arbf.rbf_kmeans` and
:func:`arbf.anneal`)."""

from __future__ import annotations

import numbers
from typing import Any

from .._backend import Array, device_of, to_host
from .._drivers.engine import prepare, sphere_prepared
from .._drivers.init import array_init, resolve_init
from .._drivers.rbf import (
    _cosine_schedule,
    _default_schedule,
    anneal_prepared,
    check_schedule,
    check_update,
    fit_fixed_sigma,
)
from .._math import seam
from .._math.metric import COSINE, check_metric, to_sphere
from .._scaling import in_units, rescale, scale_for, sigma_in
from .._validation import (
    BOOLEAN,
    Interval,
    Options,
    check_fit_inputs,
    check_kind,
    check_param,
    check_random_state,
    check_sample_weight,
    real_scalar,
)
from ._base import CenterEstimator, ClusterMixin, TransformerMixin, free_energy_score

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
    init : str, array or callable, default="k-means++"
        Initial centers ("k-means++", "k-means||", "random" or "anneal"), as
        :class:`arbf.KMeans` (a callable is called as
        ``init(X, n_clusters, random_state=rng)``).
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
    algorithm : {"auto", "lloyd", "elkan", "hamerly", "yinyang"}, default="auto"
        How the hard Lloyd run that ends ``sigma="anneal"`` computes its assignments
        (as :class:`arbf.KMeans`; every value gives the same result).
    metric : {"sqeuclidean", "cosine"}, default="sqeuclidean"
        "cosine": the spherical relaxation (:func:`arbf.rbf_kmeans`, :func:`arbf.anneal`
        with ``metric="cosine"``): samples normalised to unit norm (in every method),
        logits :math:`(\cos(x_i, \mu_j) - 1)/\sigma`, centers of unit norm;
        ``inertia_``, :meth:`score` and :meth:`transform` use the cosine distance
        :math:`1 - \cos`, and ``sigma_``, ``sigmas_`` are cosine temperatures.

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
        algorithm: str = "auto",
        metric: str = "sqeuclidean",
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
        self.algorithm = algorithm
        self.metric = metric

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
        X, xp, k, w, rng = check_fit_inputs(X, self.n_clusters, sample_weight, self.random_state)
        d = X.shape[1]
        kind = check_kind(self.kind, ("softmax", "entmax15"))
        sigma = check_param(
            "sigma", real_scalar(self.sigma, "sigma"), Options("anneal"), Interval(numbers.Real, 0)
        )
        annealing = sigma == "anneal"
        lr = check_update(self.update, self.lr)
        max_iter = check_param("max_iter", self.max_iter, Interval(numbers.Integral, 1))
        tol = check_param("tol", self.tol, Interval(numbers.Real, 0))
        verbose = check_param("verbose", self.verbose, BOOLEAN, Interval(numbers.Integral, 0))
        schedule = None if self.schedule is None else check_schedule(self.schedule)
        algorithm = check_param("algorithm", self.algorithm, Options(*seam.ALGORITHMS))
        wm = self.working_memory
        cosine = check_metric(self.metric) == COSINE
        if cosine:
            X = to_sphere(X, xp=xp)
            prep = sphere_prepared(X, xp=xp, tol=tol)
            C0 = resolve_init(
                self.init, k, X=X, Xc=X, mean=None, w=w, rng=rng, xp=xp, working_memory=wm
            )()
            C0 = to_sphere(C0, xp=xp, name="init")
        else:
            prep = prepare(X, xp=xp, tol=tol, others=(array_init(self.init, k, X, xp=xp),))
            C0 = resolve_init(
                self.init, k, X=X, Xc=prep.X, mean=prep.mean, scale=prep.scale, w=w,
                rng=rng, xp=xp, working_memory=wm,
            )()  # fmt: skip
        for attr in ("path_", "sigmas_"):
            if hasattr(self, attr):
                delattr(self, attr)
        if annealing:
            if schedule is None:
                if cosine:
                    schedule = _cosine_schedule(
                        prep.X, C0, w, xp=xp, kind=kind, sigma_max=None, sigma_min=None,
                        n_levels=None,
                    )  # fmt: skip
                else:
                    schedule = _default_schedule(
                        prep.X, C0, w, xp=xp, kind=kind, sigma_max=None, sigma_min=None,
                        n_levels=None, scale=prep.scale,
                    )  # fmt: skip
            res = anneal_prepared(
                prep, C0, w, xp=xp, kind=kind, sigmas=schedule, max_iter=max_iter, lr=lr,
                finish=True, perturbation=1e-2, rng=check_random_state(0),
                working_memory=wm, verbose=bool(verbose), algorithm=algorithm, cosine=cosine,
            )  # fmt: skip
            C = res.centers
            self.path_ = res.path
            self.sigmas_ = res.sigmas
            self.sigma_ = float(res.sigmas[-1])
            self.n_iter_ = res.n_iter + (res.kmeans.n_iter if res.kmeans else 0)
        else:
            fp = fit_fixed_sigma(
                prep.X, C0, w, xp=xp, sigma=prep.sigma_in(float(sigma)), kind=kind,
                max_iter=max_iter, tol=prep.tol, lr=lr, working_memory=wm,
                verbose=bool(verbose), scale=prep.scale, cosine=cosine,
            )  # fmt: skip
            C = prep.to_data(fp.centers)
            self.sigma_ = float(sigma)
            self.n_iter_ = int(fp.n_iter)
        self._reset_input_meta(X_raw, d)
        self.cluster_centers_ = C
        # the labels as predict computes them (data and centers rescaled alike)
        s = scale_for(seam.extent(X, C, xp=xp), X.dtype, xp=xp)
        self.labels_, J = seam.assign_inertia(
            rescale(X, s), rescale(C, s), w, xp=xp, working_memory=wm
        )
        self.inertia_ = in_units(float(to_host(J)), s) * (0.5 if cosine else 1.0)
        return self

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> Array:
        """Fit, then return ``labels_``."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def predict(self, X: Any) -> Array:
        """Nearest center of each sample (= the most responsible one, for every σ)."""
        X, C, xp, _ = self._validate_on_metric(X)
        labels, _ = seam.assign(X, C, xp=xp, working_memory=self.working_memory)
        return labels

    def predict_proba(self, X: Any) -> Array:
        """Responsibilities ``r_ij`` at ``sigma_`` (rows sum to 1; entmax-1.5 is sparse)."""
        X, C, xp, s = self._validate_on_metric(X)
        return seam.responsibilities(
            X, C, sigma=sigma_in(self.sigma_ / self._half(), s), kind=self.kind, xp=xp,
            working_memory=self.working_memory,
        )  # fmt: skip

    def transform(self, X: Any) -> Array:
        """Euclidean distance of each sample to each center (chunked); with
        ``metric="cosine"`` the cosine distance ``1 - cos``."""
        X, C, xp, s = self._validate_on_metric(X)
        D = self._distances(X, C, xp=xp, scale=s)
        return D * D / 2 if self._half() != 1.0 else D

    def fit_transform(self, X: Any, y: Any = None, sample_weight: Any = None) -> Array:
        """Fit, then return :meth:`transform` of the same data."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        r"""Opposite of the free energy at ``sigma_``: :math:`-F_\sigma(\mu)` (higher is better).

        :math:`F_\sigma \le J`, and equals J at σ = 0.
        """
        X, C, xp, s = self._validate_on_metric(X)
        w = check_sample_weight(
            sample_weight, X.shape[0], xp=xp, dtype=X.dtype, device=device_of(X), like=X
        )
        return -free_energy_score(
            X, C, w, sigma=self.sigma_ / self._half(), kind=self.kind, scale=s, xp=xp,
            working_memory=self.working_memory,
        ) * self._half()  # fmt: skip
