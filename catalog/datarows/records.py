"""Record shapes → one internal :class:`Record`.

Accepted shapes (one JSON object per record):

* **native**: ``{"global_key"?, "image" | "text", "metadata"?}``;
* **Labelbox data-row dicts** (the SDK's ``create_data_rows``/``upsert`` items):
  ``{"row_data", "global_key"?, "media_type"?, "metadata_fields"?, "metadata"?, "external_id"?,
  "id"?, "attachments"?, "embeddings"?, "dataset_id"?}``;
* **Labelbox export lines**: ``{"data_row": {"id", "global_key", "row_data", "external_id",
  "details"}, "metadata_fields", "attachments", "embeddings"?, "media_attributes", "projects", …}``;
* **Ximilar**: ``{"_id", "_url" | "_file" | "_base64", …}``: every other field is metadata.

Rules (the README's "Coming from Labelbox" states them for users):

* ``metadata_fields`` items ``{"name" | "schema_name", "value"}`` become metadata keys (an enum
  option ``{"schema_id", "schema_name"}`` as value becomes its name; a name given twice collects its
  values in a list); an item with only a ``schema_id`` is kept under the schema id as key and
  reported. ``metadata`` (an object, or a list in the same item form) is applied after them and wins.
* ``external_id`` is kept as metadata ``external_id`` and as an alias; the record's Labelbox id
  (``id``, ``data_row.id``) as an alias (:mod:`catalog.store.rowrefs`).
* ``attachments`` are kept as metadata ``attachments`` (the list as given), unless ``metadata``
  already has that key.
* Without ``media_type`` the type is inferred from ``row_data`` (:func:`infer_media`); an export's
  ``media_attributes.mime_type`` (``image/…``, ``text/…``) is used first.
* Unknown keys are ignored and reported once per file; an export's Labelbox bookkeeping
  (``projects``, ``media_attributes``, ``data_row.details``, …) is reported as not imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}

LABELBOX_KEYS = {"row_data", "global_key", "media_type", "metadata", "metadata_fields", "external_id", "id",
                 "attachments", "embeddings", "dataset_id"}
NATIVE_KEYS = {"global_key", "image", "text", "metadata", "metadata_fields", "external_id", "id",
               "attachments", "embeddings"}
EXPORT_KEYS = {"data_row", "metadata_fields", "attachments", "embeddings", "media_type"}
EXPORT_BOOKKEEPING = {"media_attributes", "projects", "model_runs", "labels", "label_details", "project_details",
                      "performance_details"}
DATA_ROW_KEYS = {"id", "global_key", "row_data", "external_id", "media_type"}
DATA_ROW_BOOKKEEPING = {"details", "dataset_id", "dataset_name"}
XIMILAR_SPECIAL = ("_id", "_url", "_file", "_base64")


@dataclass
class InlineVector:
    """One inline vector of a record: the embedding named by ``refs`` (tried in order: id, then name),
    the raw JSON vector, and ``label`` (how the record named it, for messages)."""
    refs: tuple[str, ...]
    vector: object
    label: str


@dataclass
class Record:
    kind: str                       # "image" | "text" | "base64"
    source: object                  # path/URL, text, or base64 data (checked by the reader)
    key: str | None                 # global_key; None: derived (image: its source, text: generated)
    metadata: dict = field(default_factory=dict)
    inferred: str | None = None     # "image"/"text" when the media type was inferred
    aliases: dict = field(default_factory=dict)   # {"labelbox_id"|"external_id": value}
    vectors: list[InlineVector] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (kind, name) for the per-file report


def cut(value, limit: int = 80) -> str:
    """``value`` as text for a message: its first ``limit`` characters + "… (N characters)" if longer."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def key_text(value, name: str) -> str:
    """A record's key: a non-empty string (stripped); anything else is refused."""
    if not isinstance(value, str):
        kind = {type(None): "null", bool: "true/false", dict: "an object", list: "an array"}.get(type(value), "a number")
        shown_value = f" ({cut(value)})" if value is not None else ""
        raise ValueError(f"\"{name}\" must be a non-empty string, not {kind}{shown_value}")  # noqa: TRY004
    if not value.strip():
        raise ValueError(f"\"{name}\" must be a non-empty string, not empty")
    return value.strip()


def _optional(obj: dict, name: str, label: str | None = None):
    """The stripped string under ``name``; None when absent or null; ValueError for anything else."""
    if obj.get(name) is None:
        return None
    return key_text(obj[name], label or name)


def infer_media(row_data, base: Path) -> str:
    """``image`` when ``row_data`` is an http(s)/file URL, ends in an image extension (a query or
    fragment aside) or names an existing file (relative to the record file); else ``text``."""
    if not isinstance(row_data, str):
        return "text"
    src = row_data.strip()
    if "\n" in src or not src:
        return "text"
    if src.lower().startswith(("http://", "https://", "file://")):
        return "image"
    if PurePosixPath(urlsplit(src).path if "?" in src or "#" in src else src).suffix.lower() in IMAGE_EXTENSIONS:
        return "image"
    if len(src) < 1024:
        try:
            path = Path(src)
            if (path if path.is_absolute() else base / path).is_file():
                return "image"
        except (OSError, ValueError):
            pass
    return "text"


def _metadata_fields(items, rec: Record) -> dict:
    if items is None:
        return {}
    if not isinstance(items, list):
        raise ValueError("\"metadata_fields\" must be a list of {\"name\", \"value\"} objects")
    out: dict = {}
    repeated: set[str] = set()
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise ValueError(f"\"metadata_fields\" item {i} must be an object with \"name\" and \"value\"")
        name = item.get("name", item.get("schema_name"))
        if name is None and isinstance(item.get("schema_id"), str) and item["schema_id"].strip():
            name = item["schema_id"].strip()
            rec.notes.append(("schema_only", name))
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"\"metadata_fields\" item {i} needs a \"name\" (or a \"schema_id\")")
        value = item.get("value")
        if isinstance(value, dict) and isinstance(value.get("schema_name"), str):
            value = value["schema_name"]  # an enum option, as exports write it
        name = name.strip()
        if name in repeated:
            out[name].append(value)
        elif name in out:  # a name given twice (a multi-valued field): its values, in order
            out[name] = [out[name], value]
            repeated.add(name)
        else:
            out[name] = value
    return out


def _metadata(obj: dict, rec: Record) -> dict:
    meta = _metadata_fields(obj.get("metadata_fields"), rec)
    extra = obj.get("metadata")
    if isinstance(extra, list):  # the metadata_fields item form under "metadata"
        extra = _metadata_fields(extra, rec)
    if extra is not None and not isinstance(extra, dict):
        raise ValueError("\"metadata\" must be an object")
    meta.update(extra or {})
    return meta


def _vectors(items, rec: Record) -> None:
    if items is None:
        return
    if not isinstance(items, list):
        raise ValueError("\"embeddings\" must be a list of {\"embedding_id\", \"vector\"} objects")
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise ValueError(f"\"embeddings\" item {i} must be an object with \"embedding_id\" and \"vector\"")
        if "embedding_id" in item:  # the SDK's create/upsert form
            ref = item["embedding_id"]
            if not isinstance(ref, str) or not ref.strip():
                raise ValueError(f"\"embeddings\" item {i}: \"embedding_id\" must be an embedding id or name")
            if "vector" not in item:
                raise ValueError(f"\"embeddings\" item {i} has no \"vector\"")
            rec.vectors.append(InlineVector((ref.strip(),), item["vector"], repr(ref.strip())))
        elif "values" in item:  # an export's form: {"id", "name", "is_custom", "values": [{"value"}]}
            name = item.get("name") if isinstance(item.get("name"), str) else None
            if item.get("is_custom") is False:
                rec.notes.append(("precomputed", name or str(item.get("id"))))
                continue
            refs = tuple(r.strip() for r in (item.get("id"), name) if isinstance(r, str) and r.strip())
            if not refs:
                raise ValueError(f"\"embeddings\" item {i} names no embedding (\"id\" or \"name\")")
            values = item["values"]
            if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], dict):
                raise ValueError(f"\"embeddings\" item {i}: \"values\" must hold exactly one {{\"value\": [...]}}")
            rec.vectors.append(InlineVector(refs, values[0].get("value"), repr(name or refs[0])))
        else:
            raise ValueError(f"\"embeddings\" item {i} needs \"embedding_id\" and \"vector\"")


def _notes(obj: dict, known: set, bookkeeping: set, rec: Record, prefix: str = "") -> None:
    for k in obj:
        if k in bookkeeping:
            rec.notes.append(("ignored", prefix + k))
        elif k not in known:
            rec.notes.append(("unknown", prefix + str(k)))


def normalise(obj: dict, base: Path) -> Record:
    """The :class:`Record` for one parsed JSON object; ValueError(reason) refuses the record."""
    if "_id" in obj:  # Ximilar: every other field is metadata
        key = key_text(obj["_id"], "_id")
        meta = {k: v for k, v in obj.items() if k not in XIMILAR_SPECIAL}
        if "_base64" in obj:
            return Record("base64", obj["_base64"], key, meta)
        src = obj.get("_url") or obj.get("_file")
        if not src:
            raise ValueError("Ximilar record needs one of \"_url\", \"_file\" or \"_base64\"")
        return Record("image", src, key, meta)
    rec = Record("image", None, None)
    if "data_row" in obj:  # a Labelbox export line
        row = obj["data_row"]
        if not isinstance(row, dict):
            raise ValueError("\"data_row\" must be an object (a Labelbox export line)")
        _notes(obj, EXPORT_KEYS, EXPORT_BOOKKEEPING, rec)
        _notes(row, DATA_ROW_KEYS, DATA_ROW_BOOKKEEPING, rec, "data_row.")
        if "row_data" not in row:
            raise ValueError("\"data_row\" has no \"row_data\"")
        fields = {k: v for k, v in row.items() if not (k == "global_key" and v is None)}  # exports write null
        fields.update({k: obj[k] for k in ("metadata_fields", "attachments", "embeddings", "media_type") if k in obj})
        mime = (obj.get("media_attributes") or {}).get("mime_type") if isinstance(obj.get("media_attributes"), dict) else None
        return _labelbox(fields, base, rec, mime)
    if "row_data" in obj:
        _notes(obj, LABELBOX_KEYS, set(), rec)
        return _labelbox(obj, base, rec, None)
    _notes(obj, NATIVE_KEYS, set(), rec)
    if "text" in obj:
        rec.kind, rec.source = "text", obj["text"]
    elif "image" in obj:
        rec.source = obj["image"]
    else:
        raise ValueError("record needs \"image\", \"text\", \"row_data\", a Labelbox export's \"data_row\" "
                         "or Ximilar \"_url\"/\"_file\"/\"_base64\"")
    _common(obj, rec)
    return rec


def _common(obj: dict, rec: Record) -> None:
    if "global_key" in obj:
        rec.key = key_text(obj["global_key"], "global_key")
    rec.metadata = _metadata(obj, rec)
    external = _optional(obj, "external_id")
    if external is not None:
        rec.aliases["external_id"] = external
        rec.metadata.setdefault("external_id", external)
    source_id = _optional(obj, "id")
    if source_id is not None:
        rec.aliases["labelbox_id"] = source_id
    if obj.get("attachments") is not None:
        if not isinstance(obj["attachments"], list):
            raise ValueError("\"attachments\" must be a list")
        rec.metadata.setdefault("attachments", obj["attachments"])
    _vectors(obj.get("embeddings"), rec)


def _labelbox(obj: dict, base: Path, rec: Record, mime) -> Record:
    media = obj.get("media_type")
    rec.source = obj["row_data"]
    if media is None:
        if isinstance(mime, str) and mime.lower().startswith(("image/", "text/")):
            rec.inferred = mime.lower().split("/")[0]
        else:
            rec.inferred = infer_media(rec.source, base)
        media = rec.inferred
    media = str(media).lower()
    if media not in ("image", "text"):
        raise ValueError(f"media_type {cut(obj.get('media_type'))!r} is not supported (IMAGE or TEXT)")
    rec.kind = media
    _common(obj, rec)
    return rec
