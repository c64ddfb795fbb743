"""API tokens for the REST server: created once, stored only as a hash, checked on every request.

A token is ``adv_`` and 32 URL-safe characters (36 in all: short enough for every client, including
one that sends tokens under 70 characters differently). The catalog keeps its SHA-256 alone, so a
copy of the catalog file does not give the tokens away; the token itself is shown once, at creation.
A read-only token may read but not change the catalog.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import duckdb

from .errors import AlreadyExists, CatalogError, NotFound

PREFIX = "adv_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


MEMO_SIZE = 1024  # token lookups remembered until the next commit to the catalog


@dataclass(frozen=True)
class ApiToken:
    name: str
    read_only: bool
    created_at: str

    def to_dict(self) -> dict:
        return {"name": self.name, "read_only": self.read_only, "created_at": self.created_at}


class Tokens:
    """The API tokens of one catalog (``store``)."""

    def __init__(self, store):
        self.store = store
        self._memo: tuple = (None, {})  # (the catalog's change token, {token hash: ApiToken or None})

    def create_token(self, name: str, read_only: bool = False) -> tuple[ApiToken, str]:
        """A new token under ``name``: ``(ApiToken, the token)``; the token is not stored and cannot be shown again."""
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise CatalogError(f"token name {name!r} must be 1-64 letters, digits or _ . @ - (starting with a letter "
                               "or digit)", field="name")
        token = PREFIX + secrets.token_urlsafe(24)
        try:
            with self.store.transaction() as con:
                if con.execute("SELECT 1 FROM api_tokens WHERE name = ?", [name]).fetchall():
                    raise AlreadyExists(f"a token named {name!r} already exists", field="name",
                                        hint="revoke it first, or choose another name")
                con.execute("INSERT INTO api_tokens (name, token_hash, read_only) VALUES (?, ?, ?)",
                            [name, token_hash(token), bool(read_only)])
                created = con.execute("SELECT CAST(created_at AS VARCHAR) FROM api_tokens WHERE name = ?",
                                      [name]).fetchall()[0][0]
        except duckdb.ConstraintException:
            raise AlreadyExists(f"a token named {name!r} already exists", field="name") from None
        return ApiToken(name, bool(read_only), created), token

    def list_tokens(self) -> list[ApiToken]:
        with self.store.connect() as con:
            rows = con.execute("SELECT name, read_only, CAST(created_at AS VARCHAR) FROM api_tokens ORDER BY name"
                               ).fetchall()
        return [ApiToken(n, bool(r), c) for n, r, c in rows]

    def revoke_token(self, name: str) -> None:
        with self.store.transaction() as con:
            if not con.execute("DELETE FROM api_tokens WHERE name = ? RETURNING name", [name]).fetchall():
                raise NotFound(f"no token named {name!r}", field="name", hint="list the tokens to see them")

    def count_tokens(self) -> int:
        with self.store.connect() as con:
            return int(con.execute("SELECT count(*) FROM api_tokens").fetchall()[0][0])

    def check_token(self, token: str | None) -> ApiToken | None:
        """The token's :class:`ApiToken`, or None when it is unknown or revoked."""
        if not token or not isinstance(token, str) or len(token) > 200:
            return None
        digest = token_hash(token)
        change = self.store.change_token()  # a revocation is a commit: it changes this, and the memo goes
        if self._memo[0] != change:
            self._memo = (change, {})
        known = self._memo[1]
        if digest not in known:
            if len(known) >= MEMO_SIZE:  # bounded: a client sending many wrong tokens cannot grow it
                known.clear()
            known[digest] = self._lookup(digest)
        return known[digest]

    def _lookup(self, digest: str) -> ApiToken | None:
        with self.store.connect() as con:
            rows = con.execute("SELECT name, read_only, CAST(created_at AS VARCHAR), token_hash FROM api_tokens "
                               "WHERE token_hash = ?", [digest]).fetchall()
        if not rows or not hmac.compare_digest(rows[0][3], digest):
            return None
        n, r, c, _ = rows[0]
        return ApiToken(n, bool(r), c)
