"""Mongo-style filters over data rows, compiled to parameterised DuckDB SQL.

``compile_filter(where, alias="d")`` turns a filter such as::

    {"camera.make": "Canon", "iso": {"$gte": 400}, "tags": {"$in": ["night", "city"]},
     "label": {"$ne": "blurry"}, "$or": [{"media_type": "image"}, {"global_key": {"$prefix": "texts/"}}]}

into a boolean SQL expression over ``datarows`` aliased ``alias`` with ``?`` placeholders and the list
of values for them. Values are always bound parameters; metadata keys are checked against an allowed
character set and passed as JSON-path parameters, never spliced into the SQL text.

Fields
    any other key          a dotted path into the row's metadata (``metadata.``-prefixed to reach a key
                           that shadows a built-in name, e.g. ``metadata.label``)
    ``id``, ``global_key``, ``media_type``   the row's columns (strings)
    ``created_at``, ``updated_at``           timestamps, compared with ISO-8601 strings
    ``label``              the row has a label with that name (``$ne``/``$nin``: has none of them)
    ``label_source``       the row has a label from that source (``manual``, ``similarity``)
    ``reviewed``           the row has a label whose reviewed flag is that boolean
    ``labeled``            ``true``: the row has at least one label; ``false``: none
    ``labels``             one label satisfying every condition: ``{"labels": {"label": "cat",
                           "source": "similarity", "reviewed": false, "score": {"$gte": 0.5}}}``
    ``uniqueness``         the row's uniqueness (a number in [0, 1], :mod:`catalog.quality.uniqueness`) under
                           the search's embedding: only in a similarity search, and only once it was
                           computed for the embedding's current vectors (``metadata.uniqueness`` reaches
                           a metadata key of that name)

Operators: ``$eq $ne $in $nin $gt $gte $lt $lte $exists $prefix $not`` on fields; ``$and $or $nor
$not`` between filters. Metadata comparisons are typed: numbers compare numerically, strings as
strings, and a value of another JSON type never matches a range operator. A metadata array matches
when the array itself or any of its elements matches (``{"tags": "red"}`` matches ``["red", "blue"]``).
``{"x": null}`` matches a missing key or a JSON null; ``$ne``/``$nin`` also match rows without the key.
"""

from .compile import compile_filter
from .parse import MAX_DEPTH, json_path, mentions, parse_filter

__all__ = ["compile_filter", "parse_filter", "json_path", "mentions", "MAX_DEPTH"]
