"""Off-the-shelf embedding models: list them, compute their vectors, embed queries from outside.

Models (see :mod:`catalog.models.registry`): ``clip-vit-b-32`` (images, with a text tower for
prompts), ``all-mpnet-base-v2`` and ``all-minilm-l6-v2`` (texts), ``color-texture`` (images, no
weights). :class:`Models` is the service behind the catalog's model methods; the encoders sit
behind one protocol in :mod:`catalog.models.encoders`. Deep-learning libraries are imported on first
use only, and weights are never downloaded (:mod:`catalog.models.weights` says where they are
looked for).
"""

from __future__ import annotations

from .compute import ComputeReport
from .registry import MODELS, ModelSpec, get_spec
from .service import MAX_PROMPT_CHARS, Models
from .weights import MissingWeights

__all__ = ["Models", "ComputeReport", "MissingWeights", "ModelSpec", "MODELS", "get_spec", "MAX_PROMPT_CHARS"]
