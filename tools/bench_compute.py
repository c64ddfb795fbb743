"""`embeddings compute` throughput against the raw model call, same images, same run (issue #18, target ≥ 0.9×).

On N generated images (default 130,000: one whole 122,880-row buffer and a partial one) in a fresh
catalog, the two sides run alternately (``--rounds``, load changes hit both alike):

* ``compute``: ``EmbeddingComputer.run("color-texture", all=True)`` — reading rows from DuckDB,
  decoding in the reader threads, the descriptor, buffering and writing whole row groups;
* ``raw``: ``describe(open_image(path))`` for the same files over a thread pool of the same size
  (no catalog, nothing written).

The real descriptor takes about 1.5 ms an image on one core; ``--stub`` swaps it on both sides for a
cheap stand-in, so the catalog's share (reading rows, buffering, writing) shows at full size.

It prints the best time of each, the median of the per-round ratios compute/raw, the writes (one
transaction each) and the row groups of the vectors table afterwards. ``--buffer-rows`` sets the
buffer (default: a row group); e.g. ``--buffer-rows 4096`` is about the old per-chunk writing.

    python tools/bench_compute.py --stub               # full size, cheap descriptor
    python tools/bench_compute.py --n 20000 --rounds 1 # the real descriptor
    python tools/bench_compute.py --n 3000 --buffer-rows 1024 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from bench_models import paired  # noqa: E402

from catalog import Catalog  # noqa: E402
from catalog.models import color_texture  # noqa: E402
from catalog.models.compute import EmbeddingComputer, buffer_rows  # noqa: E402
from catalog.models.encoders.color_texture import ColorTextureEncoder  # noqa: E402
from catalog.models.images import open_image  # noqa: E402


def stub_describe(img) -> np.ndarray:
    """A cheap stand-in for the descriptor (``--stub``): a unit 256-d vector from an 8×8 thumbnail,
    so that reading, buffering and writing weigh as much as they can against the model."""
    v = np.resize(np.asarray(img.resize((8, 8)), dtype=np.float32).ravel(), 256) + 1.0
    return v / np.linalg.norm(v)


def make_images(folder: Path, n: int, size: int = 32) -> list[Path]:
    """Small deterministic PNGs (noise over a colour): the descriptor's cost is per 64×64 image."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        base = rng.integers(0, 255, 3)
        arr = (base * 0.7 + rng.integers(0, 77, (size, size, 3))).clip(0, 255).astype(np.uint8)
        p = folder / f"{i // 10_000:02d}" / f"img{i:06d}.png"
        p.parent.mkdir(exist_ok=True)
        Image.fromarray(arr).save(p, compress_level=1)
        paths.append(p)
    return paths


class CountingImport:
    def __init__(self, importer):
        self.importer = importer
        self.writes: list[int] = []

    def import_array(self, emb, ids, vectors, allow_builtin=False):
        self.writes.append(self.importer.import_array(emb, ids, vectors, allow_builtin=allow_builtin))
        return self.writes[-1]


def row_groups(cat) -> tuple[int, int]:
    """(row groups, rows in the smallest) of the vectors table as stored."""
    with cat.store.connect() as con:
        con.execute("CHECKPOINT")
        rows = con.execute("SELECT row_group_id, sum(count) FROM pragma_storage_info('vectors') "
                           "WHERE column_path = '[0]' GROUP BY row_group_id").fetchall()
    return len(rows), min((r[1] for r in rows), default=0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=130_000, help="images")
    ap.add_argument("--buffer-rows", type=int, default=None, help="rows per written buffer (default a row group)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--stub", action="store_true", help="a cheap stand-in for the descriptor on both sides")
    args = ap.parse_args(argv)
    if args.stub:
        color_texture.describe = stub_describe  # the encoder hands the reader threads this function
    size_hint, threads = ColorTextureEncoder.size_hint, min(4, os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="bench-compute-") as tmp:
        tmp = Path(tmp)
        paths = make_images(tmp / "imgs", args.n)
        cat = Catalog(tmp / "c.duckdb")
        cat.import_datarows(tmp / "imgs")
        sink = CountingImport(cat.importer)
        comp = EmbeddingComputer(cat.store, cat.embeddings, sink, buffer_rows=args.buffer_rows)
        names = [str(p) for p in paths]
        with ThreadPoolExecutor(max_workers=threads) as pool:
            def raw():
                return np.stack(list(pool.map(lambda p: color_texture.describe(open_image(p, size_hint)), names)))

            raw()  # warm-up: file cache
            ours_s, raw_s, ratio = paired(lambda: comp.run("color-texture", all=True), raw, rounds=args.rounds)
        groups, smallest = row_groups(cat)
        writes = sink.writes[-len(sink.writes) // args.rounds:]
    buf = args.buffer_rows or buffer_rows(256)
    print(f"# {args.n} images, {'stub descriptor' if args.stub else 'color-texture'} (256 dims), {threads} reader threads, buffer {buf} rows, "
          f"{args.rounds} rounds, {os.cpu_count()} cores")
    print("| side | best s | images/s |")
    print("|---|---:|---:|")
    print(f"| compute (catalog, written) | {ours_s:.2f} | {args.n / ours_s:.0f} |")
    print(f"| raw describe(open_image) in {threads} threads | {raw_s:.2f} | {args.n / raw_s:.0f} |")
    print(f"compute/raw throughput ratio (median of rounds): {ratio:.3f} (target >= 0.9)")
    print(f"writes per compute (one transaction each): {writes}; vectors table: {groups} row groups, "
          f"smallest {smallest} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
