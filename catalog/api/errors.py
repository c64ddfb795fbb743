"""How the REST API answers an error: ``{"error": {"code", "message", "field"}}`` with a fitting status.

A :class:`catalog.CatalogError` keeps its neutral message (input names stay the JSON keys they are);
its class decides the status. Anything unexpected is a 500 with a neutral message (the details go to
the server log, never to the client).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..engine.client import EngineError
from ..errors import AlreadyExists, CatalogBusy, CatalogError, NotFound, ValidationError
from ..store import CatalogReadOnly

log = logging.getLogger("catalog.api")

RETRY_AFTER_S = 2  # what a client is told to wait after a 503 (the catalog was busy)
MAX_LISTED_ERRORS = 100


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    hint: str | None = None


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": {"code", "message", "field"[, "hint", "errors", ...]}}``."""
    error: ErrorDetail


# the statuses any route may answer with this body (documented in the OpenAPI schema)
ERROR_RESPONSES = {status: {"model": ErrorBody, "description": text} for status, text in (
    (400, "Bad input"), (401, "No, an unknown or a revoked token"), (403, "A read-only token on a write"),
    (404, "Unknown id, name or path"), (409, "A name already taken, or a read-only catalog file"),
    (413, "Body over the limit"), (422, "Failed validation"), (500, "Unexpected server error"),
    (502, "The vector engine (Qdrant) failed: unreachable or refusing"),
    (503, "The catalog is busy (see Retry-After)"))}


class ApiError(Exception):
    """An error the API itself raises (auth, bodies, parameters): status, code, message, field."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.headers = status, code, message, field, headers


class BodyTooLarge(ApiError):
    def __init__(self, limit: int):
        super().__init__(413, "BodyTooLarge", f"the request body is larger than the limit of {limit:,} bytes",
                         field="body")


def status_of(exc: CatalogError) -> int:
    if isinstance(exc, EngineError):
        return 502  # the vector engine behind the catalog failed (unreachable, refusing)
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, (AlreadyExists, CatalogReadOnly)):
        return 409
    if isinstance(exc, CatalogBusy):
        return 503
    if isinstance(exc, ValidationError):
        return 422
    return 400


def error_response(status: int, code: str, message: str, field: str | None = None, headers=None,
                   top_level: bool = False, **extra) -> JSONResponse:
    """The error body; ``top_level`` also puts ``message`` and ``status`` beside ``error`` (what advlib reads)."""
    body = {"error": {"code": code, "message": message, "field": field, **extra}}
    if top_level:
        body.update(message=message, status=status)
    return JSONResponse(body, status_code=status, headers=headers)


def _adv(request) -> bool:
    return request.url.path.startswith("/adv/")


def catalog_error_response(exc: CatalogError, top_level: bool = False) -> JSONResponse:
    data = exc.to_dict()
    extra = {"hint": data.get("hint")}
    if isinstance(exc, ValidationError):
        extra["errors"] = [{exc.unit: line, "reason": reason} for line, reason in exc.errors[:MAX_LISTED_ERRORS]]
        extra["total_errors"] = exc.total
    status = status_of(exc)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return error_response(status, data["code"], data["message"], data["field"], headers=headers, top_level=top_level,
                          **extra)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into the JSON shape."""

    @app.exception_handler(CatalogError)
    async def _catalog(request: Request, exc: CatalogError):
        return catalog_error_response(exc, _adv(request))

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.field, headers=exc.headers, top_level=_adv(request))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = ".".join(loc) or None
        message = f"`{field}`: {first.get('msg', 'invalid value')}" if field else first.get("msg", "invalid request")
        return error_response(422, "RequestValidationError", message, field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        message = {404: f"no such path: {request.url.path}",
                   405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, str(exc.detail))
        return error_response(exc.status_code, code, message, None, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "InternalError", "internal server error; the server log has the details")
