"""The backend contract suite against a real Qdrant server or cluster (``CATALOG_QDRANT_URL``, e.g.
``http://127.0.0.1:6333``; ``CATALOG_QDRANT_API_KEY_ENV`` names the variable holding its API key, if
any). Skipped when the variable is not set: no server runs in CI. Each run uses collections of a
fresh catalog key, deleted afterwards."""

from __future__ import annotations

import os

import pytest

URL = os.environ.get("CATALOG_QDRANT_URL")
pytestmark = [pytest.mark.qdrant_server,
              pytest.mark.skipif(not URL, reason="CATALOG_QDRANT_URL is not set (no Qdrant server to test against)")]
pytest.importorskip("qdrant_client", reason="the qdrant extra (qdrant-client) is not installed")

from test_search_contract import *  # noqa: E402,F401,F403  (the same tests, on the server)
from test_search_contract import N, data  # noqa: E402,F401


@pytest.fixture(scope="module")
def backend(data):
    cat = data[0]
    cat.engines.set_engine(URL, api_key_env=os.environ.get("CATALOG_QDRANT_API_KEY_ENV"))
    (report,) = cat.engines.sync(["contract"])
    assert report.count == N
    yield "qdrant"
    from catalog.engine.client import connect
    cfg = cat.engines.config()
    connect(cfg).drop(cfg.collection(cat.get_embedding("contract")))
    cat.engines.unset_engine()
