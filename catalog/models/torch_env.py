"""Importing the deep-learning libraries lazily, offline, and on the right device.

Nothing here runs when the CLI starts: torch, open_clip and sentence-transformers are imported on
the first model load only. Before that, the Hugging Face libraries are switched to offline mode so
that nothing ever reaches for the network (weights come from :mod:`catalog.models.weights`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import warnings
from pathlib import Path

from ..errors import CatalogError

_lock = threading.Lock()
_keep: list = []  # torch.library objects that must stay alive
_ready = False

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
               "TOKENIZERS_PARALLELISM": "false"}


def _torchvision_ops_stub(torch) -> None:
    """Let ``import torchvision`` succeed when its compiled ops cannot load.

    A torchvision wheel built against another torch variant (for example the CUDA wheel beside a
    CPU-only torch) fails to load its ``_C`` extension, and then fails at import while registering
    fake kernels for ``torchvision::nms``. open_clip and transformers import torchvision only for
    image transforms, which are pure Python, so declaring the two operator schemas is enough; the
    ops themselves stay unavailable (calling them raises).
    """
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return
    folder = Path(list(spec.submodule_search_locations)[0])
    lib_file = next(iter(sorted(folder.glob("_C*.so")) + sorted(folder.glob("_C*.pyd"))), None)
    if lib_file is not None:
        try:
            torch.ops.load_library(str(lib_file))
            return
        except (OSError, RuntimeError):
            pass
    try:
        torch.ops.torchvision.nms  # noqa: B018 - already declared
        return
    except (AttributeError, RuntimeError):
        pass
    lib = torch.library.Library("torchvision", "FRAGMENT")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
    _keep.append(lib)


def import_torch():
    """torch, with offline mode on and torchvision importable."""
    global _ready
    with _lock:
        for key, value in OFFLINE_ENV.items():
            os.environ[key] = value
        try:
            import torch
        except ImportError:
            raise CatalogError("this model needs PyTorch; pip install 'embedding-catalog[models]'") from None
        if not _ready:
            _torchvision_ops_stub(torch)
            _ready = True
        return torch


def import_open_clip():
    import_torch()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import open_clip
    except ImportError:
        raise CatalogError("clip-vit-b-32 needs open_clip_torch; pip install 'embedding-catalog[models]'") from None
    return open_clip


def import_sentence_transformers():
    import_torch()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import sentence_transformers
            from transformers.utils import logging as hf_logging
    except ImportError:
        raise CatalogError("this model needs sentence-transformers; pip install 'embedding-catalog[models]'") from None
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    return sentence_transformers


DEVICES = ("auto", "cpu", "cuda")


def check_device(device: str | None) -> str:
    """``auto``, ``cpu`` or ``cuda`` (optionally ``cuda:N``); a clear error otherwise."""
    device = (device or "auto").strip().lower()
    if device in DEVICES or (device.startswith("cuda:") and device[5:].isdigit()):
        return device
    raise CatalogError(f"unknown device {device!r}; use cpu, cuda or auto", field="device")


def resolve_device(device: str | None) -> str:
    """The torch device to use: ``auto`` means CUDA when present, else CPU."""
    device = check_device(device)
    torch = import_torch()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CatalogError(f"`device` {device} was asked for but no CUDA GPU is available here; "
                           "use `device` cpu or auto", field="device")
    return device
