"""The REST app: one :class:`catalog.Catalog` behind FastAPI, as thin as the command line.

Routes call the library and shape its answer; no SQL and no scoring here. Every route checks the
request's token (:mod:`.auth`), bodies are capped (:mod:`.limits`), errors are JSON (:mod:`.errors`).
The OpenAPI schema is at ``/openapi.json`` and an interactive page at ``/docs``; the page's script and
style come from the installed ``swagger-ui-bundle`` package (nothing is fetched from the internet), and
without that package ``/docs`` is a plain page that links the schema.
"""

from __future__ import annotations

import contextlib

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from . import errors, jobs, labelbox, maps, native, quality, sentisight, ximilar
from .limits import BodyLimit
from .settings import ApiSettings

IMPORT_SUFFIX = "/_import"  # whole-file imports may be larger than other bodies
ASSETS = "/docs/assets"


def _swagger_dir():
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    return str(swagger_ui_path)


def create_app(catalog, settings: ApiSettings | None = None) -> FastAPI:
    """The app serving ``catalog`` (a :class:`catalog.Catalog`) with ``settings``."""
    settings = settings or ApiSettings()

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        try:
            yield
        finally:
            catalog.store.release()  # a no-op unless the server held the file open

    app = FastAPI(title="Embedding catalog", version="1", docs_url=None, redoc_url=None, lifespan=lifespan,
                  openapi_url="/openapi.json", responses=errors.ERROR_RESPONSES,
                  description="Data rows, embeddings, L1 similarity search, slices and label-by-similarity. "
                              "Send a token as `X-Auth-token: T`, `Authorization: Bearer T` or `Authorization: Token T`.")
    app.state.catalog = catalog
    app.state.settings = settings
    errors.install(app)

    def limit_for(path: str) -> int:
        return settings.max_import_bytes if path.endswith(IMPORT_SUFFIX) else settings.max_body_bytes

    app.add_middleware(BodyLimit, limit_for=limit_for)
    app.add_middleware(labelbox.FoldSlashes)
    assets = _swagger_dir()
    if assets:
        from starlette.staticfiles import StaticFiles
        app.mount(ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        if not assets:
            return HTMLResponse("<!doctype html><title>Embedding catalog API</title>"
                                "<p>The OpenAPI schema is at <a href='/openapi.json'>/openapi.json</a>. "
                                "Install the <code>swagger-ui-bundle</code> package for the interactive page.</p>")
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Embedding catalog API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon-32x32.png")

    @app.get("/health", include_in_schema=False)
    async def health():
        return {"status": "ok"}

    app.include_router(sentisight.build_router())
    app.include_router(native.build_router(), prefix="/v1")
    app.include_router(jobs.build_router(), prefix="/v1")
    app.include_router(quality.build_router(), prefix="/v1")
    app.include_router(maps.build_router(), prefix="/v1")
    app.include_router(ximilar.build_router())
    app.include_router(labelbox.build_router())
    app.include_router(labelbox.build_graphql_router())
    return app
