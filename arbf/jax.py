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

**Batched problems.**  Centers of shape ``(B, k, d)`` (from :func:`init_params` on data
``(B, n, d)``, or given) make every function solve ``B`` independent problems:
``X`` is ``(B, n, d)``, weights ``(B, n)``, ``log_sigma`` 0-d (shared) or ``(B,)``, and
the result gains a leading axis ``B`` (:func:`loss` returns one value per problem,
``(B,)``; sum it to train all problems with one :func:`jax.grad`).  The problems are
mapped with :func:`jax.vmap` (batched matrix products, no Python loop), so the result
equals ``B`` separate calls.

σ is ``exp(params["log_sigma"])`` unless a ``sigma=`` argument is passed — pass the
current value of an annealing schedule there (it may be a traced scalar, so changing it
does not recompile); ``log_sigma`` then gets a zero gradient.  ``kind``, ``objective``
and ``reduction`` are Python strings: mark them static under :func:`jax.jit`
(``static_argnames``) or bind them with :func:`functools.partial`.

Inputs are checked where JAX can: the parameters' structure, the shapes (``X`` is
``(n >= 1, d)`` with the centers' ``d``, weights 1-D of length ``n``, σ 0-d) and dtypes
(real) always, also under :func:`jax.jit` (shapes are static there); the *values*
(finite data and centers, σ > 0, weights finite, >= 0 and not all zero) only outside a
trace -- a traced array has no values to read, and NaN inputs then propagate as in any
JAX function.  Other array libraries are refused (NumPy arrays and lists are converted).
Every error is a :class:`TypeError` or :class:`ValueError` naming the argument.

σ may be any positive number: the scores use it clamped to the dtype's normal range
(the exact one-hot or uniform limits, no NaN), the ``"nll"`` objective is computed from
:math:`\log\sigma`.  Where the loss itself cannot be represented -- the free energy
(:math:`\approx -\sigma\log k` per sample) with σ log k beyond the dtype's largest
number, the NLL (:math:`\approx d_i/\sigma`) with σ below its smallest normal one --
:func:`loss` raises a :class:`ValueError` for a concrete σ; with a traced σ such a loss
is ``±inf`` (and its gradients may not be finite).

The math is the functional core's (:func:`arbf.free_energy`, :func:`arbf.responsibilities`)
evaluated per sample (:mod:`arbf._math.core.terms`); with ``reduction="sum"`` the loss
equals :func:`arbf.free_energy` and its center gradient :func:`arbf.center_gradient`.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._backend import array_namespace, is_array
from ._math.seam import (
    OBJECTIVES,
    SampleTerms,
    cosine_sample_terms,
    geometric,
    reduce_terms,
    sample_terms,
    select_objective,
)
from ._validation import Interval, Options, check_kind, check_param, check_sigma

__all__ = ["apply", "geometric_schedule", "init_params", "loss", "predict", "sample_terms_of"]

_XP = array_namespace(jnp.zeros(0))

Params = dict[str, Any]


def _check_real(x: Any, name: str) -> Any:
    """``x`` as a JAX array: JAX or NumPy arrays, lists and scalars of real numbers
    (other array libraries, complex and non-numeric data are a :class:`TypeError`)."""
    if is_array(x) and not isinstance(x, jax.Array | np.ndarray | np.generic):
        raise TypeError(
            f"{name} must be a JAX or NumPy array, got {type(x).__module__}."
            f"{type(x).__name__} (arrays of one library at a time)"
        )
    try:
        a = jnp.asarray(x)
    except TypeError as exc:
        raise TypeError(f"{name} must be an array of real numbers ({exc})") from exc
    if jnp.issubdtype(a.dtype, jnp.complexfloating):
        raise TypeError(f"{name} has dtype {a.dtype}: clustering needs real data")
    if not (jnp.issubdtype(a.dtype, jnp.number) or a.dtype == jnp.bool_):
        raise TypeError(f"{name} has unsupported dtype {a.dtype}; expected real numbers")
    return a


def _host(a: Any) -> np.ndarray | None:
    """The values of ``a`` on the host, or ``None`` when it is traced (under ``jit``
    even operations on concrete arrays are staged: the check reads them with NumPy)."""
    return None if isinstance(a, jax.core.Tracer) else np.asarray(a)


def _check_finite(a: Any, name: str) -> None:
    h = _host(a)
    if h is not None and not bool(np.all(np.isfinite(h))):
        raise ValueError(f"{name} contains NaN or infinity")


def _check_params(params: Any) -> Any:
    """``params`` must be ``{"centers": (k, d) real, "log_sigma": 0-d}``; returns the
    centers (floating)."""
    if not isinstance(params, dict) or "centers" not in params or "log_sigma" not in params:
        raise TypeError(
            'params must be a dict {"centers": (k, d) array, "log_sigma": 0-d array} '
            f"(from init_params), got {type(params).__name__}"
        )
    C = _check_real(params["centers"], 'params["centers"]')
    if C.ndim != 2 or C.shape[0] < 1 or C.shape[1] < 1:
        raise ValueError(f'params["centers"] must be a non-empty 2-D array, got shape {C.shape}')
    if jnp.ndim(params["log_sigma"]) != 0:
        raise ValueError(
            f'params["log_sigma"] must be 0-d, got shape {jnp.shape(params["log_sigma"])}'
        )
    return C


def _is_batched(params: Any) -> bool:
    return isinstance(params, dict) and "centers" in params and jnp.ndim(params["centers"]) == 3


def _check_batched_params(params: Any) -> tuple[Any, Any]:
    """Batched ``params``: centers ``(B, k, d)`` (checked finite outside a trace) and
    ``log_sigma`` 0-d or ``(B,)``; returns ``(centers, in_axes of the params)``."""
    C = _check_real(params["centers"], 'params["centers"]')
    if min(C.shape) < 1:
        raise ValueError(f'params["centers"] must be non-empty (B, k, d), got shape {C.shape}')
    _check_finite(C, 'params["centers"]')
    ls_shape = jnp.shape(params["log_sigma"])
    if ls_shape not in ((), (C.shape[0],)):
        raise ValueError(
            f'params["log_sigma"] must be 0-d or of shape (B,) = ({C.shape[0]},) for centers '
            f"of shape {C.shape}, got shape {ls_shape}"
        )
    return C, {"centers": 0, "log_sigma": 0 if ls_shape else None}


def _map_problems(
    one: Any, params: Params, X: Any, sample_weight: Any = None, *, check_sigma_range: Any = None
) -> Any:
    """``one(params_b, X_b, w_b)`` for every problem ``b``, by :func:`jax.vmap`.

    The values (finite data, weights >= 0 with a positive sum per problem) are checked
    here, outside the map, where they can be read; shapes inside, per problem."""
    C, p_axes = _check_batched_params(params)
    X = _check_real(X, "X")
    if X.ndim != 3 or X.shape[0] != C.shape[0] or X.shape[2] != C.shape[2]:
        raise ValueError(
            f"X must have shape (B, n, d) = ({C.shape[0]}, n, {C.shape[2]}) for centers of "
            f"shape {C.shape}, got {X.shape}"
        )
    _check_finite(X, "X")
    w_axis = None
    if sample_weight is not None:
        w = _check_real(sample_weight, "sample_weight")
        if w.shape != X.shape[:2]:
            raise ValueError(
                f"sample_weight must have shape (B, n) = {X.shape[:2]}, got shape {w.shape}"
            )
        h = _host(w)
        if h is not None:
            _check_finite(h, "sample_weight")
            if bool(np.any(h < 0)):
                raise ValueError("sample_weight contains negative values; weights must be >= 0")
            bad = np.flatnonzero(~(np.sum(h, axis=1, dtype=np.float64) > 0))
            if bad.size:
                raise ValueError(
                    f"sample_weight of problem {int(bad[0])} sums to zero: at least one "
                    "weight per problem must be positive"
                )
        sample_weight, w_axis = w, 0
    if check_sigma_range is not None:
        h = _host(params["log_sigma"])
        if h is not None:
            for v in np.ravel(h):
                check_sigma_range(float(v), C[0])
    return jax.vmap(one, in_axes=(p_axes, 0, w_axis))(params, X, sample_weight)


def _check_batch(X: Any, C: Any, name: str = "X") -> Any:
    """``X`` as an ``(n >= 1, d)`` array of the centers' dtype (shapes are checked under
    ``jit`` too; values -- finite -- only outside it)."""
    X = _check_real(X, name)
    if X.ndim != 2 or X.shape[1] != C.shape[1]:
        raise ValueError(f"{name} must have shape (n, {C.shape[1]}), got {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (0 samples): the loss has no value")
    _check_finite(X, name)
    return X.astype(C.dtype)


def _check_weight(w: Any, n: int, dtype: Any) -> Any:
    if w is None:
        return None
    w = _check_real(w, "sample_weight")
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(
            f"sample_weight must be 1-D with {n} entries (one per sample), got shape {w.shape}"
        )
    h = _host(w)
    if h is not None:
        _check_finite(h, "sample_weight")
        if bool(np.any(h < 0)):
            raise ValueError("sample_weight contains negative values; weights must be >= 0")
        if not float(np.sum(h, dtype=np.float64)) > 0:
            raise ValueError("sample_weight sums to zero: at least one must be positive")
    return w.astype(dtype)


def _check_sigma_arg(sigma: Any) -> Any:
    """The ``sigma=`` override: a positive real number or a 0-d array (its value
    checked when it is not traced)."""
    if sigma is None or isinstance(sigma, jax.core.Tracer):
        if sigma is not None and jnp.ndim(sigma) != 0:
            raise ValueError(f"sigma must be 0-d, got shape {jnp.shape(sigma)}")
        return sigma
    if is_array(sigma) and getattr(sigma, "ndim", 0) != 0:
        raise ValueError(f"sigma must be a number or a 0-d array, got shape {sigma.shape}")
    return check_sigma(sigma, allow_zero=False)


def _check_loss_range(objective: str, log_sigma: Any, sigma: Any, C: Any) -> None:
    """As :class:`arbf.torch.RBFClustering`: a concrete σ at which the loss itself is
    beyond the dtype's range is a :class:`ValueError` (the free energy, about
    :math:`-\\sigma\\log k` per sample, above ``max / log k``; the NLL, about
    :math:`d_i/\\sigma`, below the smallest normal number).  Traced σ: not checked."""
    if objective == "distortion":
        return
    value = sigma if log_sigma is None else log_sigma
    h = _host(value) if not isinstance(value, int | float) else np.asarray(value)
    if h is None:
        return
    ls = float(h) if log_sigma is not None else math.log(float(h))
    fi = jnp.finfo(C.dtype)
    k = C.shape[0]
    if objective == "free_energy" and k > 1 and ls + math.log(math.log(k)) > math.log(fi.max):
        raise ValueError(
            f"sigma={math.exp(min(ls, 709.0)):g}: the free energy (about -sigma * log(k) per "
            f"sample) is beyond the range of {C.dtype} (largest finite {float(fi.max):.4g}); "
            "use float64 (jax_enable_x64), or objective='distortion'"
        )
    if objective == "nll" and ls < math.log(float(fi.smallest_normal)):
        raise ValueError(
            f"sigma={math.exp(ls):g}: the Gaussian negative log-likelihood (d_i / sigma per "
            f"sample) is beyond the range of {C.dtype} below sigma="
            f"{float(fi.smallest_normal):.4g}; use float64 (jax_enable_x64)"
        )


def _sample_terms_impl(
    params: Params, X: Any, sigma: Any, kind: str, metric: str = "sqeuclidean"
) -> SampleTerms:
    C = _check_params(params)
    X = _check_batch(X, C)
    log_sigma = params["log_sigma"] if sigma is None else None
    s = jnp.exp(params["log_sigma"]) if sigma is None else sigma
    terms = cosine_sample_terms if metric == "cosine" else sample_terms
    return terms(
        X, C, s, kind=kind, xp=_XP, stop_gradient=jax.lax.stop_gradient, log_sigma=log_sigma
    )


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
    X : array of shape (n, d) or (B, n, d), optional
        Data whose :func:`arbf.kmeans` centers (``n_clusters`` of them, ``random_state``,
        ``n_init``) become the initial centers.  Not traced: call outside ``jit``.
        ``(B, n, d)``: the batched :func:`arbf.kmeans`, centers ``(B, k, d)``.
    n_clusters : int, optional
        Required with ``X``.
    sigma : float, default 1.0
        Initial temperature (> 0); stored as :math:`\log\sigma`.
    centers : array of shape (k, d) or (B, k, d), optional
        Given initial centers (instead of ``X``).
    dtype : optional
        Of the parameters; default that of ``X`` or ``centers`` (floating).
    metric : {"sqeuclidean", "cosine"}, default "sqeuclidean"
        Of the :func:`arbf.kmeans` run on ``X`` ("cosine": spherical K-Means, unit
        centers); pass the same to :func:`apply`, :func:`loss` and :func:`predict`.

    Returns
    -------
    dict
        ``{"centers": jax.Array (k, d) or (B, k, d), "log_sigma": jax.Array ()}``.
    """
    sigma = check_sigma(sigma, allow_zero=False)
    if centers is None:
        if X is None or n_clusters is None:
            raise ValueError("give either centers or X and n_clusters")
        from ._drivers.kmeans import kmeans

        X = _check_real(X, "X")
        if not jnp.issubdtype(X.dtype, jnp.floating):
            X = X.astype(jnp.result_type(float))
        centers = kmeans(
            X, n_clusters, random_state=random_state, n_init=n_init, metric=metric
        ).centers
    elif X is not None or n_clusters is not None:
        raise ValueError("give either centers or X and n_clusters, not both")
    C = _check_real(centers, "centers")
    if dtype is not None:
        C = C.astype(dtype)
    if not jnp.issubdtype(C.dtype, jnp.floating):
        C = C.astype(jnp.result_type(float))
    if C.ndim not in (2, 3) or min(C.shape) < 1:
        raise ValueError(
            f"centers must be a non-empty (k, d) or (B, k, d) array, got shape {C.shape}"
        )
    _check_finite(C, "centers")
    log_sigma = jnp.asarray(math.log(sigma), dtype=C.dtype)
    if not bool(jnp.isfinite(log_sigma)):  # pragma: no cover - float64 log is finite
        raise ValueError(f"sigma={sigma:g} cannot be stored in {C.dtype}")
    return {"centers": C, "log_sigma": log_sigma}


def sample_terms_of(
    params: Params,
    X: Any,
    *,
    kind: str = "softmax",
    sigma: Any = None,
    metric: str = "sqeuclidean",
) -> SampleTerms:
    """Per-sample responsibilities, :math:`L_i`, :math:`F_i` and :math:`d_i` of ``X``
    (``metric`` as :func:`apply`; batched params: every field with a leading ``B``)."""
    if _is_batched(params):
        sig, kd, mt = _check_sigma_arg(sigma), check_kind(kind), _check_metric(metric)
        return _map_problems(lambda p, x, _w: _sample_terms_impl(p, x, sig, kd, mt), params, X)
    return _sample_terms_impl(
        params, X, _check_sigma_arg(sigma), check_kind(kind), _check_metric(metric)
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
    X : array of shape (n, d), or (B, n, d) with batched params (centers ``(B, k, d)``)
    kind : {"softmax", "entmax15", "hard"}, default "softmax"
        Static under ``jit``.
    sigma : float or 0-d array, optional
        Overrides ``exp(params["log_sigma"])``.
    {metric}

    Returns
    -------
    jax.Array of shape (n, k), or (B, n, k) for batched params

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
    X : array of shape (n, d), or (B, n, d) with batched params (centers ``(B, k, d)``)
    kind : {"softmax", "entmax15", "hard"}, default "softmax"
    objective : {"free_energy", "distortion", "nll"}, default "free_energy"
    reduction : {"mean", "sum", "none"}, default "mean"
    sample_weight : array of shape (n,) or (B, n), optional
    sigma : float or 0-d array, optional
        Overrides ``exp(params["log_sigma"])`` (e.g. the current annealing value).
    {metric}
        ``objective="nll"`` needs ``"sqeuclidean"``.

    Returns
    -------
    jax.Array
        0-d unless ``reduction="none"`` (then ``(n,)``); batched params: ``(B,)``
        (one loss per problem), ``(B, n)`` with ``reduction="none"``.

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
    reduction = check_param("reduction", reduction, Options("mean", "sum", "none"))
    if objective == "nll" and kind != "softmax":
        raise ValueError("objective='nll' is the Gaussian mixture likelihood: softmax only")
    metric = _check_metric(metric)
    if objective == "nll" and metric == "cosine":
        raise ValueError(
            "objective='nll' is the Gaussian mixture likelihood: metric='sqeuclidean' only"
        )
    sigma = _check_sigma_arg(sigma)
    if _is_batched(params):

        def one(p: Params, x: Any, w: Any) -> Any:
            return _loss_one(p, x, w, sigma, kind, objective, reduction, metric)

        def sigma_range(ls: float, C0: Any) -> None:
            _check_loss_range(objective, ls if sigma is None else None, sigma, C0)

        return _map_problems(one, params, X, sample_weight, check_sigma_range=sigma_range)
    return _loss_one(params, X, sample_weight, sigma, kind, objective, reduction, metric)


def _loss_one(
    params: Params,
    X: Any,
    sample_weight: Any,
    sigma: Any,
    kind: str,
    objective: str,
    reduction: str,
    metric: str,
) -> Any:
    terms = _sample_terms_impl(params, X, sigma, kind, metric)
    C = params["centers"]
    _check_loss_range(objective, params["log_sigma"] if sigma is None else None, sigma, C)
    per_sample = select_objective(
        terms, objective, _sigma(params, sigma), n_features=C.shape[1], n_clusters=C.shape[0],
        xp=_XP, log_sigma=params["log_sigma"] if sigma is None else None,
    )  # fmt: skip
    w = _check_weight(sample_weight, per_sample.shape[0], per_sample.dtype)
    return reduce_terms(per_sample, w, reduction, xp=_XP)


def predict(params: Params, X: Any, *, metric: str = "sqeuclidean") -> Any:
    """Index of the nearest center for each row of ``X`` (ties to the lowest index); with
    ``metric="cosine"`` the center of largest cosine.  Batched params: ``(B, n)``."""
    terms = sample_terms_of(params, X, kind="hard", metric=metric)
    return terms.responsibilities.argmax(axis=-1)


for _f in (apply, loss):
    _f.__doc__ = (_f.__doc__ or "").replace("{metric}", _METRIC_DOC)


def geometric_schedule(start: float, end: float, n_steps: int) -> Any:
    r"""``n_steps`` temperatures falling geometrically from ``start`` to ``end`` (an array).

    :math:`\sigma_t = \sigma_0 (\sigma_{end}/\sigma_0)^{t/(T-1)}`; index it with the step
    number inside a jitted update so that σ is traced, not static.
    """
    start = check_sigma(start, allow_zero=False, name="start")
    end = check_sigma(end, allow_zero=False, name="end")
    n_steps = check_param("n_steps", n_steps, Interval(numbers.Integral, 1))
    return jnp.asarray(geometric(start, end, n_steps) if n_steps > 1 else [float(end)])
