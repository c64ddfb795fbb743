"""The embedding catalog dashboard: ``streamlit run app.py`` (opens ``$CATALOG_DB``, else the demo catalog).

Every page runs through this script: ``st.navigation`` below is the app's one navigation, and each URL
(``/``, ``/slices``, ``/labeling``, ``/embeddings``, ``/map``) is the ``url_path`` of one ``st.Page``. Streamlit
still treats the ``pages/`` folder as an old-style multipage app until ``st.navigation`` has run once in
the server process, so on a fresh server a bookmark to ``/labeling`` runs ``pages/labeling.py`` on its
own; the page scripts notice that (no entry mark in the session) and hand over to this script (:func:`enter`).

Nothing here makes the browser fetch from another host: the favicon is an inline SVG (a ``data:`` URL),
not a Material icon (which the browser would download from fonts.gstatic.com).
"""

import streamlit as st

from dashboard import session, style

# a 2×2 grid in the theme's primary colour (the favicon; inline, so no request leaves the server)
FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="#4f46e5">'
           + "".join(f'<rect x="{x}" y="{y}" width="8" height="8" rx="1.5"/>' for y in (3, 13) for x in (3, 13))
           + '</svg>')


def main() -> None:
    st.set_page_config(page_title="Embedding catalog", page_icon=FAVICON, layout="wide")
    style.apply()
    pages = {
        "catalog": st.Page("pages/catalog.py", title="Catalog", icon=":material/grid_view:", default=True),
        "slices": st.Page("pages/slices.py", title="Slices", icon=":material/bookmarks:", url_path="slices"),
        "labeling": st.Page("pages/labeling.py", title="Label by similarity", icon=":material/auto_awesome:",
                            url_path="labeling"),
        "embeddings": st.Page("pages/embeddings.py", title="Embeddings", icon=":material/hub:",
                              url_path="embeddings"),
        "map": st.Page("pages/map.py", title="Map", icon=":material/scatter_plot:", url_path="map"),
        "batches": st.Page("pages/batches.py", title="Batches", icon=":material/inventory_2:", url_path="batches"),
        "upload": st.Page("pages/upload.py", title="Upload", icon=":material/upload:", url_path="upload"),
        "duplicates": st.Page("pages/duplicates.py", title="Duplicates", icon=":material/content_copy:",
                              url_path="duplicates"),
    }
    session.set_pages(pages)
    page = st.navigation(list(pages.values()), position="top")
    session.mark_entry()  # this run is the app's; the page script takes the mark
    page.run()


def enter(run_page) -> None:
    """What a page script calls: run the page when this app's navigation runs it, else run the app.

    ``run_page`` shows the page. A page script started without this script (Streamlit's ``pages/``
    folder loader on a fresh server) runs the app instead, which opens the same page by its URL.
    """
    if session.take_entry():
        run_page()
        return
    main()


if __name__ == "__main__":
    main()
