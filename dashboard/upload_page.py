"""The upload page: add data rows from the browser (images, a folder as .zip, NDJSON record files and
an optional metadata file), then show the library's import report.

Uploaded files are written under the user's own file names (the base name only) into a private
temporary folder, imported in one transaction by :meth:`catalog.Catalog.import_datarows` (which keeps
copies of the images in the catalog's media folder), and the folder is removed afterwards. Every
message and report line names the user's file, never the server's temporary path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import streamlit as st

from catalog import CatalogError
from catalog.datarows import IMAGE_EXTENSIONS, RECORD_EXTENSIONS

from . import session
from .common import bump, get_catalog, show_error, show_flash

_REPORT = "upload_report"
_FORM = "upload"  # its generation is bumped after an import, so the uploaders start empty again
DATA_TYPES = sorted({e.lstrip(".") for e in IMAGE_EXTENSIONS | RECORD_EXTENSIONS} | {"zip", "gz"})
METADATA_TYPES = ["csv", "ndjson", "jsonl"]
SHOWN_SKIPS = 200


def safe_name(name: str) -> str:
    """The base name of an uploaded file: no folders (either slash), no ``..``, no control characters."""
    base = str(name).replace("\\", "/").split("/")[-1]
    base = "".join(c for c in base if c.isprintable()).strip()
    return base if base not in ("", ".", "..") else "upload"


def _write(folder: Path, uploads) -> list[tuple[Path, str]]:
    """Write each upload under its own name in ``folder``; a repeated name goes into a subfolder (the later
    file of a name wins, as in the library). Returns ``(path, the user's name)`` in upload order."""
    written, taken = [], set()
    for i, up in enumerate(uploads):
        name = safe_name(up.name)
        target = folder / name
        if name in taken:
            target = Path(tempfile.mkdtemp(prefix=".dup-", dir=folder)) / name
        taken.add(name)
        with open(target, "xb") as fh:
            fh.write(up.getbuffer())
        os.chmod(target, 0o600)
        written.append((target, up.name))
    return written


def _relabel(text: str, names: list[tuple[Path, str]], folder: Path) -> str:
    """``text`` with each temporary path replaced by the user's file name."""
    for path, user in sorted(names, key=lambda pu: -len(str(pu[0]))):
        text = text.replace(str(path), user)
    return text.replace(str(folder) + os.sep, "").replace(str(folder), "the upload")


class _Progress:
    """The library's ``progress(done, total)`` drawn on a progress bar."""

    def __init__(self, bar, names: list[str]):
        self.bar, self.names = bar, names

    def __call__(self, done: int, total: int) -> None:
        if total <= 0:
            return
        current = self.names[done - 1] if 0 < done <= len(self.names) else ""
        text = f"Read {done:,} of {total:,} files" + (f" (last: {current})" if current and done < total else "")
        self.bar.progress(min(done / total, 1.0), text=text)


def _import(cat, uploads, metadata) -> None:
    folder = None
    try:
        folder = Path(tempfile.mkdtemp(prefix="upload-"))  # mode 0700: private to this server's user
        written = _write(folder, uploads)
        meta_path = None
        if metadata is not None:
            (meta_written,) = _write(Path(tempfile.mkdtemp(prefix=".metadata-", dir=folder)), [metadata])
            meta_path = meta_written[0]
            written.append(meta_written)
    except OSError as exc:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        st.error(f"Cannot store the upload on the server ({exc.strerror or exc}); nothing was imported.",
                 icon=":material/block:")
        return
    try:
        with st.status(f"Importing {len(uploads):,} file{'s' if len(uploads) != 1 else ''}…",
                       expanded=True) as status:
            bar = st.progress(0.0, text="Reading the files…")
            try:
                report = cat.import_datarows([p for p, _ in written if p != meta_path], metadata_file=meta_path,
                                             progress=_Progress(bar, [u for p, u in written if p != meta_path]),
                                             copy_files=True)
            except CatalogError as exc:
                status.update(label="Import failed: nothing was written", state="error", expanded=True)
                exc.message = _relabel(exc.message, written, folder)
                session.remember(_REPORT, {"error": exc})
                return
            status.update(label="Import finished", state="complete", expanded=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    session.remember(_REPORT, {
        "created": report.created, "updated": report.updated,
        "skipped": [(_relabel(str(src), written, folder), _relabel(str(why), written, folder))
                    for src, why in report.skipped],
        "notes": _notes(report, written, folder),
        "files": len(uploads),
    })
    session.next_form_generation(_FORM)
    bump()
    st.rerun()


def _notes(report, written, folder) -> list[str]:
    """What the import inferred or generated, its inline vectors and its warnings, as lines."""
    notes = []
    if report.inferred:
        notes.append("media_type inferred for records without one: "
                     + ", ".join(f"{n:,} {kind}" for kind, n in sorted(report.inferred.items())))
    if report.generated_keys:
        notes.append(f"global_key generated for {report.generated_keys:,} text rows without one "
                     "(text-<sha256 of the text>)")
    notes += [f"{n:,} inline vectors imported into {name}" for name, n in report.vectors.items()]
    notes += [f"warning {_relabel(str(src), written, folder)}: {_relabel(str(why), written, folder)}"
              for src, why in report.warnings[:SHOWN_SKIPS]]
    return notes


def _report() -> None:
    got = session.recall(_REPORT)
    if not got:
        return
    with st.container(key="upload_report"):
        if "error" in got:
            show_error(got["error"])
            st.caption("The import is one transaction: nothing of these files was written. Fix the file and "
                       "upload it again.")
            return
        imported = got["created"] + got["updated"]
        st.success(f"{imported:,} data row{'s' if imported != 1 else ''} imported: {got['created']:,} new, "
                   f"{got['updated']:,} updated (from {got['files']:,} file{'s' if got['files'] != 1 else ''})",
                   icon=":material/check_circle:")
        skipped = got["skipped"]
        if skipped:
            st.warning(f"{len(skipped):,} item{'s were' if len(skipped) != 1 else ' was'} skipped; "
                       "the reasons are below.", icon=":material/warning:")
            lines = [f"{src}: {why}" for src, why in skipped[:SHOWN_SKIPS]]
            if len(skipped) > SHOWN_SKIPS:
                lines.append(f"... and {len(skipped) - SHOWN_SKIPS:,} more")
            st.code("\n".join(lines), language=None)
        if got.get("notes"):
            st.info("Notes on this import:", icon=":material/info:")
            st.code("\n".join(got["notes"]), language=None)
        if imported:
            st.page_link(session.app_page("catalog"), label="Open the Catalog", icon=":material/grid_view:")


def page() -> None:
    cat = get_catalog()
    if cat is None:
        return
    show_flash()
    st.title("Upload", anchor=False)
    st.caption("Add data rows to the catalog. A row's global_key is the image's file name, the path inside a "
               ".zip folder, or the record's own key; uploading a key again updates that row.")
    limit = st.get_option("server.maxUploadSize")
    n = session.form_generation(_FORM)
    with st.container(border=True, key="upload_form"):
        uploads = st.file_uploader(
            "Data files: images, a folder as .zip, record files (.ndjson, .jsonl, .json, optionally .gz)",
            type=DATA_TYPES, accept_multiple_files=True, key=f"up_files_{n}")
        metadata = st.file_uploader(
            "Metadata file (optional): CSV with a global_key column, or NDJSON with a \"global_key\" per line",
            type=METADATA_TYPES, key=f"up_meta_{n}")
        st.caption(f"Each file can be up to {limit:,} MB (the server's upload limit, server.maxUploadSize). "
                   "A record file holds one JSON object per line (a .json file may hold one array): "
                   "{\"global_key\", \"text\"} for texts, "
                   "{\"global_key\", \"image\"}, Labelbox data rows {\"row_data\", …} or export lines, or Ximilar "
                   "{\"_id\", \"_url\" / \"_base64\"}; a \"metadata\" object is kept with the row.")
        go = st.button("Import data rows", type="primary", icon=":material/upload:", disabled=not uploads,
                       key="up_go")
    if go and uploads:
        session.remember(_REPORT, None)
        _import(cat, uploads, metadata)
    _report()
    try:
        total = cat.count_datarows()
    except CatalogError as exc:
        show_error(exc)
        return
    st.caption(f"The catalog has {total:,} data rows.")
