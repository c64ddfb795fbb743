"""The Map page (dashboard/map_page.py), run by app.py; opened on its own, it runs the app."""

import app
from dashboard.common import run_page
from dashboard.map_page import page

app.enter(lambda: run_page(page))
