"""An embedding's vectors: the derived caches (:mod:`.cache`) and the validated import, split by
concern: :mod:`.reading` (files, gzip, blocks of lines), :mod:`.parsing` (lines, the native fast
path, the error collector), :mod:`.splitting` (a second interpreter for the tail of a big file),
:mod:`.writing` (the scratch file and the write transaction) and :mod:`.importer` (the service);
:mod:`.export` writes them out again (NDJSON in the import format, or NumPy)."""

from .cache import KeyTable, VectorCache, uuid_bytes
from .export import VectorExport, VectorExportReport
from .importer import VectorImport

__all__ = ["VectorCache", "KeyTable", "uuid_bytes", "VectorImport", "VectorExport", "VectorExportReport"]
