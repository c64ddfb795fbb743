"""``advtool embeddings list|create|import|count|delete`` (Labelbox advtool words and outputs), and
``export`` (the vectors back out, in the import format)."""

from __future__ import annotations

import json
import os
import sys

from . import models
from .common import open_catalog, print_json, progress_bar


def register(sub, common):
    p = sub.add_parser("embeddings", help="list, create, import, count and delete embeddings")
    es = p.add_subparsers(dest="action", metavar="ACTION")
    es.required = True

    q = es.add_parser("list", parents=[common], help="list embeddings")
    q.add_argument("--json", action="store_true", help="print JSON with custom flag and vector count")
    q.set_defaults(func=cmd_list)

    q = es.add_parser("create", parents=[common], help="create a custom embedding")
    q.add_argument("name")
    q.add_argument("dims", help="dimensions, 8 to 2048")
    q.set_defaults(func=cmd_create)

    q = es.add_parser("import", parents=[common], help="import vectors from NDJSON (.ndjson or .ndjson.gz)")
    q.add_argument("id", metavar="ID", help="embedding id or name")
    q.add_argument("path", metavar="PATH")
    q.set_defaults(func=cmd_import)

    q = es.add_parser("count", parents=[common], help="number of vectors imported")
    q.add_argument("id", metavar="ID", help="embedding id or name")
    q.set_defaults(func=cmd_count)

    q = es.add_parser("delete", parents=[common], help="delete a custom embedding and its vectors")
    q.add_argument("id", metavar="ID", help="embedding id or name")
    q.set_defaults(func=cmd_delete)

    q = es.add_parser("export", parents=[common],
                      help="export vectors as NDJSON in the import format (stdout, or -o FILE; .gz compresses) "
                           "or as npy (-o FILE.npy, ids in FILE.ids.json)")
    q.add_argument("id", metavar="ID", help="embedding id or name")
    q.add_argument("--format", choices=["ndjson", "npy"], default="ndjson",
                   help="ndjson (default): one {\"id\", \"vector\"} a line, id = global_key; "
                        "npy: float32 matrix file plus a JSON array of the ids")
    q.add_argument("--slice", metavar="NAME", help="only the rows of this saved slice")
    q.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default for ndjson: stdout)")
    q.add_argument("--json", action="store_true", help="print the summary as JSON")
    q.set_defaults(func=cmd_export)

    models.register_embeddings(es, common)


def cmd_list(args):
    cat = open_catalog(args)
    embs = cat.get_embeddings()
    if args.json:
        counts = cat.embedding_counts()
        print_json([e.to_dict(count=counts.get(e.id, 0)) for e in embs])
        return 0
    for e in embs:
        print(f"{e.id:>36} - {e.name:<40} - dims: {e.dims:<5}")
    return 0


def cmd_create(args):
    emb = open_catalog(args).create_embedding(args.name, args.dims)
    print(f"Embedding type created id={emb.id}")
    return 0


def cmd_import(args):
    emb = open_catalog(args).get_embedding(args.id)
    size = os.path.getsize(args.path) if os.path.isfile(args.path) else None
    with progress_bar(total=size, desc=f"reading {os.path.basename(args.path)}") as bar:
        def progress(pos):
            if pos is not None:
                bar.update(pos - bar.n)
        n = emb.import_vectors_from_file(args.path, progress=progress)
    print(f"Imported {n} vectors")
    return 0


def cmd_count(args):
    print(open_catalog(args).get_embedding(args.id).get_imported_vector_count())
    return 0


def cmd_delete(args):
    eid = open_catalog(args).delete_embedding(args.id)
    print(f"Embedding ID {eid} deleted")
    return 0


def cmd_export(args):
    cat = open_catalog(args)
    emb = cat.get_embedding(args.id)
    out = args.output if args.output is not None else (None if args.format == "npy" else sys.stdout)
    with progress_bar(unit="vectors", desc=f"exporting {emb.name}") as bar:
        def progress(done, total):
            bar.total = total
            bar.update(done - bar.n)
        report = cat.export_vectors(emb, out, fmt=args.format, slice=args.slice,
                                    progress=progress if args.output is not None else None)
    summary = sys.stdout if args.output is not None else sys.stderr  # stdout may be the data
    if report.without_vector:
        print(f"note: {report.without_vector} rows of slice {args.slice!r} have no vector in {emb.name} "
              f"and were left out (first: {', '.join(repr(k) for k in report.missing[:5])})", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False), file=summary)
    else:
        where = f" to {' and '.join(report.files)}" if report.files else ""
        print(f"Exported {report.exported} vectors{where}", file=summary)
    return 0
