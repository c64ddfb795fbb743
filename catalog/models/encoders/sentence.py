"""Text models through sentence-transformers: ``all-mpnet-base-v2`` and ``all-minilm-l6-v2``.

The model is loaded from a local folder only (``local_files_only``, Hugging Face offline mode);
texts longer than the model's window (384 word pieces for mpnet, 256 for MiniLM) are truncated by
the library, as usual for these models.
"""

from __future__ import annotations

import numpy as np

from ..registry import ModelSpec
from ..torch_env import import_sentence_transformers
from ..weights import Located, MissingWeights
from .base import Encoder


class SentenceEncoder(Encoder):
    size_hint = None
    default_batch = 64

    def __init__(self, spec: ModelSpec, located: Located, device: str, tag: str | None = None):
        """``tag`` is unused: sentence models have no pretrained tags."""
        self.spec = spec
        self.located = located
        self.device = device
        st = import_sentence_transformers()
        try:
            self.model = st.SentenceTransformer(str(located.path), device=device, local_files_only=True)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise MissingWeights(f"{spec.name}: the model folder {located.path} does not load ({first}); "
                                 "give a complete sentence-transformers model folder") from None
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dims = getter()
        if dims != spec.dims:
            raise MissingWeights(f"{spec.name}: the model in {located.path} makes {dims}-d vectors, "
                                 f"{spec.name} has {spec.dims} dims; give the {spec.name} model")

    def encode_texts(self, texts, batch_size: int = 32) -> np.ndarray:
        if not len(texts):
            return self.empty()
        out = self.model.encode(list(texts), batch_size=batch_size, show_progress_bar=False,
                                convert_to_numpy=True, normalize_embeddings=True)
        return np.asarray(out, dtype=np.float32)
