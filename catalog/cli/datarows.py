"""``advtool datarows import|list|export`` (and ``delete``, from :mod:`.serve`)."""

from __future__ import annotations

import sys

from . import serve
from .common import open_catalog, print_json, print_skipped


def register(sub, common):
    p = sub.add_parser("datarows", help="import, list, export and delete data rows")
    ds = p.add_subparsers(dest="action", metavar="ACTION")
    ds.required = True

    q = ds.add_parser("import", parents=[common],
                      help="import images, folders, .zip archives and record files (.ndjson, .jsonl, .json)")
    q.add_argument("paths", nargs="+", metavar="PATH")
    q.add_argument("--metadata", metavar="FILE", help="CSV or NDJSON keyed by global_key, merged into metadata")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_import)

    q = ds.add_parser("list", parents=[common], help="list data rows")
    q.add_argument("--limit", type=int, default=50)
    q.add_argument("--offset", type=int, default=0)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_list)

    q = ds.add_parser("export", parents=[common], help="export every data row to stdout")
    q.add_argument("--format", choices=["ndjson", "csv"], default="ndjson")
    q.set_defaults(func=cmd_export)

    serve.register_datarows(ds, common)


def cmd_import(args):
    report = open_catalog(args).import_datarows(args.paths, metadata_file=args.metadata)
    print_skipped(report.skipped)
    for where, message in report.warnings[:50]:
        print(f"warning {where}: {message}", file=sys.stderr)
    if args.json:
        print_json({"created": report.created, "updated": report.updated,
                    "skipped": [{"source": s, "reason": r} for s, r in report.skipped],
                    "warnings": [{"source": s, "message": m} for s, m in report.warnings],
                    "inferred_media_types": report.inferred, "generated_global_keys": report.generated_keys,
                    "vectors": report.vectors})
    else:
        print(f"Imported {report.imported} data rows ({report.created} new, {report.updated} updated, "
              f"{len(report.skipped)} skipped)")
        if report.inferred:
            kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(report.inferred.items()))
            print(f"media_type inferred for records without one: {kinds}")
        if report.generated_keys:
            print(f"global_key generated for {report.generated_keys} text rows without one (text-<sha256 of the text>)")
        for name, n in report.vectors.items():
            print(f"Imported {n} inline vectors into {name}")
    return 1 if report.imported == 0 and report.skipped else 0


def cmd_list(args):
    rows = open_catalog(args).list_datarows(limit=args.limit, offset=args.offset)
    if args.json:
        print_json(rows)
        return 0
    for r in rows:
        data = r["row_data"].replace("\n", " ")
        if len(data) > 60:
            data = data[:57] + "..."
        print(f"{r['id']}  {r['media_type']:<5}  {r['global_key']:<30}  {data}")
    return 0


def cmd_export(args):
    open_catalog(args).export_datarows(sys.stdout, fmt=args.format)
    return 0
