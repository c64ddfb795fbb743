"""Loaded models, kept in-process (least recently used first out) so repeated queries are fast."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from ..errors import CatalogError
from . import color_texture
from .registry import ModelSpec
from .torch_env import check_device
from .weights import locate, missing_libraries

MAX_LOADED = 2  # deep-learning models kept loaded at once
DEFAULT_BATCH = {"clip": 32, "sentence": 64, "color-texture": 256}

_lock = threading.Lock()
_loaded: OrderedDict[tuple, object] = OrderedDict()


class ColorTextureEncoder:
    size_hint = 128  # decode JPEGs at no less than twice the descriptor's 64 pixels
    device = "cpu"

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    @staticmethod
    def describe_one(image) -> np.ndarray:
        return color_texture.describe(image)

    def encode_images(self, images, batch_size: int = 256) -> np.ndarray:
        if not images:
            return np.zeros((0, color_texture.DIMS), np.float32)
        return np.stack([color_texture.describe(im) for im in images])


def prepare_encoder(spec: ModelSpec, device=None, weights=None, pretrained=None):
    """Check at once (file-system checks only) that ``spec`` can run; returns a function that loads it.

    Raises :class:`CatalogError` (for example :class:`MissingWeights`) within milliseconds, before
    any deep-learning library is imported.
    """
    device = check_device(device)
    if spec.family == "color-texture":
        locate(spec, weights, pretrained)  # rejects --weights / --pretrained
        return lambda: ColorTextureEncoder(spec)
    reason = missing_libraries(spec)
    if reason:
        raise CatalogError(f"{spec.name} {reason}")
    located = locate(spec, weights, pretrained)
    tag = None
    if spec.family == "clip":
        from .clip import check_tag

        tag = check_tag(pretrained)

    def load():
        from .torch_env import resolve_device

        dev = resolve_device(device)
        key = (spec.name, str(located.path), tag, dev)
        with _lock:
            hit = _loaded.get(key)
            if hit is not None:
                _loaded.move_to_end(key)
                return hit
            if spec.family == "clip":
                from .clip import ClipEncoder

                encoder = ClipEncoder(spec, located, dev, tag)
            else:
                from .sentence import SentenceEncoder

                encoder = SentenceEncoder(spec, located, dev)
            _loaded[key] = encoder
            while len(_loaded) > MAX_LOADED:
                _loaded.popitem(last=False)
            return encoder

    return load


def get_encoder(spec: ModelSpec, device=None, weights=None, pretrained=None):
    """A ready encoder for ``spec`` (cached in-process); :class:`CatalogError` when it cannot run here."""
    return prepare_encoder(spec, device, weights, pretrained)()


def clear() -> None:
    """Forget every loaded model (frees their memory)."""
    with _lock:
        _loaded.clear()
