"""The embeddings page (see dashboard/embeddings_page.py)."""

from dashboard.common import run_page
from dashboard.embeddings_page import page

run_page(page)
