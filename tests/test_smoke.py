import numpy as np

import arbf
from tests.backends import assert_close


def test_kmeans_runs_on_backend(backend):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(8, 1, (50, 2))])
    res = arbf.kmeans(backend.asarray(X), 2, random_state=0)
    backend.check_same_kind(res.centers, dtype=backend.xp.float64)
    got = np.sort(backend.to_numpy(res.centers)[:, 0])
    exp = np.sort([X[:50, 0].mean(), X[50:, 0].mean()])
    np.testing.assert_allclose(got, exp, rtol=1e-10)
    assert_close(
        arbf.inertia(backend.asarray(X), res.centers), res.inertia, backend=backend, rtol=1e-10
    )
