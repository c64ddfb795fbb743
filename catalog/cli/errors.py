"""How the command line words a :class:`catalog.CatalogError`.

The library writes input names in backticks (`` `where` ``) and gives neutral fixes (``hint``); the
CLI shows the flag a user typed and the command that helps. ``FLAGS`` maps a library name to its
flag, ``HINTS`` a neutral hint to the command-line wording; anything not listed is shown as it is.
"""

from __future__ import annotations

from ..errors import CatalogError, ValidationError

# field (library name) -> the flag or argument of the command line
FLAGS = {
    "where": "--where",
    "min_score": "--min",
    "max_score": "--max",
    "anchors": "--anchor",
    "negatives": "--negative",
    "text": "--text",
    "image": "--image",
    "embedding": "--embedding",
    "aggregate": "--aggregate",
    "order": "--order",
    "limit": "--limit",
    "offset": "--offset",
    "backend": "--backend",
    "slice": "--slice",
    "ids": "--ids",
    "project": "--project",
    "replace": "--replace",
    "results": "--results",
    "threshold": "--threshold",
    "top_only": "--top-only",
    "batch_size": "--batch-size",
    "device": "--device",
    "weights": "--weights",
    "pretrained": "--pretrained",
    "db": "--db",
    "fmt": "--format",
    "metadata_file": "--metadata",
    "priority": "--priority",
    "thresholds": "--thresholds",
    "bins": "--bins",
    "out": "--output",
    "no_auth": "--no-auth",
    "host": "--host",
    "port": "--port",
    "workers": "--workers",
    "shards": "--shards",
    "replicas": "--replicas",
    "api_key_env": "--api-key-env",
    "hnsw_m": "--hnsw-m",
    "hnsw_ef_construct": "--hnsw-ef-construct",
    "split_field": "--split-field",
    "keep": "--keep",
    "tag": "--tag",
    "sort": "--sort",
    "group_by": "--group-by",
    "neighbours": "--neighbours",
    "outliers": "--outliers",
    "method": "--method",
}

# neutral hint (as the library words it) -> the command-line wording
HINTS: dict[str, str] = {
    "list the models to see which can run here": "see `advtool models`",
    "list the embeddings to see them": "run `advtool embeddings list` to see them",
    "list the embeddings": "run `advtool embeddings list`",
    "compute its vectors with its model, or import into a custom embedding instead":
        "its vectors come from `advtool embeddings compute MODEL`, import into a custom embedding instead "
        "(advtool embeddings create NAME DIMS)",
    "list the batches to see their names": "see `advtool batches list`",
    "list the row's labels to see them": "see its labels with `advtool labels list ID`",
    "suggestions are written by label-by-similarity with save":
        "suggestions come from `advtool label-by-similarity ... --save`",
    "label some rows first (set labels or import a label file)":
        "label some rows first (advtool labels set ID LABEL, or advtool labels import FILE)",
    "compute or import their vectors, or leave them out":
        "compute or import their vectors (advtool embeddings compute/import) or leave them out",
    "label more rows first": "label more rows first (advtool labels set / import)",
    "list the slices to see them": "see `advtool slices list`",
    "create it or choose another catalog file": "create it or pass another --db",
    "restore it from a backup, or choose another catalog file": "restore it from a backup, or pass another --db",
    "choose another catalog file, or a new or empty one": "pass another --db (a new or empty file)",
    "choose another catalog file": "pass another --db",
    "create a token first (tokens create NAME), or serve without tokens on 127.0.0.1":
        "create one with `advtool tokens create NAME`, or use --no-auth on 127.0.0.1",
    "create a token, or serve on 127.0.0.1": "create a token (advtool tokens create NAME), or serve on 127.0.0.1",
    "revoke it first, or choose another name": "revoke it first (advtool tokens revoke NAME), or choose another name",
    "list the tokens to see them": "see `advtool tokens list`",
    "sync the embedding to the engine first": "run `advtool engine sync EMBEDDING` first",
    "set one first (engine set URL)": "set one first (advtool engine set URL)",
    "set one first (engine set URL), then sync": "set one first (advtool engine set URL), then advtool engine sync",
    "compute the embedding's uniqueness (again) first": "run `advtool uniqueness EMBEDDING` first",
    "compute the map": "run `advtool map compute EMBEDDING`",
    "compute the map again": "run `advtool map compute EMBEDDING` again",
}


def word(text: str) -> str:
    """A library text that names inputs in backticks (a model's ``reason``, say) in command-line words."""
    return CatalogError(text).worded(FLAGS)


def render(exc: CatalogError) -> str:
    """The text the CLI prints after ``error:`` (validation errors add their numbered lines)."""
    text = exc.worded(FLAGS, HINTS)
    if isinstance(exc, ValidationError):
        lines = exc.report().split("\n")
        text = "\n".join([text, *lines[1:]])
    return text
