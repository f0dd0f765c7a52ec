"""The ``arbf`` command line (``python -m arbf``, or the ``arbf`` console script).

Subcommands:

- ``reproduce`` — the paper's experiments (SPEC §3): figures, CSV/JSON data, ``report.md``.

Usage errors, a missing optional dependency or an unwritable output folder print one
line on stderr and exit with a non-zero status (2 for usage, 1 otherwise).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    from .datasets import DATASETS

    parser = _Parser(
        prog="arbf",
        description="K-Means and its differentiable RBF relaxation, on any array library.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    rep = sub.add_parser(
        "reproduce",
        help="reproduce the paper's experiments (figures, table, report)",
        description=(
            "Run the σ-wise and initialisation-wise protocols and the center paths on the "
            "synthetic data sets, and write PNG figures, CSV/JSON data and report.md."
        ),
    )
    rep.add_argument(
        "--out",
        type=Path,
        default=Path("arbf-reproduce"),
        metavar="DIR",
        help="output folder (default: ./arbf-reproduce)",
    )
    rep.add_argument(
        "--backend",
        default="numpy",
        choices=("numpy", "torch", "jax", "dask", "cupy"),
        help="array library to run on (default: numpy)",
    )
    rep.add_argument(
        "--quick",
        action="store_true",
        help="smaller data, fewer σ levels and initialisations (< 1 minute)",
    )
    rep.add_argument(
        "--datasets",
        nargs="+",
        choices=list(DATASETS),
        metavar="NAME",
        help=f"subset of data sets (default: all of {', '.join(DATASETS)})",
    )
    rep.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    rep.add_argument(
        "--no-figures",
        dest="figures",
        action="store_false",
        help="skip the PNG figures (no matplotlib needed)",
    )
    rep.add_argument("--quiet", action="store_true", help="no progress bar")
    from ._deep import digits

    digits.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "deep-digits":
        from ._deep import digits

        return digits.run(args)
    from ._reproduce.runner import ReproduceError, reproduce

    command = "python -m arbf " + " ".join(shlex.quote(a) for a in args_list)
    try:
        summary = reproduce(
            out=args.out,
            backend=args.backend,
            quick=args.quick,
            datasets=args.datasets,
            seed=args.seed,
            figures=args.figures,
            progress=not args.quiet,
            command=command,
        )
    except ReproduceError as exc:
        print(f"arbf reproduce: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("arbf reproduce: interrupted", file=sys.stderr)
        return 130
    print(f"wrote {args.out / 'report.md'} ({summary['wall_time_s']:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
