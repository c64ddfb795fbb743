"""``advtool duplicates`` and ``advtool score``: duplicate groups, leaks between splits, two rows' score."""

from __future__ import annotations

from ..errors import CatalogError
from ..filters import parse_filter
from ..quality import APPROXIMATE_ABOVE, DEFAULT_MIN_SCORE, DEFAULT_TAG, KEEPS
from .common import open_catalog, print_json, progress_bar


def register(sub, common):
    p = sub.add_parser(
        "duplicates", parents=[common], help="groups of near-duplicate (or identical) rows, and leaks between splits",
        description="Rows whose score is at least --min-score are linked; each group (connected rows) has a "
                    "representative and its members' scores to it. Exact all-pairs search by default; approximate "
                    f"(IVF lists, pair recall measured and printed) with --approximate or above {APPROXIMATE_ABOVE:,} "
                    "rows. --exact-only groups rows with identical content (image bytes, normalised text) instead.")
    p.add_argument("embedding", nargs="?", metavar="EMBEDDING", help="embedding id or name (not with --exact-only)")
    p.add_argument("--min-score", "--min", dest="min_score", type=float, default=DEFAULT_MIN_SCORE,
                   help=f"lowest score that links two rows, inclusive (default {DEFAULT_MIN_SCORE})")
    p.add_argument("--where", metavar="JSON", help="only rows matching this metadata and label filter")
    p.add_argument("--exact-only", action="store_true", help="identical content only (stored hashes), no embedding")
    p.add_argument("--rehash", action="store_true",
                   help="with --exact-only: look again at rows whose files were missing or unreadable")
    p.add_argument("--split-field", metavar="FIELD", help="report pairs whose rows differ in this metadata field")
    p.add_argument("--keep", choices=KEEPS, default="first",
                   help="the row kept per group: first imported (default) or the most central")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--approximate", dest="approximate", action="store_const", const=True, default=None,
                      help="search the IVF lists (faster on large embeddings; prints the measured pair recall)")
    mode.add_argument("--exact", dest="approximate", action="store_const", const=False,
                      help=f"exact all-pairs search even above {APPROXIMATE_ABOVE:,} rows")
    p.add_argument("--save", metavar="NAME", help="tag the grouped rows and save slices NAME and NAME-deduplicated")
    p.add_argument("--tag", default=DEFAULT_TAG, help=f"metadata key the groups are written under (default {DEFAULT_TAG})")
    p.add_argument("--replace", action="store_true", help="replace slices of those names if they exist")
    p.add_argument("--limit", type=int, default=20, help="groups (and leaks) printed (default 20; --json prints all)")
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    p.set_defaults(func=cmd_duplicates)

    p = sub.add_parser("score", parents=[common], help="the score between two rows, or a row and a text or image",
                       description="Give two of: row ids or global_keys (A, B), --text, --image. The number is the "
                                   "one a search from the first shows for the second.")
    p.add_argument("a", metavar="A", help="data row id or global_key")
    p.add_argument("b", nargs="?", metavar="B", help="data row id or global_key")
    p.add_argument("--text", metavar="T", help="a text prompt, encoded by the embedding's model")
    p.add_argument("--image", metavar="FILE", help="an image file, encoded by the embedding's model")
    p.add_argument("--embedding", "-e", metavar="E",
                   help="embedding id or name (default: the one embedding holding both rows)")
    p.add_argument("--json", action="store_true", help='print {"score": S, "embedding": NAME}')
    p.set_defaults(func=cmd_score)


def cmd_duplicates(args):
    if args.exact_only == (args.embedding is not None):
        raise CatalogError("give an EMBEDDING for near duplicates, or --exact-only (without one) for identical content",
                           field="embedding")
    if args.limit < 0:
        raise CatalogError("--limit must not be negative", field="limit")
    if args.rehash and not args.exact_only:
        raise CatalogError("--rehash goes with --exact-only", field="embedding")
    cat = open_catalog(args)
    where = parse_filter(args.where)
    if args.rehash:
        cat.quality.update_hashes(retry=True)
    with progress_bar(unit="rows", desc="duplicates") as bar:
        def progress(done, total):
            bar.total = total
            bar.n = done
            bar.refresh()
        report = cat.duplicates(args.embedding, args.min_score, where, args.split_field, args.keep,
                                args.exact_only, args.approximate, progress)
    saved = cat.quality.save(report, args.save, args.tag, where, args.replace) if args.save else None
    if args.json:
        data = report.to_dict()
        if saved:
            data["slices"] = [s.name for s in saved]
        print_json(data)
        return 0
    _print_report(report, args.limit)
    if saved:
        print(f"saved slices {saved[0].name!r} (grouped rows) and {saved[1].name!r} (one row per group, "
              f"keep {report.keep}); rows tagged under metadata {args.tag!r}")
    return 0


def _print_report(report, limit: int) -> None:
    what = "identical content" if report.method == "content" else f"score ≥ {report.min_score} in {report.embedding}"
    print(f"{len(report.groups)} group{'s' if len(report.groups) != 1 else ''} of {what} "
          f"({report.method}): {report.duplicate_rows} duplicate rows, {report.pairs} pairs, among {report.rows} rows "
          f"({report.seconds:.1f} s)")
    if report.without:
        why = "no content hash (file missing, URL)" if report.method == "content" else "no vector"
        print(f"{report.without} matching rows left out: {why}")
    if report.pair_recall is not None:
        print(f"pair recall {report.pair_recall:.4f} against the exact search on {report.recall_sample} sample rows")
    elif report.method == "approximate":
        print(f"pair recall not measured: the {report.recall_sample} sample rows have no pair")
    for n, g in enumerate(report.groups[:limit], start=1):
        print(f"group {n} ({g.size} rows), representative {g.representative.global_key}")
        for m in g.members[1:]:
            print(f"  {m.score:.4f}  {m.global_key}")
    if len(report.groups) > limit:
        print(f"... and {len(report.groups) - limit} more groups (--limit, --json)")
    if report.split_field is not None:
        print(f"{report.leak_pairs} leak{'s' if report.leak_pairs != 1 else ''}: pairs whose "
              f"{report.split_field!r} differs")
        for x in report.leaks[:limit]:
            print(f"  {x.score:.4f}  {x.a.global_key} ({x.a_value})  ~  {x.b.global_key} ({x.b_value})")


def cmd_score(args):
    sides = [s for s in (args.a, args.b) if s is not None]
    if args.text is not None:
        sides.append({"text": args.text})
    if args.image is not None:
        sides.append({"image": args.image})
    if len(sides) != 2:
        raise CatalogError("give exactly two things to compare: A and B, or A and --text or --image", field="b")
    cat = open_catalog(args)
    result = cat.comparer.compare(sides[0], sides[1], args.embedding)
    if args.json:
        print_json(result.to_dict())
    else:
        print(f"{result.score:.6f}  ({result.embedding})")
    return 0
