"""The encoders of the off-the-shelf models, behind one protocol (:class:`Encoder`).

One module per encoder (:mod:`.clip`, :mod:`.sentence`, :mod:`.color_texture`); :mod:`.loader`
picks the encoder of a model by its registry family and keeps loaded ones in-process. Importing
this package imports no deep-learning library: torch and friends load with the first model.
"""

from .base import Encoder
from .loader import DEFAULT_BATCH, ENCODERS, clear, get_encoder, is_loaded, prepare_encoder

__all__ = ["Encoder", "ENCODERS", "DEFAULT_BATCH", "prepare_encoder", "get_encoder", "is_loaded", "clear"]
