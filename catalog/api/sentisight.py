"""SentiSight-compatible routes: label-by-similarity and similarity search for one image.

``POST /api/similarity-labels?project=&threshold=&save=&use-first=`` and
``POST /api/similarity?project=&limit=&threshold=`` (also under ``/rs/api/``). ``project`` names the
embedding (id or name); ``threshold`` is in percent (0–100); scores are answered in percent too.
The image is the body: bytes (``application/octet-stream``), ``{"url"}``, ``{"base64"}`` or
``{"imageName"}`` (an existing data row by global_key or id).

* similarity-labels answers ``[{"label", "score"}]`` for the suggested labels, best first (with
  ``use-first=true`` only the top label); ``limit`` is the number of neighbours k (default 10).
  For an existing row the row itself is never its own neighbour, exactly as in the library's
  label-by-similarity; ``save=true`` writes the suggestions on that row (source similarity, not reviewed),
  and for an uploaded image first adds it as a data row (``upload/<sha1>``, with its vector) — one transaction.
* similarity answers ``[{"image", "score", "id"}]``: the rows scoring at least ``threshold``, best
  first, at most ``limit`` (default 10); an existing row is left out of its own results.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from ..search import Page, SearchSpec
from .auth import authorize
from .errors import ApiError
from .images import image_query

MAX_LIMIT = 10_000


def _percent(value: float | None, default: float, field: str) -> float:
    value = default if value is None else value
    if not 0.0 <= value <= 100.0:
        raise ApiError(400, "BadParameter", f"`{field}` is a percentage from 0 to 100, not {value:g}", field=field)
    return value / 100.0


def _flag(value: str | None, field: str) -> bool:
    if value is None or value == "":
        return False
    low = value.strip().lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise ApiError(400, "BadParameter", f"`{field}` must be true or false, not {value!r}", field=field)


def _limit(value: int | None, default: int, field: str = "limit") -> int:
    value = default if value is None else value
    if not 1 <= value <= MAX_LIMIT:
        raise ApiError(400, "BadParameter", f"`{field}` must be from 1 to {MAX_LIMIT}, not {value}", field=field)
    return value


def build_router() -> APIRouter:
    router = APIRouter()

    for prefix in ("/api", "/rs/api"):
        router.add_api_route(f"{prefix}/similarity-labels", similarity_labels, methods=["POST"],
                             tags=["SentiSight"], include_in_schema=prefix == "/api",
                             summary="Label suggestions for one image from its most similar labeled rows")
        router.add_api_route(f"{prefix}/similarity", similarity, methods=["POST"], tags=["SentiSight"],
                             include_in_schema=prefix == "/api", summary="Rows similar to one image")
    return router


async def similarity_labels(request: Request, project: str = Query(..., description="embedding id or name"),
                            threshold: float | None = Query(None, ge=0, le=100, description="percent, default 30"),
                            save: str | None = Query(None, description="true: write the suggestions on the row"),
                            use_first: str | None = Query(None, alias="use-first", description="true: top label only"),
                            limit: int | None = Query(None, ge=1, le=MAX_LIMIT, description="neighbours k, default 10")):
    save_flag, top_only = _flag(save, "save"), _flag(use_first, "use-first")
    await authorize(request, write=save_flag)
    t = _percent(threshold, 30.0, "threshold")
    k = _limit(limit, 10)
    query = await image_query(request)
    cat = request.app.state.catalog
    if query.row is not None:
        result = await run_in_threadpool(cat.label_by_similarity, project, [query.row], results=k, threshold=t,
                                         top_only=top_only, save=save_flag)
        row = result.results[0]
    else:
        if save_flag:  # "Add to dataset": the image becomes a row with its suggestions
            result = await run_in_threadpool(cat.collections.add_and_label, project, query.data, k, t, top_only)
            row = result.results[0]
        else:
            vector = await run_in_threadpool(cat.encode_query, project, None, query.data)
            row = await run_in_threadpool(cat.label_vector, project, vector, k, t, top_only)
    return [{"label": s.label, "score": s.score * 100.0} for s in row.labels if s.suggested]


async def similarity(request: Request, project: str = Query(..., description="embedding id or name"),
                     limit: int | None = Query(None, ge=1, le=MAX_LIMIT, description="rows at most, default 10"),
                     threshold: float | None = Query(None, ge=0, le=100, description="lowest score in percent, default 0")):
    await authorize(request, write=False)
    t = _percent(threshold, 0.0, "threshold")
    n = _limit(limit, 10)
    query = await image_query(request)
    cat = request.app.state.catalog
    if query.row is not None:
        spec = SearchSpec(embedding=project, anchors=[query.row], min_score=t, max_score=1.0)
    else:
        spec = SearchSpec(embedding=project, image=query.data, min_score=t, max_score=1.0)
    result = await run_in_threadpool(cat.search, spec, Page(n, 0))
    return [{"image": h.global_key, "score": h.score * 100.0, "id": h.id} for h in result.results]
