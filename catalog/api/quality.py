"""Native ``/v1`` routes for seeing and cleaning the data: near duplicates (``POST /v1/duplicates``), the
score between two things (``POST /v1/score``) and uniqueness (a compute job, the run, the outliers).

Bodies are JSON objects whose keys are the library's names (the CLI's flags with ``_``); answers are the
CLI's ``--json``. Reading needs any token; saving (``save`` in a duplicates body) and computing need a
token that may change the catalog.
"""

from __future__ import annotations

import base64
import binascii
import json

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from ..errors import CatalogError
from ..quality import DEFAULT_MIN_SCORE, DEFAULT_NEIGHBOURS, DEFAULT_TAG, MAX_OUTLIERS
from ..quality.uniqueness import MAX_NEIGHBOURS, check_count
from ..slices import check_name
from .auth import authorize, read_access, write_access
from .errors import ApiError
from .jobs import start_job
from .native import body_object, cli_json

DUPLICATE_KEYS = ("embedding", "min_score", "where", "split_field", "keep", "exact_only", "approximate", "save", "tag",
                  "replace")
SCORE_KEYS = ("a", "b", "embedding")


def known_keys(data: dict, keys: tuple) -> dict:
    """``data`` when it has only ``keys``; else a 400 naming the first unknown key."""
    for k in data:
        if k not in keys:
            raise ApiError(400, "BadParameter", f"unknown key `{k}`; the keys are {', '.join(keys)}", field=k)
    return data


def flag(data: dict, key: str, default=False, none_ok: bool = False):
    value = data.get(key, default)
    if value is None and none_ok:
        return None
    if not isinstance(value, bool):
        raise ApiError(400, "BadParameter", f"`{key}` must be true or false", field=key)
    return value


def where_param(text: str | None):
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ApiError(400, "BadParameter", f"`where` is not valid JSON ({exc})", field="where") from None


def side(value, key: str):
    """One side of a score: a row id or global_key, ``{"text": ...}`` or ``{"base64": <image bytes>}``."""
    if isinstance(value, str) or (isinstance(value, dict) and set(value) == {"text"}):
        return value
    if isinstance(value, dict) and set(value) == {"base64"} and isinstance(value["base64"], str):
        try:
            return {"image": base64.b64decode(value["base64"], validate=True)}
        except (binascii.Error, ValueError):
            raise ApiError(400, "BadImage", f"`{key}.base64` is not valid base64", field=key) from None
    raise ApiError(400, "BadParameter", f"`{key}` must be a row id or global_key, {{\"text\": ...}} or "
                   "{\"base64\": <image bytes>}", field=key)


def build_router() -> APIRouter:
    r = APIRouter()
    read, write = [Depends(read_access)], [Depends(write_access)]

    @r.post("/duplicates", tags=["quality"],
            summary="Duplicate groups: {\"embedding\", \"min_score\", \"where\", \"split_field\", \"keep\", "
                    "\"exact_only\", \"approximate\"}; with \"save\": NAME (and \"tag\", \"replace\") the rows are "
                    "tagged and slices NAME and NAME-deduplicated saved")
    async def duplicates(request: Request):
        data = known_keys(await body_object(request), DUPLICATE_KEYS)
        save = data.get("save")
        if save is not None:
            if not isinstance(save, str):
                raise ApiError(400, "BadParameter", "`save` must be a slice name", field="save")
            check_name(save)  # before the search, not after it
        await authorize(request, write=save is not None)
        exact_only = flag(data, "exact_only")
        embedding = data.get("embedding")
        if exact_only == (embedding is not None):
            raise CatalogError("give an `embedding` for near duplicates, or `exact_only` (without one) for identical "
                               "content", field="embedding")
        tag, replace, where = data.get("tag", DEFAULT_TAG), flag(data, "replace"), data.get("where")
        cat = request.app.state.catalog

        def run():
            report = cat.quality.duplicates(embedding, data.get("min_score", DEFAULT_MIN_SCORE), where,
                                            data.get("split_field"), data.get("keep", "first"), exact_only,
                                            flag(data, "approximate", None, none_ok=True))
            out = report.to_dict()
            if save is not None:
                out["slices"] = [s.name for s in cat.quality.save(report, save, tag, where, replace)]
            return out
        return cli_json(await run_in_threadpool(run))

    @r.post("/score", dependencies=read, tags=["quality"],
            summary="The score between two things: {\"a\", \"b\", \"embedding\"}; each side a row id or global_key, "
                    "{\"text\"} or {\"base64\"} (an image)")
    async def score(request: Request):
        data = known_keys(await body_object(request), SCORE_KEYS)
        if "a" not in data or "b" not in data:
            raise ApiError(400, "BadParameter", "give both sides, `a` and `b`", field="a" if "a" not in data else "b")
        a, b = side(data["a"], "a"), side(data["b"], "b")
        result = await run_in_threadpool(request.app.state.catalog.comparer.compare, a, b, data.get("embedding"))
        return cli_json(result.to_dict())

    @r.post("/uniqueness/{embedding}/_compute", dependencies=write, tags=["quality"], status_code=202,
            summary=f"Score every row's uniqueness as a job: {{\"neighbours\": {DEFAULT_NEIGHBOURS}}} (1 to "
                    f"{MAX_NEIGHBOURS:,}); see /v1/jobs/{{id}}")
    async def compute_uniqueness(request: Request, embedding: str):
        data = known_keys(await body_object(request), ("neighbours",)) if await request.body() else {}
        neighbours = check_count(data.get("neighbours", DEFAULT_NEIGHBOURS), "neighbours", 1, MAX_NEIGHBOURS,
                                 "neighbours per row")
        cat = request.app.state.catalog
        emb = await run_in_threadpool(cat.embeddings.get_embedding, embedding)  # unknown: 404 now, not in the job
        job = start_job("uniqueness", lambda progress: cat.uniqueness.compute(emb.id, neighbours, progress).to_dict(),
                        embedding=emb.name)
        return cli_json(dict(job), status=202)

    @r.get("/uniqueness/{embedding}", dependencies=read, tags=["quality"],
           summary="The embedding's uniqueness run: {\"run\": {version, neighbours, count, current}} (run null: "
                   "never computed)")
    async def uniqueness_run(request: Request, embedding: str):
        run = await run_in_threadpool(request.app.state.catalog.uniqueness.status, embedding)
        return cli_json({"run": None if run is None else run.to_dict()})

    @r.get("/uniqueness/{embedding}/outliers", dependencies=read, tags=["quality"],
           summary="The most unique rows: {\"run\", \"outliers\": [{id, global_key, uniqueness}]}; the run must be "
                   "current")
    async def outliers(request: Request, embedding: str, n: int = Query(20, ge=1, le=MAX_OUTLIERS),
                       where: str | None = Query(None, description="a JSON filter, as --where")):
        service, filt = request.app.state.catalog.uniqueness, where_param(where)

        def run():
            rows = service.outliers(embedding, n, where=filt)
            return {"run": service.status(embedding).to_dict(), "outliers": rows}
        return cli_json(await run_in_threadpool(run))

    return r
