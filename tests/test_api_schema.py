"""Schemathesis against the app's own OpenAPI schema (in-process): no 5xx and answers that conform to
the schema (status codes, content types, bodies), with a read-write token, on a throwaway catalog."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import schemathesis
from schemathesis import checks
from api_support import build_api_catalog
from hypothesis import HealthCheck, settings

from catalog import Catalog
from catalog.api import create_app

_state: dict = {}


def _app():
    if "app" not in _state:
        folder = Path(tempfile.mkdtemp(prefix="api-schema-"))
        atexit.register(shutil.rmtree, folder, True)
        db, rw, _ = build_api_catalog(folder)
        _state.update(app=create_app(Catalog(db)), token=rw)
    return _state["app"]


# bodies of most routes are read by the route itself (images, NDJSON), so they are not in the schema and
# "schema-valid data must be accepted" does not apply; every answer must still be one the schema describes
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance, checks.response_headers_conformance]
schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])
def test_no_server_errors_and_schema_conformance(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {_state['token']}"}, checks=CHECKS)
