"""The configuration (:mod:`arbf._config`): one context value, read by the seam and the
memory policy; tests select implementations through it, never by assigning module
attributes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import arbf
from arbf._math import seam


class TestConfig:
    def test_defaults(self):
        cfg = arbf.get_config()
        assert cfg.working_memory == "auto" and cfg.n_threads is None
        assert isinstance(cfg.fast_paths, bool)

    def test_context_restores_and_nests(self):
        before = arbf.get_config()
        with arbf.config_context(fast_paths=False, working_memory=2) as cfg:
            assert cfg.fast_paths is False and cfg.working_memory == 2.0
            with arbf.config_context(n_threads=3):
                inner = arbf.get_config()
                assert (inner.fast_paths, inner.working_memory, inner.n_threads) == (False, 2.0, 3)
            assert arbf.get_config().n_threads is None
        assert arbf.get_config() == before

    def test_restored_after_an_exception(self):
        before = arbf.get_config()
        with pytest.raises(RuntimeError), arbf.config_context(fast_paths=False):
            raise RuntimeError
        assert arbf.get_config() == before

    def test_set_config_changes_only_what_is_given(self):
        before = arbf.get_config()
        try:
            arbf.set_config(working_memory=8)
            assert arbf.get_config().working_memory == 8.0
            assert arbf.get_config().fast_paths == before.fast_paths
        finally:
            arbf.set_config(working_memory=before.working_memory)
        assert arbf.get_config() == before

    def test_threads_do_not_see_each_others_changes(self):
        seen: dict[str, object] = {}
        barrier = threading.Barrier(2)

        def worker(name: str, fast: bool) -> None:
            with arbf.config_context(fast_paths=fast):
                barrier.wait()
                seen[name] = arbf.get_config().fast_paths
                barrier.wait()

        threads = [
            threading.Thread(target=worker, args=(n, f)) for n, f in (("a", True), ("b", False))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen == {"a": True, "b": False}

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"fast_paths": 1}, TypeError, "fast_paths must be True or False"),
            ({"working_memory": "a"}, ValueError, "working_memory must be a positive number"),
            ({"working_memory": 0}, ValueError, "working_memory must be a positive number"),
            ({"working_memory": float("inf")}, ValueError, "working_memory"),
            ({"working_memory": True}, TypeError, "working_memory"),
            ({"n_threads": 0}, ValueError, "n_threads"),
            ({"n_threads": 1.5}, TypeError, "n_threads"),
        ],
    )
    def test_bad_values(self, kwargs, error, match):
        with pytest.raises(error, match=match), arbf.config_context(**kwargs):
            pass  # pragma: no cover

    def test_unknown_option(self):
        with pytest.raises(TypeError):
            arbf.set_config(fastpaths=False)  # type: ignore[call-arg]

    def test_environment_variable_sets_the_default(self):
        code = "import arbf; print(arbf.get_config().fast_paths)"
        for value, expected in (("1", "False"), ("", "True"), ("0", "True")):
            env = {**os.environ, "ARBF_DISABLE_FAST_PATHS": value}
            out = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            )
            assert out.stdout.strip() == expected


class TestConfigSelectsTheImplementation:
    def test_fast_paths_false_runs_the_reference(self):
        X = np.random.default_rng(0).normal(size=(300, 3))
        C = X[:4].copy()
        with arbf.config_context(fast_paths=False):
            assert seam.route(X, C)[0] == "pure"
        with arbf.config_context(fast_paths=True):
            assert seam.route(X, C)[0] in ("host", "pure")

    def test_working_memory_of_the_config_is_used(self):
        from arbf._chunking import chunk_rows

        X = np.zeros((10_000, 4))
        with arbf.config_context(working_memory=1):
            rows = chunk_rows(X, 8, xp=np)
        assert rows == (2**20) // (4 * 8 * 8)
        # an explicit argument overrides the configuration
        with arbf.config_context(working_memory=1):
            assert chunk_rows(X, 8, xp=np, working_memory=2) == 2 * rows

    @pytest.mark.parametrize(
        ("n_threads", "threads", "inside"),
        [(1, 1, 1), (2, 2, 1), (None, 2, 1), (None, 1, 3)],
    )
    def test_n_threads_also_limits_blas(self, n_threads, threads, inside):
        # the worker threads call BLAS with one thread; n_threads=1 means one CPU (a
        # one-thread call by default leaves NumPy's BLAS as it is); restored afterwards
        pytest.importorskip("threadpoolctl")
        from threadpoolctl import ThreadpoolController

        from arbf._math.kernels import runtime

        ctl = ThreadpoolController().select(user_api="blas")
        if not ctl.info():
            pytest.skip("no BLAS that threadpoolctl controls")
        seen: list[int] = []

        def work(a, st):
            seen.append(max(int(i["num_threads"]) for i in ctl.info()))

        with ctl.limit(limits=3), arbf.config_context(n_threads=n_threads):
            runtime.run_chunks(4, 1, threads, work, lambda: None)
            after = {int(i["num_threads"]) for i in ctl.info()}
        assert seen == [inside] * 4
        assert after == {3}


class TestMessages:
    def test_convergence_warning_is_sklearns(self):
        sk = pytest.importorskip("sklearn.exceptions")
        assert issubclass(arbf.ConvergenceWarning, sk.ConvergenceWarning)
        assert arbf.ConvergenceWarning is arbf.ConvergenceWarning  # one class
        X = np.array([[0.0], [0.0], [0.0], [1.0]])
        with pytest.warns(sk.ConvergenceWarning, match="Number of distinct clusters"):
            arbf.kmeans(X, 3, random_state=0)

    def test_convergence_warning_pickles(self):
        import pickle

        w = arbf.ConvergenceWarning("x")
        assert type(pickle.loads(pickle.dumps(w))) is arbf.ConvergenceWarning

    def test_import_does_not_import_sklearn(self):
        code = "import sys, arbf; print('sklearn' in sys.modules)"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "False"

    def test_verbose_follows_a_redirected_stdout(self, capsys):
        """Printed at the time of the call: a later redirect is honoured (no handler bound
        to an old stream), and a closed stream from an earlier call is no problem."""
        import contextlib
        import io

        X = np.random.default_rng(0).normal(size=(60, 2))
        first = io.StringIO()
        with contextlib.redirect_stdout(first):
            arbf.kmeans(X, 2, verbose=True, random_state=0)
        first.close()
        second = io.StringIO()
        with contextlib.redirect_stdout(second), warnings.catch_warnings():
            warnings.simplefilter("error")
            arbf.kmeans(X, 2, verbose=True, random_state=0)
        assert "Iteration 0" in second.getvalue()
        assert capsys.readouterr().err == ""
