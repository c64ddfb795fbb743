"""``advtool map compute|export`` (issue #17): the library's map, its errors in command-line words."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from test_maps import fill, planted


@pytest.fixture
def emb(cat, tmp_path):
    return fill(cat, tmp_path, planted(n=120)[0], name="points")[0]


def test_compute_then_export(cat, cli, emb, tmp_path):
    r = cli("map", "compute", "points")
    assert r.returncode == 0, r.stderr
    assert "Computed the pca map of points: 120 points" in r.stdout and "of the variance" in r.stdout
    made = cat.maps.get("points")
    r = cli("map", "export", emb.id)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["id"] for x in rows] == list(made.ids) and "exported 120 points" in r.stderr
    np.testing.assert_allclose([[x["x"], x["y"]] for x in rows], made.xy, atol=1e-6)
    out = tmp_path / "m.csv"
    r = cli("map", "export", "points", "--format", "csv", "--output", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(table) == 120 and list(table[0]) == ["id", "global_key", "x", "y"]


def test_errors_are_worded_for_the_command_line(cat, cli, emb):
    r = cli("map", "export", "points")
    assert r.returncode == 2 and "has no map yet; run `advtool map compute EMBEDDING`" in r.stderr
    assert r.stdout == ""
    r = cli("map", "compute", "nope")
    assert r.returncode == 2 and "nope" in r.stderr
    r = cli("map", "compute", "points", "--method", "tsne")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    assert cli("map", "compute", "points").returncode == 0
    emb.import_vectors([f"row-{i:05d}" for i in range(3)], planted(n=3, seed=9)[0])
    r = cli("map", "export", "points")
    assert r.returncode == 2 and "made from older vectors" in r.stderr and "advtool map compute EMBEDDING` again" in r.stderr


def test_umap_limits_name_the_flag(cat, cli, tmp_path):
    fill(cat, tmp_path, planted(n=5)[0], name="few")
    r = cli("map", "compute", "few", "--method", "umap")
    assert r.returncode == 2 and "use the --method pca" in r.stderr
    assert not (cat.store.cache_dir / "maps").exists() or not any((cat.store.cache_dir / "maps").glob("*umap*"))
