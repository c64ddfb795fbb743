"""The slices page (see dashboard/slices_page.py)."""

from dashboard.common import run_page
from dashboard.slices_page import page

run_page(page)
