"""The batches page: labeling projects and their batches; a batch's rows, its export, and delete.

A batch is a frozen set of rows sent to a labeling project (made on the Catalog page: select rows,
then "Send to batch"). Everything here is a call to the ``catalog`` library; names, projects, keys,
texts and labels are user strings and are shown as plain text (never as Markdown).
"""

from __future__ import annotations

import html
import io
import re

import streamlit as st

from catalog import CatalogError, thumbnails

from . import session
from .common import (
    call,
    close_dialog,
    delete_buttons,
    dialog_args,
    forget_other_dialogs,
    get_catalog,
    open_dialog,
    show_error,
    show_flash,
    worded,
)

ROWS_PER_PAGE = 24
COLUMNS = 6
_OPEN = "batches_open"  # (project, name) of the batch whose rows are shown
_ALL = "All projects"


def _file_name(batch, ext: str) -> str:
    """A download file name from the project and batch names (letters, digits, ``-``, ``_`` and ``.``)."""
    stem = re.sub(r"[^\w.-]+", "_", f"{batch.project}-{batch.name}").strip("._") or "batch"
    return f"{stem[:120]}.{ext}"


def _export(cat, name: str, project: str, fmt: str):
    def make() -> str:
        buf = io.StringIO()
        try:
            cat.export_batch(name, project, buf, fmt)
        except CatalogError as exc:
            return f"error: {worded(exc)}\n"
        return buf.getvalue()
    return make


def _created(batch) -> str:
    return str(batch.created_at or "")[:16].replace("T", " ")


@st.dialog("Delete batch", on_dismiss=close_dialog)
def _confirm_delete(cat, name: str, project: str) -> None:
    st.write("Delete this batch? Its rows stay in the catalog and become free to join another batch "
             "of the project.")
    st.text(f"Batch: {name}\nProject: {project}")
    delete_buttons("batch_del", lambda target: cat.delete_batch(*target), (name, project),
                   lambda _: f"Batch {name!r} of project {project!r} deleted")


def _toggle_rows(project: str, name: str) -> None:
    current = session.recall(_OPEN)
    session.remember(_OPEN, None if current == (project, name) else (project, name))
    session.forget_widget("batch_rows_page")


def _batch_card(cat, batch, is_open: bool) -> None:
    with st.container(border=True, key=f"batch_{batch.id}"):
        head = st.container(horizontal=True, vertical_alignment="center", key=f"batch_head_{batch.id}")
        head.html(f'<div class="batch-name" style="font-size:1.15rem;font-weight:600;overflow-wrap:anywhere">'
                  f'{html.escape(batch.name)}</div>')  # escaped: a name is shown as typed, never as markup
        head.badge(f"{batch.size:,} rows", color="blue")
        head.badge(f"priority {batch.priority}", color="gray")
        st.text(f"Project: {batch.project} · created {_created(batch)}")
        with st.container(horizontal=True, gap="small"):
            st.button("Hide rows" if is_open else "Rows", key=f"rows_{batch.id}", icon=":material/table_rows:",
                      type="primary" if is_open else "secondary", on_click=_toggle_rows,
                      args=(batch.project, batch.name))
            st.download_button("Export NDJSON", _export(cat, batch.name, batch.project, "ndjson"),
                               file_name=_file_name(batch, "ndjson"), mime="application/x-ndjson",
                               key=f"bexp_{batch.id}", icon=":material/download:", on_click="ignore")
            st.download_button("Export CSV", _export(cat, batch.name, batch.project, "csv"),
                               file_name=_file_name(batch, "csv"), mime="text/csv", key=f"bexpc_{batch.id}",
                               icon=":material/download:", on_click="ignore")
            st.button("Delete", key=f"bdel_{batch.id}", icon=":material/delete:", on_click=open_dialog,
                      args=("batches:delete", batch.name, batch.project))
        if is_open:
            _rows_panel(cat, batch)


def _row_cell(cat, row: dict, thumb, labels: list[dict]) -> None:
    with st.container(border=True, key=f"brow_{row['id']}"):
        if row["media_type"] == "image":
            if thumb is not None:
                st.image(str(thumb), width="stretch")
            else:
                st.caption(":material/hide_image: no preview")
        else:
            text = row["row_data"] or ""
            st.text(text if len(text) <= 160 else text[:157] + "…")
        st.text(row["global_key"])
        names = ", ".join(lb["label"] for lb in labels)
        st.text(f"{row['media_type']}" + (f" · {names}" if names else ""))


def _rows_panel(cat, batch) -> None:
    with st.container(key="batch_rows"):
        st.divider()
        if batch.size == 0:
            st.info("This batch has no rows.")
            return
        pages = (batch.size + ROWS_PER_PAGE - 1) // ROWS_PER_PAGE
        number = 1
        if pages > 1:
            number = int(st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1,
                                         key="batch_rows_page"))
        try:
            refs = batch.rows(limit=ROWS_PER_PAGE, offset=(number - 1) * ROWS_PER_PAGE)
            ids = [r["id"] for r in refs]
            rows = cat.get_datarows(ids)
            labels = cat.get_labels(ids)
        except CatalogError as exc:
            show_error(exc)
            return
        thumbs = thumbnails.thumbnails(cat.store, rows)
        for start in range(0, len(rows), COLUMNS):
            cols = st.columns(COLUMNS)
            for col, row in zip(cols, rows[start:start + COLUMNS]):
                with col:
                    _row_cell(cat, row, thumbs.get(row["id"]), labels.get(row["id"], []))


def _empty_state() -> None:
    st.subheader("No batches yet", anchor=False)
    st.info("No batches yet. A batch is a frozen set of rows sent to a labeling project. To make one, "
            "go to the **Catalog** page, select rows in the gallery (or search and filter first), then "
            "choose **Send to batch** and give the batch a name and a project.", icon=":material/inventory_2:")
    st.page_link(session.app_page("catalog"), label="Go to the Catalog", icon=":material/grid_view:")


def page() -> None:
    cat = get_catalog()
    if cat is None:
        return
    show_flash()
    forget_other_dialogs("batches:")
    st.title("Batches", anchor=False)
    st.caption("Labeling projects and their batches. A batch keeps the rows it was made with: rows added to "
               "the catalog later do not join it, and a row is in at most one batch per project.")
    everything = call(cat.get_batches)
    if everything is None:
        return
    if not everything:
        session.remember(_OPEN, None)
        _empty_state()
        return
    projects = sorted({b.project for b in everything})
    if session.widget("batches_project") not in [_ALL, *projects]:
        session.set_widget("batches_project", _ALL)
    top = st.container(horizontal=True, vertical_alignment="bottom")
    with top:
        project = st.selectbox("Project", [_ALL, *projects], key="batches_project", width=360)
    if project == _ALL:
        batches = everything
    else:
        batches = call(cat.get_batches, project)
        if batches is None:
            return
    rows = sum(b.size for b in batches)
    top.caption(f"{len(batches):,} batch{'es' if len(batches) != 1 else ''} · {rows:,} rows"
                + (f" · {len(projects):,} project{'s' if len(projects) != 1 else ''}" if project == _ALL else ""))
    opened = session.recall(_OPEN)
    by_key = {(b.project, b.name): b for b in everything}
    if opened not in by_key:
        opened = None
        session.remember(_OPEN, None)
    for b in batches:
        _batch_card(cat, b, opened == (b.project, b.name))
    args = dialog_args("batches:delete")
    if args and tuple(args) in {(b.name, b.project) for b in everything}:
        _confirm_delete(cat, *args)
