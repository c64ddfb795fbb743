"""The embeddings page: list with counts, create a custom embedding, import NDJSON, compute, delete."""

from __future__ import annotations

import os
import tempfile

import streamlit as st

from .common import (attempt, bump, close_dialog, dialog_args, embeddings, flash, forget_other_dialogs, get_catalog,
                     delete_buttons, open_dialog, show_error, show_flash)

from catalog import CatalogError
from catalog.embeddings import MAX_DIMS, MIN_DIMS


def _table(embs: list[dict]) -> None:
    rows = [{"Name": e["name"], "Id": e["id"], "Dims": e["dims"],
             "Kind": "custom" if e["custom"] else "off-the-shelf",
             "Media": e.get("media_type") or "any", "Vectors": e["count"], "Model": e.get("model") or ""}
            for e in embs]
    st.dataframe(rows, hide_index=True, width="stretch",
                 column_config={"Vectors": st.column_config.NumberColumn(format="localized"),
                                "Id": st.column_config.TextColumn(width="medium")})


def _create(cat) -> None:
    with st.form("create_embedding", border=False, clear_on_submit=True):
        c1, c2 = st.columns([3, 1])
        name = c1.text_input("Name", placeholder="e.g. my-resnet-features")
        dims = c2.number_input("Dims", min_value=MIN_DIMS, max_value=MAX_DIMS, value=512, step=1)
        if st.form_submit_button("Create embedding", type="primary", icon=":material/add:"):
            ok, emb = attempt(cat.create_embedding, name, int(dims))
            if ok:
                bump()
                flash(f"Embedding type created id={emb.id}")
                st.rerun()


class _Progress:
    """Adapts the library's progress callbacks (``done`` or ``done, total``) to a progress bar."""

    counts = True

    def __init__(self, bar, total=None, text="Working…"):
        self.bar, self.total, self.text = bar, total, text

    def __call__(self, *args, **kwargs):
        done = args[0] if args else kwargs.get("done")
        total = args[1] if len(args) > 1 else kwargs.get("total", self.total)
        if done is None:
            self.bar.progress(1.0, text="Finishing…")
            return
        frac = min(0.99, done / total) if total else 0.5
        label = f"{self.text} {done:,} / {total:,}" if total and self.counts else self.text
        self.bar.progress(frac, text=label)


class _ByteProgress(_Progress):
    """For file imports, whose callback reports the bytes read so far."""

    counts = False


def _import(cat, embs: list[dict]) -> None:
    custom = [e for e in embs if e["custom"]]
    if not custom:
        st.caption("Create a custom embedding first; vectors are imported into custom embeddings.")
        return
    names = [e["name"] for e in custom]
    target = st.selectbox("Into embedding", names, key="imp_emb",
                          format_func=lambda n: next(f"{e['name']} ({e['dims']}-d, {e['count']:,} vectors)" for e in custom if e["name"] == n))
    up = st.file_uploader("NDJSON file: one {\"id\": <data row id or global_key>, \"vector\": [...]} per line",
                          type=["ndjson", "jsonl", "json", "gz"], key="imp_file")
    if st.button("Import vectors", type="primary", icon=":material/upload:", disabled=up is None, key="imp_go"):
        suffix = ".ndjson.gz" if up.name.endswith(".gz") else ".ndjson"
        fd, tmp = tempfile.mkstemp(prefix="upload-", suffix=suffix)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(up.getbuffer())
            bar = st.progress(0.0, text=f"Reading {up.name}…")
            try:
                emb = cat.get_embedding(target)
                n = emb.import_vectors_from_file(tmp, progress=_ByteProgress(bar, os.path.getsize(tmp), f"Reading {up.name}…"))
            except CatalogError as exc:
                bar.empty()
                show_error(exc)
                return
            bar.progress(1.0, text="Done")
            bump()
            flash(f"{n:,} vectors imported into {target}")
            st.rerun()
        finally:
            os.unlink(tmp)


def _compute(cat, embs: list[dict]) -> None:
    try:
        models = cat.list_models()
    except CatalogError as exc:
        show_error(exc)
        return
    names = [m["name"] for m in models]
    info = {m["name"]: "" if m["available"] else f" — unavailable: {m['reason']}" if m["reason"] else " — unavailable"
            for m in models}
    if not names:
        st.caption("No off-the-shelf models.")
        return
    names = sorted(names, key=lambda n: bool(info.get(n)))  # the ones that can run here first
    model = st.selectbox("Model", names, key="cmp_model", format_func=lambda n: n + info.get(n, ""))
    every = st.checkbox("Recompute rows that already have a vector", key="cmp_all")
    if st.button("Compute", icon=":material/memory:", key="cmp_go"):
        bar = st.progress(0.0, text=f"Computing {model}…")
        ok, res = attempt(cat.compute_embeddings, model, all=every, progress=_Progress(bar, text=f"Computing {model}:"))
        bar.empty()
        if ok:
            bump()
            flash(f"{model}: {res.computed:,} vectors computed")
            st.rerun()


@st.dialog("Delete embedding", on_dismiss=close_dialog)
def _confirm_delete(cat, name: str, count: int) -> None:
    st.write(f"Delete the custom embedding **{name}** and its **{count:,}** vectors? Slices that use it stop working. "
             "This cannot be undone.")
    delete_buttons("del", cat.delete_embedding, name, lambda eid: f"Embedding ID {eid} deleted")


def _delete(cat, embs: list[dict]) -> None:
    custom = [e for e in embs if e["custom"]]
    if not custom:
        st.caption("No custom embeddings. Off-the-shelf embeddings cannot be deleted.")
        return
    name = st.selectbox("Custom embedding", [e["name"] for e in custom], key="del_emb")
    st.button("Delete…", icon=":material/delete:", key="del_go", on_click=open_dialog, args=("embeddings:delete", name))
    args = dialog_args("embeddings:delete")
    if args and args[0] in {e["name"] for e in custom}:
        _confirm_delete(cat, args[0], next(e["count"] for e in custom if e["name"] == args[0]))


def page() -> None:
    cat = get_catalog()
    if cat is None:
        return
    show_flash()
    forget_other_dialogs("embeddings:")
    st.title("Embeddings", anchor=False)
    try:
        embs = embeddings(cat)
    except CatalogError as exc:
        show_error(exc)
        return
    _table(embs)
    c1, c2 = st.columns(2, gap="large")
    with c1:
        with st.container(border=True, key="emb_create"):
            st.subheader("Create a custom embedding", anchor=False)
            _create(cat)
        with st.container(border=True, key="emb_compute"):
            st.subheader("Compute an off-the-shelf embedding", anchor=False)
            _compute(cat, embs)
    with c2:
        with st.container(border=True, key="emb_import"):
            st.subheader("Import vectors", anchor=False)
            _import(cat, embs)
        with st.container(border=True, key="emb_delete"):
            st.subheader("Delete", anchor=False)
            _delete(cat, embs)
