"""Inline vectors of data-row records (``"embeddings": [{"embedding_id", "vector"}]``, as the Labelbox
SDK's ``create_data_rows`` takes them, or an export's ``{"id", "name", "values": [{"value"}]}``).

Each vector gets every check of an NDJSON vector line (:func:`catalog.vectors.parsing.check_vector`)
against the embedding it names (by id or name; for an export, its id, then its name). The rule is
all-or-nothing for the whole import: if any inline vector is invalid — an unknown or off-the-shelf
embedding, a wrong length, NaN, a zero vector, the same row twice for one embedding, or a record
that is not imported (its vectors would have no row) — the import writes nothing at all, neither
rows nor vectors, and the error lists every ``file:line`` with its reason. Vectors wait in memory
(float32) until the write; for millions of vectors use an NDJSON vector file instead.
"""

from __future__ import annotations

import numpy as np

from ..errors import CatalogError
from ..vectors.parsing import check_vector
from .records import cut

MAX_LISTED = 1000


class InlineVectors:
    """Collects the valid inline vectors per embedding, and the reasons of the invalid ones."""

    def __init__(self, embedding_for):
        self.embedding_for = embedding_for  # ref (id or name) -> Embedding; raises CatalogError
        self.slots: dict[str, dict] = {}    # embedding id -> {"emb", "keys", "vectors", "where"}
        self.errors: list[str] = []
        self.total_errors = 0
        self._known: dict[str, object] = {}

    def _error(self, text: str) -> None:
        self.total_errors += 1
        if len(self.errors) < MAX_LISTED:
            self.errors.append(text)

    def _embedding(self, refs):
        for ref in refs:
            if ref not in self._known:
                try:
                    self._known[ref] = self.embedding_for(ref)
                except CatalogError:
                    self._known[ref] = None
            if self._known[ref] is not None:
                return self._known[ref]
        raise ValueError(f"no embedding with id or name {' or '.join(repr(cut(r)) for r in refs)}; create a "
                         "custom embedding with that name and the vectors' dims first")

    def add(self, where: str, key: str, items) -> None:
        """The vectors ``items`` (:class:`~.records.InlineVector`) of the row ``key``, from ``where``."""
        for item in items:
            try:
                emb = self._embedding(item.refs)
                if not emb.custom:
                    raise ValueError(f"{emb.name} is an off-the-shelf embedding: its vectors are computed with its "
                                     "model, not imported")
                vec = check_vector(item.vector, emb.dims)
            except ValueError as exc:
                self._error(f"{where}: embedding {cut(item.label)}: {exc}")
                continue
            slot = self.slots.setdefault(emb.id, {"emb": emb, "keys": [], "vectors": [], "where": {}})
            if key in slot["where"]:
                self._error(f"{where}: embedding {emb.name}: global_key {cut(key)!r} already has a vector for it "
                            f"at {slot['where'][key]} (one vector per row and embedding)")
                continue
            slot["where"][key] = where
            slot["keys"].append(key)
            slot["vectors"].append(vec)

    def refuse(self, where: str, items, reason: str) -> None:
        """The record at ``where`` (``items``: its vectors; None: a whole file's) was not imported."""
        if items is None:
            self._error(f"{where}: the file is not imported ({reason}), so the inline vectors of its records "
                        "would be lost")
            return
        n = len(items)
        self._error(f"{where}: the record is not imported ({reason}), so its {n} inline vector"
                    f"{'s' if n != 1 else ''} would be lost")

    def mark(self):
        """What has been collected so far, for :meth:`reset` (a record file read only in part adds nothing)."""
        return ({eid: len(slot["keys"]) for eid, slot in self.slots.items()}, len(self.errors), self.total_errors)

    def reset(self, mark) -> bool:
        """Forget what was collected after ``mark``; True if there was anything."""
        counts, n_errors, total = mark
        changed = self.total_errors != total or any(
            len(slot["keys"]) != counts.get(eid, 0) for eid, slot in self.slots.items())
        for eid in list(self.slots):
            slot, keep = self.slots[eid], counts.get(eid, 0)
            for key in slot["keys"][keep:]:
                del slot["where"][key]
            del slot["keys"][keep:], slot["vectors"][keep:]
            if not keep:
                del self.slots[eid]
        del self.errors[n_errors:]
        self.total_errors = total
        return changed

    def batches(self):
        """``(embedding, global_keys, float32 array)`` per embedding with vectors."""
        for slot in self.slots.values():
            yield slot["emb"], slot["keys"], np.vstack(slot["vectors"])
