"""A pytest plugin that runs scikit-learn's own K-Means test file against arbf.

Usage (from the repository root; the test file ships with scikit-learn, nothing of it is
copied here)::

    PYTHONPATH=. pytest --pyargs sklearn.cluster.tests.test_k_means \
        -p tests.sklearn_compat.plugin
    SKLEARN_TESTS_GLOBAL_RANDOM_SEED="0-9" PYTHONPATH=. pytest ...   # seeds 0..9

What it does:

- rebinds the module globals ``KMeans``, ``MiniBatchKMeans``, ``k_means`` (an adapter
  over :func:`arbf.kmeans` with scikit-learn's signature and return values),
  ``kmeans_plusplus`` and ``ConvergenceWarning`` to arbf's, so that every test body
  calls arbf;
- replaces scikit-learn's estimator classes in the parameters of the collected tests
  (``@pytest.mark.parametrize("Estimator", [KMeans, MiniBatchKMeans])`` was evaluated
  when the module was imported) by arbf's;
- deselects the tests that exercise scikit-learn's private helpers, listed with the
  reason in :data:`DESELECTED`.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

MODULE = "sklearn.cluster.tests.test_k_means"

#: Tests of scikit-learn internals that arbf does not have (test name -> reason).
DESELECTED: dict[str, str] = {
    "test_relocate_empty_clusters": (
        "calls sklearn.cluster._k_means_common._relocate_empty_clusters_dense/_sparse"
    ),
    "test_minibatch_update_consistency": (
        "calls sklearn.cluster._kmeans._mini_batch_step and _labels_inertia"
    ),
    "test_minibatch_reassign": (
        "calls sklearn.cluster._kmeans._mini_batch_step and _labels_inertia"
    ),
    "test_euclidean_distance": (
        "calls sklearn.cluster._k_means_common._euclidean_dense_dense_wrapper and "
        "_euclidean_sparse_dense_wrapper"
    ),
    "test_inertia": "calls sklearn.cluster._k_means_common._inertia_dense and _inertia_sparse",
    "test_is_same_clustering": "calls sklearn.cluster._k_means_common._is_same_clustering",
    "test_sample_weight_init": "calls the private method KMeans._init_centroids",
    "test_sample_weight_zero": "calls the private method KMeans._init_centroids",
}


def k_means(
    X: Any,
    n_clusters: int,
    *,
    sample_weight: Any = None,
    init: Any = "k-means++",
    n_init: Any = "auto",
    max_iter: int = 300,
    verbose: bool = False,
    tol: float = 1e-4,
    random_state: Any = None,
    copy_x: bool = True,
    algorithm: str = "lloyd",
    return_n_iter: bool = False,
) -> tuple[Any, ...]:
    """scikit-learn's ``k_means`` signature and return values, computed by arbf.kmeans."""
    import arbf

    res = arbf.kmeans(
        X,
        n_clusters,
        sample_weight=sample_weight,
        init=init,
        n_init=n_init,
        max_iter=max_iter,
        verbose=verbose,
        tol=tol,
        random_state=random_state,
        copy_x=copy_x,
        algorithm=algorithm,
    )
    out: tuple[Any, ...] = (res.centers, res.labels, res.inertia)
    return (*out, res.n_iter) if return_n_iter else out


def _replacements() -> dict[int, Any]:
    """scikit-learn object (by id) -> arbf's."""
    import sklearn.cluster as skc
    import sklearn.exceptions as ske

    import arbf

    return {
        id(skc.KMeans): arbf.KMeans,
        id(skc.MiniBatchKMeans): arbf.MiniBatchKMeans,
        id(skc.k_means): k_means,
        id(skc.kmeans_plusplus): arbf.kmeans_plusplus,
        id(ske.ConvergenceWarning): arbf.ConvergenceWarning,
    }


def pytest_configure(config: pytest.Config) -> None:
    import arbf

    mod = importlib.import_module(MODULE)
    mod.KMeans = arbf.KMeans
    mod.MiniBatchKMeans = arbf.MiniBatchKMeans
    mod.k_means = k_means
    mod.kmeans_plusplus = arbf.kmeans_plusplus
    mod.ConvergenceWarning = arbf.ConvergenceWarning


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    swap = _replacements()
    kept, dropped = [], []
    for item in items:
        if getattr(item, "module", None) is None or item.module.__name__ != MODULE:
            kept.append(item)
            continue
        name = getattr(item, "originalname", item.name)
        if name in DESELECTED:
            dropped.append(item)
            continue
        callspec = getattr(item, "callspec", None)
        if callspec is not None:
            for key, value in list(callspec.params.items()):
                if id(value) in swap:
                    callspec.params[key] = swap[id(value)]
        kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_report_header(config: pytest.Config) -> list[str]:
    import arbf

    lines = [f"sklearn_compat: scikit-learn's {MODULE} run against arbf ({arbf.__file__})"]
    lines += [f"  deselected {name}: {why}" for name, why in DESELECTED.items()]
    return lines
