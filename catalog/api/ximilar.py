"""Ximilar-compatible similarity routes: ``/similarity/{photos,products,custom}/v2/<operation>``.

The collection is the embedding named in the ``collection-id`` header (id or name; an image
embedding). Operations: ``insert``, ``update``, ``delete``, ``get``, ``allRecords``, ``random``,
``ping`` and ``visualKNN`` (``query_record`` with ``_id``, ``_url`` or ``_base64``; ``k``; a
Mongo-style ``filter`` on metadata; ``fields_to_return``). Answers carry ``answer_records``,
``answer_count`` and ``status`` as Ximilar's do; k-NN records add ``_score`` (the catalog's score)
and ``_distance`` (1 − score). Record images by ``_url`` are fetched with the server's URL guard.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from .auth import authorize
from .errors import ApiError
from .fetch import fetch_image_url
from .images import decode_base64
from .native import body_object, cli_json

KINDS = ("photos", "products", "custom")
OK = {"code": 200, "text": "OK"}


def _answer(records, **extra):
    return cli_json({"answer_records": records, "answer_count": len(records), **extra, "status": OK})


def _fields(data) -> list:
    fields = data.get("fields_to_return", ["_id"])
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise ApiError(400, "BadParameter", "`fields_to_return` must be a list of field names", field="fields_to_return")
    return fields


def _filter(data):
    where = data.get("filter")
    if where is not None and not isinstance(where, dict):
        raise ApiError(400, "BadParameter", "`filter` must be an object (Mongo-style)", field="filter")
    return where


def _image(request: Request, rec: dict, where: str) -> bytes:
    settings = request.app.state.settings
    if "_base64" in rec:
        return decode_base64(rec["_base64"], field=f"{where}._base64")
    if "_url" in rec:
        return fetch_image_url(rec["_url"], settings.allow_url_hosts, settings.url_max_bytes, settings.url_timeout_s)
    raise ApiError(400, "BadImage", f"{where} needs `_url` or `_base64` (the client sends `_file` as `_base64`)",
                   field=where)


def _records(data) -> list:
    records = data.get("records")
    if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
        raise ApiError(400, "BadParameter", "`records` must be a non-empty list of objects", field="records")
    return records


def build_router() -> APIRouter:
    router = APIRouter()
    for kind in KINDS:
        base = f"/similarity/{kind}/v2"
        shown = kind == "photos"
        for op, fn in (("insert", insert), ("update", update), ("delete", delete), ("get", get),
                       ("allRecords", all_records), ("random", random), ("ping", ping), ("visualKNN", visual_knn)):
            router.add_api_route(f"{base}/{op}", fn, methods=["POST"], tags=["Ximilar"], include_in_schema=shown,
                                 summary=f"Ximilar {op} (collection in the collection-id header)")
    return router


def _collection(request: Request) -> str:
    ref = request.headers.get("collection-id")
    if not ref:
        raise ApiError(400, "BadParameter", "the `collection-id` header is required (an embedding id or name)",
                       field="collection-id")
    return ref


async def insert(request: Request):
    await authorize(request, write=True)
    data = await body_object(request)
    records = _records(data)
    images = [await run_in_threadpool(_image, request, rec, f"records[{i}]") for i, rec in enumerate(records)]
    out = await run_in_threadpool(request.app.state.catalog.collections.insert, _collection(request), records, images)
    return _answer(out)


async def update(request: Request):
    await authorize(request, write=True)
    data = await body_object(request)
    out = await run_in_threadpool(request.app.state.catalog.collections.update, _collection(request), _records(data))
    return _answer(out)


async def delete(request: Request):
    await authorize(request, write=True)
    data = await body_object(request)
    ids = [r.get("_id") for r in _records(data)]
    n = await run_in_threadpool(request.app.state.catalog.collections.delete, _collection(request), ids)
    return cli_json({"answer_count": n, "status": OK})


async def get(request: Request):
    await authorize(request, write=False)
    data = await body_object(request)
    ids = [r.get("_id") for r in _records(data)]
    out = await run_in_threadpool(request.app.state.catalog.collections.get, _collection(request), ids, _fields(data))
    return _answer(out)


async def all_records(request: Request, size: int | None = Query(None, ge=1, le=10_000),
                      page: int = Query(1, ge=1)):
    await authorize(request, write=False)
    data = await body_object(request) if await request.body() else {}
    total, out = await run_in_threadpool(request.app.state.catalog.collections.all_records, _collection(request),
                                         _fields(data), _filter(data), size, page)
    extra = {"total": total}
    if size is not None and page * size < total:
        extra["next"] = f"allRecords?size={size}&page={page + 1}"
    return _answer(out, **extra)


async def random(request: Request):
    await authorize(request, write=False)
    data = await body_object(request)
    count = data.get("count", 10)
    if isinstance(count, bool) or not isinstance(count, int):
        raise ApiError(400, "BadParameter", "`count` must be a whole number", field="count")
    out = await run_in_threadpool(request.app.state.catalog.collections.random, _collection(request), count,
                                  _fields(data), _filter(data))
    return _answer(out)


async def ping(request: Request):
    await authorize(request, write=False)
    return {"status": OK}


async def visual_knn(request: Request):
    await authorize(request, write=False)
    data = await body_object(request)
    query = data.get("query_record")
    if not isinstance(query, dict):
        raise ApiError(400, "BadParameter", "`query_record` must be an object with `_id`, `_url` or `_base64`",
                       field="query_record")
    k = data.get("k", 5)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 10_000:
        raise ApiError(400, "BadParameter", "`k` must be a whole number from 1 to 10000", field="k")
    row = image = None
    if "_base64" in query or "_url" in query:
        image = await run_in_threadpool(_image, request, query, "query_record")
    elif isinstance(query.get("_id"), str):
        row = query["_id"]
    else:
        raise ApiError(400, "BadParameter", "`query_record` needs `_id`, `_url` or `_base64`", field="query_record")
    out = await run_in_threadpool(request.app.state.catalog.collections.knn, _collection(request), k, _fields(data),
                                  _filter(data), row, image)
    return _answer(out)
