r"""JAX integration: RBF clustering as pure functions for ``jax.jit`` and ``jax.grad``.

Importing :mod:`arbf.jax` requires JAX (``pip install arbf[jax]``); the core ``arbf``
package never imports it.

Parameters are a plain dict (a pytree) ``{"centers": (k, d), "log_sigma": ()}``:

- :func:`init_params` — centers from :func:`arbf.kmeans` of some data (or given);
- :func:`apply` — the responsibilities :math:`r_{ij} = \operatorname{map}(-D_{i\cdot}/\sigma)_j`,
  :math:`D_{ij} = \lVert x_i - \mu_j\rVert^2`, ``map`` = softmax or entmax-1.5;
- :func:`loss` — the clustering loss (free energy :math:`F_\sigma` by default), a scalar
  to differentiate with :func:`jax.grad` with respect to the params *and* the inputs
  (e.g. an encoder's codes);
- :func:`predict` — nearest-center labels.

σ is ``exp(params["log_sigma"])`` unless a ``sigma=`` argument is passed — pass the
current value of an annealing schedule there (it may be a traced scalar, so changing it
does not recompile); ``log_sigma`` then gets a zero gradient.  ``kind``, ``objective``
and ``reduction`` are Python strings: mark them static under :func:`jax.jit`
(``static_argnames``) or bind them with :func:`functools.partial`.

The math is the functional core's (:func:`arbf.free_energy`, :func:`arbf.responsibilities`)
evaluated per sample (:mod:`arbf._math.core.terms`); with ``reduction="sum"`` the loss
equals :func:`arbf.free_energy` and its center gradient :func:`arbf.center_gradient`.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from ._backend import array_namespace
from ._math.seam import (
    OBJECTIVES,
    SampleTerms,
    cosine_sample_terms,
    geometric,
    reduce_terms,
    sample_terms,
    select_objective,
)
from ._validation import Options, check_kind, check_param, check_sigma

__all__ = ["apply", "geometric_schedule", "init_params", "loss", "predict", "sample_terms_of"]

_XP = array_namespace(jnp.zeros(0))

Params = dict[str, Any]


def _sample_terms_impl(
    params: Params, X: Any, sigma: Any, kind: str, metric: str = "sqeuclidean"
) -> SampleTerms:
    C = params["centers"]
    X = jnp.asarray(X, dtype=C.dtype)
    terms = cosine_sample_terms if metric == "cosine" else sample_terms
    return terms(X, C, sigma, kind=kind, xp=_XP, stop_gradient=jax.lax.stop_gradient)


def _check_metric(metric: Any) -> str:
    return str(check_param("metric", metric, Options("sqeuclidean", "cosine")))


_METRIC_DOC = """metric : {"sqeuclidean", "cosine"}, default "sqeuclidean"
        "cosine": the spherical model (a von Mises-Fisher mixture, concentration
        :math:`1/\\sigma`): rows of ``X`` and the centers enter through their directions
        (differentiably; ``params["centers"]`` stay unconstrained) and :math:`D_{ij}` is
        the cosine distance :math:`1 - \\cos(x_i, \\mu_j)`.  Static under ``jit``."""


def _sigma(params: Params, sigma: Any) -> Any:
    return jnp.exp(params["log_sigma"]) if sigma is None else sigma


def init_params(
    X: Any = None,
    n_clusters: int | None = None,
    *,
    sigma: float = 1.0,
    centers: Any = None,
    random_state: Any = None,
    n_init: int | str = "auto",
    dtype: Any = None,
    metric: str = "sqeuclidean",
) -> Params:
    r"""Initial parameters ``{"centers", "log_sigma"}``.

    Parameters
    ----------
    X : array of shape (n, d), optional
        Data whose :func:`arbf.kmeans` centers (``n_clusters`` of them, ``random_state``,
        ``n_init``) become the initial centers.  Not traced: call outside ``jit``.
    n_clusters : int, optional
        Required with ``X``.
    sigma : float, default 1.0
        Initial temperature (> 0); stored as :math:`\log\sigma`.
    centers : array of shape (k, d), optional
        Given initial centers (instead of ``X``).
    dtype : optional
        Of the parameters; default that of ``X`` or ``centers`` (floating).
    metric : {"sqeuclidean", "cosine"}, default "sqeuclidean"
        Of the :func:`arbf.kmeans` run on ``X`` ("cosine": spherical K-Means, unit
        centers); pass the same to :func:`apply`, :func:`loss` and :func:`predict`.

    Returns
    -------
    dict
        ``{"centers": jax.Array (k, d), "log_sigma": jax.Array ()}``.
    """
    sigma = check_sigma(sigma, allow_zero=False)
    if centers is None:
        if X is None or n_clusters is None:
            raise ValueError("give either centers or X and n_clusters")
        from ._drivers.kmeans import kmeans

        X = jnp.asarray(X)
        if not jnp.issubdtype(X.dtype, jnp.floating):
            X = X.astype(jnp.result_type(float))
        centers = kmeans(
            X, int(n_clusters), random_state=random_state, n_init=n_init, metric=metric
        ).centers
    C = jnp.asarray(centers, dtype=dtype)
    if not jnp.issubdtype(C.dtype, jnp.floating):
        C = C.astype(jnp.result_type(float))
    if C.ndim != 2:
        raise ValueError(f"centers must be 2-D, got shape {C.shape}")
    return {"centers": C, "log_sigma": jnp.asarray(math.log(sigma), dtype=C.dtype)}


def sample_terms_of(
    params: Params,
    X: Any,
    *,
    kind: str = "softmax",
    sigma: Any = None,
    metric: str = "sqeuclidean",
) -> SampleTerms:
    """Per-sample responsibilities, :math:`L_i`, :math:`F_i` and :math:`d_i` of ``X``
    (``metric`` as :func:`apply`)."""
    return _sample_terms_impl(
        params, X, _sigma(params, sigma), check_kind(kind), _check_metric(metric)
    )


def apply(
    params: Params,
    X: Any,
    *,
    kind: str = "softmax",
    sigma: Any = None,
    metric: str = "sqeuclidean",
) -> Any:
    r"""Responsibilities :math:`r_{ij}` of the centers for the rows of ``X`` (n×d).

    .. math::

        r_{ij} = \operatorname{map}\big(-D_{i\cdot}/\sigma\big)_j,\qquad
        D_{ij} = \lVert x_i - \mu_j\rVert^2,

    softmax (dense) or entmax-1.5 (:math:`[-D_{ij}/(2\sigma) - \tau_i]_+^2`, exact zeros),
    or ``"hard"`` (one-hot of the nearest center).

    Parameters
    ----------
    params : dict
        From :func:`init_params`.
    X : array of shape (n, d)
    kind : {"softmax", "entmax15", "hard"}, default "softmax"
        Static under ``jit``.
    sigma : float or 0-d array, optional
        Overrides ``exp(params["log_sigma"])``.
    {metric}

    Returns
    -------
    jax.Array of shape (n, k)

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from arbf import jax as ajax
    >>> p = ajax.init_params(centers=jnp.asarray([[0.0], [2.0]]), sigma=1.0)
    >>> ajax.apply(p, jnp.asarray([[0.0], [1.0], [3.0]]), kind="entmax15").round(4).tolist()
    [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]
    """
    return sample_terms_of(params, X, kind=kind, sigma=sigma, metric=metric).responsibilities


def loss(
    params: Params,
    X: Any,
    *,
    kind: str = "softmax",
    objective: str = "free_energy",
    reduction: str = "mean",
    sample_weight: Any = None,
    sigma: Any = None,
    metric: str = "sqeuclidean",
) -> Any:
    r"""The clustering loss of ``X`` (n×d) for ``params``; differentiable in both.

    Per sample, ``objective`` selects

    - ``"free_energy"``: :math:`F_i = \sum_j r_{ij} D_{ij} - \sigma H(r_i)`
      (:math:`= -\sigma\log\sum_j e^{-D_{ij}/\sigma}` for softmax; Tsallis-1.5 entropy
      for entmax-1.5);
    - ``"distortion"``: :math:`\sum_j \mathrm{sg}(r_{ij}) D_{ij}` (responsibilities held
      fixed by :func:`jax.lax.stop_gradient`; same gradients as :math:`F_i` in the centers
      and inputs, by the envelope theorem);
    - ``"nll"`` (softmax only): :math:`F_i/\sigma + \tfrac d2\log(\pi\sigma) + \log k`,
      the equal-weight Gaussian mixture negative log-likelihood (variance σ/2), the one to
      use when learning ``log_sigma``.

    and ``reduction`` combines them: ``"mean"`` :math:`\sum_i w_i\ell_i/\sum_i w_i`,
    ``"sum"`` :math:`\sum_i w_i \ell_i` (the core's convention: then the free energy
    equals :func:`arbf.free_energy`), ``"none"`` the vector :math:`w_i \ell_i`.

    Parameters
    ----------
    params : dict
        From :func:`init_params`.
    X : array of shape (n, d)
    kind : {"softmax", "entmax15", "hard"}, default "softmax"
    objective : {"free_energy", "distortion", "nll"}, default "free_energy"
    reduction : {"mean", "sum", "none"}, default "mean"
    sample_weight : array of shape (n,), optional
    sigma : float or 0-d array, optional
        Overrides ``exp(params["log_sigma"])`` (e.g. the current annealing value).
    {metric}
        ``objective="nll"`` needs ``"sqeuclidean"``.

    Returns
    -------
    jax.Array
        0-d unless ``reduction="none"``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> from arbf import jax as ajax
    >>> p = ajax.init_params(centers=jnp.asarray([[0.0], [2.0]]))
    >>> X = jnp.asarray([[0.0], [1.0], [3.0]])
    >>> g = jax.grad(ajax.loss)(p, X, kind="entmax15", reduction="sum")
    >>> g["centers"].tolist()  # 2 Σ_i r_ij (μ_j - x_i)
    [[-1.0], [-1.0]]
    """
    kind = check_kind(kind)
    objective = check_param("objective", objective, Options(*OBJECTIVES))
    if objective == "nll" and kind != "softmax":
        raise ValueError("objective='nll' is the Gaussian mixture likelihood: softmax only")
    metric = _check_metric(metric)
    if objective == "nll" and metric == "cosine":
        raise ValueError(
            "objective='nll' is the Gaussian mixture likelihood: metric='sqeuclidean' only"
        )
    s = _sigma(params, sigma)
    terms = _sample_terms_impl(params, X, s, kind, metric)
    C = params["centers"]
    per_sample = select_objective(
        terms, objective, s, n_features=C.shape[1], n_clusters=C.shape[0], xp=_XP
    )
    w = None if sample_weight is None else jnp.asarray(sample_weight, dtype=per_sample.dtype)
    return reduce_terms(per_sample, w, reduction, xp=_XP)


def predict(params: Params, X: Any, *, metric: str = "sqeuclidean") -> Any:
    """Index of the nearest center for each row of ``X`` (ties to the lowest index); with
    ``metric="cosine"`` the center of largest cosine."""
    terms = sample_terms_of(params, X, kind="hard", metric=metric)
    return terms.responsibilities.argmax(axis=1)


for _f in (apply, loss):
    _f.__doc__ = (_f.__doc__ or "").replace("{metric}", _METRIC_DOC)


def geometric_schedule(start: float, end: float, n_steps: int) -> Any:
    r"""``n_steps`` temperatures falling geometrically from ``start`` to ``end`` (an array).

    :math:`\sigma_t = \sigma_0 (\sigma_{end}/\sigma_0)^{t/(T-1)}`; index it with the step
    number inside a jitted update so that σ is traced, not static.
    """
    if not (start > 0 and end > 0 and n_steps >= 1):
        raise ValueError("start and end must be > 0 and n_steps >= 1")
    return jnp.asarray(geometric(start, end, n_steps) if n_steps > 1 else [float(end)])
