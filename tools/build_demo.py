"""Build the demo catalog from sample_data/ (used by the Quickstart's demo command).

Steps: make the sample data if missing; import the digits (with metadata) and the texts; import the
10 % digit labels; import the raw-pixel custom embedding; compute the offline off-the-shelf
embeddings (`color-texture` for the digits, `all-minilm-l6-v2` for the texts).

Usage: python tools/build_demo.py [--db demo/catalog.duckdb] [--force]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog import Catalog, CatalogError  # noqa: E402

sys.path.insert(0, str(ROOT / "tools"))
import make_sample_data  # noqa: E402


def step(msg):
    print(f"[demo] {msg}", flush=True)


def build(db: Path) -> Catalog:
    sample = ROOT / "sample_data"
    make_sample_data.main(["--out", str(sample)])
    db.parent.mkdir(parents=True, exist_ok=True)
    cat = Catalog(db)
    t0 = time.time()
    report = cat.import_datarows([sample / "digits", sample / "texts.ndjson"],
                                 metadata_file=sample / "digits_metadata.csv")
    step(f"imported {report.imported} data rows ({len(report.skipped)} skipped)")
    rep = cat.import_labels(sample / "digit_labels.csv")
    step(f"imported {rep.labels} digit labels on {rep.rows} rows")
    emb = cat.create_embedding("digits-pixels", 64)
    step(f"imported {emb.import_vectors_from_file(sample / 'digits_pixels.ndjson.gz')} raw-pixel vectors (custom embedding digits-pixels)")
    for model in ("color-texture", "all-minilm-l6-v2"):
        try:
            res = cat.compute_embeddings(model)
            step(f"computed {model}: {res.computed}")
        except CatalogError as exc:
            step(f"skipped {model}: {exc}")
    step(f"built in {time.time() - t0:.0f} s")
    return cat


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=ROOT / "demo" / "catalog.duckdb")
    ap.add_argument("--force", action="store_true", help="rebuild even if the catalog exists")
    args = ap.parse_args(argv)
    if args.db.exists() and not args.force:
        step(f"using the existing demo catalog {args.db} (--force rebuilds it)")
        return 0
    tmp = args.db.with_name(args.db.name + ".building")
    for p in (tmp, Path(str(tmp) + ".wal")):
        p.unlink(missing_ok=True)
    shutil.rmtree(Path(str(tmp) + ".cache"), ignore_errors=True)
    try:
        build(tmp)
    except CatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for suffix in ("", ".wal"):
        src = Path(str(tmp) + suffix)
        if src.exists():
            src.replace(Path(str(args.db) + suffix))
    media = Path(str(tmp) + ".media")
    if media.exists():
        target = Path(str(args.db) + ".media")
        shutil.rmtree(target, ignore_errors=True)
        media.replace(target)
    shutil.rmtree(Path(str(tmp) + ".cache"), ignore_errors=True)
    step(f"demo catalog ready at {args.db}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
