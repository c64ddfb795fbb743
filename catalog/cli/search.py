"""``advtool search``: rows similar to anchors, within a score range (a thin layer over Catalog.search)."""

from __future__ import annotations

import sys

from .common import (add_backend_flag, add_query_flags, open_catalog, page_of, print_distribution, print_hits,
                     print_json, print_notes, query_spec, range_note)


def register(sub, common):
    p = sub.add_parser(
        "search", parents=[common], help="find rows similar to anchors within a score range",
        description="Rows of an embedding whose similarity score (1 - L1/(2*sqrt(D)) on normalised vectors) "
                    "to the anchors lies in [--min, --max], sorted by score. Without --min and --max the range is "
                    "chosen automatically (0.85-1 when a row scores there, else - and always for --text - the "
                    "best 100 rows) and a note on stderr says which.",
    )
    p.add_argument("--embedding", "-e", required=True, metavar="E", help="embedding id or name")
    add_query_flags(p)
    p.add_argument("--limit", type=int, default=50, help="rows per page (default 50)")
    p.add_argument("--offset", type=int, default=0, help="rows to skip (default 0)")
    add_backend_flag(p)
    p.add_argument("--json", action="store_true", help='print {"total": N, "results": [{"id","global_key","score"}]} '
                   '(plus "score_range" when the range was automatic, "distribution" with --histogram)')
    p.add_argument("--histogram", action="store_true",
                   help="also print the distribution of every matching row's score over [0, 1] (whatever the range)")
    p.add_argument("--bins", type=int, default=50, help="histogram bins over [0, 1] (default 50: 0.02 wide)")
    p.set_defaults(func=cmd_search)


def cmd_search(args):
    spec = query_spec(args, args.embedding)
    page = page_of(args)
    cat = open_catalog(args)
    result = cat.search(spec, page, backend=args.backend)
    print_notes(result)
    used = result.score_range
    note = range_note(used)
    if note:
        print(note, file=sys.stderr)
    dist = None
    if args.histogram:
        dist = result.distribution if result.distribution is not None and args.bins == 50 else \
            cat.score_distribution(spec, bins=args.bins)
    if args.json:
        out = result.to_dict()
        if used.automatic:
            out["score_range"] = used.to_dict()
        if dist is not None:
            out["distribution"] = dist.to_dict()
        print_json(out)
        return 0
    print_hits(result, args.offset, f"in [{used.min_score:g}, {used.max_score:g}]")
    if dist is not None:
        print_distribution(dist)
    return 0
