"""Small helpers shared by the command modules (output and progress only; no catalog logic)."""

from __future__ import annotations

import json
import sys

from tqdm import tqdm

from ..catalog import Catalog
from ..errors import CatalogError
from ..filters import parse_filter
from ..search import BACKENDS, Page, SearchSpec


def open_catalog(args) -> Catalog:
    return Catalog(args.db)


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str))
    sys.stdout.write("\n")


def progress_bar(total=None, unit="B", desc=None):
    """A tqdm bar on stderr (hidden when stderr is not a terminal)."""
    return tqdm(total=total, unit=unit, unit_scale=True, desc=desc, file=sys.stderr, disable=None, leave=False)


class LazyBar:
    """A ``progress(done, total)`` callback that opens a :func:`progress_bar` on its first call (when the
    total is known) and moves it to ``done``; :meth:`close` ends it (and may be called more than once)."""

    def __init__(self, desc: str, unit: str = "row"):
        self.desc, self.unit, self.bar = desc, unit, None

    def __call__(self, done, total) -> None:
        if self.bar is None:
            self.bar = progress_bar(total=total, unit=self.unit, desc=self.desc)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def print_skipped(skipped, limit=50) -> None:
    for where, reason in skipped[:limit]:
        print(f"skipped {where}: {reason}", file=sys.stderr)
    if len(skipped) > limit:
        print(f"... and {len(skipped) - limit} more skipped", file=sys.stderr)


def print_hits(result, offset: int, where: str) -> None:
    """A search result as a table (score, global_key, id), then ``N rows <where>; showing a-b``."""
    grouped = any(h.group_size is not None for h in result.results)
    if result.results:
        width = max(10, max(len(h.global_key) for h in result.results))
        extra = f"  {'size':>6}  group" if grouped else ""
        print(f"{'score':>8}  {'global_key':<{width}}  {'id':<36}{extra}".rstrip())
        for h in result.results:
            score = "-" if h.score is None else f"{h.score:.4f}"
            extra = f"  {h.group_size:>6}  {'-' if h.group is None else json.dumps(h.group)}" if grouped else ""
            print(f"{score:>8}  {h.global_key:<{width}}  {h.id}{extra}")
    shown = f"{offset + 1}-{offset + len(result.results)}" if result.results else "none"
    bound = "" if result.complete else "at least "
    unit = "group" if grouped else "row"
    print(f"{bound}{result.total} {unit}{'s' if result.total != 1 else ''} {where}; showing {shown}")


def add_query_flags(p, image: bool = True) -> None:
    """The search-state flags shared by ``advtool search`` and ``advtool slices save``."""
    p.add_argument("--anchor", "-a", action="append", default=[], metavar="ID",
                   help="anchor data row id or global_key (repeat for several)")
    p.add_argument("--negative", action="append", default=[], metavar="ID",
                   help="negative anchor: move away from this row (repeatable)")
    p.add_argument("--text", metavar="T", help="a text prompt as anchor (embeddings with a text model)")
    if image:
        p.add_argument("--image", metavar="FILE", help="an image file as anchor (embeddings with an image model)")
    p.add_argument("--min", "--min-score", dest="min_score", type=float, default=None,
                   help="lowest score, inclusive (default 0.85 when --max is given; with neither, the range is "
                        "chosen automatically: 0.85-1 when a row scores there, else the best 100 rows)")
    p.add_argument("--max", "--max-score", dest="max_score", type=float, default=None,
                   help="highest score, inclusive (default 1.0)")
    p.add_argument("--aggregate", choices=["mean", "max"], default="mean",
                   help="several anchors: mean = similar to their average, max = similar to any (default mean)")
    p.add_argument("--where", metavar="JSON", help='metadata and label filter, e.g. \'{"split": "train", "labeled": false}\'')
    p.add_argument("--sort", choices=["score", "global_key", "created", "uniqueness"], default="score",
                   help="what the rows are ordered by: score (default), global_key, created (import time) or "
                        "uniqueness (most unique first; after `advtool uniqueness`); the rows in the range stay the "
                        "same, ties by row id")
    p.add_argument("--group-by", metavar="FIELD", default=None,
                   help="one result per value of this metadata field (e.g. product_id): the group's best-scoring row "
                        "with the group's size; paging and the total count groups; rows without it are groups of one")
    p.add_argument("--order", choices=["desc", "asc"], default=None,
                   help="direction of --sort (default: desc for score, asc for global_key, desc for created)")
    p.add_argument("--include-anchors", action="store_true", help="also list the anchors themselves")


def query_spec(args, embedding) -> SearchSpec:
    """The :class:`SearchSpec` that the flags of :func:`add_query_flags` describe."""
    return SearchSpec(embedding=embedding, anchors=args.anchor, negatives=args.negative, text=args.text,
                      image=getattr(args, "image", None), min_score=args.min_score, max_score=args.max_score,
                      aggregate=args.aggregate, where=parse_filter(args.where), order=args.order,
                      include_anchors=args.include_anchors, sort=args.sort, group_by=args.group_by)


def range_note(choice) -> str | None:
    """The stderr note for an automatic range (None for a given one)."""
    if choice is None or not choice.automatic:
        return None
    return (f"note: no score range given; using {choice.min_score:.2f}-{choice.max_score:.2f}. {choice.message}. "
            "Choose a range with --min/--max (e.g. --min 0.5).")


def print_distribution(dist, out=None) -> None:
    """A score histogram as text: one line per non-empty bin (range, count, bar), highest first."""
    out = out or sys.stdout
    if dist.total == 0:
        print("score distribution: no rows", file=out)
        return
    print(f"score distribution: {dist.total} row{'s' if dist.total != 1 else ''}, best {dist.best:.4f}", file=out)
    peak = max(dist.counts)
    for i in range(dist.bins - 1, -1, -1):
        c = dist.counts[i]
        if c:
            bar = "#" * max(1, round(40 * c / peak))
            print(f"{dist.edges[i]:.2f}-{dist.edges[i + 1]:.2f} {c:>8}  {bar}", file=out)


def page_of(args) -> Page:
    """The page that ``--limit`` and ``--offset`` ask for."""
    if args.limit < 0 or args.offset < 0:
        raise CatalogError("`limit` and `offset` must not be negative", field="limit")
    return Page(args.limit, args.offset)


def add_backend_flag(p) -> None:
    p.add_argument("--backend", choices=["auto", *BACKENDS], default="auto",
                   help="exact scan, approximate index, qdrant (the vector engine of `advtool engine`, exact mode), "
                        "qdrant-hnsw (its HNSW index: approximate, measured recall), or auto (the engine when it "
                        "holds the embedding's current version, else by size; default)")


def print_notes(result) -> None:
    """A search result's warnings, and a note when an approximate answer may miss rows (stderr)."""
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not result.complete:
        measured = "" if result.recall is None else f" (measured recall {result.recall:.4f})"
        print(f"note: the {result.backend} backend is approximate{measured}: rows in the range may be missing "
              "and the total is a lower bound", file=sys.stderr)
