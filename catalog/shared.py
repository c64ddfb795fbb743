"""Shared searches: a whole search stored under a short key, so a link to it stays short.

A search with many anchors does not fit in an address (179 anchors make a 7 kB URL, past what some
browsers, proxies and chat tools keep). :meth:`SharedSearches.share` stores the search's JSON (the
same form a slice stores, text prompt included) under a key derived from its content — the first
:data:`KEY_CHARS` characters of the base-32 SHA-256 of the canonical JSON — so sharing the same search
twice gives the same key and writes nothing new; :meth:`SharedSearches.shared` reads it back.
Unlike a slice it has no name, no description and nothing to manage: it only makes a link short.
"""

from __future__ import annotations

import base64
import hashlib
import re

import orjson

from .errors import CatalogError, NotFound
from .search import SearchSpec
from .store import scalar

KEY_CHARS = 12  # 60 bits: collisions are out of reach for any number of searches a catalog holds
_KEY = re.compile(rf"^[a-z2-7]{{{KEY_CHARS}}}$")


def share_key(query: dict) -> str:
    """The key of a stored search's JSON (its content, in canonical form)."""
    digest = hashlib.sha256(orjson.dumps(query, option=orjson.OPT_SORT_KEYS)).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:KEY_CHARS]


class SharedSearches:
    def __init__(self, store):
        self.store = store

    def share(self, spec: SearchSpec) -> str:
        """Store ``spec`` (an image prompt has no stored form) and return its key."""
        if not isinstance(spec, SearchSpec):
            raise CatalogError("a shared search must be a SearchSpec", field="spec")
        query = spec.to_json()
        key = share_key(query)
        with self.store.transaction() as con:
            con.execute("INSERT INTO shared_searches (key, query) VALUES (?, CAST(? AS JSON)) ON CONFLICT DO NOTHING",
                        [key, orjson.dumps(query).decode()])
        return key

    def shared(self, key) -> SearchSpec:
        """The search stored under ``key``."""
        if not isinstance(key, str) or not _KEY.match(key.strip()):
            raise CatalogError(f"`{key}` is not a shared search key ({KEY_CHARS} letters and digits)",
                               field="shared")
        with self.store.connect() as con:
            raw = scalar(con, "SELECT CAST(query AS VARCHAR) FROM shared_searches WHERE key = ?", [key.strip()])
        if raw is None:
            raise NotFound(f"no shared search has the key `{key.strip()}`", field="shared")
        return SearchSpec.from_json(orjson.loads(raw))
