"""``advtool search``: rows similar to anchors, within a score range (a thin layer over Catalog.search)."""

from __future__ import annotations

from .common import add_query_flags, open_catalog, page_of, print_hits, print_json, query_spec


def register(sub, common):
    p = sub.add_parser(
        "search", parents=[common], help="find rows similar to anchors within a score range",
        description="Rows of an embedding whose similarity score (1 - L1/(2*sqrt(D)) on normalised vectors) "
                    "to the anchors lies in [--min, --max], sorted by score.",
    )
    p.add_argument("--embedding", "-e", required=True, metavar="E", help="embedding id or name")
    add_query_flags(p)
    p.add_argument("--limit", type=int, default=50, help="rows per page (default 50)")
    p.add_argument("--offset", type=int, default=0, help="rows to skip (default 0)")
    p.add_argument("--backend", choices=["auto", "exact", "approximate"], default="auto",
                   help="exact scan, approximate index, or auto (by size; default)")
    p.add_argument("--json", action="store_true", help='print {"total": N, "results": [{"id","global_key","score"}]}')
    p.set_defaults(func=cmd_search)


def cmd_search(args):
    spec = query_spec(args, args.embedding)
    page = page_of(args)
    result = open_catalog(args).search(spec, page, backend=args.backend)
    if args.json:
        print_json(result.to_dict())
        return 0
    print_hits(result, args.offset, f"in [{args.min_score:g}, {args.max_score:g}]")
    return 0
