"""The embeddings page: list with counts, create a custom embedding, import NDJSON, compute, delete."""

from __future__ import annotations

import os
import tempfile

import streamlit as st

from . import session
from .common import (attempt, bump, close_dialog, dialog_args, embeddings, flash, forget_other_dialogs, get_catalog,
                     delete_buttons, open_dialog, show_error, show_flash, worded)

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
    # The form keeps what was typed when the create fails (a taken or bad name, dims out of range); a
    # create that works starts fresh inputs (new widget keys), so the next one begins empty.
    gen = session.form_generation("create_embedding")
    with st.form("create_embedding", border=False, clear_on_submit=False):
        c1, c2 = st.columns([3, 1])
        name = c1.text_input("Name", placeholder="e.g. my-resnet-features", key=f"emb_new_name_{gen}")
        dims = c2.number_input("Dims", min_value=MIN_DIMS, max_value=MAX_DIMS, value=512, step=1,
                               key=f"emb_new_dims_{gen}", help=f"{MIN_DIMS}–{MAX_DIMS}")
        if st.form_submit_button("Create embedding", type="primary", icon=":material/add:"):
            ok, emb = attempt(cat.create_embedding, name, int(dims))
            if ok:
                session.next_form_generation("create_embedding")
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


_TARGET = "import_target"  # remembered: the id of the embedding the user chose to import into


def _target_label(e: dict) -> str:
    return f"{e['name']} ({e['dims']}-d, {e['count']:,} vectors)"


def _remember_target(ids: list[str]) -> None:
    """The user picked a target. A value that is not an option id is the browser's stale label of an
    option whose vector count has changed since, not a choice: it is ignored."""
    value = session.widget("imp_emb")
    if value in ids:
        session.remember(_TARGET, value)


def _import(cat, embs: list[dict]) -> None:
    custom = [e for e in embs if e["custom"]]
    if not custom:
        st.caption("Create a custom embedding first; vectors are imported into custom embeddings.")
        return
    # The target is an embedding id kept in session state: the option values never change (ids), only
    # their labels (which carry the vector count), and the choice changes only when the user changes it.
    by_id = {e["id"]: e for e in custom}
    by_ref = {**{e["name"]: e for e in custom}, **by_id}  # an id or a name, as the library accepts
    ids = list(by_id)
    chosen = session.recall(_TARGET)
    if chosen not in by_id:
        chosen = ids[0]
        session.remember(_TARGET, chosen)
    # set on every run, so the browser also gets the option's current label (its vector count)
    session.set_widget("imp_emb", chosen)
    st.selectbox("Into embedding", ids, key="imp_emb",
                 format_func=lambda i: _target_label(by_ref[i]) if i in by_ref else str(i),
                 on_change=_remember_target, args=(ids,))
    target = chosen  # the import goes into the remembered choice, never into what a reset widget shows
    up = st.file_uploader("NDJSON file: one {\"id\": <data row id or global_key>, \"vector\": [...]} per line",
                          type=["ndjson", "jsonl", "json", "gz"], key="imp_file")
    if st.button("Import vectors", type="primary", icon=":material/upload:", disabled=up is None, key="imp_go"):
        name = by_id[target]["name"]
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
                # the library names the file it read (a server temp file); the user knows the upload's name
                exc.message = exc.message.replace(tmp, up.name)
                show_error(exc)
                return
            bar.progress(1.0, text="Done")
            session.remember(_TARGET, target)
            bump()
            flash(f"{n:,} vectors imported into {name}")
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
    if not names:
        st.caption("No off-the-shelf models.")
        return
    # the library's reason in this dashboard's words (`weights` is "the weights folder"), shown whole
    reasons = {m["name"]: worded(CatalogError(m["reason"])) if m.get("reason") else ""
               for m in models if not m["available"]}
    names = sorted(names, key=lambda n: n in reasons)  # the ones that can run here first
    # the option label stays short; the reason a model cannot run here is shown whole below it
    model = st.selectbox("Model", names, key="cmp_model",
                         format_func=lambda n: f"{n} — unavailable" if n in reasons else n)
    if model in reasons:
        with st.container(key="cmp_unavailable"):
            st.caption(f"{model} cannot run here: {reasons[model]}" if reasons[model] else f"{model} cannot run here.")
    every = st.checkbox("Recompute rows that already have a vector", key="cmp_all")
    if st.button("Compute", icon=":material/memory:", key="cmp_go"):
        bar = st.progress(0.0, text=f"Computing {model}…")
        ok, res = attempt(cat.compute_embeddings, model, all=every, progress=_Progress(bar, text=f"Computing {model}:"))
        bar.empty()
        if ok:
            bump()
            flash(*_computed_message(model, res))
            st.rerun()


def _computed_message(model: str, res) -> tuple[str, str]:
    """The flash after a compute: what was done, or that nothing needed doing (and why)."""
    unreadable = len(getattr(res, "unreadable", None) or [])
    skipped = f"; {unreadable:,} unreadable rows skipped" if unreadable else ""
    if res.computed:
        return f"{model}: {res.computed:,} vectors computed{skipped}", "success"
    if unreadable:
        return f"{model}: no vectors computed; {unreadable:,} unreadable rows skipped", "warning"
    if res.already_had_vectors:
        return (f"{model}: nothing needed computing — all {res.already_had_vectors:,} rows it embeds already have "
                "a vector (tick “Recompute rows that already have a vector” to redo them)"), "success"
    return f"{model}: nothing needed computing — the catalog has no rows this model embeds", "success"


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
