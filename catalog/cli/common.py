"""Small helpers shared by the command modules (output and progress only; no catalog logic)."""

from __future__ import annotations

import json
import sys

from ..catalog import Catalog


def open_catalog(args) -> Catalog:
    return Catalog(args.db)


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str))
    sys.stdout.write("\n")


def progress_bar(total=None, unit="B", desc=None):
    """A tqdm bar on stderr (hidden when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, unit_scale=True, desc=desc, file=sys.stderr, disable=None, leave=False)


def print_skipped(skipped, limit=50) -> None:
    for where, reason in skipped[:limit]:
        print(f"skipped {where}: {reason}", file=sys.stderr)
    if len(skipped) > limit:
        print(f"... and {len(skipped) - limit} more skipped", file=sys.stderr)


def print_hits(result, offset: int, where: str) -> None:
    """A search result as a table (score, global_key, id), then ``N rows <where>; showing a-b``."""
    if result.results:
        width = max(10, max(len(h.global_key) for h in result.results))
        print(f"{'score':>8}  {'global_key':<{width}}  id")
        for h in result.results:
            score = "-" if h.score is None else f"{h.score:.4f}"
            print(f"{score:>8}  {h.global_key:<{width}}  {h.id}")
    shown = f"{offset + 1}-{offset + len(result.results)}" if result.results else "none"
    bound = "at least " if not getattr(result, "complete", True) else ""
    print(f"{bound}{result.total} row{'s' if result.total != 1 else ''} {where}; showing {shown}")
