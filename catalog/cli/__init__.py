"""``advtool``: the command line, a thin layer over :class:`catalog.Catalog`.

Each command group lives in its own module with a ``register(subparsers, common)`` function.
User mistakes raise :class:`catalog.CatalogError` and are printed as one line, with a non-zero exit
code and no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

from ..errors import CatalogError
from ..store.space import disk_full, is_out_of_space
from . import datarows, embeddings, engine, labels, maps, models, quality, search, serve, slices, uniqueness
from .errors import render

GROUPS = [embeddings, datarows, models, search, labels, slices, quality, uniqueness, serve, engine, maps]


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", default=argparse.SUPPRESS,
                        help="catalog file (default: $CATALOG_DB, else ./catalog.duckdb)")
    parser = argparse.ArgumentParser(
        prog="advtool", parents=[common],
        description="Embedding catalog: data rows, embeddings, L1 similarity search, slices and labels.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")  # none: the help (as advtool does)
    for group in GROUPS:
        group.register(sub, common)
    for command in sub.choices.values():  # a group alone (`advtool embeddings`) prints its help, like advtool
        actions = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
        if actions and command.get_default("func") is None:
            actions[0].required = False
            command.set_defaults(func=lambda args, command=command: command.print_help())
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `advtool` alone prints its help and succeeds, like Labelbox's advtool
        parser.print_help()
        return 0
    if not hasattr(args, "db"):
        args.db = None
    try:
        with _sigterm_as_exit():
            return args.func(args) or 0
    except CatalogError as exc:
        print(f"error: {render(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; nothing was written by the interrupted step", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated; nothing was written by the interrupted step", file=sys.stderr)
        return 143
    except OSError as exc:  # a full disk met outside the library's own checks: still one line
        if not is_out_of_space(exc):
            raise
        if exc.filename:
            print(f"error: {render(disk_full(Path(exc.filename).absolute().parent))}", file=sys.stderr)
        else:  # the standard output, redirected to a full disk
            print("error: not enough disk space for the output; the output is incomplete, the catalog is unchanged",
                  file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


class Terminated(BaseException):
    """SIGTERM, raised where the program is, so that every ``finally`` runs (transactions roll back,
    scratch files go) before the exit."""


@contextlib.contextmanager
def _sigterm_as_exit():
    """While a command runs: SIGTERM raises :class:`Terminated` (when the command line runs in the
    main thread and nobody else has claimed SIGTERM)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def stop(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
