"""Automation: one test session per backend, a combined one (CI), lint, docs, benchmarks.

``nox -s tests`` is the README's test line and what ``.ci/run`` runs.
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]

# PyTorch: the pinned CPU wheel (an unpinned ``torch`` pulls a multi-GB CUDA build).
TORCH = "torch==2.13.0"
JAX = "jax"
BACKENDS = {
    "numpy": [],
    "strict": [],
    "torch": [TORCH],
    "jax": [JAX],
    "dask": [],
}
BACKEND_NAMES = {
    "numpy": "numpy,numpy_readonly",
    "strict": "array_api_strict,array_api_strict_strictest,array_api_strict_device1",
    "torch": "torch,torch_cuda",
    "jax": "jax",
    "dask": "dask",
}


def _pytest(session: nox.Session, backends: str | None) -> None:
    env = {"HYPOTHESIS_PROFILE": "ci"}
    if backends:
        env["ARBF_BACKENDS"] = backends
    workers = os.environ.get("ARBF_TEST_WORKERS", "2")
    session.run(
        "python", "-m", "pytest", "-n", workers, "--durations=15", *session.posargs, env=env
    )


# scikit-learn's own K-Means tests (they ship with scikit-learn) run against arbf by a
# pytest plugin that rebinds the estimators (tests/sklearn_compat/plugin.py); the tests
# of scikit-learn's private helpers are deselected there, each with its reason.
SKLEARN_COMPAT = (
    "--pyargs",
    "sklearn.cluster.tests.test_k_means",
    "-p",
    "tests.sklearn_compat.plugin",
)
SKLEARN_SEEDS = ("42", "0-9")  # scikit-learn's default seed, and seeds 0..9


def _sklearn_compat(session: nox.Session) -> None:
    workers = os.environ.get("ARBF_TEST_WORKERS", "2")
    for seeds in SKLEARN_SEEDS:
        env = {"SKLEARN_TESTS_GLOBAL_RANDOM_SEED": seeds, "SKLEARN_RUN_FLOAT32_TESTS": "1"}
        session.run(
            "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", workers,
            *SKLEARN_COMPAT, env=env,
        )  # fmt: skip


@nox.session
def tests(session: nox.Session) -> None:
    """The whole backend matrix (every installed backend; GPUs reported as skipped), the
    doctests, and scikit-learn's K-Means tests against arbf (about a minute)."""
    session.install("-e", ".[test]", TORCH, JAX)
    _pytest(session, None)
    session.run("python", "-m", "pytest", "--doctest-modules", "arbf", "-q")
    _sklearn_compat(session)


@nox.session(name="sklearn_compat")
def sklearn_compat(session: nox.Session) -> None:
    """scikit-learn's ``sklearn/cluster/tests/test_k_means.py`` against arbf, at seed 42
    and seeds 0-9 (``nox -s sklearn_compat``)."""
    session.install("-e", ".[test]")
    _sklearn_compat(session)


@nox.session(name="tests-backend")
@nox.parametrize("backend", list(BACKENDS))
def tests_backend(session: nox.Session, backend: str) -> None:
    """One backend of the matrix: ``nox -s "tests-backend(backend='torch')"``."""
    session.install("-e", ".[test]", *BACKENDS[backend])
    _pytest(session, BACKEND_NAMES[backend])


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint + format), mypy, and the layer contracts (import-linter)."""
    session.install("-e", ".", "ruff", "mypy", "import-linter")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("lint-imports")


@nox.session
def mutation(session: nox.Session) -> None:
    """Mutation testing (mutmut) of the math layer, the seam and the drivers' step code
    against the NumPy + array-api-strict matrix; prints the score (docs/testing.md)."""
    session.install("-e", ".[test]", TORCH, JAX, "mutmut>=3.3")
    env = {"ARBF_BACKENDS": "numpy,array_api_strict", "HYPOTHESIS_PROFILE": "mutation"}
    session.run("mutmut", "run", "--max-children", os.environ.get("ARBF_TEST_WORKERS", "2"),
                env=env)  # fmt: skip
    session.run("mutmut", "results", env=env)


@nox.session
def bench(session: nox.Session) -> None:
    """K-Means speed against scikit-learn and faiss (prints ratios)."""
    session.install("-e", ".[bench]", TORCH, JAX)
    session.run("python", "benchmarks/bench_kmeans.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site (warnings are errors): ``docs/_build/html``.

    PyTorch and JAX are installed so that ``arbf.torch`` and ``arbf.jax`` are documented.
    """
    session.install("-e", ".[docs]", TORCH, JAX)
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")
