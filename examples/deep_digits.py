"""Deep clustering of scikit-learn's digits with arbf.torch (standalone example).

An autoencoder and an :class:`arbf.torch.RBFClustering` layer are trained jointly with
an annealed temperature σ, and compared over several seeds with K-Means on the pixels
and with the two-stage baseline (autoencoder, then K-Means on its codes).  Same as
``python -m arbf deep-digits``; see ``docs/deep_digits.md`` for the method and results.

Run::

    python examples/deep_digits.py            # 5 seeds, a few minutes on a CPU
    python examples/deep_digits.py --quick    # seconds
"""

from __future__ import annotations

import argparse
import sys

from arbf._deep.digits import add_parser, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deep_digits")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    args = parser.parse_args(["deep-digits", *(sys.argv[1:] if argv is None else argv)])
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
