"""Labelbox's ADV REST paths, as advtool (advlib) and the Labelbox SDK call them.

advlib sends JSON requests to ``/adv/adv/v1/...`` and vector chunks to ``/adv/v1/...``; both
prefixes answer every route here (repeated slashes in a path are folded by :class:`FoldSlashes`).
Routes: list (``{"results": [...]}``), create, get and delete embeddings; ``PUT
.../embeddings/{id}/_import_ndjson`` with up to 1,000 lines per request (``X-Content-Lines``),
answering ``{"importedFileSizeOfBytes": n}``; ``GET .../embeddings/{id}/vectors/_count``.

Each chunk is validated whole and imported all-or-nothing; line numbers in its errors count from the
chunk's first line (the server does not know where the chunk sits in the client's file). A chunked
upload is therefore all-or-nothing per chunk only: for one promise over the whole file use the native
``PUT /v1/embeddings/{id}/_import``. Every answer is 200 on success (advlib treats anything else as an
error); error bodies add top-level ``message`` and ``status`` for advlib.
"""

from __future__ import annotations

import os
import re
import tempfile

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..errors import AlreadyExists, CatalogBusy, CatalogError, NotFound
from .auth import authorize, read_access, write_access
from .errors import ApiError
from .native import body_object, cli_json

PREFIXES = ("/adv/adv/v1", "/adv/v1")
MAX_CHUNK_LINES = 10_000


class FoldSlashes:
    """ASGI middleware: ``//adv//x`` → ``/adv/x`` (clients that join an endpoint ending in ``/`` with ``/path``)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and "//" in scope["path"]:
            path = scope["path"]
            while "//" in path:
                path = path.replace("//", "/")
            scope = dict(scope, path=path, raw_path=path.encode())
        await self.app(scope, receive, send)


def _emb(e, count=None) -> dict:
    return e.to_dict(count=count)


def build_router() -> APIRouter:
    r = APIRouter()
    read, write = [Depends(read_access)], [Depends(write_access)]
    for prefix in PREFIXES:
        shown = prefix == PREFIXES[0]
        r.add_api_route(f"{prefix}/embeddings", list_embeddings, methods=["GET"], dependencies=read,
                        tags=["Labelbox ADV"], include_in_schema=shown)
        r.add_api_route(f"{prefix}/embeddings", create_embedding, methods=["POST"], dependencies=write,
                        tags=["Labelbox ADV"], include_in_schema=shown)
        r.add_api_route(f"{prefix}/embeddings/{{ref}}", get_embedding, methods=["GET"], dependencies=read,
                        tags=["Labelbox ADV"], include_in_schema=shown)
        r.add_api_route(f"{prefix}/embeddings/{{ref}}", delete_embedding, methods=["DELETE"], dependencies=write,
                        tags=["Labelbox ADV"], include_in_schema=shown)
        r.add_api_route(f"{prefix}/embeddings/{{ref}}/_import_ndjson", import_chunk, methods=["PUT"],
                        dependencies=write, tags=["Labelbox ADV"], include_in_schema=shown)
        r.add_api_route(f"{prefix}/embeddings/{{ref}}/vectors/_count", count_vectors, methods=["GET"],
                        dependencies=read, tags=["Labelbox ADV"], include_in_schema=shown)
    return r


async def list_embeddings(request: Request):
    cat = request.app.state.catalog

    def run():
        counts = cat.embedding_counts()
        return {"results": [_emb(e, counts.get(e.id, 0)) for e in cat.get_embeddings()]}
    return cli_json(await run_in_threadpool(run))


async def create_embedding(request: Request):
    data = await body_object(request)
    emb = await run_in_threadpool(request.app.state.catalog.create_embedding, data.get("name"), data.get("dims"))
    return cli_json(_emb(emb, 0))


async def get_embedding(request: Request, ref: str):
    emb = await run_in_threadpool(request.app.state.catalog.get_embedding, ref)
    return cli_json(_emb(emb, await run_in_threadpool(emb.get_imported_vector_count)))


async def delete_embedding(request: Request, ref: str):
    eid = await run_in_threadpool(request.app.state.catalog.delete_embedding, ref)
    return {"id": eid, "deleted": True}


async def count_vectors(request: Request, ref: str):
    emb = await run_in_threadpool(request.app.state.catalog.get_embedding, ref)
    return {"count": await run_in_threadpool(emb.get_imported_vector_count)}


async def import_chunk(request: Request, ref: str):
    cat = request.app.state.catalog
    emb = await run_in_threadpool(cat.get_embedding, ref)
    body = await request.body()
    lines = sum(1 for line in body.splitlines() if line.strip())
    declared = request.headers.get("x-content-lines")
    if declared is not None:
        if not declared.strip().isdigit():
            raise ApiError(400, "BadParameter", f"X-Content-Lines must be a whole number, not {declared!r}",
                           field="X-Content-Lines")
        if int(declared) != lines:
            raise ApiError(400, "BadParameter", f"X-Content-Lines says {int(declared)} lines but the chunk has {lines}; "
                           "nothing was imported", field="X-Content-Lines")
    if lines > MAX_CHUNK_LINES:
        raise ApiError(413, "BodyTooLarge", f"a chunk holds at most {MAX_CHUNK_LINES:,} lines, not {lines:,}",
                       field="body")
    fd, path = tempfile.mkstemp(prefix="catalog-chunk-", suffix=".ndjson")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        try:
            await run_in_threadpool(emb.import_vectors_from_file, path)
        except CatalogError as exc:
            exc.message = exc.message.replace(path, "the chunk (lines counted from its first line)")
            raise
    finally:
        os.unlink(path)
    return {"importedFileSizeOfBytes": len(body)}


# -- GraphQL: the embedding operations of the Labelbox SDK (7.x) ---------------------------------------
# The SDK creates, lists and deletes embeddings with these three GraphQL operations (its get_embedding_by_id
# and _by_name filter the list). They are recognised by their root field; any other query is refused with a
# GraphQL error. Answers and errors have the shapes the SDK reads ({"data": ...} / {"errors": [...]}).
_ROOT = re.compile(r"\{\s*(createEmbedding|deleteEmbedding|embeddings)\b")
_GQL_CODES = {NotFound: "RESOURCE_NOT_FOUND", AlreadyExists: "RESOURCE_CONFLICT"}


def _gql_error(message: str, code: str, status: int = 200) -> JSONResponse:
    return JSONResponse({"data": None, "errors": [{"message": message, "extensions": {"code": code}}]},
                        status_code=status)


def _sdk_embedding(e) -> dict:
    return {"id": e.id, "name": e.name, "dims": e.dims, "custom": e.custom}


async def graphql(request: Request):
    try:
        await authorize(request, write=False)
    except ApiError as exc:
        return _gql_error(exc.message, "AUTHENTICATION_ERROR", exc.status)
    data = await body_object(request)
    query, variables = data.get("query"), data.get("variables") or {}
    found = _ROOT.search(query) if isinstance(query, str) else None
    if found is None:
        return _gql_error("only the embedding operations (embeddings, createEmbedding, deleteEmbedding) are "
                          "answered here", "GRAPHQL_VALIDATION_FAILED", 400)
    op = found.group(1)
    cat = request.app.state.catalog
    try:
        if op != "embeddings":
            await authorize(request, write=True)
        args = variables.get("data") if isinstance(variables, dict) else None
        if op == "embeddings":
            out = [_sdk_embedding(e) for e in await run_in_threadpool(cat.get_embeddings)]
        elif not isinstance(args, dict):
            return _gql_error("the variable `data` must be an object", "MALFORMED_REQUEST")
        elif op == "createEmbedding":
            out = _sdk_embedding(await run_in_threadpool(cat.create_embedding, args.get("name"), args.get("dims")))
        else:
            await run_in_threadpool(cat.delete_embedding, args.get("id"))
            out = True
    except ApiError as exc:
        return _gql_error(exc.message, "AUTHORIZATION_ERROR", exc.status)
    except CatalogError as exc:
        if isinstance(exc, CatalogBusy):
            raise  # the JSON 503 with Retry-After
        return _gql_error(str(exc), _GQL_CODES.get(type(exc), "MALFORMED_REQUEST"))
    return {"data": {op: out}}


def build_graphql_router() -> APIRouter:
    r = APIRouter()
    r.add_api_route("/graphql", graphql, methods=["POST"], tags=["Labelbox GraphQL"],
                    summary="The Labelbox SDK's embedding operations (embeddings, createEmbedding, deleteEmbedding)")
    return r
