"""Text models: all-minilm-l6-v2 for real (it ships in a package), and all-mpnet-base-v2's missing weights."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from catalog import CatalogError
from catalog.models import weights
from catalog.scoring import pairwise_scores
from catalog.store import MINILM_ID, MPNET_ID

TOPICS = {
    "sports": ["The striker scored twice in the cup final", "A marathon runner broke the course record",
               "The tennis match went to five sets", "Our team won the basketball championship",
               "The goalkeeper saved a penalty in extra time"],
    "cooking": ["Simmer the tomato sauce for twenty minutes", "Knead the bread dough until smooth",
                "Roast the vegetables with olive oil and garlic", "Whisk the eggs and sugar for the cake",
                "Season the soup with salt and fresh herbs"],
    "astronomy": ["The telescope photographed a distant spiral galaxy", "Astronomers detected a new exoplanet",
                  "A comet's tail glowed in the night sky", "The rover found traces of water on Mars",
                  "Saturn's rings are made of ice and rock"],
}


def offline_env(tmp_path) -> dict:
    """Environment in which every library cache is an empty folder (so only what we pass is found)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "HF_HOME": str(home / "hf"),
            "TORCH_HOME": str(home / "torch"), "CATALOG_MODELS": "", "HF_HUB_CACHE": "",
            "HUGGINGFACE_HUB_CACHE": "", "SENTENCE_TRANSFORMERS_HOME": ""}


@pytest.fixture
def topic_records(tmp_path):
    path = tmp_path / "topics.ndjson"
    with open(path, "w") as fh:
        for topic, texts in TOPICS.items():
            for i, text in enumerate(texts):
                fh.write(json.dumps({"global_key": f"{topic}-{i}", "text": text, "metadata": {"topic": topic}}) + "\n")
    return path


def ranked(cat, embedding, anchor=None, text=None):
    """global_keys from most to least similar (the search API when present, else the score directly)."""
    if hasattr(cat, "search"):
        kwargs = {"anchors": [anchor]} if anchor else {"text": text}
        return [h.global_key for h in cat.search(embedding, min_score=0.0, limit=None, **kwargs).results]
    emb = cat.get_embedding(embedding)
    ids, mat = cat.cache.load(emb)
    keys = [r["global_key"] for r in cat.get_datarows(list(ids))]
    q = mat[keys.index(anchor)] if anchor else cat.encode_query(embedding, text=text)
    order = np.argsort(-pairwise_scores(q, np.asarray(mat))[0], kind="stable")
    return [keys[i] for i in order if keys[i] != anchor]


def test_minilm_ranks_by_topic_for_anchors_and_prompts(cat, topic_records, image_folder):
    cat.import_datarows([topic_records, image_folder])
    report = cat.compute_embeddings("all-minilm-l6-v2")
    assert report.computed == 15 and report.skipped_other_media == 6 and not report.unreadable
    emb = cat.get_embedding(MINILM_ID)
    assert emb.name == "all-minilm-l6-v2" and emb.get_imported_vector_count() == 15
    for topic, texts in TOPICS.items():
        for i in range(len(texts)):  # every text's two nearest neighbours share its topic
            order = ranked(cat, "all-minilm-l6-v2", anchor=f"{topic}-{i}")
            assert {k.split("-")[0] for k in order[:2]} == {topic}, order
    prompts = {"sports": "athletes competing in a game", "cooking": "a recipe for dinner in the kitchen",
               "astronomy": "planets and stars in outer space"}
    for topic, prompt in prompts.items():
        order = ranked(cat, "all-minilm-l6-v2", text=prompt)
        assert {k.split("-")[0] for k in order[:4]} == {topic}, (prompt, order)


def test_minilm_query_vectors(cat):
    q = cat.encode_query("all-minilm-l6-v2", text="a quiet evening at home")
    assert q.shape == (384,) and q.dtype == np.float32
    assert abs(float(np.linalg.norm(q)) - 1.0) < 1e-5
    assert np.allclose(q, cat.encode_query(MINILM_ID, text="a quiet evening at home"), atol=1e-6)
    from catalog.models.encoders import loader
    from catalog.models.registry import get_spec
    enc = loader.get_encoder(get_spec("all-minilm-l6-v2"))
    cat.encode_query("all-minilm-l6-v2", text="another prompt")
    assert loader.get_encoder(get_spec("all-minilm-l6-v2")) is enc  # the model stays loaded between queries
    assert len(cat.encode_query("all-minilm-l6-v2", text="x" * 1000)) == 384
    with pytest.raises(CatalogError, match="1001 characters long; use at most 1000"):
        cat.encode_query("all-minilm-l6-v2", text="x" * 1001)
    with pytest.raises(CatalogError, match="the text prompt is empty"):
        cat.encode_query("all-minilm-l6-v2", text="   ")
    with pytest.raises(CatalogError, match="all-minilm-l6-v2 embeds texts; a query image needs an image embedding"):
        cat.encode_query("all-minilm-l6-v2", image=b"\x89PNG")


def test_minilm_batches_match_single_texts(cat, topic_records):
    cat.import_datarows(topic_records)
    cat.compute_embeddings("all-minilm-l6-v2", batch_size=4)
    ids, mat = cat.cache.load(cat.get_embedding("all-minilm-l6-v2"))
    rows = {r["id"]: r["row_data"] for r in cat.get_datarows(list(ids))}
    for rid, vec in list(zip(ids, mat))[:3]:
        assert np.allclose(vec, cat.encode_query("all-minilm-l6-v2", text=rows[rid]), atol=1e-4)


def test_minilm_found_in_catalog_models_folder(cat, tmp_path, monkeypatch):
    package_dir = weights.minilm_package_dir()
    models = tmp_path / "models"
    models.mkdir()
    (models / "all-minilm-l6-v2").symlink_to(package_dir, target_is_directory=True)
    monkeypatch.setenv("CATALOG_MODELS", str(models))
    info = {m["name"]: m for m in cat.list_models()}["all-minilm-l6-v2"]
    assert info["available"] and "$CATALOG_MODELS" in info["weights"]
    assert str(models / "all-minilm-l6-v2") in info["weights"]


@pytest.mark.cli_process  # fast from a cold start; HOME/HF env read at import
def test_mpnet_missing_weights_is_one_clear_line_and_fast(cli, topic_records, tmp_path):
    env = offline_env(tmp_path)
    assert cli("datarows", "import", topic_records).returncode == 0
    r = cli("embeddings", "compute", "all-mpnet-base-v2", env=env)  # offline: nothing is tried, so no wait
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    msg = lines[0]
    assert msg.startswith("error: all-mpnet-base-v2 weights not found; looked in $CATALOG_MODELS (not set)")
    assert str(tmp_path / "home" / "hf" / "hub") in msg  # the Hugging Face cache it looked in
    assert "$CATALOG_MODELS/all-mpnet-base-v2/" in msg and "--weights" in msg and "(nothing is ever downloaded)" in msg
    assert cli("embeddings", "count", MPNET_ID, env=env).stdout.strip() == "0"

    r = cli("models", "--json", env=env)
    info = {m["name"]: m for m in json.loads(r.stdout)}
    assert info["all-mpnet-base-v2"]["available"] is False
    assert info["all-mpnet-base-v2"]["reason"] == msg[len("error: "):]
    assert info["all-minilm-l6-v2"]["available"] is True  # ships in a package: works offline


def test_mpnet_weights_option_errors(cat, topic_records, tmp_path, monkeypatch):
    for key, value in offline_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    cat.import_datarows(topic_records)
    with pytest.raises(CatalogError, match=r"weights folder .*nowhere does not exist"):
        cat.compute_embeddings("all-mpnet-base-v2", weights=tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CatalogError, match="is not a sentence-transformers model folder"):
        cat.compute_embeddings("all-mpnet-base-v2", weights=empty)
    # the MiniLM folder is a valid model, but not mpnet: its 384-d vectors are refused
    with pytest.raises(CatalogError, match="makes 384-d vectors, all-mpnet-base-v2 has 768 dims"):
        cat.compute_embeddings("all-mpnet-base-v2", weights=weights.minilm_package_dir())
    with pytest.raises(CatalogError, match="all-mpnet-base-v2 weights not found"):
        cat.encode_query("all-mpnet-base-v2", text="hello")
    assert cat.get_embedding("all-mpnet-base-v2").get_imported_vector_count() == 0


@pytest.mark.cli_process  # transformers logging/progress on stderr, set up at import
def test_minilm_cli_compute_and_resume(cli, topic_records):
    assert cli("datarows", "import", topic_records).returncode == 0
    r = cli("embeddings", "compute", "all-minilm-l6-v2", "--device", "cpu", "--batch-size", "8")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Computed 15 all-minilm-l6-v2 vectors on cpu")
    assert "Traceback" not in r.stderr and "Loading weights" not in r.stderr
    r = cli("embeddings", "compute", MINILM_ID)
    assert r.returncode == 0
    assert r.stdout.strip() == "Nothing to compute for all-minilm-l6-v2 (15 rows already have a vector, --all recomputes them)"
    r = cli("embeddings", "compute", "all-minilm-l6-v2", "--pretrained", "openai")
    assert r.returncode == 2 and "--pretrained applies to clip-vit-b-32 only" in r.stderr


@pytest.mark.skipif(not os.environ.get("CUDA_VISIBLE_DEVICES") and not os.path.exists("/dev/nvidia0"),
                    reason="no GPU on this machine")
def test_cuda_device_when_present(cat, topic_records):
    cat.import_datarows(topic_records)
    report = cat.compute_embeddings("all-minilm-l6-v2", device="cuda")
    assert report.device.startswith("cuda") and report.computed == 15


def test_cuda_refused_without_gpu(cat, topic_records):
    from catalog.models.torch_env import import_torch

    if import_torch().cuda.is_available():
        pytest.skip("a GPU is present")
    cat.import_datarows(topic_records)
    with pytest.raises(CatalogError, match="no CUDA GPU is available here; use `device` cpu or auto"):
        cat.compute_embeddings("all-minilm-l6-v2", device="cuda")
    assert cat.get_embedding("all-minilm-l6-v2").get_imported_vector_count() == 0
