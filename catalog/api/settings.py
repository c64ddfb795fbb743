"""The REST server's settings (one frozen object, also passed to worker processes as JSON)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from .fetch import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_S

MAX_BODY_BYTES = 64 * 1024 * 1024  # any request body (images, JSON)
MAX_IMPORT_BYTES = 4 * 1024 * 1024 * 1024  # a whole-file NDJSON vector import, streamed to a temporary file


@dataclass(frozen=True)
class ApiSettings:
    db: str | None = None
    auth: bool = True
    hold: bool = False  # keep the catalog file open for the life of the process (see server.serve)
    max_body_bytes: int = MAX_BODY_BYTES
    max_import_bytes: int = MAX_IMPORT_BYTES
    allow_url_hosts: tuple = ()
    url_max_bytes: int = DEFAULT_MAX_BYTES
    url_timeout_s: float = DEFAULT_TIMEOUT_S

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ApiSettings":
        data = json.loads(text)
        data["allow_url_hosts"] = tuple(data.get("allow_url_hosts") or ())
        return cls(**data)
