"""``advtool map compute|export``: the 2-D map of an embedding (a thin layer over the Catalog's map methods)."""

from __future__ import annotations

import sys

from .common import LazyBar, open_catalog


def register(sub, common):
    p = sub.add_parser("map", help="the 2-D map of an embedding: compute, export")
    ms = p.add_subparsers(dest="action", metavar="ACTION")
    ms.required = True

    q = ms.add_parser("compute", parents=[common], help="project an embedding's vectors to 2-D and cache the map",
                      description="PCA (default; fast at any size) or UMAP with the Manhattan metric (needs the "
                                  "umap-learn package; at most 250,000 rows). The map is kept beside the catalog "
                                  "until the embedding's vectors change.")
    q.add_argument("embedding", metavar="EMBEDDING", help="embedding id or name")
    q.add_argument("--method", choices=["pca", "umap"], default="pca", help="projection (default pca)")
    q.set_defaults(func=cmd_compute)

    q = ms.add_parser("export", parents=[common], help="write the map's points (id, global_key, x, y)")
    q.add_argument("embedding", metavar="EMBEDDING", help="embedding id or name")
    q.add_argument("--output", "-o", metavar="FILE", default=None, help="file to write (default: stdout)")
    q.add_argument("--format", choices=["ndjson", "csv"], default="ndjson", help="output format (default ndjson)")
    q.set_defaults(func=cmd_export)


def cmd_compute(args):
    cat = open_catalog(args)
    progress = LazyBar(f"{args.method} map")
    try:
        made = cat.maps.compute(args.embedding, method=args.method, progress=progress)
    finally:
        progress.close()
    extra = ""
    if made.explained:
        extra = f"; the axes explain {made.explained[0]:.1%} and {made.explained[1]:.1%} of the variance"
    print(f"Computed the {made.method} map of {made.embedding}: {len(made):,} points (vector version "
          f"{made.version}){extra}")
    return 0


def cmd_export(args):
    cat = open_catalog(args)
    n = cat.maps.export(args.embedding, args.output if args.output else sys.stdout, fmt=args.format)
    print(f"exported {n} points", file=sys.stderr)
    return 0
