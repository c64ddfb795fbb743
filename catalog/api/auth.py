"""Token checks for every route: ``X-Auth-token: T``, ``Authorization: Bearer T`` or ``Authorization: Token T``.

No token, or one the catalog does not know (never created, or revoked) → 401; a read-only token on a
route that changes the catalog → 403. With auth off (``--no-auth``, loopback only) every request passes.
"""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from .errors import ApiError

SCHEMES = ("bearer", "token")


def presented_token(headers) -> str | None:
    value = headers.get("x-auth-token")
    if value:
        return value.strip()
    auth = headers.get("authorization")
    if auth:
        scheme, _, rest = auth.strip().partition(" ")
        if scheme.lower() in SCHEMES and rest.strip():
            return rest.strip()
    return None


async def authorize(request: Request, write: bool) -> None:
    state = request.app.state
    if not state.settings.auth:
        return
    token = presented_token(request.headers)
    challenge = {"WWW-Authenticate": 'Bearer realm="catalog"'}
    if token is None:
        raise ApiError(401, "Unauthorized", "an API token is required: send X-Auth-token: T, Authorization: Bearer T "
                       "or Authorization: Token T", headers=challenge)
    found = await run_in_threadpool(state.catalog.tokens.check_token, token)
    if found is None:
        raise ApiError(401, "Unauthorized", "the API token is unknown or was revoked", headers=challenge)
    if write and found.read_only:
        raise ApiError(403, "Forbidden", f"token {found.name!r} is read-only; this request changes the catalog")


async def read_access(request: Request) -> None:
    """Dependency: any valid token."""
    await authorize(request, write=False)


async def write_access(request: Request) -> None:
    """Dependency: a token that may change the catalog."""
    await authorize(request, write=True)
