"""``advtool``: the command line, a thin layer over :class:`catalog.Catalog`.

Each command group lives in its own module with a ``register(subparsers, common)`` function.
User mistakes raise :class:`catalog.CatalogError` and are printed as one line, with a non-zero exit
code and no traceback.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import CatalogError
from . import datarows, embeddings, labels, models, search, slices
from .errors import render

GROUPS = [embeddings, datarows, models, search, labels, slices]


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=argparse.SUPPRESS,
                        help="catalog file (default: $CATALOG_DB, else ./catalog.duckdb)")
    parser = argparse.ArgumentParser(
        prog="advtool", parents=[common],
        description="Embedding catalog: data rows, embeddings, L1 similarity search, slices and labels.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for group in GROUPS:
        group.register(sub, common)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "db"):
        args.db = None
    try:
        return args.func(args) or 0
    except CatalogError as exc:
        print(f"error: {render(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; nothing was written by the interrupted step", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
