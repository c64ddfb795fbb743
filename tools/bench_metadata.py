"""Benchmark: bulk metadata set/unset on N rows (default 1,000,000) beside two baselines, in one run.

    .venv/bin/python tools/bench_metadata.py [--rows 1000000] [--repeat 3] [--sample 2000]

Our operations go through ``Catalog.set_metadata`` / ``unset_metadata`` (target rows into a temporary
table, one UPDATE with json_set/json_remove, a consistency check, one transaction). Baselines:

* ``constant UPDATE``: a plain DuckDB ``UPDATE datarows SET metadata = '{...}'`` of one constant over
  every row in a transaction: the floor for rewriting that column.
* ``hand-written json_set UPDATE``: the same two-key change as one plain SQL statement over every row,
  without a target table or a check: what our bookkeeping costs on top.
* ``per-row loop``: read each row's metadata, change it in Python, write it back with one UPDATE per
  row; timed on ``--sample`` rows and extrapolated to N.

Prints seconds (median of ``--repeat``) and ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catalog import Catalog  # noqa: E402
from bench_common import timed  # noqa: E402


def build(path: Path, n: int) -> Catalog:
    cat = Catalog(path)
    with cat.store.transaction() as con:
        con.execute(
            """INSERT INTO datarows (id, global_key, media_type, row_data, metadata)
               SELECT uuid(), 'row-' || lpad(CAST(i AS VARCHAR), 8, '0'), 'image', '/data/img' || i || '.jpg',
                      json_object('split', CASE WHEN i % 3 = 0 THEN 'train' ELSE 'val' END,
                                  'width', 256 + i % 1024, 'camera', json_object('make', 'Canon', 'iso', 100 * (i % 32)),
                                  'tags', json_array('outdoor', 'batch-' || (i % 50)))
               FROM range(?) t(i)""", [n])
    return cat


def constant_update(cat: Catalog) -> int:
    with cat.store.transaction() as con:
        return con.execute("""UPDATE datarows SET metadata = '{"split": "train", "reviewed_by": "ann"}'""").fetchall()[0][0]


def plain_json_set(cat: Catalog) -> int:
    """What the same change costs written by hand: one UPDATE with json_set over every row, no target table."""
    with cat.store.transaction() as con:
        return con.execute(
            """UPDATE datarows SET metadata = json_set(json_set(metadata, '$.reviewed_by', '"bob"'),
                                                        '$.quality.score', '0.8'), updated_at = now()""").fetchall()[0][0]


def per_row_loop(cat: Catalog, sample: int) -> int:
    with cat.store.transaction() as con:
        rows = con.execute("SELECT id, CAST(metadata AS VARCHAR) FROM datarows LIMIT ?", [sample]).fetchall()
        for rid, meta in rows:
            m = json.loads(meta)
            m["reviewed_by"] = "ann"
            m.setdefault("quality", {})["score"] = 0.9
            con.execute("UPDATE datarows SET metadata = CAST(? AS JSON), updated_at = now() WHERE id = ?",
                        [json.dumps(m), rid])
    return len(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sample", type=int, default=2_000, help="rows timed for the per-row baseline")
    args = ap.parse_args(argv)
    n = args.rows

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cat = build(Path(tmp) / "bench.duckdb", n)
        print(f"built a catalog of {n:,} rows in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        cat.save_slice("train split", where={"split": "train"})
        n_train = cat.filter_datarows({"split": "train"}, limit=0).total

        cases = []
        t, k = timed(lambda: cat.set_metadata({"reviewed_by": "ann", "quality.score": 0.9}, where={}), args.repeat)
        cases.append(("set 2 keys (one nested), every row (--where '{}')", k, t))
        hand, _ = timed(lambda: plain_json_set(cat), args.repeat)
        t, k = timed(lambda: cat.set_metadata({"review.status": "queued"}, where={"split": "train"}), args.repeat)
        cases.append(("set 1 key, rows matching a filter", k, t))
        t, k = timed(lambda: cat.set_metadata({"priority": 2}, slice="train split"), args.repeat)
        cases.append(("set 1 key, rows of a filter slice", k, t))
        t, k = timed(lambda: cat.unset_metadata(["reviewed_by", "quality.score"], where={}), args.repeat)
        cases.append(("unset 2 keys, every row", k, t))
        base, _ = timed(lambda: constant_update(cat), args.repeat)  # last: it overwrites every row's metadata
        cases.insert(0, ("baseline: constant UPDATE of every row", n, base))
        cases.insert(1, ("baseline: hand-written json_set UPDATE, 2 keys, every row", n, hand))
        sample = min(args.sample, n)
        t_loop, k = timed(lambda: per_row_loop(cat, sample), 1)
        loop_full = t_loop * n / k
        assert n_train > 0

    print(f"\nBulk metadata on {n:,} rows (median of {args.repeat})\n")
    print("| operation | rows | seconds | ÷ constant UPDATE | ÷ hand-written json_set | × faster than per-row loop |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, rows, secs in cases:
        loop_rows = loop_full * rows / n
        print(f"| {name} | {rows:,} | {secs:.2f} | {secs / base:.1f}× | {secs / hand:.2f}× | {loop_rows / secs:,.0f}× |")
    print(f"| baseline: per-row Python loop ({k:,} rows timed, extrapolated) | {n:,} | {loop_full:.0f} | "
          f"{loop_full / base:,.0f}× | {loop_full / hand:,.0f}× | 1× |")
    ok = all(secs < 60 for name, _, secs in cases if not name.startswith("baseline"))
    print(f"\nevery operation on {n:,} rows under 60 s: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
