"""Running the app under uvicorn: ``advtool serve`` calls :func:`serve`.

Settings travel to uvicorn's worker processes in ``$CATALOG_API_SETTINGS`` (JSON); each process opens
its own :class:`Catalog` (and loads models once, on first use).

One worker process holds the catalog file open for its life (:meth:`Store.hold`): a request then costs a
cursor of the open database instead of opening the file (about 35 ms on a small catalog, more on a big
one), and other processes cannot open the file while it serves; it says so in
``<db>.server.json`` so their busy message names the server. Shared mode (``share=True``, and always
with several worker processes, which cannot hold one file together) opens the file for each request
instead, so the command line and the dashboard can use the catalog beside the server.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket

from ..catalog import Catalog
from ..errors import CatalogError
from ..store.connection import server_file
from .app import create_app
from .settings import ApiSettings

ENV = "CATALOG_API_SETTINGS"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def app_from_env():
    """uvicorn's app factory (``catalog.api.server:app_from_env``)."""
    settings = ApiSettings.from_json(os.environ[ENV])
    catalog = Catalog(settings.db)
    if settings.hold:
        catalog.store.hold()
    return create_app(catalog, settings)


def check_start(catalog: Catalog, host: str, port: int, workers: int, auth: bool) -> None:
    if not 0 < port < 65536:
        raise CatalogError(f"`port` must be from 1 to 65535, not {port}", field="port")
    if not 1 <= workers <= 64:
        raise CatalogError(f"`workers` must be from 1 to 64, not {workers}", field="workers")
    if not auth:
        if not is_loopback(host):
            raise CatalogError(f"serving without tokens is only allowed on a loopback address, not {host}",
                               field="no_auth", hint="create a token, or serve on 127.0.0.1")
        return
    if not catalog.tokens.list_tokens():
        raise CatalogError("the catalog has no API token, so no request could be answered", field="no_auth",
                           hint="create a token first (tokens create NAME), or serve without tokens on 127.0.0.1")
    try:
        socket.getaddrinfo(host, port)
    except socket.gaierror as exc:
        raise CatalogError(f"cannot listen on {host!r} ({exc})", field="host") from None


def serve(db=None, host: str = "127.0.0.1", port: int = 8000, workers: int = 1, auth: bool = True,
          allow_url_hosts=(), log_level: str = "info", share: bool = False) -> None:
    """Serve the catalog at ``db`` until interrupted; ``share`` (implied by ``workers > 1``) opens the
    file for each request so other processes can use it meanwhile (see the module)."""
    import uvicorn

    catalog = Catalog(db)
    check_start(catalog, host, port, workers, auth)
    hold = workers == 1 and not share
    settings = ApiSettings(db=str(catalog.path), auth=auth, allow_url_hosts=tuple(allow_url_hosts), hold=hold)
    os.environ[ENV] = settings.to_json()
    marker = server_file(catalog.path)
    if hold:  # one worker runs in this process: its pid is the one other processes see holding the file
        with contextlib.suppress(OSError):
            marker.write_text(json.dumps({"pid": os.getpid(), "url": f"http://{_url_host(host)}:{port}"}))
    try:
        uvicorn.run("catalog.api.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, server_header=False)
    finally:
        if hold:
            with contextlib.suppress(OSError):
                marker.unlink()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
