"""The labeling page (see dashboard/labeling_page.py)."""

from dashboard.common import run_page
from dashboard.labeling_page import page

run_page(page)
