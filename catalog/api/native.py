"""The native ``/v1`` routes: the library's operations, answering the JSON of the CLI's ``--json``.

Embeddings (list, create, get, count, delete, whole-file NDJSON import), data rows (insert records,
get, list with a filter and paging, delete; one image uploaded as a row), search (a ``SearchSpec`` JSON body plus ``limit`` and
``offset``), slices (list, get, rows, save, delete), labels (list, set, remove) and label-by-similarity of rows
(of an uploaded image: :mod:`.jobs`).
Bodies are JSON objects; their keys are the library's names (so error ``field``\\ s match them).
"""

from __future__ import annotations

import base64
import json
import os
import tempfile

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ..errors import CatalogError
from ..search import Page, SearchSpec
from .auth import authorize, read_access, write_access
from .errors import ApiError
from .images import image_query, read_json

PAGE_KEYS = ("limit", "offset", "backend")


def cli_json(data, status: int = 200) -> JSONResponse:
    """``data`` exactly as ``print_json`` writes it (timestamps and other objects as ``str``)."""
    return JSONResponse(json.loads(json.dumps(data, ensure_ascii=False, default=str)), status_code=status)


async def body_object(request: Request) -> dict:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ApiError(400, "BadJson", "the request body must be a JSON object", field="body")
    return data


def _int(data: dict, key: str, default):
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, "BadParameter", f"`{key}` must be a whole number, not {value!r}", field=key)
    return value


def _call(fn, *args, **kwargs):
    return run_in_threadpool(fn, *args, **kwargs)


def build_router() -> APIRouter:
    r = APIRouter()
    read, write = [Depends(read_access)], [Depends(write_access)]

    # -- embeddings ---------------------------------------------------------------------------------
    @r.get("/embeddings", dependencies=read, tags=["embeddings"], summary="Every embedding with its vector count")
    async def list_embeddings(request: Request):
        cat = request.app.state.catalog

        def run():
            counts = cat.embedding_counts()
            return [e.to_dict(count=counts.get(e.id, 0)) for e in cat.get_embeddings()]
        return cli_json(await _call(run))

    @r.post("/embeddings", dependencies=write, tags=["embeddings"], status_code=201,
            summary="Create a custom embedding: {\"name\", \"dims\"}")
    async def create_embedding(request: Request):
        data = await body_object(request)
        emb = await _call(request.app.state.catalog.create_embedding, data.get("name"), data.get("dims"))
        return cli_json(emb.to_dict(count=0), status=201)

    @r.get("/embeddings/{ref}", dependencies=read, tags=["embeddings"])
    async def get_embedding(request: Request, ref: str):
        emb = await _call(request.app.state.catalog.get_embedding, ref)
        return cli_json(emb.to_dict(count=await _call(emb.get_imported_vector_count)))

    @r.get("/embeddings/{ref}/count", dependencies=read, tags=["embeddings"], summary="Number of vectors")
    async def count_vectors(request: Request, ref: str):
        emb = await _call(request.app.state.catalog.get_embedding, ref)
        return {"count": await _call(emb.get_imported_vector_count)}

    @r.delete("/embeddings/{ref}", dependencies=write, tags=["embeddings"])
    async def delete_embedding(request: Request, ref: str):
        return {"id": await _call(request.app.state.catalog.delete_embedding, ref), "deleted": True}

    @r.put("/embeddings/{ref}/_import", dependencies=write, tags=["embeddings"],
           summary="Import a whole NDJSON(.gz) vector file (the body), validated whole: all or nothing")
    async def import_vectors(request: Request, ref: str):
        cat = request.app.state.catalog
        emb = await _call(cat.get_embedding, ref)
        gz = request.headers.get("content-encoding", "").lower() == "gzip" or \
            request.headers.get("content-type", "").lower() in ("application/gzip", "application/x-gzip")
        fd, path = tempfile.mkstemp(prefix="catalog-import-", suffix=".ndjson.gz" if gz else ".ndjson")
        try:
            with os.fdopen(fd, "wb") as fh:
                async for chunk in request.stream():
                    fh.write(chunk)
            try:
                n = await _call(emb.import_vectors_from_file, path)
            except CatalogError as exc:  # name the body, not the server's temporary file
                exc.message = exc.message.replace(path, "the request body")
                raise
        finally:
            os.unlink(path)
        return {"imported": n}

    # -- data rows ----------------------------------------------------------------------------------
    @r.get("/datarows", dependencies=read, tags=["datarows"],
           summary="Rows by page; with `where` (a JSON filter) the matching rows' ids and keys and the total")
    async def list_datarows(request: Request, limit: int = Query(50, ge=0), offset: int = Query(0, ge=0),
                            where: str | None = Query(None, description="a JSON filter, as --where"),
                            sort: str = Query("global_key"), order: str | None = Query(None)):
        cat = request.app.state.catalog
        if where is None:
            return cli_json(await _call(cat.list_datarows, limit, offset))
        try:
            parsed = json.loads(where)
        except ValueError as exc:
            raise ApiError(400, "BadParameter", f"`where` is not valid JSON ({exc})", field="where") from None
        result = await _call(cat.filter_datarows, parsed, limit, offset, sort, order)
        return cli_json(result.to_dict())

    @r.post("/datarows", dependencies=write, tags=["datarows"], status_code=201,
            summary="Insert records: {\"records\": [{\"global_key\", \"text\" | \"row_data\", \"metadata\"} or "
                    "{\"_id\", \"_base64\", field: value...}]}")
    async def insert_datarows(request: Request):
        data = await body_object(request)
        records = data.get("records")
        if not isinstance(records, list) or not records:
            raise ApiError(400, "BadParameter", "`records` must be a non-empty list of record objects", field="records")
        return await _insert_records(request.app.state.catalog, records)

    @r.post("/datarows/_image", dependencies=write, tags=["datarows"], status_code=201,
            summary="Insert one image as a data row: the body is the image's bytes, or {\"url\"} or {\"base64\"}")
    async def insert_image(request: Request,
                           global_key: str = Query(..., min_length=1, max_length=1024, description="the new row's key"),
                           metadata: str | None = Query(None, description="the row's metadata, a JSON object")):
        meta = _json_object(metadata, "metadata")
        query = await image_query(request)
        if query.row is not None:
            raise ApiError(400, "BadImage", "`imageName` names a row that exists; send the image itself", field="imageName")
        fields = {k: v for k, v in meta.items() if not str(k).startswith("_")}  # Ximilar's shape: fields are metadata
        record = {**fields, "_id": global_key, "_base64": base64.b64encode(query.data).decode("ascii")}
        return await _insert_records(request.app.state.catalog, [record])

    @r.post("/datarows/_delete", dependencies=write, tags=["datarows"],
            summary="Delete rows {\"ids\": [...]} with their vectors, labels and batch entries; all or nothing")
    async def delete_many(request: Request):
        data = await body_object(request)
        ids = data.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ApiError(400, "BadParameter", "`ids` must be a list of data row ids or global_keys", field="ids")
        return cli_json((await _call(request.app.state.catalog.delete_datarows, ids)).to_dict())

    @r.get("/datarows/{ref:path}", dependencies=read, tags=["datarows"], summary="One row by id or global_key")
    async def get_datarow(request: Request, ref: str):
        return cli_json(await _call(request.app.state.catalog.get_datarow, ref))

    @r.delete("/datarows/{ref:path}", dependencies=write, tags=["datarows"])
    async def delete_datarow(request: Request, ref: str):
        return cli_json((await _call(request.app.state.catalog.delete_datarows, [ref])).to_dict())

    # -- search -------------------------------------------------------------------------------------
    @r.post("/search", dependencies=read, tags=["search"],
            summary="A search: SearchSpec JSON plus `limit`, `offset` (and `backend`); no bounds: automatic range")
    async def search(request: Request):
        data = await body_object(request)
        spec = spec_from_body(data)
        page = Page(_int(data, "limit", 50), _int(data, "offset", 0))
        result = await _call(request.app.state.catalog.search, spec, page, backend=_backend(data.get("backend")))
        out = result.to_dict()
        if result.score_range is not None and result.score_range.automatic:
            out["score_range"] = result.score_range.to_dict()
        return cli_json(_notes(out, result))

    # -- slices -------------------------------------------------------------------------------------
    @r.get("/slices", dependencies=read, tags=["slices"])
    async def list_slices(request: Request):
        return cli_json([s.to_dict() for s in await _call(request.app.state.catalog.get_slices)])

    @r.get("/slices/{name}", dependencies=read, tags=["slices"])
    async def get_slice(request: Request, name: str):
        return cli_json((await _call(request.app.state.catalog.get_slice, name)).to_dict())

    @r.get("/slices/{name}/rows", dependencies=read, tags=["slices"])
    async def slice_rows(request: Request, name: str, limit: int = Query(50, ge=0), offset: int = Query(0, ge=0),
                         backend: str = Query("auto")):
        s = await _call(request.app.state.catalog.get_slice, name)
        result = await _call(s.rows, limit, offset, _backend(backend))
        return cli_json(_notes(result.to_dict(), result))

    @r.put("/slices/{name}", dependencies=write, tags=["slices"],
           summary="Save a search as a slice: SearchSpec JSON plus `description` and `replace`")
    async def save_slice(request: Request, name: str):
        data = await body_object(request)
        description, replace = data.pop("description", None), bool(data.pop("replace", False))
        spec = spec_from_body(data) if data else SearchSpec()
        s = await _call(request.app.state.catalog.save_slice, name, spec, description=description, replace=replace)
        return cli_json(s.to_dict())

    @r.delete("/slices/{name}", dependencies=write, tags=["slices"])
    async def delete_slice(request: Request, name: str):
        await _call(request.app.state.catalog.delete_slice, name)
        return {"deleted": name}

    # -- labels -------------------------------------------------------------------------------------
    @r.get("/labels", dependencies=read, tags=["labels"], summary="The labels of rows (?ids=..., repeatable)")
    async def list_labels(request: Request, ids: list[str] = Query(...)):
        cat = request.app.state.catalog

        def run():
            rows = cat.get_datarows(ids)
            labels = cat.get_labels([row["id"] for row in rows])
            return [{"id": row["id"], "global_key": row["global_key"], "labels": labels[row["id"]]} for row in rows]
        return cli_json(await _call(run))

    @r.put("/labels", dependencies=write, tags=["labels"], summary="Give a row manual labels: {\"id\", \"labels\"}")
    async def set_labels(request: Request):
        data = await body_object(request)
        names = await _call(request.app.state.catalog.set_labels, _ref(data), data.get("labels"))
        return {"id": data["id"], "labels": names}

    @r.post("/labels/_remove", dependencies=write, tags=["labels"],
            summary="Remove labels from a row: {\"id\", \"labels\"} (all of them when `labels` is null)")
    async def remove_labels(request: Request):
        data = await body_object(request)
        n = await _call(request.app.state.catalog.remove_labels, _ref(data), data.get("labels"))
        return {"id": data["id"], "removed": n}

    @r.post("/label-by-similarity", tags=["labels"],
            summary="Suggest labels: {\"embedding\", \"ids\" | \"slice\" | \"unlabeled\": true, \"results\", "
                    "\"threshold\", \"top_only\", \"save\", \"backend\": \"exact\" | \"qdrant\"}")
    async def label_by_similarity(request: Request):
        data = await body_object(request)
        save = data.get("save", False)
        if not isinstance(save, bool):
            raise ApiError(400, "BadParameter", "`save` must be true or false", field="save")
        await authorize(request, write=save)
        chosen = [k for k in ("ids", "slice", "unlabeled") if data.get(k)]
        if len(chosen) != 1:
            raise CatalogError("give the rows to label with exactly one of `ids`, `slice` or `unlabeled`", field="ids")
        rows = data.get("ids") or ("unlabeled" if data.get("unlabeled") else None)
        result = await _call(request.app.state.catalog.label_by_similarity, data.get("embedding"), rows,
                             results=data.get("results", 10), threshold=data.get("threshold", 0.30),
                             top_only=bool(data.get("top_only", False)), save=save, slice=data.get("slice"),
                             backend=_backend(data.get("backend")))
        out = result.to_dict()
        if save:
            out["saved"] = result.saved
        return cli_json(out)

    return r


async def _insert_records(cat, records: list) -> JSONResponse:
    """Import record objects through a temporary record file (one transaction; images copied in)."""
    def run():
        with tempfile.TemporaryDirectory(prefix="catalog-records-") as tmp:
            path = os.path.join(tmp, "records.ndjson")
            with open(path, "w", encoding="utf-8") as fh:
                for rec in records:
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            return cat.import_datarows([path], copy_files=True)
    report = await _call(run)
    out = {"created": report.created, "updated": report.updated,
           "skipped": [{"source": s, "reason": why} for s, why in report.skipped],
           "warnings": [{"source": s, "message": m} for s, m in report.warnings]}
    return cli_json(out, status=201 if report.imported else 400)


def _json_object(text: str | None, field: str) -> dict:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ApiError(400, "BadParameter", f"`{field}` is not valid JSON ({exc})", field=field) from None
    if not isinstance(value, dict):
        raise ApiError(400, "BadParameter", f"`{field}` must be a JSON object", field=field)
    return value


def _backend(value) -> str:
    if value is None:
        return "auto"
    if not isinstance(value, str):
        raise ApiError(400, "BadParameter", f"`backend` must be a backend name, not {value!r}", field="backend")
    return value


def _notes(out: dict, result) -> dict:
    """A search answer plus, where there are any, its ``warnings`` (e.g. the vector engine failed and the
    automatic choice searched locally) and, for an approximate answer, ``complete: false`` and ``recall``."""
    if result.warnings:
        out["warnings"] = list(result.warnings)
    if not result.complete:
        out.update(backend=result.backend, complete=False, recall=result.recall)
    return out


def _ref(data: dict) -> str:
    ref = data.get("id")
    if not isinstance(ref, str) or not ref.strip():
        raise ApiError(400, "BadParameter", "`id` must be a data row id or global_key", field="id")
    return ref


def spec_from_body(data: dict) -> SearchSpec:
    """The SearchSpec of a body (its JSON form; page keys ignored); no bounds at all means automatic."""
    spec = {k: v for k, v in data.items() if k not in PAGE_KEYS}
    if spec.get("min_score") is None and spec.get("max_score") is None and "auto_range" not in spec:
        spec["auto_range"] = True
    return SearchSpec.from_json(spec)
