"""The dashboard's ``SearchState.sort``: the URL (``sort=``, left out for the default), slices and the
listing it asks the library for. Plain data: no Streamlit."""

from __future__ import annotations

from catalog import SearchSpec
from dashboard.state import SearchState


class Params(dict):
    def get_all(self, name):
        v = self.get(name)
        return [] if v is None else (v if isinstance(v, list) else [v])


def test_url_round_trip():
    assert "sort" not in SearchState().to_params()
    s = SearchState(embedding="shapes", anchors=["a"], sort="global_key", order="asc")
    p = s.to_params()
    assert p["sort"] == "global_key" and p["order"] == "asc"
    back, problems = SearchState.from_params(Params(p))
    assert not problems and back.sort == "global_key" and back.order == "asc"
    assert back.spec().sort == "global_key" and back.spec().order == "asc"
    bad, problems = SearchState.from_params(Params({"sort": "size"}))
    assert bad.sort == "score" and problems and "sort" in problems[0]


def test_sort_is_part_of_the_result_set_key():
    assert SearchState(sort="created").key() != SearchState().key()
    assert SearchState(sort="created").query_key() != SearchState().query_key()


def test_slices_keep_the_sort():
    s = SearchState(embedding="shapes", anchors=["a"], min_score=0.5, max_score=1.0, sort="created", order="asc")
    spec = s.slice_spec()
    assert spec.sort == "created" and spec.order == "asc"
    back = SearchState.from_slice_query("x", spec.to_json())
    assert back.sort == "created" and back.order == "asc"
    f = SearchState(where={"split": "train"}, sort="global_key", order="desc")
    fj = f.slice_spec().to_json()
    assert fj["embedding"] is None and fj["sort"] == "global_key"
    fb = SearchState.from_slice_query("y", fj)
    assert fb.sort == "global_key" and fb.order == "desc" and fb.listing() == ("global_key", "desc")
    old = SearchState.from_slice_query("z", SearchSpec(where={"split": "train"}).to_json())
    assert old.sort == "score" and old.listing() == ("global_key", "asc")  # the plain listing, as before


def test_group_by_round_trips_through_the_url_slices_and_the_spec():
    assert "group" not in SearchState().to_params()
    s = SearchState(embedding="shapes", anchors=["a"], min_score=0.5, max_score=1.0, group_by="product.id")
    p = s.to_params()
    assert p["group"] == "product.id"
    back, problems = SearchState.from_params(Params(p))
    assert not problems and back.group_by == "product.id" and back.spec().group_by == "product.id"
    assert s.key() != s.copy(group_by=None).key()  # another result set
    spec = s.slice_spec()
    assert spec.group_by == "product.id" and spec.to_json()["group_by"] == "product.id"
    assert SearchState.from_slice_query("x", spec.to_json()).group_by == "product.id"
    assert SearchState(where={"split": "train"}, group_by="product.id").spec().group_by is None  # a listing
    bad, problems = SearchState.from_params(Params({"emb": "e", "a": "x", "group": "bad key!"}))
    assert bad.group_by is None and problems and "grouping" in problems[0]


def test_the_uniqueness_sort_is_offered_to_similarity_searches_only():
    from dashboard.catalog_page import _sort_choice  # noqa: PLC0415 - the page module imports Streamlit

    options, _ = _sort_choice(SearchState(embedding="e", anchors=["a"]))
    assert "uniqueness:desc" in options
    options, _ = _sort_choice(SearchState(where={"split": "train"}))
    assert not any(o.startswith(("score:", "uniqueness:")) for o in options)
    back, problems = SearchState.from_params(Params({"emb": "e", "a": "x", "sort": "uniqueness"}))
    assert not problems and back.spec().sort == "uniqueness"


def test_the_backend_choice_is_in_the_url():
    """A bookmark keeps the chosen backend; the automatic choice adds nothing; an unknown name is dropped."""
    s = SearchState(embedding="e", anchors=["a"], min_score=0.5, max_score=1.0, backend="approximate")
    p = s.to_params()
    assert p["backend"] == "approximate"
    back, problems = SearchState.from_params(Params(p))
    assert back.backend == "approximate" and not problems
    assert "backend" not in SearchState(embedding="e", anchors=["a"]).to_params()
    bad, problems = SearchState.from_params(Params({"emb": "e", "a": ["a"], "backend": "annoy"}))
    assert bad.backend == "auto"
    assert problems == ["the backend in the address was ignored: backend 'annoy' is not supported; "
                        "use exact or approximate or qdrant or qdrant-hnsw (or leave it out)"]
