"""``advtool models`` and ``advtool embeddings compute MODEL``.

Nothing here imports torch: the catalog loads a model only when a command needs it, so
``advtool --help`` and ``advtool models`` stay fast.
"""

from __future__ import annotations

import sys

from .common import LazyBar, open_catalog, print_json, print_skipped
from .errors import word


def register(sub, common):
    q = sub.add_parser("models", parents=[common],
                       help="list the off-the-shelf models and whether each can run on this machine")
    q.add_argument("--json", action="store_true", help="print JSON (with where the weights are, or why not)")
    q.set_defaults(func=cmd_models)


def register_embeddings(es, common):
    """Adds ``advtool embeddings compute`` to the embeddings group."""
    q = es.add_parser("compute", parents=[common],
                      help="compute an off-the-shelf embedding for the data rows that have no vector yet")
    q.add_argument("model", metavar="MODEL",
                   help="clip-vit-b-32, all-mpnet-base-v2, all-minilm-l6-v2 or color-texture (name or id)")
    q.add_argument("--all", action="store_true", help="recompute every row, not only those missing a vector")
    q.add_argument("--device", default="auto", metavar="{cpu,cuda,auto}",
                   help="where to run the model (default auto: a CUDA GPU when present)")
    q.add_argument("--batch-size", default=None, metavar="N", help="rows per model call (default depends on the model)")
    q.add_argument("--pretrained", default=None, metavar="TAG",
                   help="open_clip pretrained tag for clip-vit-b-32 (default openai)")
    q.add_argument("--weights", default=None, metavar="PATH",
                   help="checkpoint file or model folder to use instead of $CATALOG_MODELS and the caches")
    q.add_argument("--json", action="store_true", help="print the report as JSON")
    q.set_defaults(func=cmd_compute)


def cmd_models(args):
    models = open_catalog(args).list_models()
    for m in models:
        if m["reason"]:
            m["reason"] = word(m["reason"])
    if args.json:
        print_json(models)
        return 0
    for m in models:
        state = f"yes ({m['weights']})" if m["available"] else f"no: {m['reason']}"
        print(f"{m['id']:>36} - {m['name']:<20} - dims: {m['dims']:<5} - {m['media_type']:<5} - available: {state}")
    return 0


def cmd_compute(args):
    cat = open_catalog(args)
    progress = LazyBar(f"computing {args.model}")
    try:
        report = cat.compute_embeddings(args.model, all=args.all, device=args.device, batch_size=args.batch_size,
                                        progress=progress, weights=args.weights, pretrained=args.pretrained)
    except KeyboardInterrupt:
        progress.close()
        print("interrupted; the vectors written in whole buffers (122,880 rows each) are saved, the ones "
              "computed since were not: run the same command again to compute the rest", file=sys.stderr)
        return 130
    finally:
        progress.close()
    print_skipped(report.unreadable)
    if args.json:
        print_json(report.to_dict())
    else:
        extra = []
        if report.already_had_vectors:
            extra.append(f"{report.already_had_vectors} rows already have a vector, --all recomputes them")
        if report.skipped_other_media:
            extra.append(f"{report.skipped_other_media} rows of another media type skipped")
        if report.unreadable:
            extra.append(f"{len(report.unreadable)} unreadable")
        tail = f" ({'; '.join(extra)})" if extra else ""
        if report.computed == 0 and not report.unreadable:
            print(f"Nothing to compute for {report.model}{tail}")
        else:
            print(f"Computed {report.computed} {report.model} vectors on {report.device} in {report.seconds:.1f}s{tail}")
    return 1 if report.computed == 0 and report.unreadable else 0
