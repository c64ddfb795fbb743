"""The batches page (dashboard/batches_page.py), run by app.py; opened on its own, it runs the app."""

import app
from dashboard.batches_page import page
from dashboard.common import run_page

app.enter(lambda: run_page(page))
