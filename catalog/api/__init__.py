"""The REST server: :func:`create_app` (FastAPI on one Catalog) and :func:`serve` (uvicorn)."""

from .app import create_app
from .settings import ApiSettings

__all__ = ["create_app", "ApiSettings"]
