"""Fetching an image by URL for a request, guarded against server-side request forgery (SSRF).

Only ``http``/``https``; the host is resolved once and every address it resolves to must be public
(no private, loopback, link-local, multicast, reserved or unspecified address) unless the host is in
the server's allow list (``--allow-url-host``); the connection then goes to that checked address
(so a second DNS answer cannot point elsewhere). Redirects are not followed. The download is capped
in size and time.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import urllib.parse

from .errors import ApiError

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_TIMEOUT_S = 5.0


def _bad(message: str) -> ApiError:
    return ApiError(400, "UrlRefused", message, field="url")


def _public(ip) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
                or ip.is_unspecified or not ip.is_global)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address, with the URL's host name for SNI and certificate checks."""

    def __init__(self, host, address, **kw):
        super().__init__(host, **kw)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def fetch_image_url(url, allow_hosts=(), max_bytes: int = DEFAULT_MAX_BYTES,
                    timeout: float = DEFAULT_TIMEOUT_S) -> bytes:
    """The bytes at ``url``, or :class:`ApiError` (400) saying why not."""
    if not isinstance(url, str) or not url.strip():
        raise _bad("`url` must be a non-empty string")
    if len(url) > 4096:
        raise _bad("`url` is longer than 4096 characters")
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise _bad(f"`url` must be http or https, not {parts.scheme or 'a relative URL'!r}")
    host = parts.hostname
    if not host:
        raise _bad("`url` has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise _bad("`url` has an invalid port") from None
    allowed = host.lower() in {h.lower().strip("[]") for h in allow_hosts}
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise _bad(f"cannot resolve the host of `url` {host!r} ({exc})") from None
    addresses = [info[4][0] for info in infos]
    if not allowed:
        for a in addresses:
            if not _public(ipaddress.ip_address(a.split("%")[0])):
                raise _bad(f"`url` host {host!r} resolves to {a}, a private, loopback or link-local address; "
                           "the server does not fetch from those unless it was started with --allow-url-host "
                           f"{host}")
    address = addresses[0]
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if parts.scheme == "https":
        con = _PinnedHTTPS(host, address, port=port, timeout=timeout, context=ssl.create_default_context())
    else:
        con = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        con.request("GET", path, headers={"Host": parts.netloc.rsplit("@", 1)[-1], "User-Agent": "embedding-catalog",
                                          "Accept": "image/*"})
        resp = con.getresponse()
        if resp.status != 200:
            raise _bad(f"fetching `url` answered HTTP {resp.status}" +
                       (" (redirects are not followed)" if 300 <= resp.status < 400 else ""))
        length = resp.getheader("Content-Length")
        if length and length.isdigit() and int(length) > max_bytes:
            raise _bad(f"the image at `url` is larger than the limit of {max_bytes:,} bytes")
        data = resp.read(max_bytes + 1)
    except (OSError, http.client.HTTPException) as exc:
        raise _bad(f"cannot fetch `url` within {timeout:g} s ({exc or type(exc).__name__})") from None
    finally:
        con.close()
    if len(data) > max_bytes:
        raise _bad(f"the image at `url` is larger than the limit of {max_bytes:,} bytes")
    return data
