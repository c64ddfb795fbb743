"""Many threads using one Catalog at once (the REST server's thread pool, dashboard sessions): every
call succeeds. DuckDB's Python module could hand a thread a database instance without its Arrow scan
when connections to the file opened and closed in several threads at the same moment."""

from __future__ import annotations

import threading

from dashboard_support import build

from catalog import Catalog


def test_concurrent_reads_from_threads(tmp_path):
    cat = Catalog(build(tmp_path / "threads"))
    keys = [r["global_key"] for r in cat.list_datarows(limit=40)]
    errors, done = [], []

    def work(w):
        for i in range(15):
            key = keys[(w * 7 + i) % len(keys)]
            try:
                cat.search("shapes", anchors=[key], min_score=0.0, limit=5)
                cat.get_labels([key])
                done.append(1)
            except Exception as exc:  # noqa: BLE001 - every failure is collected and shown
                errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == [] and len(done) == 12 * 15
