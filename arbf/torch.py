r"""PyTorch integration: :class:`RBFClustering`, a K-Means / RBF clustering layer.

Importing :mod:`arbf.torch` requires PyTorch (``pip install arbf[torch]``); the core
``arbf`` package never imports it.

The layer holds k learnable centers :math:`\mu_j` and a temperature σ (σ divides the
squared distance; a Gaussian of width :math:`s` is :math:`\sigma = 2s^2`).  For a batch of
codes :math:`x_i` it returns the responsibilities

.. math::

    r_{ij} = \operatorname{map}\big(-D_{i\cdot}/\sigma\big)_j, \qquad
    D_{ij} = \lVert x_i - \mu_j \rVert^2,

(``map`` = softmax or entmax-1.5) and a clustering loss, by default the free energy
:math:`F_\sigma = \sum_i w_i \big(\sum_j r_{ij} D_{ij} - \sigma H(r_i)\big)`, whose gradient
:math:`\nabla_{\mu_j} F_\sigma = 2\sum_i w_i r_{ij} (\mu_j - x_i)` makes a step of size
:math:`1/(2N_j)` the soft Lloyd step, and which tends to the K-Means inertia as σ → 0.
The math is the functional core's (:func:`arbf.free_energy`, :func:`arbf.responsibilities`),
evaluated per sample so that batches, means and weights work.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from ._backend import array_namespace, is_array, to_host
from ._math.seam import (
    OBJECTIVES,
    SampleTerms,
    batched_cosine_sample_terms,
    batched_sample_terms,
    cosine_sample_terms,
    ema_update,
    geometric,
    project_rows,
    reduce_terms,
    sample_terms,
    select_objective,
    unit_rows,
)
from ._validation import (
    BOOLEAN,
    NONE,
    Interval,
    Options,
    check_kind,
    check_param,
    real_scalar,
)

# the compat namespace, resolved once (not inside forward: keeps torch.compile graphs clean)
_XP = array_namespace(torch.empty(0))

__all__ = ["RBFClustering", "RBFOutput", "SigmaSchedule", "geometric_schedule"]


class RBFOutput(NamedTuple):
    """What :meth:`RBFClustering.forward` returns.

    Attributes
    ----------
    responsibilities : Tensor of shape (n, k), or (n_heads, n, k)
        :math:`r_{ij}`, rows on the simplex (exact zeros for entmax-1.5).
    loss : Tensor
        The reduced clustering loss (0-d unless ``reduction="none"``: then ``(n,)`` or
        ``(n_heads, n)``).
    """

    responsibilities: torch.Tensor
    loss: torch.Tensor


def _check_positive(value: float, name: str) -> float:
    return float(
        check_param(name, real_scalar(value, name), Interval(numbers.Real, 0, None, "neither"))
    )


def _kind_of(x: Any) -> str:
    return f"{type(x).__module__.split('.')[0]}.{type(x).__name__}"


def _check_tensor(x: Any, name: str) -> torch.Tensor:
    """``x`` must be a dense, real torch tensor with values (not on the meta device)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor, got {_kind_of(x)}; convert it with "
            "torch.as_tensor (arbf's functions take other arrays)"
        )
    if x.layout != torch.strided:
        raise TypeError(
            f"{name} is a {x.layout} tensor: RBFClustering needs a dense tensor (call .to_dense())"
        )
    if x.device.type == "meta":
        raise ValueError(f"{name} is on the 'meta' device: it has no values to cluster")
    if x.is_complex():
        raise TypeError(f"{name} has dtype {x.dtype}: clustering needs real data")
    return x


class RBFClustering(nn.Module):
    r"""Differentiable K-Means: a normalised Gaussian RBF layer with temperature σ.

    ``forward(x)`` returns the responsibilities :math:`r_{ij}` of the centers for each
    row of ``x`` and the clustering loss :math:`\sum_i w_i \ell_i` (``reduction="sum"``)
    or :math:`\sum_i w_i \ell_i / \sum_i w_i` (``"mean"``, the default, as for torch
    losses), where the per-sample loss :math:`\ell_i` is

    - ``objective="free_energy"`` (default):
      :math:`F_i = \sum_j r_{ij} D_{ij} - \sigma H(r_i)`, which for softmax is
      :math:`-\sigma \log \sum_j e^{-D_{ij}/\sigma}` (Shannon :math:`H`; Tsallis-1.5
      :math:`H(p) = \tfrac43\sum_j (p_j - p_j^{3/2})` for entmax-1.5);
    - ``objective="distortion"``: :math:`L_i = \sum_j r_{ij} D_{ij}` with the
      responsibilities held fixed (stop-gradient).  By the envelope theorem its gradients
      with respect to the centers *and* the inputs equal those of :math:`F_i`; only the
      value (and the σ-gradient) differ;
    - ``objective="nll"`` (softmax only): the negative log-likelihood of an equal-weight
      isotropic Gaussian mixture with variance :math:`\sigma/2`,
      :math:`F_i/\sigma + \tfrac d2 \log(\pi\sigma) + \log k` — the objective to use with
      ``learn_sigma=True`` (minimising :math:`F_\sigma` over σ drives σ up, since
      :math:`\partial F_\sigma/\partial\sigma = -H \le 0`; :math:`L` with stop-gradient
      does not depend on σ).

    With ``reduction="sum"`` and ``objective="free_energy"`` the loss equals
    :func:`arbf.free_energy` of the same batch and centers, and its gradient with
    respect to the centers is :func:`arbf.center_gradient`.

    **Heads.** With ``n_heads=H`` the layer holds H independent sets of centers,
    ``centers`` of shape ``(H, k, d)``, and ``forward`` takes ``x`` of shape ``(H, n, d)``
    (e.g. the keys of an attention layer, ``(batch, H, seq, d)`` permuted and reshaped to
    ``(H, batch * seq, d)``): head ``h`` clusters ``x[h]`` with ``centers[h]``, all heads in
    batched products.  The loss sums (or averages) over heads and samples together.

    **Online updates.** ``update="gradient"`` (default): the centers are a parameter that
    an optimizer trains with the loss.  ``update="ema"``: the centers are not trained by
    gradients (``requires_grad=False``); instead every forward pass in training mode
    moves them, after computing its output with the current centers, by an exponential
    moving average of the batch's soft statistics (per head),

    .. math::

        S^0_j = \sum_i w_i r_{ij}, \qquad S^1_j = \sum_i w_i r_{ij} x_i, \qquad
        \mu_j \leftarrow (1 - m)\, \mu_j + m\, S^1_j / S^0_j ,

    with ``m = momentum`` and the responsibilities :math:`r_{ij}` of ``kind`` (softmax,
    entmax-1.5 or hard: online K-Means) held fixed; a center with :math:`S^0_j = 0` keeps
    its position.  ``m = 1`` is the soft Lloyd step of the batch
    (:func:`arbf.soft_lloyd_step`).  No gradient flows through the update; the loss still
    gives gradients for the input.  In ``eval()`` mode the centers do not move.

    With ``metric="cosine"`` the update is online spherical K-Means: the statistics are
    those of the unit rows, the average starts from the centers' directions and its
    result is put back on the sphere,

    .. math::

        S^1_j = \sum_i w_i r_{ij} \hat x_i, \qquad
        \mu_j \leftarrow \frac{(1 - m)\,\hat\mu_j + m\, S^1_j / S^0_j}
                               {\big\lVert (1 - m)\,\hat\mu_j + m\, S^1_j / S^0_j\big\rVert},

    (:math:`\hat\mu_j = \mu_j/\lVert\mu_j\rVert`; a center with :math:`S^0_j = 0`, or
    whose average is exactly 0, keeps the direction :math:`\hat\mu_j`), so after one
    step in training mode the centers have unit norm, and ``m = 1`` is the spherical soft
    Lloyd step :func:`arbf.soft_lloyd_step` with ``metric="cosine"``.  Heads work as
    above, every head on its own sphere.

    Parameters
    ----------
    n_clusters : int
        Number of centers k.
    n_features : int
        Dimension d of the inputs (codes).
    sigma : float, default 1.0
        Initial temperature, > 0.  Stored as the buffer (or, with ``learn_sigma``, the
        parameter) ``log_sigma``; change it with :meth:`set_sigma` or a
        :class:`SigmaSchedule`.  Changing σ does not retrigger ``torch.compile``.
    kind : {"softmax", "entmax15", "hard"}, default "softmax"
    objective : {"free_energy", "distortion", "nll"}, default "free_energy"
    reduction : {"mean", "sum", "none"}, default "mean"
    learn_sigma : bool, default False
        Make :math:`\log\sigma` a learnable parameter (use with ``objective="nll"``).
    metric : {"sqeuclidean", "cosine"}, default "sqeuclidean"
        "cosine": the spherical layer (a von Mises-Fisher mixture with concentration
        :math:`1/\sigma`).  Inputs and centers enter through their directions,
        :math:`\hat x = x/\lVert x\rVert`, :math:`\hat\mu = \mu/\lVert\mu\rVert` (the
        ``centers`` parameter stays unconstrained; gradients flow through the
        normalisation), and :math:`D_{ij}` is the cosine distance
        :math:`1 - \hat x_i\cdot\hat\mu_j` in every formula above, so with
        ``reduction="sum"`` the free energy equals :func:`arbf.free_energy` with
        ``metric="cosine"``.  ``objective="nll"`` is refused (its normaliser is the
        Gaussian one).  Rows of norm 0 are not checked (they get cosine 0 with every
        center).  With ``n_heads`` every head is its own spherical layer; with
        ``update="ema"`` the update is online spherical K-Means (see "Online updates").
    n_heads : int, optional
        Number of heads H: centers ``(H, k, d)`` and inputs ``(H, n, d)``.  Default: one
        set of centers ``(k, d)`` and inputs ``(n, d)``.
    update : {"gradient", "ema"}, default "gradient"
        How the centers learn (see "Online updates").
    momentum : float in (0, 1], default 0.1
        :math:`m` of ``update="ema"``.
    centers : Tensor, optional
        Initial centers (copied), of shape (n_clusters, n_features), or (n_heads,
        n_clusters, n_features) with heads.  Default: standard normal draws; use
        :meth:`from_data` or :meth:`init_centers_` to start from :func:`arbf.kmeans`.
    device, dtype : optional
        Of the parameters, as for any ``nn.Module``.
    check_inputs : bool, default True
        Check the *values* of every batch and its weights (finite; weights >= 0 and not
        all zero): one host synchronisation per call, skipped while ``torch.compile``
        traces.  Types, shapes, devices and an empty batch are always checked (no
        synchronisation).  Set False for hot training loops on a GPU.

    Notes
    -----
    σ is stored as :math:`\log\sigma`, so any positive σ works in any dtype: the
    responsibilities use σ clamped to the dtype's normal range (the exact one-hot or
    uniform limits), :math:`F_i` tends to :math:`d_i` as σ underflows, and the ``"nll"``
    objective is computed from :math:`\log\sigma`.  ``objective="free_energy"``
    refuses a σ with :math:`\sigma\log k` beyond the dtype's range, ``"nll"`` a σ below
    its smallest normal number (their losses could not be represented: a
    :class:`ValueError` names σ and the dtype).  Otherwise a loss whose true value is
    beyond the dtype's range (a *learned* σ that drifts there, or far-away inputs) is
    ``±inf``, as any overflowing torch operation.

    Attributes
    ----------
    centers : nn.Parameter of shape (n_clusters, n_features) or (n_heads, n_clusters, n_features)
        ``requires_grad=False`` with ``update="ema"``.
    log_sigma : Tensor (buffer) or nn.Parameter, 0-d

    Examples
    --------
    >>> import torch
    >>> from arbf.torch import RBFClustering
    >>> x = torch.tensor([[0.0], [1.0], [3.0]])
    >>> layer = RBFClustering(2, 1, sigma=1.0, kind="entmax15", reduction="sum",
    ...                       centers=torch.tensor([[0.0], [2.0]]))
    >>> r, loss = layer(x)
    >>> r
    tensor([[1.0000, 0.0000],
            [0.5000, 0.5000],
            [0.0000, 1.0000]], grad_fn=<MulBackward0>)
    """

    centers: nn.Parameter
    log_sigma: torch.Tensor

    def __init__(
        self,
        n_clusters: int,
        n_features: int,
        *,
        sigma: float = 1.0,
        kind: str = "softmax",
        objective: str = "free_energy",
        reduction: str = "mean",
        learn_sigma: bool = False,
        n_heads: int | None = None,
        update: str = "gradient",
        momentum: float = 0.1,
        centers: torch.Tensor | None = None,
        device: Any = None,
        dtype: Any = None,
        check_inputs: bool = True,
        metric: str = "sqeuclidean",
    ) -> None:
        super().__init__()
        self.n_clusters = check_param("n_clusters", n_clusters, Interval(numbers.Integral, 1))
        self.n_features = check_param("n_features", n_features, Interval(numbers.Integral, 1))
        self.kind = check_kind(kind)
        self.objective = check_param("objective", objective, Options(*OBJECTIVES))
        if self.objective == "nll" and self.kind != "softmax":
            raise ValueError("objective='nll' is the Gaussian mixture likelihood: softmax only")
        self.reduction = check_param("reduction", reduction, Options("mean", "sum", "none"))
        self.learn_sigma = check_param("learn_sigma", learn_sigma, BOOLEAN)
        self.check_inputs = check_param("check_inputs", check_inputs, BOOLEAN)
        self.metric = check_param("metric", metric, Options("sqeuclidean", "cosine"))
        if self.metric == "cosine" and self.objective == "nll":
            raise ValueError(
                "objective='nll' is the Gaussian mixture likelihood: metric='sqeuclidean' only"
            )
        self.n_heads = check_param("n_heads", n_heads, NONE, Interval(numbers.Integral, 1))
        self.update = check_param("update", update, Options("gradient", "ema"))
        self.momentum = float(
            check_param("momentum", momentum, Interval(numbers.Real, 0, 1, "right"))
        )
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        shape: tuple[int, ...] = (self.n_clusters, self.n_features)
        if self.n_heads is not None:
            shape = (self.n_heads, *shape)
        if centers is None:
            init = torch.randn(*shape, **factory)
        else:
            if isinstance(centers, torch.Tensor):
                _check_tensor(centers, "centers")
            elif is_array(centers) or isinstance(centers, list | tuple):
                host = np.asarray(to_host(centers) if is_array(centers) else centers)
                if host.dtype.kind not in "biuf":
                    raise TypeError(f"centers must be real numbers, got dtype {host.dtype}")
            else:
                raise TypeError(f"centers must be a tensor or an array, got {_kind_of(centers)}")
            init = torch.as_tensor(centers, **factory).detach().clone()
            if tuple(init.shape) != shape:
                raise ValueError(f"centers must have shape {shape}, got {tuple(init.shape)}")
        if not init.is_floating_point():
            init = init.to(torch.get_default_dtype())
        if init.device.type != "meta" and not bool(torch.isfinite(init).all()):
            raise ValueError("centers contains NaN or infinity")
        self.centers = nn.Parameter(init, requires_grad=self.update == "gradient")
        sigma = self._check_sigma_range(_check_positive(sigma, "sigma"), init.dtype)
        log_sigma = torch.tensor(math.log(sigma), dtype=init.dtype, device=init.device)
        if self.learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    @classmethod
    def from_data(
        cls,
        X: torch.Tensor,
        n_clusters: int,
        *,
        random_state: Any = None,
        n_init: int | str = "auto",
        **kwargs: Any,
    ) -> RBFClustering:
        """A layer whose centers are :func:`arbf.kmeans` of ``X`` (n×d, detached).

        ``kwargs`` go to the constructor; the layer takes the device and dtype of ``X``.
        """
        X = torch.as_tensor(X).detach()
        if X.ndim == 3:  # (H, n, d): one set of centers per head
            kwargs.setdefault("n_heads", X.shape[0])
        layer = cls(n_clusters, X.shape[-1], device=X.device, dtype=X.dtype, **kwargs)
        return layer.init_centers_(X, random_state=random_state, n_init=n_init)

    @torch.no_grad()
    def init_centers_(
        self, X: torch.Tensor, *, random_state: Any = None, n_init: int | str = "auto"
    ) -> RBFClustering:
        """Set the centers, in place, to :func:`arbf.kmeans` of ``X`` (``(n, d)``, or
        ``(H, n, d)`` with heads: one K-Means per head; with the layer's ``metric``: unit
        centers for "cosine"); returns ``self``."""
        from ._drivers.kmeans import kmeans

        X = torch.as_tensor(X).detach().to(device=self.centers.device, dtype=self.centers.dtype)
        res = kmeans(
            X, self.n_clusters, random_state=random_state, n_init=n_init, metric=self.metric
        )
        self.centers.copy_(torch.as_tensor(res.centers).to(self.centers))
        return self

    @property
    def sigma(self) -> torch.Tensor:
        """The temperature :math:`\\sigma = e^{\\log\\sigma}` (0-d tensor)."""
        return self.log_sigma.exp()

    @torch.no_grad()
    def set_sigma(self, value: float) -> None:
        """Set σ (> 0) in place; no recompilation under ``torch.compile``."""
        value = self._check_sigma_range(_check_positive(value, "sigma"), self.log_sigma.dtype)
        self.log_sigma.fill_(math.log(value))

    def _check_sigma_range(self, sigma: float, dtype: torch.dtype) -> float:
        """σ is stored as log σ and may be anything positive in float64, except where the
        loss itself could not be represented (a :class:`ValueError`): the free energy is
        about :math:`-\\sigma\\log k` per sample at a σ far above the data's squared
        scale, so ``objective="free_energy"`` refuses ``σ log k`` beyond the dtype's
        largest finite number; the NLL is about :math:`d_i/\\sigma`, so ``"nll"``
        refuses a σ below its smallest normal number."""
        if not dtype.is_floating_point:
            return sigma
        fi = torch.finfo(dtype)
        if self.objective == "free_energy" and self.n_clusters > 1:
            if sigma * math.log(self.n_clusters) > fi.max:
                raise ValueError(
                    f"sigma={sigma:g}: the free energy (about -sigma * log(k) per sample) is "
                    f"beyond the range of {dtype} (largest finite {fi.max:.4g}); use float64 "
                    "parameters, or objective='distortion' (the same center gradients)"
                )
        if self.objective == "nll" and sigma < fi.smallest_normal:
            raise ValueError(
                f"sigma={sigma:g}: the Gaussian negative log-likelihood (d_i / sigma per "
                f"sample) is beyond the range of {dtype} below sigma={fi.smallest_normal:.4g}; "
                "use float64 parameters"
            )
        return sigma

    def _check_batch(
        self, x: Any, sample_weight: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The input batch (and weights) validated: a dense real tensor on the centers'
        device, shape ``(n >= 1, n_features)`` (``(n_heads, n, n_features)`` with heads);
        weights of shape ``(n,)`` (``(n_heads, n)``).
        With ``check_inputs`` (and not while ``torch.compile`` traces) the values too,
        in one host synchronisation: finite inputs, finite non-negative weights that
        are not all zero."""
        x = _check_tensor(x, "x")
        lead = () if self.n_heads is None else (self.n_heads,)
        if (
            x.ndim != len(lead) + 2
            or tuple(x.shape[:-2]) != lead
            or x.shape[-1] != self.n_features
        ):
            want = ", ".join([*(str(h) for h in lead), "n", str(self.n_features)])
            raise ValueError(f"x must have shape ({want}), got {tuple(x.shape)}")
        if x.shape[-2] == 0:
            raise ValueError("x is an empty batch (0 samples): the loss has no value")
        if x.device != self.centers.device:
            raise ValueError(
                f"x is on {x.device} but the centers are on {self.centers.device}; move "
                "one of them (layer.to(device))"
            )
        x = x.to(self.centers.dtype)
        w = None
        if sample_weight is not None:
            w = _check_tensor(sample_weight, "sample_weight")
            if tuple(w.shape) != tuple(x.shape[:-1]):
                what = "1-D with" if not lead else f"of shape {tuple(x.shape[:-1])}:"
                raise ValueError(
                    f"sample_weight must be {what} {x.shape[-2]} entries (one per sample), "
                    f"got shape {tuple(w.shape)}"
                )
            if w.device != x.device:
                raise ValueError(f"sample_weight is on {w.device} but x is on {x.device}")
            w = w.to(x.dtype)
        if self.check_inputs and not torch.compiler.is_compiling():
            with torch.no_grad():
                flags = [torch.isfinite(x).all()]
                if w is not None:
                    flags += [torch.isfinite(w).all(), (w >= 0).all(), w.sum() > 0]
                ok = torch.stack(flags).cpu().tolist()
            if not ok[0]:
                raise ValueError("x contains NaN or infinity")
            if w is not None and not ok[1]:
                raise ValueError("sample_weight contains NaN or infinity")
            if w is not None and not ok[2]:
                raise ValueError("sample_weight contains negative values; weights must be >= 0")
            if w is not None and not ok[3]:
                raise ValueError("sample_weight sums to zero: at least one must be positive")
        return x, w

    def sample_terms(self, x: torch.Tensor) -> SampleTerms:
        """Per-sample responsibilities, :math:`L_i`, :math:`F_i` and :math:`d_i` of ``x``.

        See :class:`arbf._math.core.terms.SampleTerms`.
        """
        x, _ = self._check_batch(x)
        return self._terms(x, self.centers)

    def _terms(self, x: torch.Tensor, C: torch.Tensor) -> SampleTerms:
        if self.n_heads is not None:
            heads_of = (
                batched_cosine_sample_terms if self.metric == "cosine" else batched_sample_terms
            )
            return heads_of(
                x, C, self.sigma, kind=self.kind, xp=_XP, stop_gradient=torch.Tensor.detach
            )
        terms_of = cosine_sample_terms if self.metric == "cosine" else sample_terms
        return terms_of(
            x, C, self.sigma, kind=self.kind, xp=_XP, stop_gradient=torch.Tensor.detach,
            log_sigma=self.log_sigma,
        )  # fmt: skip

    def _terms_at(self, x: torch.Tensor, sigma: Any, *, kind: str) -> SampleTerms:
        """The cosine terms of ``x`` at the current centers, σ and ``kind`` given."""
        if self.n_heads is not None:
            return batched_cosine_sample_terms(x, self.centers, sigma, kind=kind, xp=_XP)
        return cosine_sample_terms(x, self.centers, sigma, kind=kind, xp=_XP)

    @torch.no_grad()
    def _ema_step(self, x: torch.Tensor, R: torch.Tensor, w: torch.Tensor | None) -> None:
        r""":math:`\mu \leftarrow (1-m)\mu + m S^1/S^0` from the batch's statistics; for
        the cosine metric of the unit rows from :math:`\hat\mu`, then projected."""
        C = self.centers
        if self.metric == "cosine":
            x, _ = unit_rows(x, xp=_XP)
            C, _ = unit_rows(C, xp=_XP)
        Rw = R if w is None else R * w[..., None]
        mass = Rw.sum(dim=-2)  # S0: (k,) or (H, k)
        sums = Rw.transpose(-1, -2) @ x  # S1: (k, d) or (H, k, d)
        new = ema_update(C, mass, sums, self.momentum, xp=_XP)
        if self.metric == "cosine":  # back on the sphere; an average of 0 keeps μ̂
            new = project_rows(new, C, xp=_XP)
        self.centers.copy_(new)

    def forward(self, x: torch.Tensor, sample_weight: torch.Tensor | None = None) -> RBFOutput:
        """Responsibilities of the centers for ``x`` and the clustering loss.

        With ``update="ema"`` in training mode the centers then move by the moving average
        of the batch's statistics (see the class docstring).

        Parameters
        ----------
        x : Tensor of shape (n, n_features), or (n_heads, n, n_features) with heads
            Cast to the dtype of the centers.
        sample_weight : Tensor of shape (n,) or (n_heads, n), optional
            Non-negative weights :math:`w_i` (default 1).

        Returns
        -------
        RBFOutput
            ``(responsibilities, loss)``.
        """
        x, w = self._check_batch(x, sample_weight)
        ema = self.update == "ema" and self.training
        # the EMA step rewrites the centers after this pass: compute with a copy, so the
        # graph's saved centers are not modified in place
        terms = self._terms(x, self.centers.detach().clone() if ema else self.centers)
        xp = _XP
        per_sample = select_objective(
            terms, self.objective, self.sigma, n_features=self.n_features,
            n_clusters=self.n_clusters, xp=xp, log_sigma=self.log_sigma,
        )  # fmt: skip
        if ema:
            self._ema_step(x.detach(), terms.responsibilities.detach(), w)
        if self.n_heads is not None:  # reduce over heads and samples together
            shape = per_sample.shape
            loss = reduce_terms(
                per_sample.reshape(-1), None if w is None else w.reshape(-1), self.reduction,
                xp=xp,
            )  # fmt: skip
            if self.reduction == "none":
                loss = loss.reshape(shape)
            return RBFOutput(terms.responsibilities, loss)
        return RBFOutput(
            terms.responsibilities, reduce_terms(per_sample, w, self.reduction, xp=xp)
        )

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the nearest center for each row of ``x`` (ties to the lowest index);
        with ``metric="cosine"`` the center of largest cosine."""
        x, _ = self._check_batch(x)
        if self.metric == "cosine":
            terms = self._terms_at(x, 1.0, kind="hard")
            return terms.responsibilities.argmax(dim=-1)
        return torch.cdist(x, self.centers).argmin(dim=-1)

    def extra_repr(self) -> str:
        return (
            f"n_clusters={self.n_clusters}, n_features={self.n_features}, "
            f"kind={self.kind!r}, objective={self.objective!r}, "
            f"reduction={self.reduction!r}, learn_sigma={self.learn_sigma}"
            + (f", metric={self.metric!r}" if self.metric != "sqeuclidean" else "")
            + ("" if self.n_heads is None else f", n_heads={self.n_heads}")
            + ("" if self.update == "gradient" else f", update='ema', momentum={self.momentum}")
        )


def geometric_schedule(start: float, end: float, n_steps: int) -> list[float]:
    r"""``n_steps`` temperatures falling geometrically from ``start`` to ``end``.

    :math:`\sigma_t = \sigma_0 (\sigma_{end}/\sigma_0)^{t/(T-1)}`, :math:`t = 0..T-1`.
    """
    start, end = _check_positive(start, "start"), _check_positive(end, "end")
    n_steps = check_param("n_steps", n_steps, Interval(numbers.Integral, 1))
    return [float(s) for s in (geometric(start, end, n_steps) if n_steps > 1 else [end])]


class SigmaSchedule:
    """Drive the σ of an :class:`RBFClustering` along a schedule, like an LR scheduler.

    The layer starts at ``sigmas[0]``; each :meth:`step` moves to the next value and
    stays at the last one.

    Parameters
    ----------
    layer : RBFClustering
    sigmas : sequence of float
        The temperatures, e.g. :func:`geometric_schedule`.

    Examples
    --------
    >>> from arbf.torch import RBFClustering, SigmaSchedule, geometric_schedule
    >>> layer = RBFClustering(3, 2)
    >>> sched = SigmaSchedule(layer, geometric_schedule(1.0, 0.01, 3))
    >>> [round(float(layer.sigma), 4) for _ in range(3) if sched.step() is None]
    [0.1, 0.01, 0.01]
    """

    def __init__(self, layer: RBFClustering, sigmas: Sequence[float]) -> None:
        if isinstance(sigmas, str | bytes) or not isinstance(sigmas, Sequence | np.ndarray):
            raise TypeError(f"sigmas must be a sequence of temperatures, got {sigmas!r}")
        if len(sigmas) == 0:
            raise ValueError("sigmas must not be empty")
        self.layer = layer
        self.sigmas = [_check_positive(s, "sigmas entries") for s in sigmas]
        self.t = 0
        layer.set_sigma(self.sigmas[0])

    def step(self) -> None:
        """Advance one step (σ stays at the last value once the schedule is spent)."""
        self.t = min(self.t + 1, len(self.sigmas) - 1)
        self.layer.set_sigma(self.sigmas[self.t])

    def state_dict(self) -> dict[str, Any]:
        return {"t": self.t, "sigmas": list(self.sigmas)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t, self.sigmas = int(state["t"]), [float(s) for s in state["sigmas"]]
        self.layer.set_sigma(self.sigmas[self.t])
