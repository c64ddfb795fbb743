"""What a search returns: a page of :class:`Hit` and the total (:class:`SearchResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Hit:
    id: str
    global_key: str
    score: float

    def to_dict(self) -> dict:
        return {"id": self.id, "global_key": self.global_key, "score": self.score}


@dataclass
class SearchResult:
    """``total`` rows matched (score range and filters); ``results`` is the requested page.

    ``backend`` names the backend that answered; ``complete`` is False only when an explicitly
    approximate search may have missed rows (``total`` is then a lower bound).
    """

    total: int
    results: list[Hit] = field(default_factory=list)
    backend: str = "exact"
    complete: bool = True

    def to_dict(self) -> dict:
        return {"total": self.total, "results": [h.to_dict() for h in self.results]}

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)
