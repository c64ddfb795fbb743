"""Which encoder a model gets, and the loaded ones, kept in-process (least recently used first out)
so repeated queries are fast."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

from ...errors import CatalogError
from ..registry import ModelSpec
from ..torch_env import check_device, resolve_device
from ..weights import locate, missing_libraries
from .base import Encoder
from .clip import ClipEncoder, check_tag
from .color_texture import ColorTextureEncoder
from .sentence import SentenceEncoder

MAX_LOADED = 2  # deep-learning models kept loaded at once

# the registry's model family -> its encoder class; models with weights are built as
# ``cls(spec, located, device, tag)``
ENCODERS: dict[str, type[Encoder]] = {"clip": ClipEncoder, "sentence": SentenceEncoder,
                                      "color-texture": ColorTextureEncoder}
DEFAULT_BATCH = {family: cls.default_batch for family, cls in ENCODERS.items()}

_lock = threading.Lock()
_loaded: OrderedDict[tuple, Encoder] = OrderedDict()


def prepare_encoder(spec: ModelSpec, device=None, weights=None, pretrained=None) -> Callable[[], Encoder]:
    """Check at once (file-system checks only) that ``spec`` can run; returns a function that loads it.

    Raises :class:`CatalogError` (for example :class:`MissingWeights`) within milliseconds, before
    any deep-learning library is imported.
    """
    device = check_device(device)
    if spec.family == "color-texture":
        locate(spec, weights, pretrained)  # rejects `weights` / `pretrained`
        return lambda: ColorTextureEncoder(spec)
    reason = missing_libraries(spec)
    if reason:
        raise CatalogError(f"{spec.name} {reason}")
    located = locate(spec, weights, pretrained)
    tag = check_tag(pretrained) if spec.family == "clip" else None

    def load() -> Encoder:
        dev = resolve_device(device)
        key = (spec.name, str(located.path), tag, dev)
        with _lock:
            hit = _loaded.get(key)
            if hit is not None:
                _loaded.move_to_end(key)
                return hit
            encoder = ENCODERS[spec.family](spec, located, dev, tag)
            _loaded[key] = encoder
            while len(_loaded) > MAX_LOADED:
                _loaded.popitem(last=False)
            return encoder

    return load


def get_encoder(spec: ModelSpec, device=None, weights=None, pretrained=None) -> Encoder:
    """A ready encoder for ``spec`` (cached in-process); :class:`CatalogError` when it cannot run here."""
    return prepare_encoder(spec, device, weights, pretrained)()


def is_loaded(spec: ModelSpec) -> bool:
    """Whether an encoder for ``spec`` is ready in this process (the built-in color-texture model always is)."""
    if spec.family == "color-texture":
        return True
    with _lock:
        return any(key[0] == spec.name for key in _loaded)


def clear() -> None:
    """Forget every loaded model (frees their memory)."""
    with _lock:
        _loaded.clear()
