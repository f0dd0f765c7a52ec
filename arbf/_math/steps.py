r"""Center updates, public: the Lloyd step, the soft Lloyd step and the gradient step.

Lloyd's update (hard responsibilities): ``mu_j <- sum_i w_i r_ij x_i / sum_i w_i r_ij``
with ``r_ij = 1[j = argmin_l D_il]``.  The soft Lloyd (fixed-point) step moves each center
to its soft centroid :math:`m_j = \sum_i w_i r_{ij} x_i / N_j`, :math:`N_j = \sum_i w_i
r_{ij}`.  The gradient step on the free energy is :math:`\mu_j - \eta_j \nabla_{\mu_j}
F_\sigma` with :math:`\nabla_{\mu_j} F_\sigma = 2 (N_j \mu_j - \sum_i w_i r_{ij} x_i)`;
the per-center step :math:`\eta_j = 1/(2N_j)` (``lr="lloyd"``) lands exactly on
:math:`m_j` (Theorem 2), and with hard responsibilities (σ = 0) that is Lloyd's update.
A center that receives no weight keeps its position here (the K-Means driver relocates
it, as scikit-learn does).  The formulas are :mod:`arbf._math.core.updates`; these
functions validate and call :mod:`arbf._math.seam`.
"""

from __future__ import annotations

from typing import Any

from .._backend import Array, quiet_overflow
from .._scaling import check_finite_result, rescale, scale_for, sigma_in, unscale
from .._validation import check_kind, check_lr, check_sigma, check_x_centers_weights
from . import batched, seam
from .metric import check_metric, prepare, project


def _rescaled(
    X: Any, centers: Any, sample_weight: Any, metric: str, sigma: float = 0.0
) -> tuple[Array, Array, Array | None, Any, float, float, float]:
    """Validated ``(X / s, C / s, w, xp, s, sigma, half)``: for the cosine metric the rows
    on the sphere, σ doubled and ``half = 0.5`` (:func:`arbf._math.metric.prepare`), else
    ``half = 1``; then ``s`` the power of two of their extent
    (:func:`arbf._scaling.scale_for`; 1 for ordinary data and unit rows): no distance
    overflows."""
    X, C, w, xp = check_x_centers_weights(X, centers, sample_weight)
    X, C, sigma, half = prepare(X, C, metric, xp=xp, sigma=sigma)
    s = scale_for(seam.extent(X, C, xp=xp), X.dtype, xp=xp)
    return rescale(X, s), rescale(C, s), w, xp, s, sigma, half


__all__ = ["gradient_step", "lloyd_step", "soft_lloyd_step"]


def lloyd_step(
    X: Any,
    centers: Any,
    /,
    *,
    sample_weight: Any = None,
    working_memory: float | None = None,
    metric: str = "sqeuclidean",
) -> Array:
    r"""One Lloyd (K-Means) update of ``centers``.

    .. math::

        \mu_j \leftarrow \frac{\sum_i w_i\, r_{ij}\, x_i}{\sum_i w_i\, r_{ij}},
        \qquad r_{ij} = \mathbb 1\big[j = \operatorname{argmin}_l \lVert x_i-\mu_l\rVert^2\big]

    (ties to the lowest index).  It is the hard (σ → 0) limit of the soft Lloyd step and
    of the gradient step with ``lr="lloyd"`` (SPEC §1, Theorem 2).  A center whose cell
    holds no weight is returned unchanged.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Or ``(B, n_samples, n_features)``: B independent problems at once (centers
        ``(B, n_clusters, n_features)``, weights ``(B, n_samples)`` or ``(n_samples,)``;
        objectives come back as ``(B,)``); not for Dask.
    centers : array of shape (n_clusters, n_features)
    sample_weight : array of shape (n_samples,), optional
    working_memory : float, optional
        Memory budget in MiB for one chunk's temporaries.
    metric : {"sqeuclidean", "cosine"}, default "sqeuclidean"
        "cosine": the spherical step: rows of ``X`` and ``centers`` normalised (a row
        of norm 0 raises ``ValueError``), :math:`D_{ij} = 1 - \cos(x_i, \mu_j)`, and
        the result projected onto the sphere,
        :math:`\mu_j \leftarrow s_j/\lVert s_j\rVert`, :math:`s_j = \sum_{l_i=j} w_i\hat x_i`
        (Dhillon & Modha's spherical K-Means update)
        (a center whose sum is exactly 0 keeps its normalised position).

    Returns
    -------
    new_centers : array of shape (n_clusters, n_features)

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [2.0], [10.0], [12.0]])
    >>> arbf.lloyd_step(X, xp.asarray([[1.0], [9.0]]))
    Array([[ 1.],
           [11.]], dtype=array_api_strict.float64)
    """
    metric = check_metric(metric)
    if batched.is_batched(X):  # (B, n, d): B problems at once
        return batched.step(
            X, centers, sample_weight, sigma=0.0, kind="hard", lr="lloyd",
            working_memory=working_memory, metric=metric,
        )  # fmt: skip
    X, C, w, xp, s, _, half = _rescaled(X, centers, sample_weight, metric)
    _, sums, weights, _ = seam.lloyd_sums(X, C, w, xp=xp, working_memory=working_memory)
    C_new = seam.safe_divide_centers(sums, weights, C, xp=xp)
    return unscale(project(C_new, C, xp=xp) if half != 1.0 else C_new, s)


def soft_lloyd_step(
    X: Any,
    centers: Any,
    /,
    *,
    sigma: float,
    kind: str = "softmax",
    sample_weight: Any = None,
    working_memory: float | None = None,
    metric: str = "sqeuclidean",
) -> Array:
    r"""One soft Lloyd (fixed-point) update: each center moves to its soft centroid.

    .. math::

        \mu_j \leftarrow m_j = \frac{\sum_i w_i r_{ij} x_i}{N_j}, \qquad
        N_j = \sum_i w_i r_{ij},

    with :math:`r_{ij}` the responsibilities at temperature σ (σ divides the squared
    distance; a Gaussian of width :math:`s` is :math:`\sigma = 2s^2`).  :math:`m_j` is
    the zero of :math:`\nabla_{\mu_j} F_\sigma` with the responsibilities held fixed
    (Lemma 1).  σ = 0 (or ``kind="hard"``) is exactly :func:`arbf.lloyd_step`.  A center
    with :math:`N_j = 0` keeps its position.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Data, any Array API namespace.
        Or ``(B, n_samples, n_features)``: B independent problems at once (centers
        ``(B, n_clusters, n_features)``, weights ``(B, n_samples)`` or ``(n_samples,)``;
        objectives come back as ``(B,)``); not for Dask.
    centers : array of shape (n_clusters, n_features)
        Centers, same namespace and device as ``X``.
    sigma : float
        Temperature ``>= 0``.
    kind : {"softmax", "entmax15", "hard"}, default "softmax"
    sample_weight : array of shape (n_samples,), optional
        Non-negative weights :math:`w_i` (default 1).
    working_memory : float, optional
        Memory budget in MiB for the temporaries of one chunk of rows.
    metric : {"sqeuclidean", "cosine"}, default "sqeuclidean"
        "cosine": the spherical step: rows of ``X`` and ``centers`` normalised (a row
        of norm 0 raises ``ValueError``), :math:`D_{ij} = 1 - \cos(x_i, \mu_j)`, and
        the result projected onto the sphere, :math:`\mu_j \leftarrow m_j/\lVert m_j\rVert`
        with the soft centroid :math:`m_j` of the unit rows (the vMF M-step)
        (a center whose sum is exactly 0 keeps its normalised position).
    Returns
    -------
    new_centers : array of shape (n_clusters, n_features)
        In the namespace, device and floating dtype of ``X``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [1.0], [3.0]])
    >>> C = xp.asarray([[0.0], [2.0]])
    >>> arbf.soft_lloyd_step(X, C, sigma=1.0, kind="entmax15")  # the middle point is split
    Array([[0.33333333],
           [2.33333333]], dtype=array_api_strict.float64)
    """
    sigma = check_sigma(sigma)
    kind = check_kind(kind)
    metric = check_metric(metric)
    if batched.is_batched(X):  # (B, n, d): B problems at once
        return batched.step(
            X, centers, sample_weight, sigma=sigma, kind=kind, lr="lloyd",
            working_memory=working_memory, metric=metric,
        )  # fmt: skip
    X, C, w, xp, s, sigma, half = _rescaled(X, centers, sample_weight, metric, sigma)
    st = seam.soft_stats(
        X, C, w, sigma=sigma_in(sigma, s), kind=kind, xp=xp, working_memory=working_memory
    )
    C_new = seam.step(C, st.mass, st.sums, "lloyd", xp=xp)
    return unscale(project(C_new, C, xp=xp) if half != 1.0 else C_new, s)


def gradient_step(
    X: Any,
    centers: Any,
    /,
    *,
    sigma: float,
    kind: str = "softmax",
    lr: Any = "lloyd",
    sample_weight: Any = None,
    working_memory: float | None = None,
    metric: str = "sqeuclidean",
) -> Array:
    r"""One gradient step on the free energy :math:`F_\sigma`.

    .. math::

        \mu_j \leftarrow \mu_j - \eta_j \nabla_{\mu_j} F_\sigma, \qquad
        \nabla_{\mu_j} F_\sigma = 2 \sum_i w_i r_{ij} (\mu_j - x_i).

    ``lr="lloyd"`` takes the per-center step :math:`\eta_j = 1/(2N_j)`,
    :math:`N_j = \sum_i w_i r_{ij}`, which lands exactly on the soft centroid (Theorem 2:
    the gradient step *is* the soft Lloyd step, and at σ = 0 Lloyd's step); a float
    ``lr`` is a fixed step :math:`\eta_j = \mathrm{lr}`.  σ divides the squared distance
    (a Gaussian of width :math:`s` is :math:`\sigma = 2s^2`).

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Data, any Array API namespace.
        Or ``(B, n_samples, n_features)``: B independent problems at once (centers
        ``(B, n_clusters, n_features)``, weights ``(B, n_samples)`` or ``(n_samples,)``;
        objectives come back as ``(B,)``); not for Dask.
    centers : array of shape (n_clusters, n_features)
        Centers, same namespace and device as ``X``.
    sigma : float
        Temperature ``>= 0``.
    kind : {"softmax", "entmax15", "hard"}, default "softmax"
    lr : "lloyd" or float, default "lloyd"
        The step size.
    sample_weight : array of shape (n_samples,), optional
        Non-negative weights :math:`w_i` (default 1).
    working_memory : float, optional
        Memory budget in MiB for the temporaries of one chunk of rows.
    metric : {"sqeuclidean", "cosine"}, default "sqeuclidean"
        "cosine": the spherical step: rows of ``X`` and ``centers`` normalised (a row
        of norm 0 raises ``ValueError``), :math:`D_{ij} = 1 - \cos(x_i, \mu_j)`, and
        the result projected onto the sphere,
        :math:`\mu_j \leftarrow P(\hat\mu_j - \eta_j \nabla_{\mu_j} F^{\cos}_\sigma)`,
        :math:`\nabla_{\mu_j} F^{\cos}_\sigma = \sum_i w_i r_{ij}(\hat\mu_j - \hat x_i)`
        (:func:`arbf.center_gradient`); ``lr="lloyd"`` is then
        :math:`\eta_j = 1/N_j`, which lands on the soft centroid, so the projected
        step is the spherical soft Lloyd step
        (a center whose sum is exactly 0 keeps its normalised position).
    Returns
    -------
    new_centers : array of shape (n_clusters, n_features)
        In the namespace, device and floating dtype of ``X``.

    Examples
    --------
    >>> import array_api_strict as xp
    >>> import arbf
    >>> X = xp.asarray([[0.0], [1.0], [3.0]])
    >>> C = xp.asarray([[0.0], [2.0]])
    >>> arbf.gradient_step(X, C, sigma=0.0)  # Lloyd's step
    Array([[0.5],
           [3. ]], dtype=array_api_strict.float64)
    >>> arbf.gradient_step(X, C, sigma=0.0, lr=0.25)
    Array([[0.5],
           [2.5]], dtype=array_api_strict.float64)
    """
    sigma = check_sigma(sigma)
    kind = check_kind(kind)
    lr = check_lr(lr)
    metric = check_metric(metric)
    if batched.is_batched(X):  # (B, n, d): B problems at once
        return batched.step(
            X, centers, sample_weight, sigma=sigma, kind=kind, lr=lr,
            working_memory=working_memory, metric=metric,
        )  # fmt: skip
    X, C, w, xp, s, sigma, half = _rescaled(X, centers, sample_weight, metric, sigma)
    st = seam.soft_stats(
        X, C, w, sigma=sigma_in(sigma, s), kind=kind, xp=xp, working_memory=working_memory
    )
    if half != 1.0:
        # the cosine gradient is half the Euclidean one at 2σ: a step lr on it is a step
        # lr/2 on the Euclidean form ("lloyd" lands on the soft centroid either way), then
        # the projection onto the sphere (unit rows: s = 1)
        C_new = seam.step(C, st.mass, st.sums, lr if isinstance(lr, str) else lr / 2, xp=xp)
        return project(C_new, C, xp=xp)
    if lr == "lloyd":
        return unscale(seam.step(C, st.mass, st.sums, lr, xp=xp), s)
    with quiet_overflow(xp):  # a float lr can step anywhere: checked
        new = unscale(seam.step(C, st.mass, st.sums, lr, xp=xp), s)
    return check_finite_result(new, xp=xp, what=f"the gradient step with lr={lr:g}")
