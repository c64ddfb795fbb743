"""``advtool uniqueness``: each row's uniqueness from its nearest neighbours, and the outliers (a thin
layer over :class:`catalog.quality.Uniqueness`)."""

from __future__ import annotations

import sys

from ..filters import parse_filter
from ..quality import DEFAULT_NEIGHBOURS
from .common import open_catalog, print_json, progress_bar


def register(sub, common):
    p = sub.add_parser(
        "uniqueness", parents=[common], help="score every row's uniqueness and list the outliers",
        description="Computes each row's uniqueness under an embedding: 1 - the mean similarity score of its K "
                    "nearest other rows (exact L1), in [0, 1], higher is rarer; stored until the embedding's "
                    "vectors change. With --outliers N it lists the N most unique rows (computing first when "
                    "the stored scores are missing, stale or made with another --neighbours).")
    p.add_argument("embedding", metavar="EMBEDDING", help="embedding id or name")
    p.add_argument("--neighbours", "--neighbors", type=int, default=None, metavar="K",
                   help=f"nearest rows each score is taken from (default {DEFAULT_NEIGHBOURS}, at most 1000)")
    p.add_argument("--outliers", type=int, default=None, metavar="N", help="list the N most unique rows")
    p.add_argument("--where", metavar="JSON", help="with --outliers: only rows matching this filter")
    p.add_argument("--json", action="store_true", help='print {"run": {...}, "outliers": [...]} as JSON')
    p.set_defaults(func=cmd_uniqueness)


def cmd_uniqueness(args):
    cat = open_catalog(args)
    where = parse_filter(args.where)
    service = cat.uniqueness
    run = service.status(args.embedding) if args.outliers is not None else None
    wanted = args.neighbours if args.neighbours is not None else (run.neighbours if run else DEFAULT_NEIGHBOURS)
    computed = run is None or not run.current or run.neighbours != wanted
    if computed:
        bar = progress_bar(unit="rows", desc="uniqueness")

        def progress(done, total):
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            run = service.compute(args.embedding, neighbours=wanted, progress=progress)
        finally:
            bar.close()
    rows = service.outliers(args.embedding, args.outliers, where=where) if args.outliers is not None else None
    if args.json:
        print_json({"run": run.to_dict(), **({} if rows is None else {"outliers": rows})})
        return 0
    verb = "computed" if computed else "current"
    print(f"uniqueness of {run.count} rows {verb} (embedding {run.embedding}, {run.neighbours} neighbours, "
          f"vector version {run.version})", file=sys.stderr if rows is not None else sys.stdout)
    if rows is not None:
        width = max([10, *(len(r["global_key"]) for r in rows)])
        print(f"{'uniqueness':>10}  {'global_key':<{width}}  id")
        for r in rows:
            print(f"{r['uniqueness']:>10.4f}  {r['global_key']:<{width}}  {r['id']}")
    return 0
