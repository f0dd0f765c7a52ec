r"""Mini-batch estimators: ``MiniBatchKMeans`` and ``MiniBatchRBFKMeans``, with ``partial_fit``.

Both run :func:`arbf._drivers.minibatch.minibatch_fit` (``fit``) or one
:func:`arbf._drivers.minibatch.minibatch_step` per call (``partial_fit``, for data that
arrive in pieces).  The step moves center :math:`j` by :math:`\eta_j = 1/(2 M_j)` along
the batch gradient of :math:`F_\sigma`, :math:`M_j` the mass it has accumulated over all
batches so far: the running-mean update of scikit-learn's ``MiniBatchKMeans`` when
responsibilities are hard, its soft (RBF) analogue otherwise.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .._backend import Array, device_of, from_host, to_host
from .._drivers.init import array_init, check_init, resolve_init, resolve_n_init
from .._drivers.minibatch import (
    Reassigner,
    final_labels,
    init_size_rule,
    minibatch_fit,
    minibatch_step,
    reassign_small,
)
from .._math import seam
from .._math.metric import COSINE, check_metric, to_sphere
from .._scaling import in_units, rescale, scale_for, sigma_in, unscale
from .._validation import (
    BOOLEAN,
    NONE,
    Interval,
    check_centers,
    check_data,
    check_kind,
    check_lr,
    check_n_clusters,
    check_param,
    check_random_state,
    check_sample_weight,
    check_sigma,
)
from ._base import CenterEstimator, ClusterMixin, TransformerMixin, free_energy_score

__all__ = ["MiniBatchKMeans", "MiniBatchRBFKMeans"]


class _MiniBatchBase(ClusterMixin, TransformerMixin, CenterEstimator):
    """Shared ``fit``/``partial_fit``/``predict``/``transform``; subclasses set σ and kind."""

    n_clusters: int
    init: Any
    max_iter: int
    batch_size: int
    verbose: bool
    compute_labels: bool
    random_state: Any
    tol: float
    max_no_improvement: int | None
    init_size: int | None
    n_init: int | str
    reassignment_ratio: float
    working_memory: float | None
    metric: str

    # ---- what the subclasses decide ---------------------------------------------------
    def _sigma_kind_lr(self) -> tuple[float, float | None, str, Any]:
        raise NotImplementedError

    # ---- validation ---------------------------------------------------------------------
    def _check_params(self, n: int) -> dict[str, Any]:
        count = Interval(numbers.Integral, 1)
        check_init(self.init)
        k = check_n_clusters(self.n_clusters, n)
        batch_size = check_param("batch_size", self.batch_size, count)
        init_size = check_param("init_size", self.init_size, NONE, count)
        return {
            "n_clusters": k,
            "batch_size": batch_size,
            "max_iter": check_param("max_iter", self.max_iter, count),
            "tol": check_param("tol", self.tol, Interval(numbers.Real, 0)),
            "max_no_improvement": check_param(
                "max_no_improvement", self.max_no_improvement, NONE, Interval(numbers.Integral, 0)
            ),
            "init_size": init_size_rule(init_size, batch_size, k, n),
            "reassignment_ratio": check_param(
                "reassignment_ratio", self.reassignment_ratio, Interval(numbers.Real, 0)
            ),
            "n_init": resolve_n_init(
                self.n_init, self.init, auto_many=3, name=type(self).__name__
            ),
            "verbose": check_param(
                "verbose", self.verbose, BOOLEAN, Interval(numbers.Integral, 0)
            ),
            "compute_labels": check_param("compute_labels", self.compute_labels, BOOLEAN),
        }

    # ---- fitting -------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """Fit the centers by mini-batch steps over ``X`` (``max_iter`` epochs at most).

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
        y : ignored
        sample_weight : array of shape (n_samples,), optional

        Returns
        -------
        self
        """
        raw = X
        X, xp = check_data(X)
        n, d = X.shape
        cosine = check_metric(self.metric) == COSINE
        if cosine:
            X = to_sphere(X, xp=xp)
        p = self._check_params(n)
        sigma, sigma_end, kind, lr = self._sigma_kind_lr()
        w = check_sample_weight(
            sample_weight, n, xp=xp, dtype=X.dtype, device=device_of(X), like=X
        )
        rng = check_random_state(self.random_state)
        res = minibatch_fit(
            X,
            p["n_clusters"],
            w,
            rng,
            xp=xp,
            sigma=sigma,
            sigma_end=sigma_end,
            kind=kind,
            lr=lr,
            init=self.init,
            n_init=p["n_init"],
            init_size=p["init_size"],
            batch_size=p["batch_size"],
            max_iter=p["max_iter"],
            tol=p["tol"],
            max_no_improvement=p["max_no_improvement"],
            reassignment_ratio=p["reassignment_ratio"],
            working_memory=self.working_memory,
            verbose=bool(p["verbose"]),
            name=type(self).__name__,
            cosine=cosine,
        )
        self._reset_input_meta(raw, d)
        self._n_init = p["n_init"]
        self._init_size = p["init_size"]
        self._batch_size = min(p["batch_size"], n)
        self.cluster_centers_ = res.centers
        self.counts_ = res.counts
        self.n_steps_ = res.n_steps
        self.n_iter_ = res.n_iter
        self.converged_ = res.converged
        self.history_ = res.history
        self.sigma_ = float(res.history["sigma"][-1]) if res.history["sigma"].size else sigma
        self._rng = rng
        self.labels_, inertia = final_labels(
            X, res.centers, w, xp=xp, working_memory=self.working_memory
        )
        self.inertia_ = inertia / 2 if cosine else inertia
        return self

    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """Update the centers with one mini-batch step on ``X`` (a piece of a stream).

        The first call initialises the centers from ``X`` (which needs at least
        ``n_clusters`` samples) and fixes ``n_features_in_``; later pieces must have the
        same number of features (else ``ValueError``).  σ is read at every call, so
        lowering ``sigma`` with ``set_params`` between calls anneals a stream.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
        y : ignored
        sample_weight : array of shape (n_samples,), optional

        Returns
        -------
        self
        """
        first = not hasattr(self, "cluster_centers_")
        raw = X
        if not first:
            self._check_feature_names(raw)
        X, xp = check_data(X)
        n, d = X.shape
        cosine = check_metric(self.metric) == COSINE
        if cosine:
            X = to_sphere(X, xp=xp)
        if not first and d != self.n_features_in_:
            raise ValueError(
                f"X has {d} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        sigma, _, kind, lr = self._sigma_kind_lr()
        dev = device_of(X)
        w = check_sample_weight(sample_weight, n, xp=xp, dtype=X.dtype, device=dev, like=X)
        p = self._check_params(n) if first else None
        ratio = check_param(
            "reassignment_ratio", self.reassignment_ratio, Interval(numbers.Real, 0)
        )
        verbose = bool(
            check_param("verbose", self.verbose, BOOLEAN, Interval(numbers.Integral, 0))
        )
        if p is not None:
            rng = check_random_state(self.random_state)
            scale = scale_for(
                seam.extent(X, array_init(self.init, p["n_clusters"], X, xp=xp), xp=xp),
                X.dtype, xp=xp,
            )  # fmt: skip
            X_init, w_init = X, w
            if p["init_size"] < n:  # scikit-learn initialises on init_size samples
                idx = rng.choice(n, size=p["init_size"], replace=False)
                X_init = seam.take_rows(X, idx, xp=xp)
                if w is not None:
                    w_init = xp.take(w, from_host(idx, xp=xp, device=dev), axis=0)
            C = resolve_init(
                self.init, p["n_clusters"], X=X_init, Xc=rescale(X_init, scale), mean=None,
                w=w_init, rng=rng, xp=xp, scale=scale, working_memory=self.working_memory,
            )()  # fmt: skip
            if cosine:
                C = to_sphere(C, xp=xp, name="init")
            counts = xp.zeros((p["n_clusters"],), dtype=X.dtype, device=dev)
            self._reset_input_meta(raw, d)
            self._rng = rng
            self._n_init = 1
            self._init_size = p["init_size"]
            self._n_since_last_reassign = 0
            self.n_steps_ = 0
        else:
            C = check_centers(
                self.cluster_centers_, None, d, xp=xp, dtype=X.dtype, device=dev, like=X
            )
            counts = check_centers(
                self.counts_[:, None], None, 1, xp=xp, dtype=X.dtype, device=dev, like=X
            )[:, 0]
            scale = scale_for(seam.extent(X, C, xp=xp), X.dtype, xp=xp)
            C = rescale(C, scale)
        k = C.shape[0]
        schedule = Reassigner(k, getattr(self, "_n_since_last_reassign", 0))
        counts_before = np.asarray(to_host(counts), dtype=np.float64)
        due = ratio > 0 and schedule.due(n, counts_before)
        # one step on the piece and the centers divided by the power of two of their extent
        Xs = rescale(X, scale)
        C, counts, _ = minibatch_step(
            Xs, C, counts, w, sigma=sigma_in(sigma, scale),
            kind="hard" if sigma == 0 else kind, lr=lr, xp=xp,
            working_memory=self.working_memory, cosine=cosine,
        )  # fmt: skip
        if due:
            if getattr(self, "_rng", None) is None:
                self._rng = check_random_state(self.random_state)
            rng = self._rng
            C, counts_h, moved = reassign_small(
                Xs, C, np.asarray(to_host(counts), dtype=np.float64), rng, ratio=ratio,
                xp=xp, verbose=verbose, name=type(self).__name__,
            )  # fmt: skip
            if moved:
                counts = from_host(counts_h, xp=xp, device=dev, dtype=X.dtype)
        self._n_since_last_reassign = schedule.since
        C = unscale(C, scale)
        self.cluster_centers_ = C
        self.counts_ = counts
        self.n_steps_ += 1
        self.sigma_ = sigma
        if self.compute_labels:
            self.labels_, inertia = final_labels(
                X, C, w, xp=xp, working_memory=self.working_memory
            )
            self.inertia_ = inertia / 2 if cosine else inertia
        return self

    # ---- using the fit ----------------------------------------------------------------
    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> Array:
        """Fit, then return ``labels_``."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def predict(self, X: Any) -> Array:
        """Index of the nearest center of each sample (ties to the lowest index); with
        ``metric="cosine"`` the center of largest cosine."""
        X, C, xp, _ = self._validate_on_metric(X)
        return seam.assign(X, C, xp=xp, working_memory=self.working_memory)[0]

    def transform(self, X: Any) -> Array:
        """Euclidean (not squared) distance of each sample to each center (chunked); with
        ``metric="cosine"`` the cosine distance ``1 - cos``."""
        X, C, xp, s = self._validate_on_metric(X)
        D = self._distances(X, C, xp=xp, scale=s)
        return D * D / 2 if self._half() != 1.0 else D

    def fit_transform(self, X: Any, y: Any = None, sample_weight: Any = None) -> Array:
        """Fit, then return :meth:`transform` of the same data."""
        return self.fit(X, sample_weight=sample_weight).transform(X)


class MiniBatchKMeans(_MiniBatchBase):
    r"""Mini-batch K-Means (Sculley 2010) on any array, with ``partial_fit``.

    Each step draws ``batch_size`` samples (with replacement, host Generator), assigns
    them to their nearest center and moves center :math:`j` to the running mean

    .. math:: \mu_j \leftarrow \frac{M_j \mu_j + \sum_{i \in B, l_i = j} w_i x_i}
                                    {M_j + \sum_{i \in B, l_i = j} w_i},

    :math:`M_j` the weight assigned to it so far — a gradient step on the batch inertia
    with :math:`\eta_j = 1/(2 M_j)`.  Stopping and initialisation follow
    :class:`sklearn.cluster.MiniBatchKMeans` (``max_no_improvement`` on the
    exponentially weighted batch inertia, ``tol`` on the center shift, ``n_init`` inits
    on ``init_size`` samples; ``n_init="auto"`` is 3 for "random" and callables, else
    1), and so does the random reassignment of small clusters: after every
    ``10 * n_clusters`` samples (and whenever a center has no weight yet), the centers
    whose accumulated weight is below ``reassignment_ratio`` times the largest are moved
    onto random samples of the current batch.  A sparse ``X`` (:mod:`scipy.sparse`)
    stays sparse: the batches are CSR row subsets, the centers dense.

    Parameters
    ----------
    n_clusters : int, default=8
    init : str, array or callable, default="k-means++"
        "k-means++", "k-means||", "random" or "anneal", as :class:`KMeans`.
    max_iter : int, default=100
        Maximum number of passes (epochs) over the data.
    batch_size : int, default=1024
    verbose : bool, default=False
    compute_labels : bool, default=True
        Compute ``labels_`` and ``inertia_`` in ``partial_fit`` (``fit`` always does).
    random_state : int, numpy Generator or None, default=None
    tol : float, default=0.0
        Relative tolerance on the squared center shift of one step (0 disables it).
    max_no_improvement : int or None, default=10
        Stop after this many steps without a lower smoothed batch inertia.
    init_size : int or None, default=None
        Samples used for the initialisation: by default ``3 * batch_size``, or
        ``3 * n_clusters`` when that is smaller than ``n_clusters``; a value below
        ``n_clusters`` is replaced by ``3 * n_clusters`` with a ``RuntimeWarning``; at
        most ``n_samples`` (scikit-learn's rule).
    n_init : "auto" or int, default="auto"
        Initialisations tried on the ``init_size`` samples (auto: 3 for "random" and
        callables, else 1).
    reassignment_ratio : float, default=0.01
        Centers whose accumulated weight falls below this fraction of the largest are
        reassigned to random samples (0 disables it).  Higher values revive small
        clusters more often (slower to settle, sometimes a better clustering).
    working_memory : float or None, default=None
    metric : {"sqeuclidean", "cosine"}, default="sqeuclidean"
        "cosine": spherical mini-batch clustering.  Samples are normalised to unit norm
        (a row of norm 0 raises ``ValueError``; in every method), the centers stay on the
        unit sphere — each step is the running mean above followed by the projection
        :math:`\mu_j \leftarrow \mu_j/\lVert\mu_j\rVert` — and :math:`D_{ij}` is the
        cosine distance :math:`1 - \cos(x_i, \mu_j)` (in the responsibilities, with σ
        dividing it, ``inertia_``, :meth:`score` and :meth:`transform`).

    Attributes
    ----------
    cluster_centers_ : array of shape (n_clusters, n_features)
    counts_ : array of shape (n_clusters,)
        Weight accumulated by each center over all steps (:math:`M_j`).
    labels_ : array of shape (n_samples,)
    inertia_ : float
    n_iter_ : int
        Epochs started.
    n_steps_ : int
        Mini-batch steps done.
    converged_ : bool
    history_ : dict of numpy arrays
        Per-step ``"batch_inertia"`` (mean over the batch), ``"center_shift"``, ``"sigma"``.
    n_features_in_ : int

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0, 0.0], [0.0, 1.0], [9.0, 9.0], [9.0, 10.0]])
    >>> km = arbf.MiniBatchKMeans(2, init=X[::2, :], batch_size=4, random_state=0).fit(X)
    >>> km.predict(X)
    Array([0, 0, 1, 1], dtype=array_api_strict.int64)
    >>> stream = arbf.MiniBatchKMeans(2, init=X[::2, :])
    >>> for piece in (X[:2, :], X[2:, :]):
    ...     stream = stream.partial_fit(piece)
    >>> stream.n_steps_
    2
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Any = "k-means++",
        max_iter: int = 100,
        batch_size: int = 1024,
        verbose: bool = False,
        compute_labels: bool = True,
        random_state: Any = None,
        tol: float = 0.0,
        max_no_improvement: int | None = 10,
        init_size: int | None = None,
        n_init: int | str = "auto",
        reassignment_ratio: float = 0.01,
        working_memory: float | None = None,
        metric: str = "sqeuclidean",
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.verbose = verbose
        self.compute_labels = compute_labels
        self.random_state = random_state
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.init_size = init_size
        self.n_init = n_init
        self.reassignment_ratio = reassignment_ratio
        self.working_memory = working_memory
        self.metric = metric

    def _sigma_kind_lr(self) -> tuple[float, float | None, str, Any]:
        return 0.0, None, "hard", "lloyd"

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        r"""Opposite of the inertia: :math:`-\sum_i w_i \min_j \lVert x_i-\mu_j\rVert^2`."""
        X, C, xp, s = self._validate_on_metric(X)
        w = check_sample_weight(
            sample_weight, X.shape[0], xp=xp, dtype=X.dtype, device=device_of(X), like=X
        )
        J = seam.inertia(X, C, w, xp=xp, working_memory=self.working_memory)
        return -in_units(float(to_host(J)), s) * self._half()


class MiniBatchRBFKMeans(_MiniBatchBase):
    r"""Mini-batch training of a normalised RBF network: stochastic steps on :math:`F_\sigma`.

    Each step draws a batch :math:`B`, computes the responsibilities
    :math:`r_{ij}` (softmax or entmax-1.5 of :math:`-\lVert x_i-\mu_j\rVert^2/\sigma`) at
    the current centers and takes the gradient step

    .. math:: \mu_j \leftarrow \mu_j - \eta_j\, 2\,(N_j^B \mu_j - S_j^B), \qquad
              \eta_j = \frac{1}{2 (M_j + N_j^B)},

    :math:`N_j^B = \sum_B w_i r_{ij}`, :math:`S_j^B = \sum_B w_i r_{ij} x_i`, :math:`M_j`
    the mass accumulated so far: the mini-batch analogue of the Lloyd step (SPEC
    Theorem 2), i.e. the running soft centroid.  ``lr`` a float uses the constant step
    instead.  With ``sigma_end`` σ falls geometrically from ``sigma`` to ``sigma_end``
    over the steps of ``fit`` (annealing towards mini-batch K-Means).

    Parameters
    ----------
    n_clusters : int, default=8
    sigma : float, default=1.0
        Temperature (σ divides the squared distance; a Gaussian of width ``s`` is
        ``σ = 2 s²``); 0 means hard (then this is :class:`MiniBatchKMeans`).
    sigma_end : float or None, default=None
        Final temperature of a geometric schedule in ``fit`` (None: σ fixed).
    kind : {"softmax", "entmax15"}, default="softmax"
    lr : "lloyd" or float, default="lloyd"
    init, max_iter, batch_size, verbose, compute_labels, random_state, tol
        As in :class:`MiniBatchKMeans`; early stopping watches the batch free energy.
    max_no_improvement, init_size, n_init, working_memory
        As in :class:`MiniBatchKMeans`.
    reassignment_ratio : float, default=0.01
        As in :class:`MiniBatchKMeans`, on the soft masses :math:`M_j`: a center whose
        accumulated responsibility mass stays below this fraction of the largest (a
        dead unit) is moved onto a random sample of the batch.
    metric : {"sqeuclidean", "cosine"}, default="sqeuclidean"
        "cosine": the spherical relaxation (a von Mises-Fisher mixture, concentration
        :math:`1/\sigma`; see :class:`MiniBatchKMeans` and :func:`arbf.rbf_kmeans`):
        logits :math:`(\cos(x_i, \mu_j) - 1)/\sigma`, every step projected onto the
        sphere, a float ``lr`` the step on :math:`\sum_B w_i r_{ij}(\mu_j - \hat x_i)`;
        ``sigma``, ``sigma_end`` and ``sigma_`` are cosine temperatures.

    Attributes
    ----------
    cluster_centers_, counts_, labels_, inertia_, n_iter_, n_steps_, converged_, history_
        As in :class:`MiniBatchKMeans` (``history_["batch_inertia"]`` holds the mean batch
        free energy).
    sigma_ : float
        The temperature of the last step.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0, 0.0], [0.0, 1.0], [9.0, 9.0], [9.0, 10.0]])
    >>> m = arbf.MiniBatchRBFKMeans(2, sigma=0.5, kind="entmax15", init=X[::2, :],
    ...                             batch_size=4, random_state=0).fit(X)
    >>> m.predict(X)
    Array([0, 0, 1, 1], dtype=array_api_strict.int64)
    >>> m.predict_proba(X)[0, :]
    Array([1., 0.], dtype=array_api_strict.float64)
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        sigma: float = 1.0,
        sigma_end: float | None = None,
        kind: str = "softmax",
        lr: Any = "lloyd",
        init: Any = "k-means++",
        max_iter: int = 100,
        batch_size: int = 1024,
        verbose: bool = False,
        compute_labels: bool = True,
        random_state: Any = None,
        tol: float = 0.0,
        max_no_improvement: int | None = 10,
        init_size: int | None = None,
        n_init: int | str = "auto",
        reassignment_ratio: float = 0.01,
        working_memory: float | None = None,
        metric: str = "sqeuclidean",
    ) -> None:
        self.n_clusters = n_clusters
        self.sigma = sigma
        self.sigma_end = sigma_end
        self.kind = kind
        self.lr = lr
        self.init = init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.verbose = verbose
        self.compute_labels = compute_labels
        self.random_state = random_state
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.init_size = init_size
        self.n_init = n_init
        self.reassignment_ratio = reassignment_ratio
        self.working_memory = working_memory
        self.metric = metric

    def _sigma_kind_lr(self) -> tuple[float, float | None, str, Any]:
        sigma = check_sigma(self.sigma)
        sigma_end = None if self.sigma_end is None else check_sigma(self.sigma_end)
        if sigma_end is not None and (sigma == 0) != (sigma_end == 0):
            raise ValueError("sigma and sigma_end must both be positive (or both 0)")
        kind = check_kind(self.kind, ("softmax", "entmax15"))
        return sigma, sigma_end, kind, check_lr(self.lr)

    def predict_proba(self, X: Any) -> Array:
        """Responsibilities ``r_ij`` at ``sigma_`` (rows sum to 1)."""
        X, C, xp, s = self._validate_on_metric(X)
        return seam.responsibilities(
            X, C, sigma=sigma_in(self.sigma_ / self._half(), s), kind=self.kind, xp=xp,
            working_memory=self.working_memory,
        )  # fmt: skip

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        r"""Opposite of the free energy at ``sigma_``: :math:`-F_\sigma(\mu)`."""
        X, C, xp, s = self._validate_on_metric(X)
        w = check_sample_weight(
            sample_weight, X.shape[0], xp=xp, dtype=X.dtype, device=device_of(X), like=X
        )
        return -free_energy_score(
            X, C, w, sigma=self.sigma_ / self._half(), kind=self.kind, scale=s, xp=xp,
            working_memory=self.working_memory,
        ) * self._half()  # fmt: skip
