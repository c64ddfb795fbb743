"""The catalog page's sidebar: embedding, score range, aggregation, text or image query, and filters."""

from __future__ import annotations

import json

import streamlit as st

from . import range_panel, session
from .common import backends, embedding_label, embeddings, worded
from .state import SearchState

from catalog import CatalogError
from catalog.filters import parse_filter
from catalog.metadata import parse_value

AGGREGATES = {"mean": "Mean", "max": "Any"}
LABEL_STATES = ["Any", "Labeled", "Unlabeled"]
MEDIA = {"all": "All", "image": "Images", "text": "Texts"}
BACKENDS = {"auto": "Automatic", "exact": "Exact scan", "approximate": "Approximate (IVF index)",
            "qdrant": "Qdrant (exact mode)", "qdrant-hnsw": "Qdrant HNSW (approximate)"}


# -- keeping widgets and the state in step ------------------------------------------------------------
def _push(s: SearchState) -> None:
    reload = session.take_reload()
    if reload and s.slice is None and len(_conditions(s.where)) < len(_flatten(s.where)):
        s.where = _join(_conditions(s.where))  # a link that repeats a condition: once is enough
    pickers, rest = split_where(s.where)
    values = {
        "w_emb": s.embedding,
        "w_agg": s.aggregate,
        "w_backend": s.backend,
        "w_text": s.text or "",
        "w_group": s.group_by or "",
        **pickers,
        "w_where_json": json.dumps(rest, indent=1, ensure_ascii=False) if rest else "",
    }
    for key, value in values.items():
        if reload or not session.has_widget(key):
            session.set_widget(key, value)


def _on_embedding() -> None:
    session.update(embedding=session.widget("w_emb"))


def _on_aggregate() -> None:
    session.update(aggregate=session.widget("w_agg") or "mean")


def _on_group() -> None:
    session.update(group_by=(session.widget("w_group") or "").strip() or None)


def _on_backend() -> None:
    session.update(backend=session.widget("w_backend") or "auto")


def _on_text() -> None:
    text = (session.widget("w_text") or "").strip()
    session.update(text=text or None, slice=None, min_score=None, max_score=None)  # a new prompt: automatic range


def _on_image() -> None:
    up = session.widget(session.image_key())
    if up is None:
        session.update(image=None, image_name=None)
    else:
        session.update(image=up.getvalue(), image_name=up.name, slice=None)


# -- the filter: the pickers' conditions and the JSON box's are two parts of one `where` -----------------
# SearchState.where is the only filter there is. The pickers show the conditions they can express
# (split_where), the JSON box shows the rest; Apply builds the whole filter again from both
# (build_where), so nothing is copied from one into the other and nothing accumulates.
PICKER_DEFAULTS = {"w_media": "all", "w_labeled": "Any", "w_label": "", "w_meta_key": "", "w_meta_value": ""}
# fields that are not metadata (the library's columns and label fields): never shown in the metadata picker
_NOT_METADATA = {"id", "global_key", "media_type", "created_at", "updated_at", "label", "label_source",
                 "reviewed", "labeled", "labels"}


def _flatten(where) -> list:
    """The conditions a filter ANDs together: its keys one by one, ``$and`` lists opened up."""
    if not isinstance(where, dict):
        return [where] if where is not None else []
    out: list = []
    for key, cond in where.items():
        if key == "$and" and isinstance(cond, list) and cond and all(isinstance(c, dict) for c in cond):
            for c in cond:
                out.extend(_flatten(c))
        else:
            out.append({key: cond})
    return out


def _conditions(where) -> list[dict]:
    """:func:`_flatten` with each condition once (the first of equal ones)."""
    seen: set[str] = set()
    out = []
    for c in _flatten(where):
        k = json.dumps(c, sort_keys=True, ensure_ascii=False, default=str)
        if k not in seen:
            seen.add(k)
            out.append(c)
    return out


def _join(parts: list[dict]) -> dict | None:
    """One filter for conditions that must all hold: a plain object when their keys differ, else ``$and``."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    keys = [next(iter(p)) for p in parts if len(p) == 1]
    if len(keys) == len(parts) and len(set(keys)) == len(keys):
        return {k: v for p in parts for k, v in p.items()}
    return {"$and": parts}


def _value_text(value) -> str | None:
    """What to type in the "equals" box for ``value`` (read back by ``parse_value``); None if it can't be."""
    if value is None or isinstance(value, (dict, list)):
        return None
    tries = ([value] if isinstance(value, str) else []) + [json.dumps(value, ensure_ascii=False)]
    for text in tries:
        back = parse_value(text.strip())
        if type(back) is type(value) and back == value:
            return text
    return None


def split_where(where) -> tuple[dict, dict | None]:
    """The picker values for a filter and the rest of it (for the JSON box): each condition a picker can
    show goes to the first free picker, everything else stays in the rest. ``build_where`` joins them again."""
    pickers = dict(PICKER_DEFAULTS)
    rest = []
    for c in _conditions(where):
        key, value = next(iter(c.items())) if isinstance(c, dict) and len(c) == 1 else (None, None)
        if key == "media_type" and value in ("image", "text") and pickers["w_media"] == "all":
            pickers["w_media"] = value
        elif key == "labeled" and isinstance(value, bool) and pickers["w_labeled"] == "Any":
            pickers["w_labeled"] = "Labeled" if value else "Unlabeled"
        elif key == "label" and isinstance(value, str) and value.strip() == value != "" and not pickers["w_label"]:
            pickers["w_label"] = value
        elif (isinstance(key, str) and key not in _NOT_METADATA and not key.startswith("$") and key.strip() == key
              and not pickers["w_meta_key"] and _value_text(value) is not None):
            pickers["w_meta_key"], pickers["w_meta_value"] = key, _value_text(value)
        else:
            rest.append(c)
    return pickers, _join(rest)


def build_where(media: str, labeled: str, label: str, meta_key: str, meta_value: str, raw: str) -> dict | None:
    """The whole filter: the pickers' conditions and the JSON box's, each condition once (the library's
    :class:`CatalogError` for a bad JSON box)."""
    parts: list[dict] = []
    if media in ("image", "text"):
        parts.append({"media_type": media})
    if labeled == "Labeled":
        parts.append({"labeled": True})
    elif labeled == "Unlabeled":
        parts.append({"labeled": False})
    if label.strip():
        parts.append({"label": label.strip()})
    if meta_key.strip():
        parts.append({meta_key.strip(): parse_value(meta_value.strip())})
    parts.extend(_flatten(parse_filter(raw)))
    return _join(_conditions({"$and": parts})) if parts else None


def _on_apply_filters() -> None:
    w = session.widget
    try:
        where = build_where(w("w_media", "all"), w("w_labeled", "Any"), w("w_label", ""),
                            w("w_meta_key", "") or "", w("w_meta_value", ""), w("w_where_json", ""))
    except CatalogError as exc:
        session.defer_error("filters", exc)
        return
    session.take_error("filters")
    session.update(where=where)
    session.mark_reload()  # the pickers and the box show the new filter's parts (Apply replaces, never adds)


def _on_clear_filters() -> None:
    session.take_error("filters")
    session.update(where=None)
    session.mark_reload()


def default_embedding(embs: list[dict]) -> str | None:
    with_vectors = [e for e in embs if e["count"] > 0]
    pick = max(with_vectors, key=lambda e: e["count"]) if with_vectors else None
    return pick["name"] if pick else None


def render(cat, s: SearchState, meta_keys: list[str]) -> None:
    """The sidebar controls; every change goes through a callback into the session's state."""
    embs = embeddings(cat)
    names = [e["name"] for e in sorted(embs, key=lambda e: (e["count"] == 0, e["custom"], e["name"]))]
    by_name = {e["name"]: e for e in embs}
    if s.embedding is None or s.embedding not in by_name:
        # names from a URL or slice may be ids; match them, else fall back to the best-filled embedding
        match = next((e["name"] for e in embs if s.embedding and s.embedding in (e["id"], e["name"])), None)
        s.embedding = match or default_embedding(embs)
        session.mark_reload()
    choices = backends(cat)
    if s.backend not in choices:  # e.g. the engine was unset: the automatic choice again
        s.backend = "auto"
        session.mark_reload()
    _push(s)
    sb = st.sidebar
    sb.selectbox("Embedding", names, key="w_emb", on_change=_on_embedding,
                 format_func=lambda n: embedding_label(by_name[n]) if n in by_name else n,
                 help="The vector space used to compare rows. Off-the-shelf ones are computed by a model; custom ones are imported.")
    with sb:
        range_panel.render(cat)
    sb.segmented_control("Anchors combine by", list(AGGREGATES), key="w_agg", on_change=_on_aggregate, required=True,
                         format_func=AGGREGATES.get, disabled=len(s.anchors) < 2,
                         help="Mean: similar to the average of the anchors. Similar to any: best score against any single anchor.")
    grouped = s.group_by or ""
    sb.selectbox("Group results by", [""] + meta_keys + ([grouped] if grouped and grouped not in meta_keys else []),
                 key="w_group", on_change=_on_group, accept_new_options=True, disabled=not s.is_similarity,
                 format_func=lambda k: k or "No grouping",
                 help="One card per value of a metadata field (e.g. a product id): the group's best-scoring row and "
                      "how many rows the group has; rows without the field are groups of one. Similarity searches only.")
    sb.selectbox("Search backend", choices, key="w_backend", on_change=_on_backend,
                 format_func=lambda b: BACKENDS.get(b, b),
                 help="Automatic: the vector engine when it holds the embedding's current copy, else the exact scan "
                      "(the approximate index above 200,000 vectors). Qdrant choices appear when an engine is set "
                      "(advtool engine set). Approximate ones may miss rows; they say so with their measured recall.")

    with sb.expander("Query by text or image", expanded=bool(s.text or s.image)):
        st.text_input("Text prompt", key="w_text", on_change=_on_text, max_chars=1000,
                      placeholder="e.g. a handwritten seven", help="Embedded with the embedding's own model (needs an off-the-shelf embedding).")
        st.file_uploader("Query image", type=["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"],
                         key=session.image_key(), on_change=_on_image,
                         help="Find rows similar to an image from your disk.")

    with sb.expander("Filters", expanded=bool(s.where)):
        with st.form("filters", border=False):
            # no defaults here: _push gives every picker its value from the state's filter
            st.segmented_control("Media", list(MEDIA), key="w_media", format_func=MEDIA.get, required=True)
            st.segmented_control("Labels", LABEL_STATES, key="w_labeled", required=True)
            st.text_input("Has label", key="w_label", placeholder="e.g. cat")
            c1, c2 = st.columns(2)
            shown = session.widget("w_meta_key") or ""
            c1.selectbox("Metadata field", [""] + meta_keys + ([shown] if shown and shown not in meta_keys else []),
                         key="w_meta_key", accept_new_options=True)
            c2.text_input("equals", key="w_meta_value", placeholder="value")
            st.text_area("Filter (JSON)", key="w_where_json", height=90,
                         placeholder='{"digit": {"$in": [3, 8]}, "labeled": false}',
                         help="More conditions, ANDed with the pickers above (a condition a picker can show "
                              "moves to it on Apply). Mongo-style: $eq $ne $in $nin $gt $gte $lt $lte $exists $and "
                              "$or $not; dotted paths; media_type, global_key, label, labeled, reviewed.")
            c1, c2 = st.columns(2)
            c1.form_submit_button("Apply", type="primary", on_click=_on_apply_filters, width="stretch")
            c2.form_submit_button("Clear", on_click=_on_clear_filters, width="stretch")
        if session.peek_error("filters") is not None:  # shown until the next Apply or Clear
            st.error(worded(session.peek_error("filters")))

