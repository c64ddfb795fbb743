"""``advtool search``: rows similar to anchors, within a score range (a thin layer over Catalog.search)."""

from __future__ import annotations

import json

from ..errors import CatalogError
from .common import open_catalog, print_hits, print_json


def register(sub, common):
    p = sub.add_parser(
        "search", parents=[common], help="find rows similar to anchors within a score range",
        description="Rows of an embedding whose similarity score (1 - L1/(2*sqrt(D)) on normalised vectors) "
                    "to the anchors lies in [--min, --max], sorted by score.",
    )
    p.add_argument("--embedding", "-e", required=True, metavar="E", help="embedding id or name")
    p.add_argument("--anchor", "-a", action="append", default=[], metavar="ID",
                   help="anchor data row id or global_key (repeat for several)")
    p.add_argument("--negative", action="append", default=[], metavar="ID",
                   help="negative anchor: move away from this row (repeatable)")
    p.add_argument("--text", metavar="T", help="a text prompt as anchor (embeddings with a text model)")
    p.add_argument("--image", metavar="FILE", help="an image file as anchor (embeddings with an image model)")
    p.add_argument("--min", dest="min_score", type=float, default=0.85, help="lowest score, inclusive (default 0.85)")
    p.add_argument("--max", dest="max_score", type=float, default=1.0, help="highest score, inclusive (default 1.0)")
    p.add_argument("--aggregate", choices=["mean", "max"], default="mean",
                   help="several anchors: mean = similar to their average, max = similar to any (default mean)")
    p.add_argument("--where", metavar="JSON", help='metadata filter, e.g. \'{"split": "train", "width": {"$gte": 512}}\'')
    p.add_argument("--limit", type=int, default=50, help="rows per page (default 50)")
    p.add_argument("--offset", type=int, default=0, help="rows to skip (default 0)")
    p.add_argument("--order", choices=["desc", "asc"], default="desc", help="score order (default desc)")
    p.add_argument("--include-anchors", action="store_true", help="also list the anchors themselves")
    p.add_argument("--backend", choices=["auto", "exact", "approximate"], default="auto",
                   help="exact scan, approximate index, or auto (by size; default)")
    p.add_argument("--json", action="store_true", help='print {"total": N, "results": [{"id","global_key","score"}]}')
    p.set_defaults(func=cmd_search)


def _where(text):
    if text is None:
        return None
    try:
        where = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError(f"--where is not valid JSON ({exc.msg} at character {exc.pos}); "
                           'give an object such as \'{"split": "train"}\'') from None
    if not isinstance(where, dict):
        raise CatalogError('--where must be a JSON object such as \'{"split": "train"}\'')
    return where


def cmd_search(args):
    where = _where(args.where)
    if args.limit < 0 or args.offset < 0:
        raise CatalogError("--limit and --offset must not be negative")
    cat = open_catalog(args)
    result = cat.search(
        args.embedding, anchors=args.anchor, negative_anchors=args.negative, min_score=args.min_score,
        max_score=args.max_score, aggregate=args.aggregate, where=where, limit=args.limit, offset=args.offset,
        order=args.order, include_anchors=args.include_anchors, text=args.text, image=args.image,
        backend=None if args.backend == "auto" else args.backend,
    )
    if args.json:
        print_json(result.to_dict())
        return 0
    print_hits(result, args.offset, f"in [{args.min_score:g}, {args.max_score:g}]")
    return 0
