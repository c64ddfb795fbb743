"""The encoder protocol: what every off-the-shelf model offers once it is loaded.

An encoder turns texts or images into unit vectors of its model's space. ``name``, ``dims`` and
``media_type`` come from the model's :class:`~catalog.models.registry.ModelSpec`; ``device`` is
where it runs; ``size_hint`` lets image decoding skip detail the model will not use. A model that
cannot embed texts (or images) keeps the default method, which refuses with a :class:`CatalogError`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ...errors import CatalogError
from ..registry import ModelSpec


class Encoder:
    """Base of every encoder (see the module docstring); subclasses set ``spec`` and ``device``."""

    spec: ModelSpec
    device: str = "cpu"
    size_hint: int | None = None  # decode JPEGs at no less than this many pixels; None: full size
    default_batch: int = 32  # rows per model call unless the caller says otherwise

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dims(self) -> int:
        return self.spec.dims

    @property
    def media_type(self) -> str:
        return self.spec.media_type

    @property
    def encodes_text(self) -> bool:
        return self.spec.encodes_text

    @property
    def encodes_image(self) -> bool:
        return self.spec.encodes_image

    def encode_texts(self, texts, batch_size: int | None = None) -> np.ndarray:
        """Unit vectors of ``texts``, shape ``(len(texts), dims)``, float32."""
        raise CatalogError(f"{self.name} embeds images only and has no text tower")

    def encode_images(self, images, batch_size: int | None = None) -> np.ndarray:
        """Unit vectors of RGB PIL ``images``, shape ``(len(images), dims)``, float32."""
        raise CatalogError(f"{self.name} embeds texts; it does not embed images")

    def per_image(self) -> Callable | None:
        """A function from one RGB image to its vector, cheap and thread-safe enough to run in the
        image-reader threads; None when images go to :meth:`encode_images` in batches."""
        return None

    def empty(self) -> np.ndarray:
        return np.zeros((0, self.dims), np.float32)
