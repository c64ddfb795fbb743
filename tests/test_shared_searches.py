"""Shared searches: a whole search under a short content key (short links for many anchors)."""

from __future__ import annotations

import duckdb
import pytest

from catalog import Catalog, CatalogError, SearchSpec
from catalog.shared import KEY_CHARS


def _count(db) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM shared_searches").fetchone()[0]
    finally:
        con.close()


@pytest.fixture
def cat(tmp_path):
    c = Catalog(tmp_path / "c.duckdb")
    c.create_embedding("tiny", 8)
    return c


def test_a_search_round_trips_under_a_short_stable_key(cat):
    anchors = [f"row-{i}" for i in range(179)]  # kept as given: a shared search is read like a slice
    spec = SearchSpec("tiny", anchors=anchors, negatives=["n-1"], min_score=0.6, max_score=0.95,
                      aggregate="max", where={"digit": {"$in": [3, 8]}}, text=None)
    key = cat.share_search(spec)
    assert len(key) == KEY_CHARS and key.isalnum() and key == key.lower()
    back = cat.shared_search(key)
    assert back.to_json() == spec.to_json()
    assert cat.share_search(spec) == key  # the same search: the same key, nothing new written
    assert _count(cat.path) == 1
    other = cat.share_search(SearchSpec("tiny", anchors=anchors, min_score=0.6, max_score=0.95))
    assert other != key and _count(cat.path) == 2


def test_a_text_prompt_is_shared_an_image_is_refused(cat):
    key = cat.share_search(SearchSpec("tiny", text="a handwritten seven", min_score=0.5, max_score=1.0))
    assert cat.shared_search(key).text == "a handwritten seven"
    with pytest.raises(CatalogError, match="image prompt has no stored form"):
        cat.share_search(SearchSpec("tiny", image=b"\x89PNG....", min_score=0.5, max_score=1.0))
    assert _count(cat.path) == 1


@pytest.mark.parametrize("key, message", [
    ("short", "is not a shared search key"), ("A" * KEY_CHARS, "is not a shared search key"),
    ("../../etc/pass", "is not a shared search key"), (None, "is not a shared search key"),
    ("a" * KEY_CHARS, "no shared search has the key `aaaaaaaaaaaa`"),
])
def test_bad_and_unknown_keys(cat, key, message):
    with pytest.raises(CatalogError, match=message) as info:
        cat.shared_search(key)
    assert info.value.field == "shared"
