"""advtool embeddings and datarows (``catalog.cli.main``; the ``cli_process`` ones through the real
entry point), with Labelbox advtool's outputs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from catalog import NotFound

CLIP = "00000000-0000-0000-0000-000000000000"
MPNET = "00000000-0000-0000-0000-000000000001"


def test_embeddings_list_matches_advtool_format(cli):
    r = cli("embeddings", "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert f"{CLIP:>36} - {'clip-vit-b-32':<40} - dims: {512:<5}" in lines
    assert f"{MPNET:>36} - {'all-mpnet-base-v2':<40} - dims: {768:<5}" in lines


def test_create_import_count_delete_roundtrip(cli, tmp_path, text_records):
    assert cli("datarows", "import", text_records).returncode == 0
    r = cli("embeddings", "create", "my-emb", "16")
    assert r.returncode == 0, r.stderr
    m = re.fullmatch(r"Embedding type created id=([0-9a-f-]{36})\n", r.stdout)
    assert m, r.stdout
    eid = m.group(1)
    rng = np.random.default_rng(0)
    path = tmp_path / "v.ndjson"
    path.write_text("".join(json.dumps({"id": f"sports-{i}", "vector": rng.standard_normal(16).tolist()}) + "\n"
                            for i in range(4)))
    r = cli("embeddings", "import", eid, path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("Imported 4 vectors")
    for ref in (eid, "my-emb"):
        r = cli("embeddings", "count", ref)
        assert r.stdout == "4\n"
    r = cli("embeddings", "list", "--json")
    entry = next(e for e in json.loads(r.stdout) if e["id"] == eid)
    assert entry == {"id": eid, "name": "my-emb", "dims": 16, "custom": True, "model": None,
                     "media_type": None, "count": 4}
    r = cli("embeddings", "delete", "my-emb")
    assert r.stdout == f"Embedding ID {eid} deleted\n"
    assert eid not in cli("embeddings", "list").stdout


@pytest.mark.cli_process  # embeddings through the console-script exit path (status 2)
def test_bad_import_prints_line_errors_exits_nonzero_and_writes_nothing(cli, tmp_path, text_records):
    cli("datarows", "import", text_records)
    cli("embeddings", "create", "e8", "8")
    good = tmp_path / "good.ndjson"
    good.write_text(json.dumps({"id": "sports-0", "vector": [1] * 8}) + "\n")
    assert cli("embeddings", "import", "e8", good).returncode == 0
    bad = tmp_path / "bad.ndjson"
    bad.write_text("\n".join([json.dumps({"id": "sports-1", "vector": [1] * 8}), "{x",
                              json.dumps({"id": "ghost", "vector": [1] * 8})]) + "\n")
    r = cli("embeddings", "import", "e8", bad)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "2 invalid lines; nothing was imported" in r.stderr
    assert "line 2: malformed JSON" in r.stderr
    assert "line 3: id 'ghost' matches no data row" in r.stderr
    assert cli("embeddings", "count", "e8").stdout == "1\n"


def test_unknown_embedding_and_bad_create_are_one_line_errors(cli):
    for args, message in [
        (("embeddings", "count", "nope"), "no embedding with id or name 'nope'"),
        (("embeddings", "delete", "11111111-1111-1111-1111-111111111111"), "no embedding with id or name"),
        (("embeddings", "create", "x", "7"), "dims must be from 8 to 2048, not 7"),
        (("embeddings", "create", "x", "4096"), "dims must be from 8 to 2048, not 4096"),
        (("embeddings", "create", "x", "ten"), "dims must be a whole number"),
        (("embeddings", "delete", CLIP), "off-the-shelf embedding and cannot be deleted"),
    ]:
        r = cli(*args)
        assert r.returncode != 0
        assert message in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert cli("embeddings", "create", "dup", "8").returncode == 0
    r = cli("embeddings", "create", "DUP", "8")
    assert r.returncode != 0 and "already exists" in r.stderr
    assert sum("dup" in line.lower() for line in cli("embeddings", "list").stdout.splitlines()) == 1


@pytest.mark.cli_process  # datarows through the console-script exit path (status 1)
def test_datarows_cli(cli, image_folder, text_records, tmp_path):
    (image_folder / "broken.png").write_bytes(b"nope")
    r = cli("datarows", "import", image_folder, text_records)
    assert r.returncode == 0, r.stderr
    assert "Imported 14 data rows (14 new, 0 updated, 1 skipped)" in r.stdout
    assert "broken.png" in r.stderr
    r = cli("datarows", "list", "--limit", "3", "--json")
    rows = json.loads(r.stdout)
    assert [x["global_key"] for x in rows] == ["blue/b0.png", "blue/b1.png", "blue/b2.png"]
    r = cli("datarows", "export", "--format", "ndjson")
    assert len(r.stdout.splitlines()) == 14
    r = cli("datarows", "import", tmp_path / "missing-folder")
    assert r.returncode == 1 and "no such file or folder" in r.stderr


def test_db_option_and_env_variable(cli, tmp_path, text_records):
    other = tmp_path / "other.duckdb"
    cli("datarows", "import", text_records, db=other)
    r = cli("datarows", "list", "--json", db=tmp_path / "empty.duckdb", env={"CATALOG_DB": str(other)})
    assert json.loads(r.stdout) == []
    import subprocess
    import sys
    p = subprocess.run([sys.executable, "-c", "import sys; from catalog.cli import main; sys.exit(main())",
                        "datarows", "list", "--json"], capture_output=True, text=True,
                       env={**__import__("os").environ, "CATALOG_DB": str(other)}, cwd=tmp_path)
    assert len(json.loads(p.stdout)) == 8


def test_embedding_names_that_look_like_ids_and_bad_ids_are_refused(cli, cat):
    r = cli("embeddings", "create", "11111111-1111-1111-1111-111111111111", "8")
    assert r.returncode == 2 and "looks like an id" in r.stderr
    assert "11111111-1111-1111-1111-111111111111" not in cli("embeddings", "list").stdout
    with pytest.raises(NotFound, match="is not a UUID"):
        cat.get_embedding_by_id("clip-vit-b-32")
