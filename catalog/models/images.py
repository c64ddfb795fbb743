"""Opening images for the models: paths, bytes, PIL images and http(s) URLs, in any common mode.

Every model sees an upright 8-bit RGB image: EXIF orientation is applied, transparency is
composited on white, palette / CMYK / 1-bit / 16-bit / float images are converted with their full
range kept. Failures come back as a one-line reason instead of an exception, so a compute can skip
the row and list it.
"""

from __future__ import annotations

import io
import os
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

MAX_PIXELS = 89_478_485  # Pillow's decompression-bomb limit, enforced as an error
MAX_DOWNLOAD = 50 * 1024 * 1024


class Unreadable(Exception):
    """An image that cannot be opened; the message is the one-line reason."""


def fetch_timeout() -> float:
    """Seconds to wait for an http(s) image (``$CATALOG_FETCH_TIMEOUT``, default 5)."""
    try:
        return max(0.1, float(os.environ.get("CATALOG_FETCH_TIMEOUT", "5")))
    except ValueError:
        return 5.0


def fetch_url(url: str, timeout: float | None = None) -> bytes:
    """The bytes at ``url`` (bounded wait and size) or :class:`Unreadable` with the reason."""
    timeout = fetch_timeout() if timeout is None else timeout
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "embedding-catalog"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - http(s) only, checked by caller
            data = resp.read(MAX_DOWNLOAD + 1)
    except urllib.error.HTTPError as exc:
        raise Unreadable(f"cannot fetch URL (HTTP {exc.code})") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreadable(f"cannot fetch URL within {timeout:g}s ({reason}); download it and import the file instead") from None
    if len(data) > MAX_DOWNLOAD:
        raise Unreadable(f"URL content is larger than {MAX_DOWNLOAD // (1024 * 1024)} MiB")
    return data


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and 32-bit integer or float grayscale to 8-bit L, keeping the full range."""
    arr = np.asarray(img)
    if img.mode.startswith("I;16"):
        out = arr.astype(np.float64) / 257.0
    else:
        arr = arr.astype(np.float64)
        finite = arr[np.isfinite(arr)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        if img.mode == "F" and lo >= 0.0 and hi <= 1.0:
            out = arr * 255.0
        elif lo >= 0.0 and hi <= 255.0:
            out = arr
        elif lo >= 0.0 and hi <= 65535.0:
            out = arr / 257.0
        else:
            out = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
    out = np.nan_to_num(out, nan=0.0, posinf=255.0, neginf=0.0)
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "L")


def to_rgb(img: Image.Image) -> Image.Image:
    """An upright 8-bit RGB copy of ``img`` (transparency composited on white)."""
    try:
        img = ImageOps.exif_transpose(img)
    except (OSError, ValueError, TypeError, KeyError, ZeroDivisionError):  # a broken EXIF block: keep as stored
        pass
    mode = img.mode
    if mode.startswith("I") or mode == "F":
        img = _to_8bit(img)
    elif mode == "1":
        img = img.convert("L")
    elif mode == "P":
        img = img.convert("RGBA")
    elif mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img


def open_image(source, size_hint: int | None = None) -> Image.Image:
    """An RGB image from a path, bytes, a PIL image or an http(s) URL; :class:`Unreadable` if not.

    ``size_hint`` lets JPEG decoding skip detail the model will not use (draft mode).
    """
    if isinstance(source, Image.Image):
        return to_rgb(source)
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        source = fetch_url(source)
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            fp = io.BytesIO(bytes(source))
        else:
            path = Path(source)
            if not path.is_file():
                raise Unreadable("file not found")
            fp = path
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise Unreadable(f"image is {img.width}x{img.height} pixels, over the {MAX_PIXELS:,}-pixel limit")
                if size_hint and img.format == "JPEG":
                    img.draft("RGB", (size_hint, size_hint))
                img.load()
                return to_rgb(img)
    except Unreadable:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Unreadable(f"decompression bomb ({str(exc).split('. ')[0]})") from None
    except Image.UnidentifiedImageError:
        raise Unreadable("not a supported image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, TypeError) as exc:
        msg = str(exc) or type(exc).__name__
        raise Unreadable(f"cannot decode image ({msg})") from None
