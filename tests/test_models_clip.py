"""clip-vit-b-32 through open_clip: a tiny model with random weights, loaded the way real weights are.

The checkpoint is written with ``torch.save(model.state_dict())`` next to an ``open_clip_config.json``
(the layout of the Hugging Face cache and of ``$CATALOG_MODELS/clip-vit-b-32/``), and found through
``--weights`` / ``$CATALOG_MODELS`` like any real checkpoint.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from catalog import CatalogError
from catalog.models.encoders import loader
from catalog.store import CLIP_ID

TINY = {
    "model_cfg": {
        "embed_dim": 512,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1},
    },
    "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]},
}


def write_tiny_clip(folder, cfg=TINY, seed=0):
    from catalog.models.torch_env import import_open_clip, import_torch

    torch, open_clip = import_torch(), import_open_clip()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    torch.manual_seed(seed)
    model = open_clip.create_model(f"local-dir:{folder}", load_weights=False, pretrained_text=False)
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A $CATALOG_MODELS folder holding a tiny random clip-vit-b-32."""
    root = tmp_path_factory.mktemp("models")
    write_tiny_clip(root / "clip-vit-b-32")
    return root


@pytest.fixture
def use_models(tiny_models, monkeypatch):
    monkeypatch.setenv("CATALOG_MODELS", str(tiny_models))
    yield tiny_models
    loader.clear()


def row_vectors(cat, name):
    ids, mat = cat.cache.load(cat.get_embedding(name))
    keys = {r["id"]: r["global_key"] for r in cat.get_datarows(list(ids))}
    return {keys[i]: np.asarray(v) for i, v in zip(ids, mat)}


def test_compute_dims_normalisation_and_batches(cat, image_folder, text_records, use_models):
    cat.import_datarows([image_folder, text_records])
    info = {m["name"]: m for m in cat.list_models()}["clip-vit-b-32"]
    assert info["available"] and info["weights"].endswith("open_clip_pytorch_model.bin ($CATALOG_MODELS)")
    report = cat.compute_embeddings("clip-vit-b-32", batch_size=4)
    assert (report.computed, report.skipped_other_media, report.unreadable) == (6, 8, [])
    assert report.device == "cpu"
    emb = cat.get_embedding(CLIP_ID)
    assert emb.name == "clip-vit-b-32" and emb.get_imported_vector_count() == 6
    from catalog.store import one

    with cat.store.connect() as con:
        raw = np.array(one(con, "SELECT vector FROM vectors WHERE embedding_id = ? LIMIT 1", [CLIP_ID])[0])
    assert raw.shape == (512,) and abs(float(np.linalg.norm(raw)) - 1.0) < 1e-5  # stored unit-length
    vecs = row_vectors(cat, "clip-vit-b-32")
    for key in ("red/r0.png", "blue/b2.png"):  # batched compute == one image at a time
        single = cat.encode_query("clip-vit-b-32", image=image_folder / key)
        assert single.shape == (512,)
        assert np.allclose(vecs[key], single, atol=1e-5)
    assert not np.allclose(vecs["red/r0.png"], vecs["blue/b2.png"], atol=1e-3)


def test_text_tower(cat, use_models):
    a = cat.encode_query("clip-vit-b-32", text="a photo of a dog")
    b = cat.encode_query(CLIP_ID, text="a photo of a dog")
    c = cat.encode_query("clip-vit-b-32", text="a diagram of a circuit")
    assert a.shape == (512,) and a.dtype == np.float32
    assert abs(float(np.linalg.norm(a)) - 1.0) < 1e-5
    assert np.allclose(a, b, atol=1e-6) and not np.allclose(a, c, atol=1e-3)
    enc = loader.get_encoder(loader_spec("clip-vit-b-32"))
    batch = enc.encode_texts(["a photo of a dog", "a diagram of a circuit"], batch_size=2)
    assert np.allclose(batch[0], a, atol=1e-5) and np.allclose(batch[1], c, atol=1e-5)
    cat.encode_query("clip-vit-b-32", text="kept loaded")
    assert loader.is_loaded(loader_spec("clip-vit-b-32")) and loader.get_encoder(loader_spec("clip-vit-b-32")) is enc
    with pytest.raises(CatalogError, match="use at most 1000"):
        cat.encode_query("clip-vit-b-32", text="y" * 1001)


def loader_spec(name):
    from catalog.models.registry import get_spec

    return get_spec(name)


@pytest.mark.cli_process  # library warnings/logging: pytest would capture them in-process
def test_weights_option_and_cli(cli, image_folder, tiny_models, tmp_path):
    assert cli("datarows", "import", image_folder).returncode == 0
    r = cli("embeddings", "compute", "clip-vit-b-32", "--weights", tiny_models / "clip-vit-b-32",
            "--device", "cpu", env={"CATALOG_MODELS": ""})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Computed 6 clip-vit-b-32 vectors on cpu")
    assert "Traceback" not in r.stderr and "WARNING" not in r.stderr
    assert cli("embeddings", "count", CLIP_ID).stdout.strip() == "6"
    r = cli("models", "--json", env={"CATALOG_MODELS": str(tiny_models)})
    info = {m["name"]: m for m in json.loads(r.stdout)}["clip-vit-b-32"]
    assert info["available"] is True and info["dims"] == 512 and info["media_type"] == "image"


def _offline(tmp_path):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"), "HF_HOME": str(home / "hf"),
            "TORCH_HOME": str(home / "torch"), "CATALOG_MODELS": "", "HF_HUB_CACHE": "", "HUGGINGFACE_HUB_CACHE": ""}


@pytest.mark.cli_process  # fast from a cold start; HOME/HF env read at import
def test_missing_weights_one_line_fast_nothing_written(cli, image_folder, tmp_path):
    assert cli("datarows", "import", image_folder).returncode == 0
    env = _offline(tmp_path)
    r = cli("embeddings", "compute", "clip-vit-b-32", env=env)  # offline: nothing is tried, so no wait
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    msg = lines[0]
    assert msg.startswith("error: clip-vit-b-32 weights (open_clip ViT-B-32, pretrained 'openai') not found;")
    for where in ("$CATALOG_MODELS (not set)", str(tmp_path / "home" / "hf" / "hub"),
                  str(tmp_path / "home" / ".cache" / "clip"), str(tmp_path / "home" / "torch" / "hub" / "checkpoints")):
        assert where in msg, where
    assert "$CATALOG_MODELS/clip-vit-b-32/" in msg and "--weights PATH" in msg
    assert cli("embeddings", "count", "clip-vit-b-32", env=env).stdout.strip() == "0"

    r = cli("embeddings", "compute", "clip-vit-b-32", "--weights", tmp_path / "nope.bin", env=env)
    assert r.returncode == 2
    assert r.stderr.strip() == (f"error: clip-vit-b-32: weights file {tmp_path / 'nope.bin'} does not exist; "
                                "pass an open_clip checkpoint file or its folder")


def test_wrong_checkpoints_are_refused(cat, image_folder, tmp_path, tiny_models, monkeypatch):
    for key, value in _offline(tmp_path).items():
        monkeypatch.setenv(key, value)
    cat.import_datarows(image_folder)
    # a bare checkpoint (no config beside it) is built as ViT-B-32; the tiny weights do not fit it
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "tiny.bin").write_bytes((tiny_models / "clip-vit-b-32" / "open_clip_pytorch_model.bin").read_bytes())
    with pytest.raises(CatalogError, match=r"the checkpoint .*tiny\.bin does not load into open_clip ViT-B-32"):
        cat.compute_embeddings("clip-vit-b-32", weights=bare / "tiny.bin")
    # a model with another output size is not clip-vit-b-32
    cfg = json.loads(json.dumps(TINY))
    cfg["model_cfg"]["embed_dim"] = 256
    other = write_tiny_clip(tmp_path / "other", cfg)
    with pytest.raises(CatalogError, match="makes 256-d vectors, clip-vit-b-32 has 512 dims"):
        cat.compute_embeddings("clip-vit-b-32", weights=other)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CatalogError, match="does not load into open_clip"):
        cat.compute_embeddings("clip-vit-b-32", weights=garbage)
    with pytest.raises(CatalogError, match="unknown pretrained tag 'no-such-tag' for ViT-B-32; known tags: openai"):
        cat.compute_embeddings("clip-vit-b-32", pretrained="no-such-tag")
    assert cat.get_embedding("clip-vit-b-32").get_imported_vector_count() == 0


def test_pretrained_tag_selects_its_own_folder(cat, tiny_models, tmp_path, monkeypatch):
    for key, value in _offline(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CATALOG_MODELS", str(tiny_models))
    from catalog.models.weights import MissingWeights, locate

    spec = loader_spec("clip-vit-b-32")
    assert locate(spec).path == tiny_models / "clip-vit-b-32" / "open_clip_pytorch_model.bin"
    with pytest.raises(MissingWeights, match=r"pretrained 'laion2b_s34b_b79k'.*\$CATALOG_MODELS/clip-vit-b-32-laion2b_s34b_b79k/"):
        locate(spec, pretrained="laion2b_s34b_b79k")


def test_image_rows_with_a_text_only_catalog(cat, text_records, use_models):
    cat.import_datarows(text_records)
    report = cat.compute_embeddings("clip-vit-b-32")
    assert report.computed == 0 and report.skipped_other_media == 8


def test_cli_import_stays_light():
    """`advtool --help` must not import torch (it would take seconds)."""
    import subprocess
    import sys

    code = ("import sys; from catalog.cli import build_parser; build_parser(); "
            "import catalog.models; sys.exit(1 if 'torch' in sys.modules or 'open_clip' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.filterwarnings("ignore")  # torch marks TorchScript itself as deprecated
def test_torchscript_checkpoint_loads_like_openai_files(cat, tiny_models, tmp_path):
    """OpenAI's original checkpoints are TorchScript archives; they load through the same path."""
    import shutil

    from catalog.models.torch_env import import_open_clip, import_torch

    torch, open_clip = import_torch(), import_open_clip()
    src = tiny_models / "clip-vit-b-32"
    dst = tmp_path / "scripted"
    dst.mkdir()
    shutil.copy(src / "open_clip_config.json", dst)
    model = open_clip.create_model(f"local-dir:{src}", load_weights=False, pretrained_text=False)
    open_clip.load_checkpoint(model, str(src / "open_clip_pytorch_model.bin"))
    torch.jit.save(torch.jit.script(model.eval()), str(dst / "ViT-B-32.pt"))
    spec = loader_spec("clip-vit-b-32")
    scripted = loader.get_encoder(spec, weights=dst)
    plain = loader.get_encoder(spec, weights=src)
    assert scripted.located.path.name == "ViT-B-32.pt"
    texts = ["a photo of a cat", "a red square"]
    assert np.allclose(scripted.encode_texts(texts), plain.encode_texts(texts), atol=1e-5)
    loader.clear()
