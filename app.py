"""Streamlit dashboard entry point (the pages are filled in by the dashboard work)."""

import streamlit as st

st.set_page_config(page_title="Embedding catalog", layout="wide")
st.title("Embedding catalog")
