"""The image a request names: raw bytes, ``{"url"}``, ``{"base64"}`` (a ``data:image/...;base64,`` prefix is
allowed) or ``{"imageName"}`` (an existing data row, by global_key or id)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from .errors import ApiError, BodyTooLarge
from .fetch import fetch_image_url


@dataclass
class ImageQuery:
    data: bytes | None = None  # the image's bytes (from the body, a URL or base64)
    row: str | None = None  # or an existing row's id or global_key


def decode_base64(text, field: str = "base64") -> bytes:
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "BadImage", f"`{field}` must be a non-empty base64 string", field=field)
    text = text.strip()
    if text.startswith("data:"):
        head, sep, text = text.partition(",")
        if not sep or ";base64" not in head:
            raise ApiError(400, "BadImage", f"`{field}` is a data URL without ;base64, data", field=field)
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "BadImage", f"`{field}` is not valid base64", field=field) from None


async def read_json(request: Request):
    body = await request.body()
    try:
        return json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "BadJson", f"the request body is not valid JSON ({exc})", field="body") from None


async def image_query(request: Request) -> ImageQuery:
    """What the body names; JSON bodies are recognised by their Content-Type (or a leading ``{``)."""
    settings = request.app.state.settings
    body = await request.body()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json" or (ctype in ("", "text/plain") and body[:1] == b"{"):
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "BadJson", f"the request body is not valid JSON ({exc})", field="body") from None
        if not isinstance(data, dict):
            raise ApiError(400, "BadJson", "the JSON body must be an object with url, base64 or imageName", field="body")
        given = [k for k in ("url", "base64", "imageName") if k in data]
        if len(given) != 1:
            raise ApiError(400, "BadImage", "give exactly one of `url`, `base64` or `imageName`"
                           + (f" (got {', '.join(given)})" if given else ""), field="body")
        key = given[0]
        if key == "imageName":
            name = data[key]
            if not isinstance(name, str) or not name.strip():
                raise ApiError(400, "BadImage", "`imageName` must be a non-empty string", field="imageName")
            return ImageQuery(row=name.strip())
        if key == "base64":
            data = decode_base64(data[key])
            if len(data) > settings.max_body_bytes:
                raise BodyTooLarge(settings.max_body_bytes)
            return ImageQuery(data=data)
        return ImageQuery(data=await run_in_threadpool(
            fetch_image_url, data[key], settings.allow_url_hosts, settings.url_max_bytes, settings.url_timeout_s))
    if not body:
        raise ApiError(400, "BadImage", "the request body is empty; send the image bytes or a JSON object", field="body")
    return ImageQuery(data=body)
