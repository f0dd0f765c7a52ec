r"""Deep clustering of scikit-learn's digits: autoencoder + RBF clustering, trained jointly.

Compares, over several seeds, on the 1797 × 64 digits (pixels / 16):

- ``kmeans-raw``: :func:`arbf.kmeans` on the pixels;
- ``ae+kmeans``: the two-stage baseline — train the autoencoder alone, then
  :func:`arbf.kmeans` on its codes;
- ``joint-softmax`` / ``joint-entmax15``: from that same pretrained autoencoder and
  those K-Means centers, train encoder, decoder and an :class:`arbf.torch.RBFClustering`
  layer jointly on

  .. math::

      \mathcal L = \tfrac1n\sum_i \lVert x_i - g(z_i)\rVert^2
      + \lambda\, \tfrac1n \sum_i F_\sigma(z_i; \mu)
      + \beta \sum_j \bar r_j \log(k\,\bar r_j),
      \qquad z_i = \frac{f(x_i)}{\lVert f(x_i)\rVert},

  (reconstruction, clustering free energy, optional balance term with :math:`\bar r_j`
  the mean responsibility of center j over the batch; default β = 0), with σ annealed
  geometrically per minibatch from ``sigma_start`` to ``sigma_end`` times the mean
  within-cluster squared distance :math:`d_0` of the initial K-Means on the codes.

Collapse (all codes and centers meeting, where :math:`F_\sigma` of free codes falls
without bound in scale, and with unit codes still falls as codes gather) is prevented by
unit-norm codes (no shrinking to a point), the reconstruction term (a code that does not
separate digits cannot reconstruct them), centers started at a K-Means solution, and a
schedule that starts *below* the scale at which the soft assignments merge clusters
(:math:`0.2\,d_0`; above the critical temperature the free energy's only stationary
point has all centers at the mean).  See ``docs/deep_digits.md``.

Requires PyTorch and scikit-learn (``load_digits`` and the NMI/ARI metrics); the core
library does not.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DeepDigitsConfig",
    "add_parser",
    "cluster_accuracy",
    "format_table",
    "run",
    "run_experiment",
    "summarise",
]

METHODS = ("kmeans-raw", "ae+kmeans", "joint-softmax", "joint-entmax15")
CODES = ("sphere", "standardise", "both", "free")


@dataclass(frozen=True)
class DeepDigitsConfig:
    """Hyper-parameters of the deep-digits experiment (the defaults are the reported run)."""

    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    n_clusters: int = 10
    code_dim: int = 10
    hidden: tuple[int, ...] = (256, 128)
    codes: str = "sphere"  # unit norm; "standardise" (BatchNorm), "both" or "free" (none)
    pretrain_epochs: int = 100
    joint_epochs: int = 60
    batch_size: int = 128
    lr: float = 1e-3
    weight_reconstruction: float = 1.0
    weight_clustering: float = 0.1  # λ
    weight_balance: float = 0.0  # β
    sigma_start: float = 0.2  # × d0, the mean within-cluster squared distance of the codes
    sigma_end: float = 0.02  # × d0
    kinds: tuple[str, ...] = ("softmax", "entmax15")
    n_samples: int | None = None  # a subset, for smoke tests
    kmeans_n_init: int = 10
    threads: int | None = 1  # torch CPU threads (the networks are tiny)
    extra: dict[str, Any] = field(default_factory=dict)


def cluster_accuracy(labels_true: np.ndarray, labels_pred: np.ndarray) -> float:
    """Clustering accuracy: the fraction of samples whose cluster, matched one-to-one to a
    class by the Hungarian method on the contingency table, is their class."""
    from .._math.seam import linear_assignment

    t = np.unique(labels_true, return_inverse=True)[1]
    p = np.unique(labels_pred, return_inverse=True)[1]
    m = max(t.max(), p.max()) + 1
    table = np.zeros((m, m))
    np.add.at(table, (p, t), 1.0)
    rows, cols = linear_assignment(-table)
    return float(table[rows, cols].sum() / len(t))


def _scores(y: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {
        "acc": cluster_accuracy(y, labels),
        "nmi": float(normalized_mutual_info_score(y, labels)),
        "ari": float(adjusted_rand_score(y, labels)),
    }


def _load(cfg: DeepDigitsConfig) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    if cfg.n_samples is not None:
        X, y = X[: cfg.n_samples], y[: cfg.n_samples]
    return X, y


def _autoencoder(n_in: int, cfg: DeepDigitsConfig) -> tuple[Any, Any]:
    """Encoder (ending in the code normalisation) and decoder MLPs."""
    import torch
    from torch import nn

    class UnitNorm(nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return nn.functional.normalize(z, dim=1)

    def mlp(sizes: list[int]) -> list[nn.Module]:
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes[:-1]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        return layers

    sizes = [n_in, *cfg.hidden, cfg.code_dim]
    norm: nn.Module
    if cfg.codes == "standardise":
        norm = nn.BatchNorm1d(cfg.code_dim, affine=False)
    elif cfg.codes == "sphere":
        norm = UnitNorm()
    elif cfg.codes == "both":
        norm = nn.Sequential(nn.BatchNorm1d(cfg.code_dim, affine=False), UnitNorm())
    elif cfg.codes == "free":
        norm = nn.Identity()
    else:
        raise ValueError(f"codes must be one of {CODES}; got {cfg.codes!r}")
    return nn.Sequential(*mlp(sizes), norm), nn.Sequential(*mlp(sizes[::-1]))


def _codes(encoder: Any, X: Any) -> Any:
    """Codes of all of ``X`` in evaluation mode (BatchNorm running statistics)."""
    import torch

    encoder.eval()
    with torch.no_grad():
        Z = encoder(X)
    encoder.train()
    return Z


def _kmeans_labels(Z: np.ndarray, k: int, seed: int, n_init: int) -> tuple[np.ndarray, Any]:
    from .._drivers.kmeans import kmeans

    res = kmeans(Z.astype(np.float64), k, n_init=n_init, random_state=seed)
    return np.asarray(res.labels), np.asarray(res.centers)


def _batches(X: Any, batch_size: int, gen: Any) -> Any:
    import torch

    perm = torch.randperm(X.shape[0], generator=gen)
    for a in range(0, X.shape[0], batch_size):
        yield X[perm[a : a + batch_size]]


def pretrain(X: Any, seed: int, cfg: DeepDigitsConfig) -> tuple[Any, Any]:
    """Train the autoencoder alone (mean squared reconstruction error, Adam)."""
    import torch

    torch.manual_seed(seed)
    enc, dec = _autoencoder(X.shape[1], cfg)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=cfg.lr)
    for _ in range(cfg.pretrain_epochs):
        for xb in _batches(X, cfg.batch_size, gen):
            loss = torch.nn.functional.mse_loss(dec(enc(xb)), xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return enc, dec


def train_joint(
    X: Any, enc: Any, dec: Any, centers: np.ndarray, kind: str, seed: int,
    cfg: DeepDigitsConfig,
) -> np.ndarray:  # fmt: skip
    """Train encoder, decoder and an :class:`arbf.torch.RBFClustering` jointly (in place).

    σ falls geometrically, once per minibatch, from ``sigma_start`` to ``sigma_end``
    times the mean within-cluster squared distance of the initial K-Means on the codes.
    Returns the final labels (nearest center of every code).
    """
    import torch

    from ..torch import RBFClustering, SigmaSchedule, geometric_schedule

    gen = torch.Generator().manual_seed(seed + 1000)
    Z0 = _codes(enc, X).double().numpy()
    d0 = ((Z0[:, None, :] - centers[None]) ** 2).sum(-1).min(1).mean()
    layer = RBFClustering(
        cfg.n_clusters, cfg.code_dim, kind=kind, centers=torch.from_numpy(centers).float()
    )
    n_steps = cfg.joint_epochs * math.ceil(X.shape[0] / cfg.batch_size)
    sched = SigmaSchedule(
        layer, geometric_schedule(cfg.sigma_start * d0, cfg.sigma_end * d0, n_steps)
    )
    params = [*enc.parameters(), *dec.parameters(), *layer.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    for _ in range(cfg.joint_epochs):
        for xb in _batches(X, cfg.batch_size, gen):
            z = enc(xb)
            r, clustering = layer(z)
            reconstruction = torch.nn.functional.mse_loss(dec(z), xb)
            rbar = r.mean(dim=0)
            balance = torch.sum(rbar * torch.log(rbar * cfg.n_clusters + 1e-12))
            loss = (
                cfg.weight_reconstruction * reconstruction
                + cfg.weight_clustering * clustering
                + cfg.weight_balance * balance
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return layer.predict(_codes(enc, X)).numpy()


def _one_seed(X_np: np.ndarray, y: np.ndarray, seed: int, cfg: DeepDigitsConfig) -> dict:
    import torch

    out: dict[str, dict[str, float]] = {}
    t0 = time.perf_counter()
    lab, _ = _kmeans_labels(X_np, cfg.n_clusters, seed, cfg.kmeans_n_init)
    out["kmeans-raw"] = _scores(y, lab)

    X = torch.from_numpy(X_np)
    enc, dec = pretrain(X, seed, cfg)
    lab, centers = _kmeans_labels(_codes(enc, X).numpy(), cfg.n_clusters, seed, cfg.kmeans_n_init)
    out["ae+kmeans"] = _scores(y, lab)
    state = (copy.deepcopy(enc.state_dict()), copy.deepcopy(dec.state_dict()))
    for kind in cfg.kinds:
        enc.load_state_dict(state[0])
        dec.load_state_dict(state[1])
        lab = train_joint(X, enc, dec, centers, kind, seed, cfg)
        out[f"joint-{kind}"] = _scores(y, lab)
    out["seconds"] = {"wall": time.perf_counter() - t0}
    return out


def run_experiment(cfg: DeepDigitsConfig) -> dict[str, Any]:
    """Run every method for every seed; returns ``{"config", "per_seed", "summary"}``."""
    import torch

    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    X, y = _load(cfg)
    t0, c0 = time.perf_counter(), time.process_time()
    per_seed = {seed: _one_seed(X, y, seed, cfg) for seed in cfg.seeds}
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "config": asdict(cfg),
        "per_seed": per_seed,
        "summary": summarise(per_seed),
        "wall_seconds": wall,
        "cpu_seconds": cpu,
    }


def summarise(per_seed: dict[int, dict]) -> dict[str, dict[str, tuple[float, float]]]:
    """Mean and (sample) standard deviation over seeds of each metric of each method."""
    methods = [m for m in next(iter(per_seed.values())) if m != "seconds"]
    summary: dict[str, dict[str, tuple[float, float]]] = {}
    for m in methods:
        summary[m] = {}
        for metric in ("acc", "nmi", "ari"):
            v = np.array([per_seed[s][m][metric] for s in per_seed])
            sd = float(v.std(ddof=1)) if len(v) > 1 else 0.0
            summary[m][metric] = (float(v.mean()), sd)
    return summary


def format_table(summary: dict[str, dict[str, tuple[float, float]]]) -> str:
    """The summary as a Markdown table (mean ± std)."""
    lines = ["| method | ACC | NMI | ARI |", "|---|---|---|---|"]
    for m, d in summary.items():
        cells = [f"{d[k][0]:.3f} ± {d[k][1]:.3f}" for k in ("acc", "nmi", "ari")]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``deep-digits`` subcommand on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "deep-digits",
        help="deep clustering of the digits: autoencoder + RBF clustering, trained jointly",
        description=(
            "Train an autoencoder and RBF clustering jointly with annealed σ on "
            "scikit-learn's digits and compare with K-Means on pixels and with the "
            "two-stage baseline (autoencoder, then K-Means), over several seeds. "
            "Requires torch and scikit-learn."
        ),
    )
    d = DeepDigitsConfig()
    p.add_argument("--seeds", type=int, default=len(d.seeds), help="number of seeds (5)")
    p.add_argument("--first-seed", type=int, default=0, help="first seed (0)")
    p.add_argument("--pretrain-epochs", type=int, default=d.pretrain_epochs)
    p.add_argument("--joint-epochs", type=int, default=d.joint_epochs)
    p.add_argument("--codes", choices=CODES, default=d.codes, help="code normalisation")
    p.add_argument("--weight-reconstruction", type=float, default=d.weight_reconstruction)
    p.add_argument("--weight-clustering", type=float, default=d.weight_clustering, help="λ")
    p.add_argument("--weight-balance", type=float, default=d.weight_balance, help="β")
    p.add_argument(
        "--sigma-start", type=float, default=d.sigma_start, help="first σ, in units of d0"
    )
    p.add_argument("--sigma-end", type=float, default=d.sigma_end, help="last σ, units of d0")
    p.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads (1)")
    p.add_argument("--quick", action="store_true", help="a tiny run (seconds), for smoke tests")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="write results")
    return p


def config_from_args(args: argparse.Namespace) -> DeepDigitsConfig:
    """The :class:`DeepDigitsConfig` for parsed command-line ``args``."""
    cfg = DeepDigitsConfig(
        seeds=tuple(range(args.first_seed, args.first_seed + args.seeds)),
        pretrain_epochs=args.pretrain_epochs,
        joint_epochs=args.joint_epochs,
        codes=args.codes,
        weight_reconstruction=args.weight_reconstruction,
        weight_clustering=args.weight_clustering,
        weight_balance=args.weight_balance,
        sigma_start=args.sigma_start,
        sigma_end=args.sigma_end,
        threads=args.threads,
    )
    if args.quick:
        cfg = replace(
            cfg, seeds=cfg.seeds[:2], n_samples=300, pretrain_epochs=3, joint_epochs=2,
            hidden=(32,), kmeans_n_init=1,
        )  # fmt: skip
    return cfg


def run(args: argparse.Namespace) -> int:
    """Run the ``deep-digits`` subcommand: print the table, optionally write JSON."""
    try:
        import sklearn  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise SystemExit(f"arbf deep-digits: needs torch and scikit-learn ({exc})") from None
    cfg = config_from_args(args)
    res = run_experiment(cfg)
    if args.quick:
        print("--quick: a smoke run (300 samples, a few epochs); the numbers mean nothing")
    print(format_table(res["summary"]))
    print(
        f"\nseeds {cfg.seeds[0]}-{cfg.seeds[-1]}: wall time {res['wall_seconds']:.1f} s, "
        f"CPU time {res['cpu_seconds']:.1f} s (all threads)"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=2, default=str))
    return 0
