"""Reading data rows from disk: image files, folders, .zip archives and record files (JSON lines or
a JSON array; the shapes are :mod:`.records`', the files :mod:`.recordfiles`').

Produces records ``{"global_key", "media_type", "row_data", "metadata", "aliases"}``, ``(source,
reason)`` for what was skipped, ``(source, note)`` warnings (a global_key repeated within one record
file: the later record is kept; unknown keys, once per file) and the inline vectors of the records
(:mod:`.inline`). Writing them is :class:`catalog.datarows.DataRows`' job.

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
import contextlib
import gzip
import hashlib
import io
import os
import warnings
import zipfile
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from PIL import Image

from ..store.space import disk_full, is_out_of_space
from .inline import InlineVectors
from .recordfiles import BrokenFile, is_record_file, read_metadata_file, read_objects, too_deep
from .records import IMAGE_EXTENSIONS, cut, normalise

RECORD_EXTENSIONS = {".ndjson", ".jsonl", ".json"}
MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb limit, enforced as an error here
MAX_IMAGE_BYTES = 64 * 1024 * 1024  # the most an image inside a .zip may be, uncompressed
MAX_DEPTH = 64  # the deepest a record's metadata may nest (objects and arrays)
_GZIP_ERRORS = (gzip.BadGzipFile, zlib.error, EOFError)


def text_key(text: str) -> str:
    """The global_key a text row without one gets: ``text-`` and the first 32 hex digits of the
    SHA-256 of its text (UTF-8), so the same text always gets the same key."""
    return "text-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _lines(numbers: list[int], total: int) -> str:
    shown = ", ".join(str(n) for n in numbers[:5])
    more = f" and {total - 5} more" if total > 5 else ""
    return f"line{'s' if total != 1 else ''} {shown}{more}"


_NOTE_WORDS = {
    "unknown": "unknown key {name!r} ignored ({lines})",
    "ignored": "{name!r} not imported (Labelbox bookkeeping; {lines})",
    "schema_only": ("metadata_fields item with only schema_id {name!r} (no name): kept as metadata key "
                    "{name!r} ({lines})"),
    "precomputed": ("vectors of Labelbox's precomputed embedding {name!r} not imported (off-the-shelf vectors "
                    "are computed here with their model; {lines})"),
}


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

    def __init__(self, media_dir: Path, copy_files: bool = False, embedding_for=None):
        self.media_dir = media_dir
        # inline vectors of records; ``embedding_for(ref)`` finds an embedding by id or name
        self.vectors = InlineVectors(embedding_for)
        self.inferred: Counter = Counter()  # records whose media type was inferred, by type
        self.generated_keys = 0  # text rows that got a generated global_key
        # copy local image files into media_dir (for sources that are removed after the import: uploads)
        self.copy_files = copy_files
        self.records: list[dict] = []
        self.created: list[Path] = []  # files this import wrote into the media folder, in order
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
            self._write_media(target, data)
        except OSError as exc:
            raise ValueError(f"cannot keep a copy in the catalog's media folder ({exc.strerror or exc})") from None
        return str(target)

    def _write_media(self, target: Path, data: bytes) -> None:
        """Put an image into the media folder (once: the names carry a content hash) and remember it, so
        that a file that turns out unreadable, or an import that does not happen, takes it away again.
        A full disk stops the import (:class:`DiskFull`); other failures are the caller's to report."""
        if target.is_file():
            return
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.created.append(target)
            target.write_bytes(data)
        except OSError as exc:
            with contextlib.suppress(OSError):
                target.unlink(missing_ok=True)
            if is_out_of_space(exc):
                raise disk_full(self.media_dir, needed=len(data), what="an image",
                                nothing="nothing was imported") from None
            raise

    def discard_media(self, since: int = 0) -> None:
        """Remove the media files this import wrote from position ``since`` on (and folders left empty)."""
        for target in reversed(self.created[since:]):
            with contextlib.suppress(OSError):
                target.unlink(missing_ok=True)
            folder = target.parent
            while folder != self.media_dir and folder.is_relative_to(self.media_dir):
                try:
                    folder.rmdir()  # only when empty
                except OSError:
                    break
                folder = folder.parent
        del self.created[since:]

    @contextlib.contextmanager
    def media_kept_on_success(self):
        """Around the whole import: any error (a refusal, a failed write, Ctrl-C) removes what it copied."""
        try:
            yield
        except BaseException:
            self.discard_media()
            raise

    # -- entry point ----------------------------------------------------------------------------
    def add_path(self, path: Path) -> None:
        path = Path(path)
        if not path.exists():
            self.skipped.append((str(path), "no such file or folder"))
        elif path.is_dir():
            self._folder(path)
        elif path.suffix.lower() == ".zip":
            self._zip(path)
        elif is_record_file(path):
            self._records(path)
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            self._images([(path, path.name)])
        else:
            self.skipped.append((str(path), f"unsupported file type {path.suffix or '(none)'}; give images, folders, .zip, .ndjson or .json"))

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
                    self._write_media(target, data)
                except OSError as exc:  # a name too long for the file system, …
                    self.skipped.append((label, f"cannot extract into the media folder ({exc.strerror or exc})"))
                    continue
                items.append((target, name.as_posix()))
        for target, key in items:
            self.records.append({"global_key": key, "media_type": "image", "row_data": str(target), "metadata": {}})

    # -- record files ---------------------------------------------------------------------------
    def _records(self, path: Path) -> None:
        base = path.parent
        # kept only if the whole file could be read: a damaged .gz or a broken array adds nothing
        marks = (len(self.records), len(self.skipped), len(self.warnings), dict(self.inferred), self.generated_keys,
                 len(self.created))
        vector_marks = self.vectors.mark()
        seen: dict[str, int] = {}
        notes: dict[tuple[str, str], list] = {}
        try:
            for line_no, obj in read_objects(path):
                where = f"{path}:{line_no}"
                before = (len(self.records), len(self.skipped))
                items = obj.get("embeddings") if isinstance(obj, dict) and isinstance(obj.get("embeddings"), list) else []
                rec = None
                try:
                    if isinstance(obj, ValueError):
                        raise obj
                    if not isinstance(obj, dict):
                        raise ValueError("expected a JSON object")
                    if too_deep(obj, MAX_DEPTH + 1):  # the record itself is one level
                        raise ValueError(f"metadata nests more than {MAX_DEPTH} levels deep")
                    rec = normalise(obj, base)
                    for kind, name in rec.notes:
                        entry = notes.setdefault((kind, name), [[], 0])
                        if len(entry[0]) < 5:
                            entry[0].append(line_no)
                        entry[1] += 1
                    self._record(rec, base, where)
                except ValueError as exc:
                    self.skipped.append((where, str(exc)))
                added = self.records[before[0]:]
                if added and rec is not None:
                    added[-1]["aliases"] = rec.aliases
                    if rec.inferred:
                        self.inferred[rec.inferred] += 1
                    if rec.vectors:
                        self.vectors.add(where, added[-1]["global_key"], rec.vectors)
                elif rec.vectors if rec is not None else items:
                    reason = self.skipped[-1][1] if len(self.skipped) > before[1] else "skipped"
                    self.vectors.refuse(where, rec.vectors if rec is not None else items, reason)
                for r in added:
                    key = r["global_key"]
                    if key in seen:
                        note = f"global_key {cut(key)!r} also appears on line {seen[key]}; this later record replaces it"
                        self.warnings.append((where, note))
                    seen[key] = line_no
        except (OSError, EOFError, zlib.error, BrokenFile) as exc:  # gzip.BadGzipFile is an OSError
            gz = isinstance(exc, _GZIP_ERRORS)
            del self.records[marks[0]:], self.skipped[marks[1]:], self.warnings[marks[2]:]
            self.inferred, self.generated_keys = Counter(marks[3]), marks[4]
            self.discard_media(marks[5])  # the images its records had already put in the media folder
            if isinstance(exc, BrokenFile):  # our own message, bounded
                reason = str(exc)
            else:
                reason = f"{'damaged gzip file' if gz else 'cannot read'} ({cut(str(exc) or type(exc).__name__)})"
            if self.vectors.reset(vector_marks):  # the file's records carried inline vectors
                self.vectors.refuse(str(path), None, reason)
            self.skipped.append((str(path), f"{reason}; none of its records were imported"))
            return
        for (kind, name), (lines, total) in notes.items():
            self.warnings.append((str(path), _NOTE_WORDS[kind].format(name=cut(name), lines=_lines(lines, total))))

    def _record(self, rec, base: Path, where: str) -> None:
        if rec.kind == "base64":
            self._base64_image(rec.key, rec.source, rec.metadata, where)
        elif rec.kind == "text":
            self._text(rec.key, rec.source, rec.metadata)
        else:
            self._image_ref(rec.key, rec.source, rec.metadata, base, where)

    def _text(self, key, text, meta) -> None:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("\"text\" must be a non-empty string")
        if key is None:
            key = text_key(text)
            self.generated_keys += 1
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
        try:
            self._write_media(target, raw)
        except OSError as exc:
            raise ValueError(f"cannot keep the image in the catalog's media folder ({exc.strerror or exc})") from None
        self.records.append({"global_key": key, "media_type": "image", "row_data": str(target), "metadata": dict(meta or {})})


__all__ = ["Ingest", "check_image", "cut", "read_metadata_file", "text_key", "IMAGE_EXTENSIONS",
           "RECORD_EXTENSIONS", "MAX_PIXELS", "MAX_IMAGE_BYTES", "MAX_DEPTH"]
