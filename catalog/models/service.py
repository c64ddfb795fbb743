"""The :class:`Models` service: list the off-the-shelf models, compute their vectors, embed queries."""

from __future__ import annotations

import numpy as np

from ..errors import CatalogError
from .compute import ComputeReport, EmbeddingComputer
from .encoders import get_encoder, is_loaded
from .images import Unreadable, open_image
from .registry import MODELS, MODELS_HINT, ModelSpec, find_spec
from .weights import locate, missing_libraries

MAX_PROMPT_CHARS = 1000


def _availability(spec: ModelSpec) -> tuple[bool, str | None, str | None]:
    reason = missing_libraries(spec)
    if reason:
        return False, reason, None
    try:
        located = locate(spec)
    except CatalogError as exc:
        return False, str(exc), None
    if located is None:
        return True, None, "no weights needed"
    return True, None, f"{located.path} ({located.source})"


def _known_model(ref) -> ModelSpec | None:
    if isinstance(ref, ModelSpec):
        return ref
    if getattr(ref, "custom", False):
        return None
    key = str(getattr(ref, "id", ref)).strip()
    spec = find_spec(key) or find_spec(key.lower())
    if spec is None:
        spec = next((m for m in MODELS if m.name == key.lower()), None)
    return spec


def _describe_source(image) -> str:
    if isinstance(image, (bytes, bytearray, memoryview)):
        return f"({len(image)} bytes)"
    return str(image)


def _check_prompt(spec: ModelSpec, text) -> None:
    if not isinstance(text, str) or not text.strip():
        raise CatalogError("the text prompt is empty; give a few words to search for", field="text")
    if len(text) > MAX_PROMPT_CHARS:
        raise CatalogError(f"the text prompt is {len(text)} characters long; use at most {MAX_PROMPT_CHARS}",
                           field="text")
    if not spec.encodes_text:
        raise CatalogError(f"{spec.name} embeds images only and has no text tower; "
                           "to search images by words compute and use clip-vit-b-32", field="text")


class Models:
    """The off-the-shelf models of one catalog.

    ``store``: the catalog's :class:`~catalog.store.Store`; ``embeddings``: what resolves an
    embedding by id or name (``get_embedding(ref)``); ``importer``: the validated vector import that
    writes computed vectors (``import_array(emb, ids, vectors, allow_builtin=True)``, which also
    invalidates the vector caches)."""

    def __init__(self, store, embeddings, importer):
        self.embeddings = embeddings
        self._computer = EmbeddingComputer(store, embeddings, importer)

    def list_models(self) -> list[dict]:
        """Each model's name, id, dims, media type and whether it can run here (and why not)."""
        out = []
        for spec in MODELS:
            available, reason, weights = _availability(spec)
            d = spec.to_dict()
            d.update(available=available, reason=reason, weights=weights,
                     text_queries=spec.encodes_text, image_queries=spec.encodes_image)
            out.append(d)
        return out

    def compute_embeddings(self, model, all=False, device=None, batch_size=None, progress=None, weights=None,
                           pretrained=None) -> ComputeReport:
        """Embed the rows of ``model``'s media type that have no vector yet (every one with ``all``).

        ``device``: ``auto`` (default: CUDA when present), ``cpu`` or ``cuda``. ``progress(done, total)``
        is called after every batch (vectors are written in whole buffers, see
        :mod:`catalog.models.compute`). ``weights``: a checkpoint file or model folder instead of the
        usual places; ``pretrained``: the open_clip tag for clip-vit-b-32 (default ``openai``).
        Raises :class:`CatalogError` before any work when the model cannot run here.
        """
        return self._computer.run(model, all=all, device=device, batch_size=batch_size, progress=progress,
                                  weights=weights, pretrained=pretrained)

    def query_model(self, embedding) -> tuple[str, bool] | None:
        """``(model name, loaded)`` of the model that embeds prompts for ``embedding`` in this process, or
        None for a custom embedding (no model); loading takes seconds the first time, so clients say so."""
        spec = _known_model(embedding)
        if spec is None:
            emb = self.embeddings.get_embedding(embedding)
            spec = None if emb.custom else find_spec(emb.id)
        return None if spec is None else (spec.name, is_loaded(spec))

    def encode_query(self, embedding, text=None, image=None) -> np.ndarray:
        """The unit vector of a text prompt or an outside image in ``embedding``'s space, shape ``(dims,)``.

        Text goes through the CLIP text tower (clip-vit-b-32) or the sentence model (text
        embeddings); ``image`` (a path, bytes or a PIL image) through the image model.
        """
        spec = _known_model(embedding)  # off-the-shelf names and ids need no catalog lookup
        what = "text prompt" if text is not None else "query image"
        if spec is None:
            emb = self.embeddings.get_embedding(embedding)
            spec = None if emb.custom else find_spec(emb.id)
            if spec is None:
                raise CatalogError(
                    f"{emb.name} is a custom embedding: there is no model to embed a {what} for it; "
                    "search it by anchor rows or vectors, or use an off-the-shelf embedding",
                    field="embedding", hint=MODELS_HINT)
        if (text is None) == (image is None):
            raise CatalogError("give either a text prompt or an image to embed, not both and not neither")
        if text is not None:
            _check_prompt(spec, text)
            return get_encoder(spec).encode_texts([text])[0]
        if not spec.encodes_image:
            raise CatalogError(
                f"{spec.name} embeds texts; a query image needs an image embedding (clip-vit-b-32 or color-texture)",
                field="image")
        encoder = get_encoder(spec)
        try:
            img = open_image(image, encoder.size_hint)
        except Unreadable as exc:
            raise CatalogError(f"query image {_describe_source(image)}: {exc}", field="image") from None
        return encoder.encode_images([img])[0]
