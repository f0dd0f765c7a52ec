"""The shared base of arbf's scikit-learn-style estimators.

When scikit-learn is importable the estimators derive from its ``BaseEstimator``,
``ClusterMixin`` and ``TransformerMixin`` (so ``clone``, pipelines, ``set_output`` and
``check_estimator`` work); otherwise from small stand-ins here that provide
``get_params``/``set_params``/``repr``, ``fit_predict`` and ``fit_transform``.
scikit-learn is never a runtime dependency.

:class:`CenterEstimator` holds what every center-based estimator needs: validation of the
data given to ``fit`` and to the methods after it (fitted state, feature count, feature
names), and the fitted ``cluster_centers_`` moved to the namespace, device and floating
dtype of new data.
"""

from __future__ import annotations

import inspect
import warnings
from types import ModuleType
from typing import Any

import numpy as np

from .._backend import Array, device_of, is_array, to_host
from .._math import seam
from .._math.metric import COSINE, to_sphere
from .._scaling import rescale, scale_for, sigma_in, unscale
from .._validation import check_centers, check_data

__all__ = [
    "HAVE_SKLEARN",
    "BaseEstimator",
    "CenterEstimator",
    "ClusterMixin",
    "NotFittedError",
    "TransformerMixin",
    "free_energy_score",
]


class _FallbackNotFittedError(ValueError, AttributeError):
    """Raised when an estimator is used before ``fit`` (like scikit-learn's)."""


class _FallbackBaseEstimator:
    """``get_params``/``set_params``/``repr`` for estimators whose ``__init__`` only stores
    its keyword arguments (scikit-learn's convention)."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        init = cls.__init__
        if init is object.__init__:
            return []
        params = inspect.signature(init).parameters.values()
        for p in params:
            if p.kind == p.VAR_POSITIONAL:
                raise RuntimeError(
                    f"{cls.__name__} should not take *args in __init__ (scikit-learn's "
                    "convention: every hyper-parameter is an explicit keyword)"
                )
        return sorted(p.name for p in params if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyper-parameters of this estimator (and of nested estimators when ``deep``)."""
        out: dict[str, Any] = {}
        for key in self._get_param_names():
            value = getattr(self, key)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{key}__{k}", v) for k, v in value.get_params().items())
            out[key] = value
        return out

    def set_params(self, **params: Any) -> _FallbackBaseEstimator:
        """Set hyper-parameters (``nested__name`` reaches a nested estimator)."""
        valid = self.get_params(deep=True)
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            head, sep, sub = key.partition("__")
            if head not in valid:
                raise ValueError(
                    f"Invalid parameter {head!r} for estimator {self!r}. Valid parameters "
                    f"are: {self._get_param_names()!r}."
                )
            if sep:
                nested.setdefault(head, {})[sub] = value
            else:
                setattr(self, head, value)
                valid[head] = value
        for head, sub_params in nested.items():
            valid[head].set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        defaults = {
            name: p.default
            for name, p in inspect.signature(type(self).__init__).parameters.items()
        }
        shown = []
        for key in self._get_param_names():
            value = getattr(self, key)
            default = defaults.get(key, inspect.Parameter.empty)
            same = value is default
            if not same:
                try:
                    same = bool(type(value) is type(default) and value == default)
                except Exception:  # arrays and other objects without a plain ==
                    same = False
            if not same:
                shown.append(f"{key}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


class _FallbackClusterMixin:
    """``fit_predict`` for clusterers (scikit-learn's ``ClusterMixin`` stand-in)."""

    _estimator_type = "clusterer"

    def fit_predict(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        self.fit(X, **kwargs)  # type: ignore[attr-defined]
        return self.labels_  # type: ignore[attr-defined]


class _FallbackTransformerMixin:
    """``fit_transform`` (scikit-learn's ``TransformerMixin`` stand-in)."""

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        return self.fit(X, y, **fit_params).transform(X)  # type: ignore[attr-defined]


try:
    from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
    from sklearn.exceptions import NotFittedError

    HAVE_SKLEARN = True
except ImportError:  # pragma: no cover - exercised by the no-sklearn test in a subprocess
    BaseEstimator = _FallbackBaseEstimator
    ClusterMixin = _FallbackClusterMixin
    TransformerMixin = _FallbackTransformerMixin
    NotFittedError = _FallbackNotFittedError
    HAVE_SKLEARN = False


def _feature_names(X: Any) -> np.ndarray | None:
    """Column names of a data frame when they are all strings, else ``None``."""
    if is_array(X) or not hasattr(X, "columns") or not hasattr(X, "shape"):
        return None
    try:
        names = np.asarray(list(X.columns), dtype=object)
    except TypeError:
        return None
    if names.size == 0:
        return None
    types = sorted({type(v).__qualname__ for v in names})
    if len(types) > 1 and "str" in types:
        raise TypeError(
            "Feature names are only supported if all input features have string names, "
            f"but your input has {types} as feature name / column name types. Convert them "
            "all to strings, e.g. with X.columns = X.columns.astype(str)."
        )
    return names if types == ["str"] else None


def free_energy_score(
    X: Array,
    C: Array,
    w: Array | None,
    *,
    sigma: float,
    kind: str,
    scale: float,
    xp: ModuleType,
    working_memory: Any,
) -> float:
    """:math:`F_\\sigma` (a host float64) of data and centers divided by ``scale``, σ in
    the data's units: assembled as :math:`s^2 B - \\sigma T`
    (:func:`arbf._math.core.soft.free_energy_at`), so a value beyond the data's dtype is
    still exact."""
    kind = "hard" if sigma == 0 else kind
    st = seam.soft_stats(
        X, C, w, sigma=sigma_in(sigma, scale), kind=kind, xp=xp, working_memory=working_memory
    )
    parts = xp.stack([xp.astype(seam.free_energy_base(st, kind), X.dtype), st.entropy])
    base, ent = (float(v) for v in to_host(parts))
    return seam.free_energy_at(base, ent, sigma=sigma, scale=scale)


class CenterEstimator(BaseEstimator):
    """Base of the estimators whose fitted state is ``cluster_centers_`` (k x d).

    Subclasses implement ``fit`` (which calls :meth:`_reset_input_meta` with the raw input
    and sets ``cluster_centers_``) and use :meth:`_validate_after_fit` in every method that
    takes new data.  Arrays stay in the namespace and on the device they came in.
    """

    _fitted_attribute = "cluster_centers_"

    # ---- fitted state -----------------------------------------------------------------
    def _check_is_fitted(self) -> None:
        if not hasattr(self, self._fitted_attribute):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, self._fitted_attribute)

    @property
    def _n_features_out(self) -> int:
        """Number of output features of ``transform`` (one per center)."""
        return int(getattr(self, self._fitted_attribute).shape[0])

    # ---- input metadata (feature count and names) -----------------------------------------
    def _reset_input_meta(self, X: Any, n_features: int) -> None:
        """Record ``n_features_in_`` and (for data frames) ``feature_names_in_`` in ``fit``."""
        names = _feature_names(X)
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.n_features_in_ = int(n_features)

    def _check_feature_names(self, X: Any) -> None:
        fitted = getattr(self, "feature_names_in_", None)
        given = _feature_names(X)
        name = type(self).__name__
        if fitted is None and given is None:
            return
        if fitted is None:
            warnings.warn(
                f"X has feature names, but {name} was fitted without feature names",
                UserWarning,
                stacklevel=3,
            )
            return
        if given is None:
            warnings.warn(
                f"X does not have valid feature names, but {name} was fitted with feature names",
                UserWarning,
                stacklevel=3,
            )
            return
        if len(fitted) != len(given) or bool(np.any(fitted != given)):
            unseen = sorted(set(given) - set(fitted))
            missing = sorted(set(fitted) - set(given))
            msg = "The feature names should match those that were passed during fit.\n"
            if unseen:
                msg += "Feature names unseen at fit time:\n" + "".join(
                    f"- {n}\n" for n in unseen[:5]
                )
            if missing:
                msg += "Feature names seen at fit time, yet now missing:\n" + "".join(
                    f"- {n}\n" for n in missing[:5]
                )
            if not unseen and not missing:
                msg += "Feature names must be in the same order as they were in fit.\n"
            raise ValueError(msg)

    def _validate_after_fit(self, X: Any) -> tuple[Array, Array, ModuleType]:
        """Check fitted state and ``X``; return ``(X, centers, xp)`` in X's namespace.

        ``X`` is validated like the data of ``fit`` (2-D, real, finite, promoted to a float
        dtype); the fitted centers are cast to its dtype and, when they are host NumPy
        arrays, moved to its namespace and device.
        """
        self._check_is_fitted()
        self._check_feature_names(X)
        X, xp = check_data(X)
        n_features = X.shape[1]
        if n_features != self.n_features_in_:
            raise ValueError(
                f"X has {n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        C = check_centers(
            getattr(self, self._fitted_attribute),
            None,
            n_features,
            xp=xp,
            dtype=X.dtype,
            device=device_of(X),
            like=X,
            name=self._fitted_attribute,
        )
        return X, C, xp

    def _rescaled_after_fit(self, X: Any) -> tuple[Array, Array, ModuleType, float]:
        """:meth:`_validate_after_fit`, then ``X`` and the centers divided by the power of
        two of their extent (:func:`arbf._scaling.scale_for`; 1 for ordinary data), so
        that no squared distance overflows: ``(X / s, C / s, xp, s)``."""
        X, C, xp = self._validate_after_fit(X)
        s = scale_for(seam.extent(X, C, xp=xp), X.dtype, xp=xp)
        return rescale(X, s), rescale(C, s), xp, s

    def _half(self) -> float:
        """The factor from the Euclidean objectives of the unit rows (and temperatures)
        to the cosine ones; 1 for ``metric="sqeuclidean"``."""
        return 0.5 if self.metric == COSINE else 1.0

    def _validate_on_metric(self, X: Any) -> tuple[Array, Array, ModuleType, float]:
        """:meth:`_rescaled_after_fit`; for ``metric="cosine"`` the rows of ``X``
        normalised instead (the centers have unit norm already; nothing to rescale:
        ``s = 1``)."""
        if self.metric != COSINE:
            return self._rescaled_after_fit(X)
        X, C, xp = self._validate_after_fit(X)
        return to_sphere(X, xp=xp), C, xp, 1.0

    def _distances(self, X: Array, C: Array, *, xp: ModuleType, scale: float = 1.0) -> Array:
        """Euclidean (not squared) distances of the rows of ``X`` to ``C``, in chunks
        (``X`` and ``C`` divided by ``scale``: the distances are multiplied back).

        The chunk size follows the estimator's ``working_memory`` (MiB) when it has one.
        """
        wm = getattr(self, "working_memory", None)
        return unscale(seam.pairwise_distances(X, C, xp=xp, working_memory=wm), scale)

    # ---- feature names out (one per center) ------------------------------------------
    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output feature names of ``transform``: ``"<classname><j>"`` for each center."""
        self._check_is_fitted()
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{j}" for j in range(self._n_features_out)], dtype=object)

    # ---- scikit-learn tags -----------------------------------------------------------
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # scipy.sparse: the seam's "sparse" route
        tags.input_tags.allow_nan = False
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
