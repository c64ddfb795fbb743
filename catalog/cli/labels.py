"""``advtool labels import|set|remove|review|list|export`` and ``advtool label-by-similarity [evaluate]``."""

from __future__ import annotations

import sys

from ..errors import CatalogError
from .common import open_catalog, print_json
from .errors import word


def register(sub, common):
    p = sub.add_parser("labels", help="set, remove, review, list, import and export labels")
    ls = p.add_subparsers(dest="action", metavar="ACTION")
    ls.required = True

    q = ls.add_parser("import", parents=[common], help="import labels from CSV (id,label) or NDJSON ({\"id\",\"label\"})")
    q.add_argument("path", metavar="FILE")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_import)

    q = ls.add_parser("set", parents=[common], help="give a data row one or more manual labels")
    q.add_argument("id", metavar="ID", help="data row id or global_key")
    q.add_argument("labels", nargs="+", metavar="LABEL")
    q.set_defaults(func=cmd_set)

    q = ls.add_parser("remove", parents=[common], help="remove labels from a data row (all of them without LABEL)")
    q.add_argument("id", metavar="ID", help="data row id or global_key")
    q.add_argument("labels", nargs="*", metavar="LABEL")
    q.set_defaults(func=cmd_remove)

    q = ls.add_parser("review", parents=[common], help="accept or reject the unreviewed suggestions on data rows")
    q.add_argument("ids", nargs="+", metavar="ID", help="data row ids or global_keys")
    how = q.add_mutually_exclusive_group(required=True)
    how.add_argument("--accept", action="store_true", help="mark them reviewed: they join the labeled pool")
    how.add_argument("--reject", action="store_true", help="delete them")
    q.add_argument("--label", action="append", metavar="LABEL", help="only this suggestion (repeatable)")
    q.set_defaults(func=cmd_review)

    q = ls.add_parser("list", parents=[common], help="show the labels of data rows")
    q.add_argument("ids", nargs="+", metavar="ID")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_list)

    q = ls.add_parser("export", parents=[common], help="write labels to stdout (id, global_key, label, source, score, reviewed)")
    q.add_argument("--format", choices=["csv", "ndjson"], default="csv")
    q.add_argument("--slice", metavar="NAME", help="only the rows of this saved slice")
    q.set_defaults(func=cmd_export)

    lbs = sub.add_parser(
        "label-by-similarity", parents=[common], help="suggest labels from the most similar labeled rows",
        description="For each row, take its --results best-scoring rows among the labeled pool (manual or "
                    "reviewed labels); a label's score is the sum of those hits' scores that carry it, divided "
                    "by --results; labels scoring >= --threshold are suggested. `label-by-similarity evaluate` "
                    "measures the rule on the labeled pool (leave-one-out).",
    )
    _lbs_options(lbs, required=False)
    src = lbs.add_argument_group("rows to label (one of)")
    src.add_argument("--ids", nargs="+", metavar="ID", help="data row ids or global_keys")
    src.add_argument("--slice", metavar="NAME", help="the rows of a saved slice")
    src.add_argument("--unlabeled", action="store_true", help="every row with a vector and no label")
    lbs.add_argument("--results", type=int, default=10, metavar="K", help="neighbours per row, k (default 10)")
    lbs.add_argument("--threshold", type=float, default=0.30, metavar="T",
                     help="suggest labels scoring at least T (default 0.30)")
    lbs.add_argument("--top-only", action="store_true", help="suggest only the best label (threshold not used)")
    lbs.add_argument("--save", action="store_true",
                     help="write the suggestions (source similarity, unreviewed; review with `advtool labels review`)")
    lbs.add_argument("--backend", choices=["auto", "exact", "qdrant"], default="auto",
                     help="where the neighbours are found: exact (the local scan; also auto, the default) or qdrant "
                          "(the vector engine of `advtool engine`, exact mode: the same suggestions)")
    lbs.set_defaults(func=cmd_label_by_similarity)
    acts = lbs.add_subparsers(dest="lbs_action", metavar="ACTION")
    acts.required = False
    ev = acts.add_parser("evaluate", parents=[common],
                         help="leave-one-out accuracy, precision and coverage on the labeled pool")
    _lbs_options(ev, required=True)
    ev.add_argument("--results", default="1,3,5,10", metavar="K,K,...", help="values of k (default 1,3,5,10)")
    ev.add_argument("--thresholds", default="0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8", metavar="T,T,...",
                    help="thresholds (default 0.1,0.2,...,0.8)")
    ev.set_defaults(func=cmd_evaluate)


def _lbs_options(p, required):
    p.add_argument("--embedding", "-e", required=required, metavar="E", help="embedding id or name")
    p.add_argument("--json", action="store_true", help="print JSON")


# -- labels ----------------------------------------------------------------------------------------
def cmd_import(args):
    report = open_catalog(args).import_labels(args.path)
    if args.json:
        print_json({"labels": report.labels, "rows": report.rows})
    else:
        print(f"Imported {report.labels} labels on {report.rows} data rows")
    return 0


def cmd_set(args):
    names = open_catalog(args).set_labels(args.id, args.labels)
    print(f"Labeled {args.id}: {', '.join(names)}")
    return 0


def cmd_remove(args):
    n = open_catalog(args).remove_labels(args.id, args.labels or None)
    print(f"Removed {n} label{'s' if n != 1 else ''} from {args.id}")
    return 0


def cmd_review(args):
    n = open_catalog(args).review_labels(args.ids, accept=args.accept, labels=args.label)
    word = "Accepted" if args.accept else "Rejected"
    print(f"{word} {n} suggestion{'s' if n != 1 else ''}")
    return 0


def cmd_list(args):
    cat = open_catalog(args)
    rows = cat.get_datarows(args.ids)
    labels = cat.get_labels([r["id"] for r in rows])
    if args.json:
        print_json([{"id": r["id"], "global_key": r["global_key"], "labels": labels[r["id"]]} for r in rows])
        return 0
    for r in rows:
        items = labels[r["id"]]
        print(f"{r['global_key']}  ({r['id']})")
        if not items:
            print("  (no labels)")
        for lab in items:
            extra = ""
            if lab["source"] == "similarity":
                extra = f"  score {lab['score']:.3f}" if lab["score"] is not None else ""
                extra += "  reviewed" if lab["reviewed"] else "  not reviewed"
            print(f"  {lab['label']}  [{lab['source']}]{extra}")
    return 0


def cmd_export(args):
    open_catalog(args).export_labels(sys.stdout, fmt=args.format, slice=args.slice)
    return 0


# -- label-by-similarity ---------------------------------------------------------------------------
def cmd_label_by_similarity(args):
    if not args.embedding:
        raise CatalogError("give the embedding to compare with: --embedding NAME_OR_ID")
    chosen = [name for name, on in (("--ids", args.ids), ("--slice", args.slice), ("--unlabeled", args.unlabeled)) if on]
    if len(chosen) != 1:
        raise CatalogError("give the rows to label with exactly one of --ids ID..., --slice NAME or --unlabeled"
                           + (f" (got {' and '.join(chosen)})" if chosen else ""))
    cat = open_catalog(args)
    rows = args.ids if args.ids else ("unlabeled" if args.unlabeled else None)
    result = cat.label_by_similarity(args.embedding, rows, slice=args.slice, results=args.results,
                                     threshold=args.threshold, top_only=args.top_only, save=args.save,
                                     backend=args.backend)
    if args.json:
        print_json(result.to_dict())
        return 0
    for r in result.results:
        print(f"{r.global_key}  ({r.id})")
        if not r.labels:
            print("  no labeled neighbours")
        for s in r.labels:
            print(f"  [{'x' if s.suggested else ' '}] {s.label:<30} {s.score:.3f}")
        if r.hits:
            shown = ", ".join(f"{h.global_key} {h.score:.3f}" for h in r.hits[:3])
            more = f", ... ({len(r.hits)} hits)" if len(r.hits) > 3 else ""
            print(f"      nearest: {shown}{more}")
    with_suggestion = sum(1 for r in result.results if r.suggested)
    rule = "top label only" if result.top_only else f"threshold {result.threshold:g}"
    print(f"{len(result.results)} rows, {with_suggestion} with a suggestion (k={result.k}, {rule}, "
          f"pool of {result.pool_size} labeled rows)")
    if args.save:
        print(f"Saved {result.saved} new suggestion{'s' if result.saved != 1 else ''} (source similarity, not reviewed); "
              "review them with `advtool labels review ID... --accept|--reject`")
    return 0


def cmd_evaluate(args):
    ev = open_catalog(args).evaluate_label_by_similarity(args.embedding, results=args.results,
                                                        thresholds=args.thresholds)
    if args.json:
        print_json(ev.to_dict())
        return 0
    print(f"Leave-one-out on {ev.pool_size} labeled rows, {len(ev.labels)} labels, embedding {ev.embedding}")
    print(f"{'k':>4} {'threshold':>9} {'accuracy':>9} {'precision':>9} {'coverage':>9} {'recall':>7}")
    for g in ev.grid:
        prec = "-" if g["precision"] is None else f"{g['precision']:.3f}"
        print(f"{g['k']:>4} {g['threshold']:>9.2f} {g['accuracy']:>9.3f} {prec:>9} {g['coverage']:>9.3f} {g['recall']:>7.3f}")
    rec = ev.recommended
    if rec:
        print(f"Recommended: --results {rec['k']} --threshold {rec['threshold']:g} (precision {rec['precision']:.3f} "
              f"at coverage {rec['coverage']:.3f}; top-label accuracy {rec['accuracy']:.3f})")
    else:
        print(f"No recommendation: no pair reaches coverage {ev.coverage_target:g}")
    for note in ev.notes:
        print(f"Note: {word(note)}")
    return 0
