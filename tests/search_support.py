"""Helpers for the search tests: a catalog with text rows, metadata and a custom embedding."""

from __future__ import annotations

import json
import math

import numpy as np


def clustered(n, dims, clusters=20, noise=0.35, seed=0) -> np.ndarray:
    """Vectors around ``clusters`` random centres (so that high scores exist), not normalised."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dims))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    which = rng.integers(0, clusters, size=n)
    x = centres[which] + noise * rng.standard_normal((n, dims)) / math.sqrt(dims)
    return (x * rng.uniform(0.5, 3.0, size=(n, 1))).astype(np.float32)  # scale must not matter


def make_rows(cat, tmp_path, n, name="rows"):
    """``n`` text rows ``row-00000`` … with metadata; returns the global keys."""
    path = tmp_path / f"{name}.ndjson"
    colours = ["red", "green", "blue"]
    with open(path, "w") as fh:
        for i in range(n):
            meta = {"n": i, "colour": colours[i % 3], "camera": {"make": "Canon" if i % 2 else "Nikon", "iso": 100 * (i % 8)}}
            if i % 5 == 0:
                meta["flagged"] = True
            fh.write(json.dumps({"global_key": f"row-{i:05d}", "text": f"text {i}", "metadata": meta}) + "\n")
    cat.import_datarows([path])
    return [f"row-{i:05d}" for i in range(n)]


def tied_catalog(tmp, name, dims, seed, n=3000):
    """A catalog of ``n`` clustered rows in embedding ``name`` whose rows 1–3 tie with row 0 (the same
    direction, scaled): what the codes tests compare the float32 scan against. Returns ``(cat, keys)``."""
    from catalog import Catalog
    cat = Catalog(tmp / "catalog.duckdb")
    keys = make_rows(cat, tmp, n)
    x = clustered(n, dims, clusters=10, noise=0.5, seed=seed)
    x[1:4] = x[0] * 2.0  # tied scores
    cat.create_embedding(name, dims).import_vectors(keys, x)
    return cat, keys


def make_embedding(cat, tmp_path, n=600, dims=16, seed=0, name="custom", missing=0):
    """Rows, a custom embedding and vectors for all rows but the last ``missing``."""
    keys = make_rows(cat, tmp_path, n)
    emb = cat.create_embedding(name, dims)
    x = clustered(n, dims, seed=seed)
    emb.import_vectors(keys[: n - missing], x[: n - missing])
    return emb, keys, x


def np_scores(query, rows) -> np.ndarray:
    """An independent implementation of PRODUCT.md §3 in float64."""
    q = np.asarray(query, dtype=np.float64)
    q = q / np.linalg.norm(q)
    x = np.asarray(rows, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return 1.0 - np.abs(x - q).sum(axis=1) / (2.0 * math.sqrt(x.shape[1]))


def np_unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def expected(keys, scores, lo, hi, exclude=(), allowed=None, order="desc"):
    """``[(global_key, score)]`` in range, excluding ``exclude``, ordered by score then key position."""
    out = [(k, s) for k, s in zip(keys, scores) if lo <= s <= hi and k not in exclude
           and (allowed is None or k in allowed)]
    sign = -1 if order == "desc" else 1
    out.sort(key=lambda t: sign * t[1])
    return out
