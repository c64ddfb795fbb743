"""``advtool engine set|show|unset|sync|status|index``: the vector engine (Qdrant) a catalog scales out on
(a thin layer over the Catalog's engine methods)."""

from __future__ import annotations

from .common import open_catalog, print_json, progress_bar


def register(sub, common):
    p = sub.add_parser("engine", help="the vector engine (Qdrant) searches can run on: set, show, unset, sync, status")
    es = p.add_subparsers(dest="action", metavar="ACTION")
    es.required = True

    q = es.add_parser("set", parents=[common], help="point the catalog at a Qdrant engine",
                      description="URL: http(s)://host:6333 (a Qdrant server or cluster), edge:PATH (Qdrant Edge in "
                                  "this process) or local:PATH (qdrant-client's local mode; tests and demos). "
                                  "The engine holds nothing until `advtool engine sync`.")
    q.add_argument("url", metavar="URL")
    q.add_argument("--shards", type=int, default=None, help="shards per collection (servers and clusters)")
    q.add_argument("--replicas", type=int, default=None, help="replicas of each shard (clusters)")
    q.add_argument("--api-key-env", default=None, metavar="VAR",
                   help="environment variable holding the API key (read when connecting, never stored)")
    q.add_argument("--hnsw-m", type=int, default=None, metavar="N",
                   help="HNSW edges per node of new collections (4-128; default Qdrant's 16)")
    q.add_argument("--hnsw-ef-construct", type=int, default=None, metavar="N",
                   help="HNSW candidates while building the graph (8-2048; default Qdrant's 100)")
    q.set_defaults(func=cmd_set)

    q = es.add_parser("show", parents=[common], help="the configured engine")
    q.add_argument("--json", action="store_true", help="print it as JSON (null when none)")
    q.set_defaults(func=cmd_show)

    q = es.add_parser("unset", parents=[common], help="forget the engine (its collections stay as they are)")
    q.set_defaults(func=cmd_unset)

    q = es.add_parser("sync", parents=[common], help="send what changed since the last sync (resumes an interrupted one)")
    q.add_argument("embeddings", nargs="*", metavar="EMBEDDING", help="embedding ids or names (default: all with vectors)")
    q.add_argument("--json", action="store_true", help="print one report per embedding as JSON")
    q.set_defaults(func=cmd_sync)

    q = es.add_parser("index", parents=[common],
                      help="build the engine's HNSW index of synced embeddings and measure its recall (qdrant-hnsw)")
    q.add_argument("embeddings", nargs="+", metavar="EMBEDDING", help="embedding ids or names")
    q.add_argument("--json", action="store_true", help="print one description per embedding as JSON")
    q.set_defaults(func=cmd_index)

    q = es.add_parser("status", parents=[common], help="per embedding: synced version, count and what is pending")
    q.add_argument("--json", action="store_true", help="print it as JSON")
    q.set_defaults(func=cmd_status)


def cmd_set(args):
    cfg = open_catalog(args).engines.set_engine(args.url, shards=args.shards, replicas=args.replicas,
                                                api_key_env=args.api_key_env, hnsw_m=args.hnsw_m,
                                                hnsw_ef_construct=args.hnsw_ef_construct)
    print(f"Engine set: {cfg['url']} ({cfg['kind']}); run `advtool engine sync` to copy the embeddings to it")
    return 0


def cmd_show(args):
    cfg = open_catalog(args).engines.engine()
    if args.json:
        print_json(cfg)
    elif cfg is None:
        print("no engine is set (searches run locally)")
    else:
        extra = [f"{k}={cfg[k]}" for k in ("shards", "replicas", "api_key_env", "hnsw_m", "hnsw_ef_construct")
                 if cfg[k]]
        print(f"{cfg['url']} ({cfg['kind']}){' ' + ' '.join(extra) if extra else ''}")
    return 0


def cmd_unset(args):
    had = open_catalog(args).engines.unset_engine()
    print("Engine unset; searches run locally" if had else "no engine was set")
    return 0


def cmd_sync(args):
    cat = open_catalog(args)
    bars = {}

    def progress(name, done, total):
        bar = bars.get(name)
        if bar is None:
            bar = bars[name] = progress_bar(total=total, unit="vec", desc=f"syncing {name}")
        bar.update(done - bar.n)

    try:
        reports = cat.engines.sync(args.embeddings or None, progress=progress)
    finally:
        for bar in bars.values():
            bar.close()
    if args.json:
        print_json([r.to_dict() for r in reports])
        return 0
    for r in reports:
        print(f"{r.embedding}: version {r.version}, {r.count} vectors in the engine "
              f"({r.sent} sent, {r.deleted} deleted)")
    if not reports:
        print("nothing to sync (no embedding has vectors)")
    return 0


def cmd_index(args):
    cat = open_catalog(args)
    metas = [cat.engines.index(e) for e in args.embeddings]
    if args.json:
        print_json(metas)
        return 0
    for name, m in zip(args.embeddings, metas):
        print(f"{name}: {m['indexed_vectors']} vectors indexed in {m['index_seconds']:g} s; hnsw_ef {m['ef']}, "
              f"measured recall {m['recall']:.4f} (target {m['target_recall']:g}, {m['calibration_queries']} queries)")
    return 0


def cmd_status(args):
    rows = open_catalog(args).engines.status()
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        state = "current" if r["current"] else (r["reason"] or "metadata or labels changed")
        print(f"{r['embedding']}: catalog version {r['version']} ({r['count']} vectors), engine "
              f"{'version ' + str(r['synced_version']) if r['synced_version'] is not None else 'never synced'} "
              f"({r['synced_count']} vectors, {r['state']}); pending: {r['pending_send']} to send, "
              f"{r['pending_delete']} to delete; {state}")
    if not rows:
        print("no embedding has vectors")
    return 0
