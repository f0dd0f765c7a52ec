"""linear_assignment against scipy, and the matched centroid discrepancy."""

from __future__ import annotations

import numpy as np
import pytest

import arbf
from arbf._math.core.matching import linear_assignment
from tests.backends import assert_close


class TestLinearAssignment:
    @pytest.mark.parametrize("shape", [(1, 1), (3, 3), (6, 6), (4, 7), (7, 4), (12, 12)])
    @pytest.mark.parametrize("integer_costs", [False, True])
    def test_matches_scipy(self, rng, shape, integer_costs):
        scipy_opt = pytest.importorskip("scipy.optimize")
        for _ in range(10):
            if integer_costs:  # many ties
                cost = rng.integers(0, 4, size=shape).astype(float)
            else:
                cost = rng.normal(size=shape)
            rows, cols = linear_assignment(cost)
            r_ref, c_ref = scipy_opt.linear_sum_assignment(cost)
            assert len(rows) == len(cols) == min(shape)
            assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
            assert np.all(np.diff(rows) > 0)
            assert cost[rows, cols].sum() == pytest.approx(cost[r_ref, c_ref].sum(), abs=1e-12)

    def test_identity_and_permutation(self):
        perm = np.array([2, 0, 3, 1])
        cost = np.ones((4, 4))
        cost[np.arange(4), perm] = 0.0
        rows, cols = linear_assignment(cost)
        np.testing.assert_array_equal(rows, np.arange(4))
        np.testing.assert_array_equal(cols, perm)

    def test_large_is_fast_and_optimal(self, rng):
        scipy_opt = pytest.importorskip("scipy.optimize")
        cost = rng.uniform(size=(120, 120))
        rows, cols = linear_assignment(cost)
        r_ref, c_ref = scipy_opt.linear_sum_assignment(cost)
        assert cost[rows, cols].sum() == pytest.approx(cost[r_ref, c_ref].sum(), rel=1e-12)

    def test_empty(self):
        rows, cols = linear_assignment(np.zeros((0, 3)))
        assert rows.shape == cols.shape == (0,)

    @pytest.mark.parametrize(
        "cost", [np.zeros(3), np.array([[0.0, np.nan], [1.0, 2.0]]), np.array([[np.inf]])]
    )
    def test_invalid(self, cost):
        with pytest.raises(ValueError):
            linear_assignment(cost)


class TestCentroidDiscrepancy:
    def test_permuted_reference_is_zero(self, backend, rng):
        C = rng.normal(size=(5, 3))
        perm = rng.permutation(5)
        d = arbf.centroid_discrepancy(backend.asarray(C), backend.asarray(C[perm]))
        assert_close(d, np.zeros(5), backend=backend, atol=0, dtype=backend.xp.float64)

    def test_values_against_bruteforce(self, backend, rng):
        import itertools

        mu = rng.normal(size=(4, 2))
        ref = mu + 0.3 * rng.normal(size=(4, 2))
        ref = ref[::-1].copy()
        best = min(
            itertools.permutations(range(4)),
            key=lambda p: sum(((mu[j] - ref[p[j]]) ** 2).sum() for j in range(4)),
        )
        expected = np.sqrt(((mu - ref[list(best)]) ** 2).sum(1))
        d = arbf.centroid_discrepancy(backend.asarray(mu), backend.asarray(ref))
        assert_close(d, expected, backend=backend, rtol=1e-13)

    def test_fewer_centers_than_reference(self, backend):
        mu = np.array([[1.0, 0.0]])
        ref = np.array([[5.0, 5.0], [1.0, 0.5]])
        d = arbf.centroid_discrepancy(backend.asarray(mu), backend.asarray(ref))
        assert_close(d, [0.5], backend=backend, rtol=1e-14)

    def test_float32_kept(self, backend, rng):
        C = rng.normal(size=(3, 2)).astype(np.float32)
        d = arbf.centroid_discrepancy(backend.asarray(C), backend.asarray(C + 1))
        assert_close(
            d, np.full(3, np.sqrt(2)), backend=backend, rtol=1e-6, dtype=backend.xp.float32
        )

    def test_invalid(self):
        with pytest.raises(ValueError, match="features"):
            arbf.centroid_discrepancy(np.zeros((2, 2)), np.zeros((2, 3)))
        with pytest.raises(ValueError, match="one-to-one"):
            arbf.centroid_discrepancy(np.zeros((3, 2)), np.zeros((2, 2)))
        with pytest.raises(ValueError, match="NaN"):
            arbf.centroid_discrepancy(np.array([[np.nan]]), np.zeros((1, 1)))
