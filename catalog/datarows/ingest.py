"""Reading data rows from disk: image files, folders, .zip archives and NDJSON record files.

Produces plain records ``{"global_key", "media_type", "row_data", "metadata"}`` and a list of
``(source, reason)`` for what was skipped. Writing them is :class:`catalog.datarows.DataRows`' job.
"""

from __future__ import annotations

import base64
import binascii
import csv
import gzip
import hashlib
import io
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import orjson
from PIL import Image

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
RECORD_EXTENSIONS = {".ndjson", ".jsonl"}
MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb limit, enforced as an error here


def check_image(source) -> str | None:
    """None if ``source`` (a path or bytes) is a complete, decodable image; else the reason."""
    try:
        fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as img:
                if img.width * img.height > MAX_PIXELS:
                    return f"image is {img.width}x{img.height} pixels, over the {MAX_PIXELS:,}-pixel limit (decompression bomb?)"
                img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return f"decompression bomb: {exc}".split(". ")[0]
    except Image.UnidentifiedImageError:
        return "not a supported image (unrecognised format)"
    except (OSError, SyntaxError, ValueError) as exc:
        msg = str(exc) or type(exc).__name__
        if "truncated" in msg.lower():
            return f"truncated image ({msg})"
        return f"corrupt image ({msg})"
    return None


class Ingest:
    """Collects records and skips from any number of sources."""

    def __init__(self, media_dir: Path, copy_files: bool = False):
        self.media_dir = media_dir
        # copy local image files into media_dir (for sources that are removed after the import: uploads)
        self.copy_files = copy_files
        self.records: list[dict] = []
        self.skipped: list[tuple[str, str]] = []

    def _stored(self, path: Path) -> str:
        """Where a row's local image lives: the file itself, or its copy under ``media_dir/files``."""
        path = Path(path).absolute()
        if not self.copy_files:
            return str(path)
        try:
            data = path.read_bytes()
            target = self.media_dir / "files" / hashlib.sha1(data).hexdigest()[:20] / path.name
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        except OSError as exc:
            raise ValueError(f"cannot keep a copy in the catalog's media folder ({exc.strerror or exc})") from None
        return str(target)

    # -- entry point ----------------------------------------------------------------------------
    def add_path(self, path: Path) -> None:
        path = Path(path)
        if not path.exists():
            self.skipped.append((str(path), "no such file or folder"))
        elif path.is_dir():
            self._folder(path)
        elif path.suffix.lower() == ".zip":
            self._zip(path)
        elif path.suffix.lower() in RECORD_EXTENSIONS or path.name.lower().endswith((".ndjson.gz", ".jsonl.gz")):
            self._records(path)
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            self._images([(path, path.name)])
        else:
            self.skipped.append((str(path), f"unsupported file type {path.suffix or '(none)'}; give images, folders, .zip or .ndjson"))

    # -- images ---------------------------------------------------------------------------------
    def _images(self, items: list[tuple[Path, str]], metadata=None) -> None:
        with ThreadPoolExecutor(max_workers=2) as pool:
            reasons = list(pool.map(lambda it: check_image(it[0]), items))
        for (path, key), reason in zip(items, reasons):
            if not reason:
                try:
                    stored = self._stored(path)
                except ValueError as exc:
                    reason = str(exc)
            if reason:
                self.skipped.append((str(path), reason))
            else:
                self.records.append({"global_key": key, "media_type": "image",
                                     "row_data": stored, "metadata": dict(metadata or {})})

    def _folder(self, root: Path) -> None:
        items = []
        for p in sorted(root.rglob("*")):
            if not p.is_file() or any(part.startswith(".") for part in p.relative_to(root).parts):
                continue
            if p.suffix.lower() in IMAGE_EXTENSIONS:
                items.append((p, p.relative_to(root).as_posix()))
            else:
                self.skipped.append((str(p), f"not an image ({p.suffix or 'no extension'})"))
        self._images(items)

    def _zip(self, archive: Path) -> None:
        try:
            zf = zipfile.ZipFile(archive)
        except (zipfile.BadZipFile, OSError) as exc:
            self.skipped.append((str(archive), f"not a readable zip archive ({exc})"))
            return
        digest = hashlib.sha1(str(archive.absolute()).encode()).hexdigest()[:8]
        dest = self.media_dir / f"{archive.stem}-{digest}"
        items = []
        with zf:
            for info in zf.infolist():
                name = PurePosixPath(info.filename)
                if info.is_dir() or any(part.startswith(".") or part == ".." for part in name.parts) or name.is_absolute():
                    continue
                label = f"{archive}:{info.filename}"
                if name.suffix.lower() not in IMAGE_EXTENSIONS:
                    self.skipped.append((label, f"not an image ({name.suffix or 'no extension'})"))
                    continue
                if info.file_size > 512 * 1024 * 1024:
                    self.skipped.append((label, "file larger than 512 MiB"))
                    continue
                try:
                    data = zf.read(info)
                except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
                    self.skipped.append((label, f"cannot extract ({exc})"))
                    continue
                reason = check_image(data)
                if reason:
                    self.skipped.append((label, reason))
                    continue
                target = dest.joinpath(*name.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                items.append((target, name.as_posix()))
        for target, key in items:
            self.records.append({"global_key": key, "media_type": "image", "row_data": str(target), "metadata": {}})

    # -- record files ---------------------------------------------------------------------------
    def _records(self, path: Path) -> None:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        base = path.parent
        try:
            with opener(path, "rb") as fh:
                for line_no, raw in enumerate(fh, start=1):
                    line = raw.strip()
                    if line.endswith(b","):
                        line = line[:-1].rstrip()
                    if not line:
                        continue
                    where = f"{path}:{line_no}"
                    try:
                        obj = orjson.loads(line)
                        if not isinstance(obj, dict):
                            raise ValueError("expected a JSON object")
                        self._record(obj, base, where)
                    except orjson.JSONDecodeError as exc:
                        self.skipped.append((where, f"malformed JSON ({str(exc).split(':')[0]})"))
                    except ValueError as exc:
                        self.skipped.append((where, str(exc)))
        except OSError as exc:
            self.skipped.append((str(path), f"cannot read ({exc})"))

    def _record(self, obj: dict, base: Path, where: str) -> None:
        meta = obj.get("metadata")
        if "_id" in obj:  # Ximilar style: every other field is metadata
            key = obj["_id"]
            meta = {k: v for k, v in obj.items() if k not in ("_id", "_url", "_file", "_base64")}
            if "_base64" in obj:
                self._base64_image(str(key), obj["_base64"], meta, where)
                return
            src = obj.get("_url") or obj.get("_file")
            if not src:
                raise ValueError("Ximilar record needs one of \"_url\", \"_file\" or \"_base64\"")
            self._image_ref(str(key), src, meta, base, where)
            return
        key = obj.get("global_key")
        if isinstance(meta, list):  # Labelbox metadata_fields style: [{"name", "value"}]
            meta = {m.get("name"): m.get("value") for m in meta if isinstance(m, dict) and m.get("name")}
        if meta is not None and not isinstance(meta, dict):
            raise ValueError("\"metadata\" must be an object")
        if "row_data" in obj:  # Labelbox style
            media = str(obj.get("media_type") or "IMAGE").lower()
            if media not in ("image", "text"):
                raise ValueError(f"media_type {obj.get('media_type')!r} is not supported (IMAGE or TEXT)")
            if media == "text":
                self._text(key, obj["row_data"], meta)
            else:
                self._image_ref(key, obj["row_data"], meta, base, where)
        elif "text" in obj:
            self._text(key, obj["text"], meta)
        elif "image" in obj:
            self._image_ref(key, obj["image"], meta, base, where)
        else:
            raise ValueError("record needs \"image\", \"text\", \"row_data\" or Ximilar \"_url\"/\"_file\"/\"_base64\"")

    def _text(self, key, text, meta) -> None:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("\"text\" must be a non-empty string")
        if not isinstance(key, str) or not key.strip():
            raise ValueError("a text record needs a \"global_key\"")
        self.records.append({"global_key": key.strip(), "media_type": "text", "row_data": text, "metadata": dict(meta or {})})

    def _image_ref(self, key, src, meta, base: Path, where: str) -> None:
        if not isinstance(src, str) or not src.strip():
            raise ValueError("image reference must be a non-empty path or URL")
        if key is not None and (not isinstance(key, str) or not key.strip()):
            raise ValueError("\"global_key\" must be a non-empty string")
        if src.startswith(("http://", "https://")):
            self.records.append({"global_key": (key or src).strip(), "media_type": "image", "row_data": src,
                                 "metadata": dict(meta or {})})
            return
        path = Path(src[7:] if src.startswith("file://") else src)
        if not path.is_absolute():
            path = base / path
        if not path.is_file():
            raise ValueError(f"image {src} not found (paths resolve relative to the record file)")
        reason = check_image(path)
        if reason:
            self.skipped.append((f"{where} ({src})", reason))
            return
        self.records.append({"global_key": (key or src).strip(), "media_type": "image",
                             "row_data": self._stored(path), "metadata": dict(meta or {})})

    def _base64_image(self, key: str, data, meta, where: str) -> None:
        if not isinstance(data, str):
            raise ValueError("\"_base64\" must be a string")
        if "," in data[:100] and data.startswith("data:"):
            data = data.split(",", 1)[1]
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("\"_base64\" is not valid base64") from None
        reason = check_image(raw)
        if reason:
            self.skipped.append((where, reason))
            return
        fmt = (Image.open(io.BytesIO(raw)).format or "png").lower()
        target = self.media_dir / "base64" / f"{hashlib.sha1(raw).hexdigest()}.{fmt}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(raw)
        self.records.append({"global_key": key, "media_type": "image", "row_data": str(target), "metadata": dict(meta or {})})


def read_metadata_file(path: Path) -> tuple[dict[str, dict], list[tuple[str, str]]]:
    """``{global_key: metadata}`` from a CSV (column ``global_key``) or NDJSON file."""
    out: dict[str, dict] = {}
    problems: list[tuple[str, str]] = []
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "global_key" not in reader.fieldnames:
                raise ValueError(f"metadata file {path} needs a header with a global_key column")
            for line_no, row in enumerate(reader, start=2):
                key = (row.pop("global_key") or "").strip()
                if not key:
                    problems.append((f"{path}:{line_no}", "empty global_key"))
                    continue
                out.setdefault(key, {}).update({k: _csv_value(v) for k, v in row.items() if k})
        return out, problems
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            line = raw.strip().rstrip(b",")
            if not line:
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                problems.append((f"{path}:{line_no}", "malformed JSON"))
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get("global_key"), str):
                problems.append((f"{path}:{line_no}", "expected an object with a \"global_key\""))
                continue
            key = obj.pop("global_key")
            meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else obj
            out.setdefault(key, {}).update(meta)
    return out, problems


def _csv_value(text):
    if text is None:
        return None
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    for cast in (int, float):
        try:
            value = cast(t)
        except ValueError:
            continue
        return value if value == value and value not in (float("inf"), float("-inf")) else text
    return text
