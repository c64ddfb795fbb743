"""The embedding catalog dashboard: ``streamlit run app.py`` (opens ``$CATALOG_DB``, else the demo catalog)."""

import streamlit as st

from dashboard import style

st.set_page_config(page_title="Embedding catalog", page_icon=":material/grid_view:", layout="wide")
style.apply()

PAGES = {
    "catalog": st.Page("pages/catalog.py", title="Catalog", icon=":material/grid_view:", default=True),
    "slices": st.Page("pages/slices.py", title="Slices", icon=":material/bookmarks:"),
    "labeling": st.Page("pages/labeling.py", title="Label by similarity", icon=":material/auto_awesome:"),
    "embeddings": st.Page("pages/embeddings.py", title="Embeddings", icon=":material/hub:"),
}
st.session_state["_pages_by_name"] = PAGES
st.navigation(list(PAGES.values()), position="top").run()
