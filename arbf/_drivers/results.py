"""What the drivers return: frozen dataclasses with one vocabulary.

Every result has ``centers`` (in the namespace, device and dtype of the data, in the
data's own coordinates) and ``n_iter`` (an ``int``: the iterations of the run, summed
over levels for the annealers, whose per-level counts are ``n_iter_per_level``).
``converged`` is whether the stopping tolerance was met before the iteration limit;
``history`` holds per-iteration host arrays, ``objectives`` per-level ones; ``kmeans`` is
the final hard Lloyd run of an annealer (``finish=True``).  ``inertia`` is always
:math:`\\sum_i w_i \\lVert x_i - \\mu_{l_i}\\rVert^2` as a Python float.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._backend import Array

__all__ = [
    "AnnealResult",
    "BatchedAnnealResult",
    "BatchedDeterministicAnnealingResult",
    "BatchedKMeansResult",
    "BatchedRBFResult",
    "DeterministicAnnealingResult",
    "KMeansResult",
    "MiniBatchResult",
    "RBFResult",
]


@dataclass(frozen=True)
class KMeansResult:
    """What :func:`arbf.kmeans` returns.

    Attributes
    ----------
    centers : array (n_clusters, n_features)
        Final centers, in the namespace, device and dtype of the (promoted) input.
    labels : array (n_samples,)
        Index of the nearest center of each sample (consistent with ``centers``).
    inertia : float
        :math:`\\sum_i w_i \\lVert x_i - \\mu_{labels_i}\\rVert^2`.
    n_iter : int
        Lloyd iterations of the best run.
    converged : bool
        Whether the best run stopped on strict label convergence or on ``tol`` (rather
        than on ``max_iter``).
    history : dict
        Per-iteration ``"inertia"`` (w.r.t. the centers used for that assignment) and
        ``"center_shift"`` (squared Frobenius norm of the update) of the best run, as
        host NumPy arrays.
    n_init_inertia : list of float
        Final inertia of every run.
    """

    centers: Array
    labels: Array
    inertia: float
    n_iter: int
    converged: bool
    history: dict[str, np.ndarray] = field(default_factory=dict)
    n_init_inertia: list[float] = field(default_factory=list)

    def __iter__(self) -> Iterator[Any]:
        """Unpack as ``centers, labels, inertia`` (like ``sklearn.cluster.k_means``)."""
        return iter((self.centers, self.labels, self.inertia))


@dataclass(frozen=True)
class RBFResult:
    """What :func:`arbf.rbf_kmeans` returns.

    Attributes
    ----------
    centers : array (n_clusters, n_features)
    n_iter : int
    converged : bool
        Whether the center shift fell to ``tol`` (relative) before ``max_iter``.
    history : dict
        Per-iteration host arrays ``"free_energy"``, ``"soft_distortion"``,
        ``"inertia"`` (each at the centers *before* that iteration's update) and
        ``"center_shift"`` (squared norm of the update).
    """

    centers: Array
    n_iter: int
    converged: bool
    history: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class AnnealResult:
    """What :func:`arbf.anneal` returns.

    Attributes
    ----------
    centers : array (n_clusters, n_features)
        Final centers: an exact K-Means fixed point when ``finish=True``.
    sigmas : numpy array (L,)
        The temperature levels, decreasing.
    path : numpy array (L, n_clusters, n_features)
        Centers at the end of each level.
    objectives : dict of numpy arrays (L,)
        ``"free_energy"``, ``"soft_distortion"``, ``"inertia"`` at the end of each level.
    n_iter : int
        Fixed-point iterations over all levels (the final Lloyd run not included).
    n_iter_per_level : numpy int array (L,)
        Iterations spent at each level.
    one_hot : numpy bool array (L,)
        Whether every row's responsibilities were one-hot at that level's final centers
        (for entmax-1.5 this is ``min_i Δ_i >= 2σ``, SPEC Theorem 4).
    sigma_exact : float
        ``min_i Δ_i / 2`` at the final centers, with ``Δ_i`` the gap between the two
        smallest squared distances of row ``i``: below it entmax-1.5 is exactly hard.
    kmeans : KMeansResult or None
        The final hard Lloyd run (``finish=True``).
    """

    centers: Array
    sigmas: np.ndarray
    path: np.ndarray
    objectives: dict[str, np.ndarray]
    n_iter: int
    n_iter_per_level: np.ndarray
    one_hot: np.ndarray
    sigma_exact: float
    kmeans: KMeansResult | None = None


@dataclass(frozen=True)
class DeterministicAnnealingResult:
    """What :func:`arbf.deterministic_annealing` returns.

    Attributes
    ----------
    centers : array (n_clusters, n_features)
        Final centers (after hard Lloyd when ``finish=True``), in the namespace, device
        and dtype of ``X``.
    sigmas : numpy array (L,)
        The temperature of each level, non-increasing.
    n_centers : numpy int array (L,)
        Number of centers at the end of each level.
    n_iter : int
        Fixed-point iterations over all levels (the final Lloyd run not included).
    n_iter_per_level : numpy int array (L,)
        Fixed-point iterations spent at each level (all rounds of splitting included).
    objectives : dict of numpy arrays (L,)
        ``"free_energy"``, ``"soft_distortion"``, ``"inertia"`` at the end of each level.
    splits : list of (float, int, float)
        One ``(sigma, center, sigma_critical)`` per split: the temperature at which
        center ``center`` was split and its predicted critical temperature
        :math:`c\\lambda_j` (:func:`arbf._drivers.deterministic_annealing.critical_factor`).
    sigma_critical : float
        :math:`c\\,\\lambda_{\\max}(\\mathrm{Cov}_w X)`: where the first split happens.
    n_passes : int
        Passes over the data during annealing (fixed-point and principal-axis passes).
    kmeans : KMeansResult or None
        The final hard Lloyd run (``finish=True``).
    """

    centers: Array
    sigmas: np.ndarray
    n_centers: np.ndarray
    n_iter: int
    n_iter_per_level: np.ndarray
    objectives: dict[str, np.ndarray]
    splits: list[tuple[float, int, float]] = field(default_factory=list)
    sigma_critical: float = float("nan")
    n_passes: int = 0
    kmeans: KMeansResult | None = None


@dataclass(frozen=True)
class MiniBatchResult:
    """What the mini-batch driver returns (host floats, arrays in the input namespace).

    Attributes
    ----------
    centers : array (n_clusters, n_features)
    counts : array (n_clusters,)
        Weight accumulated by each center over all steps.
    n_steps : int
        Mini-batch steps done.
    n_iter : int
        Epochs started (``ceil(n_steps * batch_size / n)``).
    converged : bool
        Whether a stopping rule (``tol``, ``max_no_improvement``) ended the run.
    history : dict
        Per-step ``"batch_inertia"``, ``"center_shift"``, ``"sigma"``.
    """

    centers: Array
    counts: Array
    n_steps: int
    n_iter: int
    converged: bool
    history: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchedKMeansResult:
    """What :func:`arbf.kmeans` returns for batched data ``X`` of shape ``(B, n, d)``.

    ``result[b]`` is problem ``b``'s :class:`KMeansResult`.

    Attributes
    ----------
    centers : array (B, n_clusters, n_features)
        In the namespace, device and dtype of the (promoted) input.
    labels : array (B, n_samples)
    inertia : numpy array (B,)
        :math:`\\sum_i w_{bi} \\lVert x_{bi} - \\mu_{b, l_{bi}}\\rVert^2` per problem.
    n_iter : numpy array of int (B,)
        Lloyd iterations of each problem's best run.
    converged : numpy array of bool (B,)
    history : dict
        ``"inertia"`` and ``"center_shift"``: one host array per problem.
    n_init_inertia : numpy array (B, n_runs)
        Final inertia of every run of every problem.
    """

    centers: Array
    labels: Array
    inertia: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray
    history: dict[str, list[np.ndarray]] = field(default_factory=dict)
    n_init_inertia: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def __len__(self) -> int:
        return int(self.inertia.shape[0])

    def __getitem__(self, b: int) -> KMeansResult:
        """Problem ``b`` as a :class:`KMeansResult`."""
        if not -len(self) <= b < len(self):
            raise IndexError(f"problem {b} out of range for {len(self)} problems")
        return KMeansResult(
            centers=self.centers[b, ...],
            labels=self.labels[b, ...],
            inertia=float(self.inertia[b]),
            n_iter=int(self.n_iter[b]),
            converged=bool(self.converged[b]),
            history={key: v[b] for key, v in self.history.items()},
            n_init_inertia=[float(v) for v in self.n_init_inertia[b]]
            if self.n_init_inertia.size
            else [],
        )

    def __iter__(self) -> Iterator[Any]:
        """Unpack as ``centers, labels, inertia`` (like :class:`KMeansResult`)."""
        return iter((self.centers, self.labels, self.inertia))


@dataclass(frozen=True)
class BatchedRBFResult:
    """What :func:`arbf.rbf_kmeans` returns for batched data ``X`` of shape ``(B, n, d)``.

    ``result[b]`` is problem ``b``'s :class:`RBFResult`.

    Attributes
    ----------
    centers : array (B, n_clusters, n_features)
    n_iter : numpy int array (B,)
    converged : numpy bool array (B,)
    history : dict
        ``"free_energy"``, ``"soft_distortion"``, ``"inertia"``, ``"center_shift"``: one
        host array per problem (of length ``n_iter[b]``).
    """

    centers: Array
    n_iter: np.ndarray
    converged: np.ndarray
    history: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.n_iter.shape[0])

    def __getitem__(self, b: int) -> RBFResult:
        """Problem ``b`` as an :class:`RBFResult`."""
        if not -len(self) <= b < len(self):
            raise IndexError(f"problem {b} out of range for {len(self)} problems")
        return RBFResult(
            centers=self.centers[b, ...],
            n_iter=int(self.n_iter[b]),
            converged=bool(self.converged[b]),
            history={key: v[b] for key, v in self.history.items()},
        )


@dataclass(frozen=True)
class BatchedAnnealResult:
    """What :func:`arbf.anneal` returns for batched data ``X`` of shape ``(B, n, d)``.

    ``result[b]`` is problem ``b``'s :class:`AnnealResult`.

    Attributes
    ----------
    centers : array (B, n_clusters, n_features)
    sigmas : numpy array (B, L)
        Each problem's temperature levels, decreasing.
    path : numpy array (B, L, n_clusters, n_features)
    objectives : dict of numpy arrays (B, L)
    n_iter : numpy int array (B,)
    n_iter_per_level : numpy int array (B, L)
    one_hot : numpy bool array (B, L)
    sigma_exact : numpy array (B,)
    kmeans : BatchedKMeansResult or None
        The final hard Lloyd runs (``finish=True``).
    """

    centers: Array
    sigmas: np.ndarray
    path: np.ndarray
    objectives: dict[str, np.ndarray]
    n_iter: np.ndarray
    n_iter_per_level: np.ndarray
    one_hot: np.ndarray
    sigma_exact: np.ndarray
    kmeans: BatchedKMeansResult | None = None

    def __len__(self) -> int:
        return int(self.n_iter.shape[0])

    def __getitem__(self, b: int) -> AnnealResult:
        """Problem ``b`` as an :class:`AnnealResult`."""
        if not -len(self) <= b < len(self):
            raise IndexError(f"problem {b} out of range for {len(self)} problems")
        return AnnealResult(
            centers=self.centers[b, ...],
            sigmas=self.sigmas[b],
            path=self.path[b],
            objectives={key: v[b] for key, v in self.objectives.items()},
            n_iter=int(self.n_iter[b]),
            n_iter_per_level=self.n_iter_per_level[b],
            one_hot=self.one_hot[b],
            sigma_exact=float(self.sigma_exact[b]),
            kmeans=None if self.kmeans is None else self.kmeans[b],
        )


@dataclass(frozen=True)
class BatchedDeterministicAnnealingResult:
    """What :func:`arbf.deterministic_annealing` returns for batched data ``X`` of shape
    ``(B, n, d)``.

    ``result[b]`` is problem ``b``'s :class:`DeterministicAnnealingResult`.  The
    per-level fields are lists of B host arrays (the problems anneal through different
    numbers of levels).

    Attributes
    ----------
    centers : array (B, n_clusters, n_features)
    sigmas, n_centers, n_iter_per_level : list of B numpy arrays
    n_iter : numpy int array (B,)
    objectives : dict of lists of B numpy arrays
    splits : list of B lists of (float, int, float)
    sigma_critical : numpy array (B,)
    n_passes : numpy int array (B,)
    kmeans : BatchedKMeansResult or None
    """

    centers: Array
    sigmas: list[np.ndarray]
    n_centers: list[np.ndarray]
    n_iter: np.ndarray
    n_iter_per_level: list[np.ndarray]
    objectives: dict[str, list[np.ndarray]]
    splits: list[list[tuple[float, int, float]]]
    sigma_critical: np.ndarray
    n_passes: np.ndarray
    kmeans: BatchedKMeansResult | None = None

    def __len__(self) -> int:
        return int(self.n_iter.shape[0])

    def __getitem__(self, b: int) -> DeterministicAnnealingResult:
        """Problem ``b`` as a :class:`DeterministicAnnealingResult`."""
        if not -len(self) <= b < len(self):
            raise IndexError(f"problem {b} out of range for {len(self)} problems")
        return DeterministicAnnealingResult(
            centers=self.centers[b, ...],
            sigmas=self.sigmas[b],
            n_centers=self.n_centers[b],
            n_iter=int(self.n_iter[b]),
            n_iter_per_level=self.n_iter_per_level[b],
            objectives={key: v[b] for key, v in self.objectives.items()},
            splits=self.splits[b],
            sigma_critical=float(self.sigma_critical[b]),
            n_passes=int(self.n_passes[b]),
            kmeans=None if self.kmeans is None else self.kmeans[b],
        )
