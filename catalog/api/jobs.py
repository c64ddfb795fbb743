"""Native routes for models and long work: ``GET /v1/models``, ``POST /v1/models/{model}/_compute``
(a job in this server process; uniqueness and maps start theirs with :func:`start_job`) and ``GET /v1/jobs/{id}`` (its progress and, when done, its report or
error); plus label import and export and label-by-similarity for an uploaded image.

Jobs live in the memory of the server process that started them (with several ``--workers`` ask the
same process: they are not shared) and are forgotten when it stops; the vectors a job computed stay.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
import uuid

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from ..errors import CatalogError
from .auth import read_access, write_access
from .errors import ApiError
from .images import image_query
from .native import body_object, cli_json

MAX_JOBS = 100
_jobs: dict[str, dict] = {}
_lock = threading.Lock()


def start_job(kind: str, work, **about) -> dict:
    """Run ``work(progress)`` (it returns the JSON report) in a thread as a job of ``kind``; ``about``
    (e.g. ``model``, ``embedding``) is shown with it. ``progress(done, total)`` moves ``done``/``total``."""
    job = {"id": str(uuid.uuid4()), "kind": kind, **about, "state": "running", "done": 0, "total": None,
           "report": None, "error": None}

    def progress(done, total):
        job["done"], job["total"] = done, total

    def run():
        try:
            job["report"], job["state"] = work(progress), "done"
        except CatalogError as exc:
            job["error"], job["state"] = exc.to_dict(), "failed"
        except Exception:  # noqa: BLE001 - the job says it failed; the details stay in the server log
            import logging
            logging.getLogger("catalog.api").exception("%s job %s failed", kind, job["id"])
            job["error"] = {"code": "InternalError", "message": "the job failed; the server log has the details",
                            "field": None, "hint": None}
            job["state"] = "failed"

    with _lock:
        if len(_jobs) >= MAX_JOBS:
            for jid in [j for j, v in _jobs.items() if v["state"] != "running"][: len(_jobs) - MAX_JOBS + 1]:
                del _jobs[jid]
        _jobs[job["id"]] = job
    threading.Thread(target=run, name=f"job-{job['id']}", daemon=True).start()
    return job


def build_router() -> APIRouter:
    r = APIRouter()
    read, write = [Depends(read_access)], [Depends(write_access)]

    @r.get("/models", dependencies=read, tags=["models"], summary="Each model: name, id, dims, media type, available")
    async def list_models(request: Request):
        return cli_json(await run_in_threadpool(request.app.state.catalog.list_models))

    @r.post("/models/{model}/_compute", dependencies=write, tags=["models"], status_code=202,
            summary="Compute a model's vectors as a job: {\"all\": false, \"device\": null}; see /v1/jobs/{id}")
    async def compute(request: Request, model: str):
        data = await body_object(request) if await request.body() else {}
        cat = request.app.state.catalog
        known = await run_in_threadpool(cat.list_models)
        if not any(model in (m.get("name"), m.get("id")) for m in known):
            raise ApiError(404, "NotFound", f"no model {model!r}; GET /v1/models lists them", field="model")
        all_rows, device = bool(data.get("all", False)), data.get("device")
        job = start_job("compute", lambda progress: cat.compute_embeddings(model, all=all_rows, device=device,
                                                                           progress=progress).to_dict(), model=model)
        return cli_json(dict(job), status=202)

    @r.get("/jobs/{job_id}", dependencies=read, tags=["models"], summary="A job's state, progress and result")
    async def get_job(job_id: str):
        job = _jobs.get(job_id)
        if job is None:
            raise ApiError(404, "NotFound", f"no job {job_id!r} in this server process", field="job_id")
        return cli_json(dict(job))

    @r.get("/labels/_export", dependencies=read, tags=["labels"], summary="Every label as CSV or NDJSON",
           responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}, "description": "The labels"}})
    async def export_labels(request: Request, format: str = Query("csv", pattern="^(csv|ndjson)$"),
                            slice: str | None = Query(None)):
        out = io.StringIO()
        await run_in_threadpool(request.app.state.catalog.export_labels, out, format, slice)
        media = "text/csv" if format == "csv" else "application/x-ndjson"
        return PlainTextResponse(out.getvalue(), media_type=media)

    @r.post("/labels/_import", dependencies=write, tags=["labels"],
            summary="Import labels (the body: CSV with id,label or NDJSON); all or nothing")
    async def import_labels(request: Request, format: str = Query("csv", pattern="^(csv|ndjson)$")):
        fd, path = tempfile.mkstemp(prefix="catalog-labels-", suffix=f".{format}")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(await request.body())
            try:
                report = await run_in_threadpool(request.app.state.catalog.import_labels, path)
            except CatalogError as exc:
                exc.message = exc.message.replace(path, "the request body")
                raise
        finally:
            os.unlink(path)
        return {"labels": report.labels, "rows": report.rows}

    @r.post("/label-by-similarity/_image", dependencies=read, tags=["labels"],
            summary="Label suggestions for an uploaded image (the body: its bytes, or {\"url\"}, {\"base64\"} or "
                    "{\"imageName\"} of a row); nothing is written")
    async def label_image(request: Request, embedding: str = Query(...), results: int = Query(10, ge=1, le=10_000),
                          threshold: float = Query(0.30, ge=0, le=1), top_only: bool = Query(False)):
        query = await image_query(request)
        cat = request.app.state.catalog
        if query.row is not None:
            found = await run_in_threadpool(cat.label_by_similarity, embedding, [query.row], results=results,
                                            threshold=threshold, top_only=top_only)
            row = found.results[0]
        else:
            vector = await run_in_threadpool(cat.encode_query, embedding, None, query.data)
            row = await run_in_threadpool(cat.label_vector, embedding, vector, results, threshold, top_only)
        out = row.to_dict()
        del out["id"], out["global_key"]
        return cli_json(out)

    return r
