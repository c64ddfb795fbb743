"""``advtool slices|batches|metadata``: saved slices, labeling batches and bulk metadata."""

from __future__ import annotations

import json
import sys

from ..metadata import parse_assignments
from ..errors import CatalogError
from .common import add_backend_flag, add_query_flags, open_catalog, print_hits, print_json, print_notes, query_spec


def register(sub, common):
    _register_slices(sub, common)
    _register_batches(sub, common)
    _register_metadata(sub, common)


# -- slices ---------------------------------------------------------------------------------------------
def _register_slices(sub, common):
    p = sub.add_parser("slices", help="save, list, show, export and delete saved slices")
    ss = p.add_subparsers(dest="action", metavar="ACTION")
    ss.required = True

    q = ss.add_parser("save", parents=[common], help="save a search (or a pure filter) as a named slice",
                      description="Save the search state under NAME. Without --embedding the slice is a pure "
                                  "metadata/label filter. Slices are dynamic: rows imported later appear when "
                                  "they match.")
    q.add_argument("name", metavar="NAME", help="3 to 60 characters, unique")
    q.add_argument("--embedding", "-e", metavar="E", help="embedding id or name (leave out for a filter slice)")
    add_query_flags(q, image=False)
    q.add_argument("--description", metavar="TEXT", help="what the slice is for")
    q.add_argument("--replace", action="store_true", help="update the slice NAME in place if it exists")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_slice_save)

    q = ss.add_parser("list", parents=[common], help="list saved slices")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_slice_list)

    q = ss.add_parser("show", parents=[common], help="run a slice now and print a page of its rows")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--limit", type=int, default=50, help="rows per page (default 50)")
    q.add_argument("--offset", type=int, default=0, help="rows to skip (default 0)")
    q.add_argument("--json", action="store_true", help='print {"total": N, "results": [{"id","global_key","score"}]}')
    add_backend_flag(q)
    q.set_defaults(func=cmd_slice_show)

    q = ss.add_parser("export", parents=[common],
                      help="write every row of a slice (id, global_key, score, metadata, labels) to stdout")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--format", choices=["ndjson", "csv"], default="ndjson")
    q.set_defaults(func=cmd_slice_export)

    q = ss.add_parser("delete", parents=[common], help="delete a saved slice (its rows are untouched)")
    q.add_argument("name", metavar="NAME")
    q.set_defaults(func=cmd_slice_delete)


def cmd_slice_save(args):
    cat = open_catalog(args)
    existed = args.replace and any(s.name == args.name.strip() for s in cat.get_slices())
    spec = query_spec(args, args.embedding)
    s = cat.save_slice(args.name, spec, description=args.description, replace=args.replace)
    if spec.auto_range and not s.is_filter_only:
        print(f"note: no score range given; the slice stores the automatic range "
              f"{s.query['min_score']:.2f}-{s.query['max_score']:.2f} (choose one with --min/--max)",
              file=sys.stderr)
    if args.json:
        print_json(s.to_dict())
    else:
        print(f"Slice {'updated' if existed else 'saved'}: {s.name} id={s.id}")
    return 0


def _describe(s, names) -> str:
    q = s.query
    if s.is_filter_only:
        return "filter" + (" " + _short_json(q.get("where")) if q.get("where") else " (all rows)")
    n = len(q.get("anchors") or []) + (1 if q.get("text") else 0)
    return (f"{names.get(q['embedding'], q['embedding'])}, {n} anchor{'s' if n != 1 else ''}, "
            f"[{q['min_score']:g}, {q['max_score']:g}]" + (" + filter" if q.get("where") else ""))


def _short_json(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 50 else text[:47] + "..."


def cmd_slice_list(args):
    cat = open_catalog(args)
    slices = cat.get_slices()
    if args.json:
        print_json([s.to_dict() for s in slices])
        return 0
    names = {e.id: e.name for e in cat.get_embeddings()}
    if not slices:
        print("No slices yet; save one with `advtool slices save NAME ...`")
        return 0
    width = max(len(s.name) for s in slices)
    for s in slices:
        desc = f"  - {s.description}" if s.description else ""
        print(f"{s.name:<{width}}  {(s.updated_at or '')[:19]}  {_describe(s, names)}{desc}")
    return 0


def cmd_slice_show(args):
    result = open_catalog(args).get_slice(args.name).rows(limit=_nonneg(args.limit, "--limit"),
                                                          offset=_nonneg(args.offset, "--offset"), backend=args.backend)
    print_notes(result)
    if args.json:
        print_json(result.to_dict())
        return 0
    print_hits(result, args.offset, f"in slice {args.name}")
    return 0


def cmd_slice_export(args):
    n = open_catalog(args).export_slice(args.name, sys.stdout, fmt=args.format)
    print(f"exported {n} rows", file=sys.stderr)
    return 0


def cmd_slice_delete(args):
    open_catalog(args).delete_slice(args.name)
    print(f"Slice {args.name} deleted")
    return 0


def _nonneg(value, flag):
    if value < 0:
        raise CatalogError(f"{flag} must not be negative")
    return value


# -- batches --------------------------------------------------------------------------------------------
def _register_batches(sub, common):
    p = sub.add_parser("batches", help="labeling batches: freeze rows and send them to a project")
    bs = p.add_subparsers(dest="action", metavar="ACTION")
    bs.required = True

    q = bs.add_parser("create", parents=[common], help="freeze the rows of a slice (or ids) into a batch",
                      description="Rows already in a batch of the same project are skipped and reported.")
    q.add_argument("name", metavar="NAME", help="3 to 60 characters, unique within the project")
    q.add_argument("--project", "-p", required=True, metavar="P")
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--slice", metavar="S", help="the slice whose current rows go into the batch")
    src.add_argument("--ids", nargs="+", metavar="ID", help="data row ids or global_keys")
    q.add_argument("--priority", type=int, default=3, help="1 (highest) to 5 (lowest), default 3")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_batch_create)

    q = bs.add_parser("list", parents=[common], help="list batches")
    q.add_argument("--project", "-p", metavar="P", help="only this project")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_batch_list)

    q = bs.add_parser("show", parents=[common], help="a batch and its rows")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--project", "-p", required=True, metavar="P")
    q.add_argument("--limit", type=int, default=None, help="rows to print (default all)")
    q.add_argument("--offset", type=int, default=0)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_batch_show)

    q = bs.add_parser("export", parents=[common], help="write every row of a batch to stdout")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--project", "-p", required=True, metavar="P")
    q.add_argument("--format", choices=["ndjson", "csv"], default="ndjson")
    q.set_defaults(func=cmd_batch_export)

    q = bs.add_parser("delete", parents=[common], help="delete a batch (its rows may then join another batch)")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--project", "-p", required=True, metavar="P")
    q.set_defaults(func=cmd_batch_delete)


def cmd_batch_create(args):
    b = open_catalog(args).create_batch(args.name, args.project, slice=args.slice, ids=args.ids,
                                        priority=args.priority)
    for s in b.skipped[:50]:
        print(f"skipped {s['global_key']}: already in batch {s['batch']!r} of project {b.project!r}", file=sys.stderr)
    if len(b.skipped) > 50:
        print(f"... and {len(b.skipped) - 50} more skipped", file=sys.stderr)
    if args.json:
        print_json({**b.to_dict(), "skipped": b.skipped})
    else:
        print(f"Batch {b.name} created in project {b.project}: {b.size} row{'s' if b.size != 1 else ''}, "
              f"priority {b.priority} ({len(b.skipped)} skipped)")
    return 0


def cmd_batch_list(args):
    batches = open_catalog(args).get_batches(project=args.project)
    if args.json:
        print_json([b.to_dict() for b in batches])
        return 0
    if not batches:
        print("No batches yet; create one with `advtool batches create NAME --project P --slice S`")
        return 0
    pw = max(len("project"), max(len(b.project) for b in batches))
    nw = max(len("name"), max(len(b.name) for b in batches))
    print(f"{'project':<{pw}}  {'name':<{nw}}  priority  {'rows':>7}  created")
    for b in batches:
        print(f"{b.project:<{pw}}  {b.name:<{nw}}  {b.priority:>8}  {b.size:>7}  {(b.created_at or '')[:19]}")
    return 0


def cmd_batch_show(args):
    b = open_catalog(args).get_batch(args.name, args.project)
    rows = b.rows(limit=None if args.limit is None else _nonneg(args.limit, "--limit"),
                  offset=_nonneg(args.offset, "--offset"))
    if args.json:
        print_json({**b.to_dict(), "rows": rows})
        return 0
    print(f"Batch {b.name} (project {b.project}, priority {b.priority}, {b.size} rows, created {(b.created_at or '')[:19]})")
    for r in rows:
        print(f"{r['id']}  {r['global_key']}")
    return 0


def cmd_batch_export(args):
    n = open_catalog(args).export_batch(args.name, args.project, sys.stdout, fmt=args.format)
    print(f"exported {n} rows", file=sys.stderr)
    return 0


def cmd_batch_delete(args):
    open_catalog(args).delete_batch(args.name, args.project)
    print(f"Batch {args.name} of project {args.project} deleted")
    return 0


# -- bulk metadata --------------------------------------------------------------------------------------
def _targets(q):
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--slice", metavar="S", help="every row of this slice")
    src.add_argument("--ids", nargs="+", metavar="ID",
                     help="data row ids or global_keys (put KEY arguments before --ids, or end the ids with --)")
    src.add_argument("--where", metavar="JSON", help="every row matching this filter ('{}' for all rows)")


def _register_metadata(sub, common):
    p = sub.add_parser("metadata", help="set or remove metadata keys on many rows at once (one transaction)")
    ms = p.add_subparsers(dest="action", metavar="ACTION")
    ms.required = True

    q = ms.add_parser("set", parents=[common], help="set KEY=VALUE on every chosen row",
                      description="VALUE is read as JSON when it parses (numbers, true/false, null, objects, "
                                  "lists, \"quoted strings\"), else as a plain string. A dotted KEY sets a nested "
                                  "key. All rows change in one transaction, or none does.")
    q.add_argument("pairs", nargs="+", metavar="KEY=VALUE")
    _targets(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_metadata_set)

    q = ms.add_parser("unset", parents=[common], help="remove KEY from every chosen row")
    q.add_argument("keys", nargs="+", metavar="KEY")
    _targets(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_metadata_unset)


def _target_kwargs(args) -> dict:
    return {"slice": args.slice, "ids": args.ids, "where": args.where}


def cmd_metadata_set(args):
    values = parse_assignments(args.pairs)
    n = open_catalog(args).set_metadata(values, **_target_kwargs(args))
    if args.json:
        print_json({"updated": n, "set": values})
    else:
        print(f"Set {', '.join(values)} on {n} row{'s' if n != 1 else ''}")
    return 0


def cmd_metadata_unset(args):
    n = open_catalog(args).unset_metadata(args.keys, **_target_kwargs(args))
    if args.json:
        print_json({"updated": n, "unset": args.keys})
    else:
        print(f"Removed {', '.join(args.keys)} from {n} row{'s' if n != 1 else ''}")
    return 0
