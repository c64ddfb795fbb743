"""Test data for filters, slices, batches and bulk metadata: a small catalog with metadata and labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

RECORDS = {
    "a": {"split": "train", "n": 1, "score": 0.5, "tags": ["red", "blue"], "cam": {"make": "Canon", "iso": 400},
          "flag": True, "date": "2026-01-05"},
    "b": {"split": "val", "n": "1", "tags": "red", "cam": {"make": "Nikon", "iso": 1600}, "flag": False,
          "note": None, "date": "2026-03-01"},
    "c": {"split": "train", "n": 10, "tags": [], "cam": {"make": "Canon"}},
    "d": {},
    "e": {"split": "test", "n": 2.5, "tags": [1, 2], "name": "Zoë", "ключ": "значение", "my key": "spaced"},
}

# (row key, label, source, score, reviewed)
LABELS = [
    ("a", "cat", "manual", None, True),
    ("b", "dog", "similarity", 0.7, False),
    ("c", "cat", "similarity", 0.4, False),
    ("c", "bird", "manual", None, True),
]


def write_records(path: Path, records: dict, prefix: str = "") -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for key, meta in records.items():
            fh.write(json.dumps({"global_key": prefix + key, "text": f"text of {key}", "metadata": meta},
                                ensure_ascii=False) + "\n")
    return path


def add_labels(cat, labels=LABELS) -> None:
    """Labels written straight into the labels table (independent of the labels API)."""
    ids = {r["global_key"]: r["id"] for r in cat.get_datarows(sorted({k for k, *_ in labels}))}
    with cat.store.transaction() as con:
        for key, label, source, score, reviewed in labels:
            con.execute("INSERT INTO labels (row_id, label, source, score, reviewed) VALUES (?, ?, ?, ?, ?)",
                        [ids[key], label, source, score, reviewed])


def build_catalog(cat, tmp_path: Path, labels: bool = True):
    """Five text rows a..e with the metadata above, and their labels."""
    cat.import_datarows([write_records(tmp_path / "records.ndjson", RECORDS)])
    if labels:
        add_labels(cat)
    return cat


def keys(result) -> list[str]:
    return [h.global_key for h in result.results]


def snapshot(cat) -> dict:
    """Every user table's content, to check that nothing was written."""
    tables = ["datarows", "embeddings", "vectors", "labels", "slices", "batches", "batch_rows"]
    out = {}
    with cat.store.connect() as con:
        for t in tables:
            out[t] = sorted(map(repr, con.execute(f"SELECT * FROM {t}").fetchall()))
    return out


def vectors_catalog(cat, tmp_path: Path, n: int = 40, dims: int = 8, seed: int = 0, name: str = "emb8"):
    """``n`` text rows k000.. with a custom embedding ``name`` holding clustered vectors."""
    rng = np.random.default_rng(seed)
    records = {f"k{i:03d}": {"group": "g1" if i % 2 == 0 else "g2", "i": i} for i in range(n)}
    cat.import_datarows([write_records(tmp_path / "vrecords.ndjson", records)])
    emb = cat.create_embedding(name, dims)
    base = rng.standard_normal(dims)
    vecs = base + 0.6 * rng.standard_normal((n, dims))
    path = tmp_path / "vectors.ndjson"
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"k{i:03d}", "vector": vecs[i].tolist()}) + "\n")
    emb.import_vectors_from_file(path)
    return emb, vecs
