"""Code written for the Labelbox SDK and advtool runs unchanged (issue #14, items 7 and 9).

The calls below are the SDK's own (``libs/labelbox/src/labelbox/schema/embedding.py``, its
integration test ``test_embedding.py``) and advtool's progress callback (``advlib/util.py``:
``uploaded += result["importedFileSizeOfBytes"]``), run against a real catalog file.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import catalog
from catalog import CatalogError, NotFound, ValidationError
from catalog.models import get_spec

CLIP = "00000000-0000-0000-0000-000000000000"
MPNET = "00000000-0000-0000-0000-000000000001"
D = 8
N = 2_500


class UploadProgress:
    """advtool's own progress callback (``advlib/util.py``), as it is."""

    def __init__(self, file_path):
        import os
        self.total_bytes = os.path.getsize(file_path)
        self.uploaded_bytes = 0
        self.shown = []

    def callback(self, result):
        self.uploaded_bytes += result["importedFileSizeOfBytes"]
        self.shown.append(self.get_progress())

    def get_progress(self):
        if not self.uploaded_bytes:
            return 0
        return round(self.uploaded_bytes / self.total_bytes, 2) * 100


@pytest.fixture
def rows(cat, tmp_path):
    path = tmp_path / "rows.ndjson"
    path.write_text("".join(json.dumps({"global_key": f"row-{i}", "text": f"text {i}"}) + "\n" for i in range(N)))
    cat.import_datarows([path])
    return [f"row-{i}" for i in range(N)]


@pytest.fixture
def vectors():
    return np.random.default_rng(3).standard_normal((N, D)).astype(np.float32)


def vector_file(path, keys, vectors):
    path.write_text("".join(json.dumps({"id": k, "vector": v.tolist()}) + "\n" for k, v in zip(keys, vectors)))
    return path


def stored(cat, emb) -> dict[str, np.ndarray]:
    with cat.store.connect() as con:
        got = con.execute("SELECT d.global_key, v.vector FROM vectors v JOIN datarows d ON d.id = v.row_id "
                          "WHERE v.embedding_id = ?", [emb.id]).fetchall()
    return {k: np.asarray(v, dtype=np.float32) for k, v in got}


def test_the_sdk_callback_gets_one_dict_per_1000_vectors_and_advtool_progress_reaches_100(cat, rows, vectors,
                                                                                           tmp_path):
    emb = cat.create_embedding(name="sdk-8", dims=D)  # the SDK's keywords
    path = vector_file(tmp_path / "v.ndjson", rows, vectors)
    progress = UploadProgress(path)
    results = []

    def callback(result):  # the SDK's test passes its callback positionally
        results.append(dict(result))
        progress.callback(result)

    assert emb.import_vectors_from_file(str(path), callback) == N
    assert [r["vectors"] for r in results] == [1000, 1000, 500]
    assert set(results[0]) == {"importedFileSizeOfBytes", "vectors"}
    assert sum(r["importedFileSizeOfBytes"] for r in results) == path.stat().st_size
    assert progress.get_progress() == 100 and progress.shown[-1] == 100
    assert progress.shown == sorted(progress.shown)
    assert emb.get_imported_vector_count() == N
    got = stored(cat, emb)
    assert all(np.array_equal(got[k], v) for k, v in zip(rows, vectors))


def test_a_refused_file_never_calls_the_callback_but_progress_sees_its_bytes(cat, rows, vectors, tmp_path):
    emb = cat.create_embedding("sdk-8", D)
    emb.import_vectors(rows[:1], vectors[:1])
    path = vector_file(tmp_path / "v.ndjson", rows, vectors)
    with open(path, "a") as fh:
        fh.write(json.dumps({"id": "no-such-row", "vector": [1.0] * D}) + "\n")
    results, read = [], []
    with pytest.raises(ValidationError, match="1 invalid line; nothing was imported") as err:
        emb.import_vectors_from_file(path, callback=results.append, progress=read.append)
    assert err.value.errors == [(N + 1, "id 'no-such-row' matches no data row (not an id, global_key, Labelbox id or external_id)")]
    assert results == []
    assert read and read[-1] is None and max(p for p in read if p is not None) == path.stat().st_size
    assert list(stored(cat, emb)) == [rows[0]]


def test_a_callback_that_raises_stops_the_import_and_nothing_is_written(cat, rows, vectors, tmp_path):
    emb = cat.create_embedding("sdk-8", D)
    emb.import_vectors(rows[:1], np.full((1, D), 7.0))
    path = vector_file(tmp_path / "v.ndjson", rows, vectors)
    calls = []

    def callback(result):
        calls.append(result)
        if len(calls) == 2:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        emb.import_vectors_from_file(path, callback)
    assert len(calls) == 2
    assert {k: v.tolist() for k, v in stored(cat, emb).items()} == {rows[0]: [7.0] * D}
    with pytest.raises(CatalogError, match="`callback` must be a function, not str") as err:
        emb.import_vectors_from_file(path, "not-a-function")
    assert err.value.field == "callback"
    assert emb.get_imported_vector_count() == 1


def test_sdk_method_names_and_keywords(cat, rows, vectors, tmp_path):
    emb = cat.create_embedding(name="sdk-8", dims=D)
    assert (emb.id, emb.name, emb.custom, emb.dims) == (emb.id, "sdk-8", True, D)  # the SDK's attributes
    assert cat.get_embedding_by_id(id=emb.id).name == "sdk-8"
    assert cat.get_embedding_by_id(emb.id).id == emb.id
    assert cat.embeddings.get_embedding_by_id(id=emb.id).id == emb.id
    assert cat.get_embedding_by_name(name="sdk-8").id == emb.id
    assert [e.name for e in cat.get_embeddings()][:2] == ["clip-vit-b-32", "all-mpnet-base-v2"]
    assert emb.get_imported_vector_count() == 0
    emb.import_vectors_from_file(path=vector_file(tmp_path / "v.ndjson", rows[:5], vectors[:5]))
    assert emb.get_imported_vector_count() == 5
    assert emb.delete() is None
    with pytest.raises(NotFound, match=f"no embedding with id {emb.id}"):
        cat.get_embedding_by_id(id=emb.id)


def test_the_sdk_exception_names_are_our_errors(cat):
    # names as in the SDK's lbox/exceptions.py (labelbox.exceptions in older releases)
    assert catalog.LabelboxError is CatalogError
    assert catalog.ResourceNotFoundError is NotFound
    assert catalog.ResourceConflict is catalog.AlreadyExists
    assert {"LabelboxError", "ResourceNotFoundError", "ResourceConflict"} <= set(catalog.__all__)
    with pytest.raises(catalog.ResourceNotFoundError, match="no embedding named 'does-not-exist'"):
        cat.get_embedding_by_name("does-not-exist")  # the SDK's test_get_embedding_by_name_not_found
    cat.create_embedding("taken", D)
    with pytest.raises(catalog.ResourceConflict, match="an embedding named 'taken' already exists"):
        cat.create_embedding("taken", D)
    with pytest.raises(catalog.LabelboxError):
        cat.create_embedding("too-small", 2)
    assert len(cat.get_embeddings()) == 5  # the four off-the-shelf ones and "taken"
    with pytest.raises(catalog.ResourceNotFoundError) as err:
        cat.get_embedding("ghost")
    assert err.value.to_dict()["code"] == "NotFound"  # clients see our name


@pytest.mark.parametrize("name, eid", [
    ("Image Embedding (CLIP ViT-B/32)", CLIP),
    ("image embedding  (clip vit-b/32)", CLIP),
    ("Image Embedding V2 (CLIP ViT-B/32)", CLIP),
    ("Text embedding (All-MPNet-base-v2)", MPNET),
])
def test_labelbox_display_names_of_the_off_the_shelf_embeddings(cat, name, eid):
    assert cat.get_embedding_by_name(name).id == eid
    assert cat.get_embedding(name).id == eid
    assert cat.get_embedding(f"  {name} ").id == eid
    assert get_spec(name).embedding_id == eid  # `embeddings compute` takes it too
    assert cat.get_embedding(name).name in ("clip-vit-b-32", "all-mpnet-base-v2")  # our names stay


def test_a_custom_embedding_cannot_take_a_labelbox_display_name(cat):
    with pytest.raises(catalog.AlreadyExists, match="is Labelbox's name of an off-the-shelf embedding") as err:
        cat.create_embedding("Text embedding (All-MPNet-base-v2)", 768)
    assert err.value.field == "name"
    assert len(cat.get_embeddings()) == 4


def test_display_names_on_the_command_line_and_list_unchanged(cli, cat, rows, vectors, tmp_path):
    r = cli("embeddings", "count", "Image Embedding (CLIP ViT-B/32)")
    assert (r.returncode, r.stdout) == (0, "0\n"), r.stderr
    r = cli("embeddings", "export", "Text embedding (All-MPNet-base-v2)")
    assert (r.returncode, r.stdout) == (0, ""), r.stderr
    assert "Exported 0 vectors" in r.stderr
    r = cli("search", "--embedding", "Image Embedding (CLIP ViT-B/32)", "--anchor", "row-0")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "no embedding" not in r.stderr  # the name was understood; the row just has no CLIP vector
    listing = cli("embeddings", "list").stdout
    assert f"{CLIP:>36} - {'clip-vit-b-32':<40} - dims: {512:<5}" in listing.splitlines()
    assert "Image Embedding" not in listing and "Text embedding" not in listing


def test_advtool_alone_prints_its_help_and_exits_0(tmp_path):
    """Through the console script's exit path, in an empty folder: help on stdout, status 0, no file."""
    for args in ([], ["--db", "elsewhere.duckdb"]):
        p = subprocess.run([sys.executable, "-c", "import sys; from catalog.cli import main; sys.exit(main())",
                            *args], capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert p.returncode == 0, p.stderr
        assert p.stdout.startswith("usage: advtool")
        assert "embeddings" in p.stdout and "datarows" in p.stdout
        assert p.stderr == ""
    assert list(tmp_path.iterdir()) == []  # no catalog file was created
    p = subprocess.run([sys.executable, "-c", "import sys; from catalog.cli import main; sys.exit(main())",
                        "no-such-command"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert p.returncode == 2 and "invalid choice" in p.stderr


@pytest.mark.parametrize("group", ["embeddings", "datarows", "labels", "slices", "batches", "metadata"])
def test_a_command_group_alone_prints_its_help_and_exits_0(tmp_path, group, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from catalog.cli import main
    assert main([group]) == 0
    out = capsys.readouterr()
    assert out.out.startswith(f"usage: advtool {group}") and "ACTION" in out.out and out.err == ""
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SystemExit) as exc:
        main([group, "no-such-action"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err
