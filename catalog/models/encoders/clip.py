"""``clip-vit-b-32``: open_clip's ViT-B-32, image tower for data rows, text tower for prompts.

Weights are a local checkpoint (see :mod:`catalog.models.weights`). A checkpoint with an
``open_clip_config.json`` beside it (the layout of the Hugging Face cache and of
``$CATALOG_MODELS/clip-vit-b-32/``) is built from that config; a bare checkpoint (such as OpenAI's
``ViT-B-32.pt``) is built as the ViT-B-32 architecture of the pretrained tag (QuickGELU for
``openai``). Either way the weights are loaded strictly by one function, and the model must
produce 512-d vectors.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
import zipfile

import numpy as np

from ...errors import CatalogError
from ..registry import CLIP_DEFAULT_TAG, ModelSpec
from ..torch_env import import_open_clip, import_torch
from ..weights import CLIP_ARCH, Located, MissingWeights, clip_tag_info
from .base import Encoder


@contextlib.contextmanager
def quiet_loading():
    """open_clip reports through the root logger and warnings; keep the CLI's stderr clean."""
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)


def _is_torchscript(path) -> bool:
    """OpenAI's original checkpoints are TorchScript archives (zip files with constants.pkl)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.endswith("constants.pkl") for n in zf.namelist())


# buffers that scripted (TorchScript) checkpoints carry although the model rebuilds them
_IGNORABLE = ("attn_mask",)


def _load_weights(open_clip, model, path) -> None:
    """Load every parameter of ``model`` from the checkpoint; a missing or misshapen one is an error."""
    keys = open_clip.load_checkpoint(model, str(path), strict=False, weights_only=not _is_torchscript(path))
    missing = list(getattr(keys, "missing_keys", []))
    unexpected = [k for k in getattr(keys, "unexpected_keys", []) if k.split(".")[-1] not in _IGNORABLE]
    if missing or unexpected:
        shown = (missing or unexpected)[:3]
        raise RuntimeError(f"{'missing' if missing else 'unexpected'} keys {', '.join(shown)}"
                           f"{' …' if len(missing or unexpected) > 3 else ''}")


class ClipEncoder(Encoder):
    size_hint = 448  # decode JPEGs at no less than twice the model's 224 pixels
    default_batch = 32

    def __init__(self, spec: ModelSpec, located: Located, device: str, tag: str | None = None):
        self.spec = spec
        self.located = located
        self.device = device
        self.tag = tag or CLIP_DEFAULT_TAG
        torch = import_torch()
        open_clip = import_open_clip()
        self._torch = torch
        path = located.path
        with quiet_loading():
            if located.config is not None:
                name = f"local-dir:{located.config.parent}"
                try:
                    cfg = json.loads(located.config.read_text())
                    embed_dim = int(cfg["model_cfg"]["embed_dim"])
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    raise MissingWeights(f"{spec.name}: cannot read {located.config} ({exc}); it must be an open_clip config") from None
                if embed_dim != spec.dims:
                    raise MissingWeights(
                        f"{spec.name}: the model in {located.config.parent} makes {embed_dim}-d vectors, "
                        f"{spec.name} has {spec.dims} dims; give ViT-B-32 weights")
                # a config without an activation setting follows the tag (OpenAI's weights need QuickGELU)
                quick = "quick_gelu" not in cfg["model_cfg"] and bool(clip_tag_info(self.tag).get("quick_gelu"))
                model = open_clip.create_model(name, load_weights=False, pretrained_text=False, device="cpu",
                                               force_quick_gelu=quick)
            else:
                name = CLIP_ARCH
                info = clip_tag_info(self.tag)
                model = open_clip.create_model(CLIP_ARCH, pretrained=None, pretrained_text=False, device="cpu",
                                               force_quick_gelu=bool(info.get("quick_gelu")))
            try:
                _load_weights(open_clip, model, path)
            except Exception as exc:  # noqa: BLE001 - any failure to load a user's file is reported as one line
                first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                raise MissingWeights(
                    f"{spec.name}: the checkpoint {path} does not load into open_clip {name} ({first}); "
                    "give a ViT-B-32 checkpoint (with its open_clip_config.json if it is another architecture)") from None
            from open_clip.transform import PreprocessCfg, image_transform_v2

            self.preprocess = image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=False)
            self.tokenizer = open_clip.get_tokenizer(name)
        self.model = model.eval().to(device)

    def _normalised(self, features) -> np.ndarray:
        out = features.float()
        out = out / out.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return out.cpu().numpy().astype(np.float32)

    def encode_images(self, images, batch_size: int = 32) -> np.ndarray:
        torch = self._torch
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                batch = torch.stack([self.preprocess(im) for im in images[start:start + batch_size]]).to(self.device)
                out.append(self._normalised(self.model.encode_image(batch)))
        return np.concatenate(out) if out else self.empty()

    def encode_texts(self, texts, batch_size: int = 64) -> np.ndarray:
        torch = self._torch
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                tokens = self.tokenizer(list(texts[start:start + batch_size])).to(self.device)
                out.append(self._normalised(self.model.encode_text(tokens)))
        return np.concatenate(out) if out else self.empty()


def check_tag(tag: str | None) -> str:
    tag = (tag or CLIP_DEFAULT_TAG).strip()
    if not tag:
        raise CatalogError("`pretrained` is empty; give an open_clip tag such as openai", field="pretrained")
    return tag
