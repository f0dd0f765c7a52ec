"""arbf: K-Means and its differentiable relaxation, on any Array API backend.

The normalised Gaussian RBF network with temperature σ (softmax or entmax-1.5
responsibilities) relaxes K-Means; both are written once against the Python Array API
standard, so the same code runs on NumPy, CuPy, PyTorch, JAX and Dask arrays.
"""

from ._config import Config, config_context, get_config, set_config
from ._drivers.batched_da import anneal_init, deterministic_annealing
from ._drivers.kmeans import kmeans, kmeans_parallel, kmeans_plusplus
from ._drivers.pq import ProductQuantizer, pq_train
from ._drivers.rbf import anneal, rbf_kmeans
from ._drivers.results import (
    AnnealResult,
    BatchedAnnealResult,
    BatchedDeterministicAnnealingResult,
    BatchedKMeansResult,
    BatchedRBFResult,
    DeterministicAnnealingResult,
    KMeansResult,
    MiniBatchResult,
    RBFResult,
)
from ._math.entmax import entmax15, entmax_bisect, sparsemax
from ._math.matching import centroid_discrepancy
from ._math.monotone import MonotoneRegime, monotone_regime
from ._math.objectives import center_gradient, free_energy, inertia, soft_distortion
from ._math.responsibilities import responsibilities
from ._math.steps import gradient_step, lloyd_step, soft_lloyd_step

__version__ = "0.1.0.dev0"

# The estimators import scikit-learn (when installed) for their base classes: load them on
# first use so that ``import arbf`` stays light.
_LAZY = {
    "KMeans": "._estimators.kmeans",
    "RBFKMeans": "._estimators.rbf",
    "MiniBatchKMeans": "._estimators.minibatch",
    "MiniBatchRBFKMeans": "._estimators.minibatch",
}


def __getattr__(name: str) -> object:
    if name == "ConvergenceWarning":  # subclasses scikit-learn's: created on first use
        from ._messages import convergence_warning

        return convergence_warning()
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'arbf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | {"ConvergenceWarning"})


__all__ = [
    "AnnealResult",
    "BatchedAnnealResult",
    "BatchedDeterministicAnnealingResult",
    "BatchedKMeansResult",
    "BatchedRBFResult",
    "Config",
    "ConvergenceWarning",
    "DeterministicAnnealingResult",
    "KMeans",
    "KMeansResult",
    "MiniBatchKMeans",
    "MiniBatchRBFKMeans",
    "MiniBatchResult",
    "MonotoneRegime",
    "ProductQuantizer",
    "RBFKMeans",
    "RBFResult",
    "anneal",
    "anneal_init",
    "center_gradient",
    "centroid_discrepancy",
    "config_context",
    "deterministic_annealing",
    "entmax15",
    "entmax_bisect",
    "free_energy",
    "get_config",
    "gradient_step",
    "inertia",
    "kmeans",
    "kmeans_parallel",
    "kmeans_plusplus",
    "lloyd_step",
    "monotone_regime",
    "pq_train",
    "rbf_kmeans",
    "responsibilities",
    "set_config",
    "soft_distortion",
    "soft_lloyd_step",
    "sparsemax",
]
