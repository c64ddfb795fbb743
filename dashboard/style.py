"""A little CSS for the cards (everything else is Streamlit's own theme)."""

import streamlit as st

CSS = """
<style>
div[data-testid="stMainBlockContainer"] {padding-top: 2.2rem; padding-bottom: 2rem;}
.cat-text {height: 9.5rem; overflow: hidden; font-size: 0.9rem; line-height: 1.35;
           padding: 0.2rem 0.1rem; color: var(--text-color, #262730);}
.cat-missing {height: 8rem; display: flex; flex-direction: column; justify-content: center; align-items: center;
              background: #f3f4f6; border-radius: 0.4rem; color: #6b7280; font-size: 0.8rem; text-align: center;}
.cat-chip {height: 5.5rem; width: 110px; overflow: hidden; font-size: 0.78rem; line-height: 1.25;}
div[class*="st-key-card_"] code {white-space: nowrap; font-size: 0.72rem;}
div[data-testid="stImage"] img {border-radius: 0.35rem; image-rendering: auto;}
div.st-key-toolbar button p, div.st-key-results_head button p {font-size: 0.85rem;}
</style>
"""


def apply() -> None:
    st.html(CSS)
