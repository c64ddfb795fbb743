"""Many threads using one Catalog at once (the REST server's thread pool, dashboard sessions): every
call succeeds. DuckDB's Python module could hand a thread a database instance without its Arrow scan
when connections to the file opened and closed in several threads at the same moment."""

from __future__ import annotations

import threading

from dashboard_support import build

from catalog import Catalog


import pytest

from catalog.errors import CatalogBusy


@pytest.mark.parametrize("held", [False, True], ids=["opened-per-call", "held-open"])
def test_concurrent_reads_from_threads(tmp_path, held):
    cat = Catalog(build(tmp_path / "threads"))
    if held:
        cat.store.hold()
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
    cat.store.release()
    assert errors == [] and len(done) == 12 * 15


def test_a_held_catalog_reads_while_a_write_runs_and_a_failed_write_leaves_nothing(tmp_path):
    """Held open (a server), threads read on cursors of the one database while another thread writes;
    a write that fails midway rolls back; after release the file opens per call again."""
    cat = Catalog(build(tmp_path / "held"))
    keys = [r["global_key"] for r in cat.list_datarows(limit=10)]
    ids = cat.resolve_row_ids(keys[:2])
    before = cat.get_labels(ids)
    cat.store.hold()
    assert cat.store.held
    started, reads = threading.Event(), []

    def failing_write():
        with cat.atomic():
            cat.set_labels(keys[0], ["half"])
            started.set()
            time_to_read.wait(30)
            raise RuntimeError("stop")

    time_to_read = threading.Event()
    writer = threading.Thread(target=lambda: pytest.raises(RuntimeError, failing_write))
    writer.start()
    assert started.wait(30)
    reads.append(cat.get_labels([ids[0]]))  # not committed yet: unseen by the reading thread
    time_to_read.set()
    writer.join(30)
    assert reads == [{ids[0]: before[ids[0]]}]
    assert cat.get_labels([ids[0]]) == {ids[0]: before[ids[0]]}  # rolled back
    cat.set_labels(ids[1], ["kept"])
    cat.store.release()
    assert not cat.store.held
    after = Catalog(cat.path).get_labels([ids[1]])[ids[1]]
    assert "kept" in [x["label"] for x in after]


def test_another_process_waits_for_a_held_catalog_then_hears_it_is_busy(tmp_path):
    import subprocess
    import sys
    cat = Catalog(build(tmp_path / "busy"))
    cat.store.hold()
    try:
        code = ("import sys; from catalog import Catalog; from catalog.errors import CatalogBusy\n"
                "try:\n    Catalog(sys.argv[1], lock_timeout=0.3).count_datarows()\n"
                "except CatalogBusy as e:\n    print(e); sys.exit(3)")
        p = subprocess.run([sys.executable, "-c", code, str(cat.path)], capture_output=True, text=True, timeout=120)
    finally:
        cat.store.release()
    assert p.returncode == 3 and "is busy" in p.stdout and "waited 0.3 s" in p.stdout, p.stdout + p.stderr
    assert CatalogBusy  # the class the message comes from
