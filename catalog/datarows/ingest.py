"""Reading data rows from disk: image files, folders, .zip archives and NDJSON record files.

Produces records ``{"global_key", "media_type", "row_data", "metadata"}``, ``(source, reason)`` for
what was skipped and ``(source, note)`` warnings (a global_key repeated within one record file: the
later record is kept). Writing them is :class:`catalog.datarows.DataRows`' job.

Limits: an image inside a .zip archive may be at most ``MAX_IMAGE_BYTES`` (64 MiB) uncompressed;
bigger entries are skipped without being read. Record metadata may nest at most ``MAX_DEPTH`` (64)
objects/arrays deep; deeper records are skipped. A damaged .gz record file is skipped as a whole
(none of its records are imported). In a folder, symbolic links to folders and dangling links are
listed as skipped and never followed; links to files are imported. Long values echoed in messages
are cut to their first 80 characters.
"""

from __future__ import annotations

import base64
import binascii
import csv
import gzip
import hashlib
import io
import os
import warnings
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import orjson
from PIL import Image

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
RECORD_EXTENSIONS = {".ndjson", ".jsonl"}
MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb limit, enforced as an error here
MAX_IMAGE_BYTES = 64 * 1024 * 1024  # the most an image inside a .zip may be, uncompressed
MAX_DEPTH = 64  # the deepest a record's metadata may nest (objects and arrays)
_GZIP_ERRORS = (gzip.BadGzipFile, zlib.error, EOFError)


def cut(value, limit: int = 80) -> str:
    """``value`` as text for a message: its first ``limit`` characters + "… (N characters)" if longer."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def _too_deep(value, limit: int = MAX_DEPTH) -> bool:
    """True if ``value`` nests more than ``limit`` objects/arrays deep (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > limit:
                return True
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))
    return False


def _key(value, name: str) -> str:
    """A record's key: a non-empty string (stripped); anything else is refused."""
    if not isinstance(value, str):
        kind = {type(None): "null", bool: "true/false", dict: "an object", list: "an array"}.get(type(value), "a number")
        shown_value = f" ({cut(value)})" if value is not None else ""
        raise ValueError(f"\"{name}\" must be a non-empty string, not {kind}{shown_value}")  # noqa: TRY004
    if not value.strip():
        raise ValueError(f"\"{name}\" must be a non-empty string, not empty")
    return value.strip()


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
        self.warnings: list[tuple[str, str]] = []

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
        for dirpath, dirnames, filenames in os.walk(root):  # never follows links to folders
            here = Path(dirpath)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for d in dirnames[:]:
                if (here / d).is_symlink():
                    dirnames.remove(d)
                    self.skipped.append((str(here / d), "link to a folder (not followed)"))
            for p in sorted(here / n for n in filenames if not n.startswith(".")):
                if not p.exists():
                    self.skipped.append((str(p), "dangling link (its target does not exist)"))
                elif not p.is_file():
                    self.skipped.append((str(p), "not a regular file"))
                elif p.suffix.lower() in IMAGE_EXTENSIONS:
                    items.append((p, p.relative_to(root).as_posix()))
                else:
                    self.skipped.append((str(p), f"not an image ({cut(p.suffix) or 'no extension'})"))
        self._images(sorted(items, key=lambda it: it[1]))

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
                label = f"{archive}:{cut(info.filename)}"
                if name.suffix.lower() not in IMAGE_EXTENSIONS:
                    self.skipped.append((label, f"not an image ({cut(name.suffix) or 'no extension'})"))
                    continue
                too_big = f"image is larger than the {MAX_IMAGE_BYTES // 2**20} MiB limit for an archive entry"
                if info.file_size > MAX_IMAGE_BYTES:
                    self.skipped.append((label, f"{too_big} ({info.file_size:,} bytes)"))
                    continue
                try:
                    with zf.open(info) as fh:  # bounded: never more than the limit + 1 byte
                        data = fh.read(MAX_IMAGE_BYTES + 1)
                except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, zlib.error) as exc:
                    self.skipped.append((label, f"cannot extract ({cut(str(exc))})"))
                    continue
                if len(data) > MAX_IMAGE_BYTES:
                    self.skipped.append((label, too_big))
                    continue
                reason = check_image(data)
                if reason:
                    self.skipped.append((label, reason))
                    continue
                target = dest.joinpath(*name.parts)
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                except OSError as exc:  # a name too long for the file system, a full disk, …
                    self.skipped.append((label, f"cannot extract into the media folder ({exc.strerror or exc})"))
                    continue
                items.append((target, name.as_posix()))
        for target, key in items:
            self.records.append({"global_key": key, "media_type": "image", "row_data": str(target), "metadata": {}})

    # -- record files ---------------------------------------------------------------------------
    def _records(self, path: Path) -> None:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        base = path.parent
        # kept only if the whole file could be read: a damaged .gz adds nothing
        marks = (len(self.records), len(self.skipped), len(self.warnings))
        seen: dict[str, int] = {}
        try:
            with opener(path, "rb") as fh:
                for line_no, raw in enumerate(fh, start=1):
                    line = raw.strip()
                    if line.endswith(b","):
                        line = line[:-1].rstrip()
                    if not line:
                        continue
                    where = f"{path}:{line_no}"
                    before = len(self.records)
                    try:
                        obj = orjson.loads(line)
                        if not isinstance(obj, dict):
                            raise ValueError("expected a JSON object")
                        if _too_deep(obj, MAX_DEPTH + 1):  # the record itself is one level
                            raise ValueError(f"metadata nests more than {MAX_DEPTH} levels deep")
                        self._record(obj, base, where)
                    except orjson.JSONDecodeError as exc:
                        reason = str(exc).split(":")[0]
                        deep = "depth" in reason or "ecursion" in reason
                        self.skipped.append((where, f"metadata nests more than {MAX_DEPTH} levels deep" if deep
                                             else f"malformed JSON ({reason})"))
                    except ValueError as exc:
                        self.skipped.append((where, str(exc)))
                    for rec in self.records[before:]:
                        key = rec["global_key"]
                        if key in seen:
                            note = f"global_key {cut(key)!r} also appears on line {seen[key]}; this later record replaces it"
                            self.warnings.append((where, note))
                        seen[key] = line_no
        except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            gz = isinstance(exc, _GZIP_ERRORS)
            del self.records[marks[0]:], self.skipped[marks[1]:], self.warnings[marks[2]:]
            what = "damaged gzip file" if gz else "cannot read"
            self.skipped.append((str(path), f"{what} ({cut(str(exc) or type(exc).__name__)}); none of its records were imported"))

    def _record(self, obj: dict, base: Path, where: str) -> None:
        meta = obj.get("metadata")
        if "_id" in obj:  # Ximilar style: every other field is metadata
            key = _key(obj["_id"], "_id")
            meta = {k: v for k, v in obj.items() if k not in ("_id", "_url", "_file", "_base64")}
            if "_base64" in obj:
                self._base64_image(key, obj["_base64"], meta, where)
                return
            src = obj.get("_url") or obj.get("_file")
            if not src:
                raise ValueError("Ximilar record needs one of \"_url\", \"_file\" or \"_base64\"")
            self._image_ref(key, src, meta, base, where)
            return
        key = obj.get("global_key")
        if "global_key" in obj:
            key = _key(key, "global_key")
        if isinstance(meta, list):  # Labelbox metadata_fields style: [{"name", "value"}]
            meta = {m.get("name"): m.get("value") for m in meta if isinstance(m, dict) and m.get("name")}
        if meta is not None and not isinstance(meta, dict):
            raise ValueError("\"metadata\" must be an object")
        if "row_data" in obj:  # Labelbox style
            media = str(obj.get("media_type") or "IMAGE").lower()
            if media not in ("image", "text"):
                raise ValueError(f"media_type {cut(obj.get('media_type'))!r} is not supported (IMAGE or TEXT)")
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
        try:
            found = path.is_file()
        except OSError as exc:  # a name too long for the file system, …
            raise ValueError(f"image {cut(src)} cannot be looked up ({exc.strerror or type(exc).__name__})") from None
        if not found:
            raise ValueError(f"image {cut(src)} not found (paths resolve relative to the record file)")
        reason = check_image(path)
        if reason:
            self.skipped.append((f"{where} ({cut(src)})", reason))
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
            if not isinstance(obj, dict) or not isinstance(obj.get("global_key"), str) or not obj["global_key"].strip():
                problems.append((f"{path}:{line_no}", "expected an object with a non-empty string \"global_key\""))
                continue
            if _too_deep(obj, MAX_DEPTH + 1):
                problems.append((f"{path}:{line_no}", f"metadata nests more than {MAX_DEPTH} levels deep"))
                continue
            key = obj.pop("global_key").strip()
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
