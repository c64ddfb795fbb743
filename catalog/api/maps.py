"""Native ``/v1/maps`` routes: an embedding's 2-D map — compute (a job), its info and points, export, and
the rows inside a polygon (a lasso), returned as ids or saved as a slice of those rows.

Answers are the library's (the CLI's ``--json``); a map that is missing or made from older vectors is a
404 that says to compute it (again).
"""

from __future__ import annotations

import io

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from ..maps import METHODS
from ..maps.service import check_method
from ..slices import check_name
from .auth import authorize, read_access, write_access
from .errors import ApiError
from .jobs import start_job
from .native import body_object, cli_json
from .quality import flag, known_keys

SELECT_KEYS = ("polygon", "save", "description", "replace")
METHOD_PATTERN = f"^({'|'.join(METHODS)})$"


def build_router() -> APIRouter:
    r = APIRouter()
    read, write = [Depends(read_access)], [Depends(write_access)]

    @r.post("/maps/{embedding}/_compute", dependencies=write, tags=["maps"], status_code=202,
            summary="Compute the embedding's map as a job: {\"method\": \"pca\" | \"umap\"}; see /v1/jobs/{id}")
    async def compute(request: Request, embedding: str):
        data = known_keys(await body_object(request), ("method",)) if await request.body() else {}
        method = check_method(data.get("method", "pca"))
        cat = request.app.state.catalog
        emb = await run_in_threadpool(cat.embeddings.get_embedding, embedding)  # unknown: 404 now
        job = start_job("map", lambda progress: cat.maps.compute(emb.id, method, progress).info(),
                        embedding=emb.name, method=method)
        return cli_json(dict(job), status=202)

    @r.get("/maps/{embedding}", dependencies=read, tags=["maps"],
           summary="What the embedding's latest map is: method, version, points, current (404: none yet)")
    async def info(request: Request, embedding: str):
        found = await run_in_threadpool(request.app.state.catalog.maps.info, embedding)
        if found is None:
            raise ApiError(404, "NotFound", f"embedding {embedding!r} has no map yet; compute it first",
                           field="embedding")
        return cli_json(found)

    @r.get("/maps/{embedding}/points", dependencies=read, tags=["maps"],
           summary="The current map's points: {\"info\", \"ids\", \"x\", \"y\"} (ids ascending, x[i], y[i] of ids[i])")
    async def points(request: Request, embedding: str, method: str | None = Query(None, pattern=METHOD_PATTERN)):
        def run():
            made = request.app.state.catalog.maps.get(embedding, method)
            xy = made.xy.astype(float)
            return {"info": made.info(), "ids": made.ids.tolist(), "x": xy[:, 0].tolist(), "y": xy[:, 1].tolist()}
        return cli_json(await run_in_threadpool(run))

    @r.get("/maps/{embedding}/_export", dependencies=read, tags=["maps"],
           summary="The current map as NDJSON or CSV: id, global_key, x, y per point",
           responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}, "description": "The points"}})
    async def export(request: Request, embedding: str, format: str = Query("ndjson", pattern="^(ndjson|csv)$")):
        out = io.StringIO()
        await run_in_threadpool(request.app.state.catalog.maps.export, embedding, out, format)
        return PlainTextResponse(out.getvalue(), media_type="text/csv" if format == "csv" else "application/x-ndjson")

    @r.post("/maps/{embedding}/_select", tags=["maps"],
            summary="The rows inside a polygon of the current map: {\"polygon\": [[x, y], ...]} → {\"count\", \"ids\"}; "
                    "with \"save\": NAME (\"description\", \"replace\") they are saved as a slice of those rows")
    async def select(request: Request, embedding: str):
        data = known_keys(await body_object(request), SELECT_KEYS)
        if "polygon" not in data:
            raise ApiError(400, "BadParameter", "give the `polygon`: a list of [x, y] vertices", field="polygon")
        save, description = data.get("save"), data.get("description")
        if save is not None:
            if not isinstance(save, str):
                raise ApiError(400, "BadParameter", "`save` must be a slice name", field="save")
            check_name(save)
        replace = flag(data, "replace")
        await authorize(request, write=save is not None)
        cat = request.app.state.catalog

        def run():
            ids = cat.maps.select_in_polygon(embedding, data["polygon"])
            if save is None:
                return {"count": len(ids), "ids": ids.tolist()}
            return {"count": len(ids), "slice": cat.slices.save_rows(save, ids, description, replace).to_dict()}
        return cli_json(await run_in_threadpool(run))

    return r
