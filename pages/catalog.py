"""The catalog page (see dashboard/catalog_page.py)."""

from dashboard.common import run_page
from dashboard.catalog_page import page

run_page(page)
