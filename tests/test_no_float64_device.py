"""A device without float64 (array-api-strict's ``no_float64``, standing for PyTorch's
MPS): float32 data fit there, stay there, and give the values of the same fit on a
device with float64 (the float64 accumulators become float32 ones only where the
device refuses them: the extent, k-means++'s cumulative potential, the column means).
"""

from __future__ import annotations

import numpy as np
import pytest

import arbf
from arbf._backend import has_float64
from tests.backends import selected_backends

xps = pytest.importorskip("array_api_strict")
pytestmark = [
    pytest.mark.skipif(
        "array_api_strict" not in selected_backends(),
        reason="array_api_strict is not selected in ARBF_BACKENDS",
    ),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
]
NO_F64 = xps.Device("no_float64")
CPU = xps.Device("CPU_DEVICE")


def _data() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(m, 0.5, (30, 3)) for m in (0.0, 3.0, 6.0)]).astype(
        np.float32
    )


def _host(a) -> np.ndarray:
    return np.asarray(a.to_device(CPU))


def test_has_float64_reads_the_device_table():
    assert has_float64(xps, NO_F64) is False
    assert has_float64(xps, xps.Device("no_x64")) is False
    assert has_float64(xps, CPU) is True
    assert has_float64(xps, xps.Device("device1")) is True
    assert has_float64(xps) is True  # no device: the namespace's default device


@pytest.mark.parametrize(
    "fit",
    [
        lambda X: (arbf.kmeans(X, 3, random_state=0).centers, None),
        lambda X: (arbf.KMeans(3, random_state=0).fit(X).cluster_centers_, None),
        lambda X: (arbf.RBFKMeans(3, random_state=0).fit(X).cluster_centers_, None),
        lambda X: (
            arbf.MiniBatchKMeans(3, random_state=0, batch_size=32).fit(X).cluster_centers_,
            None,
        ),
        lambda X: (arbf.responsibilities(X, X[:3, ...], sigma=0.5, kind="softmax"), None),
        lambda X: (arbf.responsibilities(X, X[:3, ...], sigma=0.5, kind="entmax15"), None),
        lambda X: (arbf.soft_lloyd_step(X, X[:3, ...], sigma=0.5), None),
    ],
    ids=["kmeans", "KMeans", "RBFKMeans", "MiniBatchKMeans", "softmax", "entmax15", "soft_step"],
)
def test_same_values_as_on_a_float64_device(fit):
    Xn = _data()
    got, _ = fit(xps.asarray(Xn, device=NO_F64))
    want, _ = fit(xps.asarray(Xn, device=CPU))
    assert got.device == NO_F64
    assert got.dtype == xps.float32
    np.testing.assert_allclose(_host(got), _host(want), rtol=1e-5, atol=1e-6)


def test_inertia_and_labels_against_numpy():
    Xn = _data()
    got = arbf.kmeans(xps.asarray(Xn, device=NO_F64), 3, random_state=0)
    want = arbf.kmeans(Xn, 3, random_state=0)
    np.testing.assert_array_equal(_host(got.labels), want.labels)
    assert got.inertia == pytest.approx(want.inertia, rel=1e-5)
    assert got.n_iter == want.n_iter


def test_column_means_sum_in_float32_there():
    """``mean_rows`` sums float32 in float64 where the device has it and in float32
    where it has not (the device's own refusal otherwise)."""
    from arbf._math.core.batched_anneal import mean_rows as batched_mean_rows
    from arbf._math.core.distances import mean_rows

    Xn = _data()
    for dev in (NO_F64, CPU):
        got = mean_rows(xps.asarray(Xn, device=dev), xp=xps)
        assert got.device == dev
        assert got.dtype == xps.float32
        np.testing.assert_allclose(_host(got), Xn.astype(np.float64).mean(axis=0), rtol=1e-6)
        Xb = np.stack([Xn, 2.0 * Xn[::-1] + 1.0])  # two problems (B, n, d)
        got = batched_mean_rows(xps.asarray(Xb, device=dev), xp=xps)
        assert got.device == dev
        assert got.dtype == xps.float32
        want = Xb.astype(np.float64).mean(axis=1, keepdims=True)
        np.testing.assert_allclose(_host(got), want, rtol=1e-6)
