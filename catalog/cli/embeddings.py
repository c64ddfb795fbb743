"""``advtool embeddings list|create|import|count|delete`` (Labelbox advtool words and outputs)."""

from __future__ import annotations

import os

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
