"""The Streamlit dashboard's pages (run with ``streamlit run app.py``)."""
