"""The ``color-texture`` encoder: the training-free descriptor of :mod:`catalog.models.color_texture`."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import color_texture
from ..registry import ModelSpec
from .base import Encoder


class ColorTextureEncoder(Encoder):
    size_hint = 128  # decode JPEGs at no less than twice the descriptor's 64 pixels
    device = "cpu"
    default_batch = 256

    def __init__(self, spec: ModelSpec, located=None, device: str = "cpu", tag: str | None = None):
        """The descriptor needs no weights and runs on the CPU: ``located``, ``device`` and ``tag``
        are accepted for the common encoder signature and ignored."""
        self.spec = spec

    def per_image(self) -> Callable:
        return color_texture.describe

    def encode_images(self, images, batch_size: int | None = None) -> np.ndarray:
        if not images:
            return self.empty()
        return np.stack([color_texture.describe(im) for im in images])
