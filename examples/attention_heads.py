"""Online per-head clustering of the keys of a toy attention layer.

A small multi-head self-attention layer is trained on a toy task (predict, at every
position, the mean of the token embeddings seen so far in its sequence).  Alongside it,
``arbf.torch.RBFClustering(n_heads=H, update="ema", metric="cosine")`` keeps ``k`` unit
centers per head and moves them, at every training step, by an exponential moving
average of the entmax-1.5 statistics of that head's key directions, projected back onto
the sphere: online spherical K-Means, as routing-style attention keeps to decide which
keys a query attends to (queries and keys meet through dot products, so a key's
direction is what matters).  The keys drift while the attention layer learns; the
centers follow them without gradients.  ``--metric sqeuclidean`` clusters the raw keys
instead.

Printed: the training loss and the per-head relative quantisation error of the keys,
:math:`\\sum_i \\min_j D(k_i, \\mu_j) / \\sum_i D(k_i, \\bar k)` with :math:`D` the
cosine distance :math:`1 - \\cos` (squared Euclidean with ``--metric sqeuclidean``) and
:math:`\\bar k` the best single center (the normalised mean direction; the mean): the
error of the ``k`` centers over that of one center, 1 meaning no better, computed on
each batch before the update.  It falls as the centers settle; next to it, the same
error of a full K-Means of that batch's keys (all heads in one batched
:func:`arbf.kmeans` call), the best k centers can do on it.

Usage::

    python examples/attention_heads.py
    python examples/attention_heads.py --quick
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch import nn

import arbf
from arbf.torch import RBFClustering


class ToyAttention(nn.Module):
    """Causal multi-head self-attention with ``n_heads`` heads of width ``d_head``."""

    def __init__(self, vocab: int, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_model // n_heads
        self.embed = nn.Embedding(vocab, d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(output, keys, target)``; keys of shape ``(batch, heads, seq, d_head)``."""
        e = self.embed(tokens)
        b, t, _ = e.shape
        q, k, v = self.qkv(e).split(e.shape[-1], dim=-1)
        q, k, v = (z.reshape(b, t, self.n_heads, self.d_head).transpose(1, 2) for z in (q, k, v))
        mask = torch.ones(t, t, dtype=torch.bool).tril()
        att = (q @ k.transpose(-1, -2)) / self.d_head**0.5
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, -1)
        target = e.cumsum(dim=1) / torch.arange(1, t + 1)[None, :, None]
        return self.out(y), k, target.detach()


def _spread(k: torch.Tensor, metric: str) -> torch.Tensor:
    """Per head, the error of the best single center: ``Σ_i (1 - cos(k_i, k̄))`` with
    ``k̄`` the normalised mean direction, or ``Σ_i ||k_i - mean||²``."""
    if metric == "cosine":
        u = k / k.norm(dim=-1, keepdim=True)
        return (u.shape[1] - u.sum(dim=1).norm(dim=-1)).to(k.dtype)  # Σ 1 - u·ū = n - ||Σu||
    return ((k - k.mean(dim=1, keepdim=True)) ** 2).sum(dim=(1, 2))


def main(argv: list[str] | None = None) -> np.ndarray:
    """Run the example; returns the logged per-head relative errors, ``(n_logs, heads)``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--clusters", type=int, default=16)
    p.add_argument("--momentum", type=float, default=0.1)
    p.add_argument("--sigma", type=float, default=0.2)
    p.add_argument("--metric", choices=["cosine", "sqeuclidean"], default="cosine")
    p.add_argument("--quick", action="store_true", help="60 steps")
    args = p.parse_args(argv)
    steps = 60 if args.quick else args.steps
    torch.manual_seed(0)
    H, d_model, vocab, batch, seq = args.heads, 32, 64, 32, 16
    model = ToyAttention(vocab, d_model, H)
    heads = RBFClustering(
        args.clusters, d_model // H, n_heads=H, sigma=args.sigma, kind="entmax15", update="ema",
        momentum=args.momentum, metric=args.metric,
    )  # fmt: skip
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    logs = []
    for step in range(steps):
        tokens = torch.randint(0, vocab, (batch, seq))
        y, keys, target = model(tokens)
        loss = ((y - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        # (batch, H, seq, d_head) -> (H, batch * seq, d_head): one clustering per head
        k = keys.detach().transpose(0, 1).reshape(H, batch * seq, -1)
        with torch.no_grad():
            spread = _spread(k, args.metric)
            err = heads.sample_terms(k).inertia.sum(dim=1) / spread  # before the update
        heads(k)  # training mode: the EMA step moves the centers
        if step % max(steps // 6, 1) == 0 or step == steps - 1:
            logs.append(err.numpy().copy())
            # reference: K-Means of this very batch, all heads in one batched call
            best = arbf.kmeans(
                k.numpy(), args.clusters, random_state=0, metric=args.metric
            ).inertia
            ref = float(np.mean(best / spread.numpy()))
            per_head = " ".join(f"{v:6.3f}" for v in err.tolist())
            print(
                f"step {step:4d}  loss {loss.item():.4f}  relative key error/head {per_head}"
                f"  (mean {float(err.mean()):.3f}; k-means of the batch {ref:.3f})"
            )
    errors = np.stack(logs)
    print(f"mean relative error: first {errors[0].mean():.3f} -> last {errors[-1].mean():.3f}")
    return errors


if __name__ == "__main__":
    main()
