"""Data rows: the :class:`DataRows` service (import, lookup, listing, export) and reading them from disk."""

from .ingest import IMAGE_EXTENSIONS, MAX_PIXELS, RECORD_EXTENSIONS, Ingest, check_image, read_metadata_file, text_key
from .recordfiles import MAX_ARRAY_BYTES
from .service import EXPORT_COLUMNS, ROW_COLUMNS, DataRows, ImportReport

__all__ = ["DataRows", "ImportReport", "ROW_COLUMNS", "EXPORT_COLUMNS", "Ingest", "check_image",
           "read_metadata_file", "IMAGE_EXTENSIONS", "RECORD_EXTENSIONS", "MAX_PIXELS",
           "MAX_ARRAY_BYTES", "text_key"]
