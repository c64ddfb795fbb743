"""Benchmark of the REST server against the direct library call, in the same run.

* search by anchor id (``POST /v1/search``, exact and approximate backends) at 1, 8 and 32 concurrent
  clients: p50 / p99 latency and requests/s, beside the same ``Catalog.search`` call in-process;
* label-by-similarity by image bytes (``POST /api/similarity-labels``, color-texture) likewise;
* a mixed load for ``--mixed-seconds`` (vector imports, record inserts, deletes, searches): server
  errors (5xx) counted, and every acknowledged write checked afterwards.

    .venv/bin/python tools/bench_api.py --n 100000            # builds /tmp/bench_api_100000x512.duckdb once
    .venv/bin/python tools/bench_api.py --n 1000000 --mixed-seconds 300

The server is a real ``advtool serve`` subprocess on 127.0.0.1 (one worker unless ``--workers``, holding
the file open); the library is measured first in this process, holding the file open the same way (not
opening it per call). Clients are threads with one persistent HTTP connection each. Output: a Markdown
table with the HTTP overhead at one client (p50 over the library's p50).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

CORES = 2  # the machine the targets are stated for

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from bench_search import build, noise_rows  # noqa: E402

from catalog import Catalog, NotFound  # noqa: E402


def make_images(folder: Path, count: int = 120) -> Path:
    """``count`` small PNGs of coloured shapes (what label-by-similarity by image bytes is measured on)."""
    from PIL import Image, ImageDraw
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    for i in range(count):
        img = Image.new("RGB", (128, 128), tuple(int(v) for v in rng.integers(200, 255, 3)))
        box = tuple(int(v) for v in sorted(rng.integers(10, 118, 2))) * 2
        ImageDraw.Draw(img).ellipse(box, fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        img.save(folder / f"img{i:04d}.png")
    return folder


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, db, workers: int):
        self.port = free_port()
        self.log = open(str(db) + ".serve.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-c", "import sys; from catalog.cli import main; sys.exit(main())",
                                      "serve", "--db", str(db), "--port", str(self.port), "--workers", str(workers)],
                                     cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, PYTHONPATH=str(ROOT)))
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2)
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("advtool serve did not start")
                time.sleep(0.2)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


class Conn:
    """One keep-alive connection (one client thread)."""

    def __init__(self, port, token):
        self.port = port
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.h = {"Authorization": f"Bearer {token}"}

    def call(self, method, path, body=None, ctype="application/json"):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        for attempt in (1, 2):  # the server closes idle keep-alive connections: reconnect once
            try:
                self.c.request(method, path, body=data, headers={**self.h, "Content-Type": ctype})
                r = self.c.getresponse()
                return r.status, r.read()
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                self.c.close()
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt == 2:
                    raise


def cpu_seconds(pids=()) -> float:
    """CPU seconds (user + system, all threads) of this process and of ``pids``."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measure(fn, calls: int, clients: int, pids=()):
    """``(p50 ms, p99 ms, requests/s, requests per cpu)`` of ``fn(client index, call index)`` run ``calls``
    times in total. The last is the calls over the CPU seconds of this process and ``pids`` (the server)
    divided by the machine's 2 cores: the requests/s an otherwise idle 2-core machine gives when the work
    is CPU-bound, which a shared machine's wall clock cannot show."""
    lat = []
    lock = threading.Lock()

    def worker(w):
        mine = []
        for i in range(w, calls, clients):
            t0 = time.perf_counter()
            fn(w, i)
            mine.append(time.perf_counter() - t0)
        with lock:
            lat.extend(mine)
    c0, t0 = cpu_seconds(pids), time.perf_counter()
    with ThreadPoolExecutor(clients) as ex:
        list(ex.map(worker, range(clients)))
    wall, cpu = time.perf_counter() - t0, cpu_seconds(pids) - c0
    lat.sort()
    return (1000 * statistics.median(lat), 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], calls / wall,
            calls / max(cpu / CORES, 1e-9))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dims", type=int, default=512)
    ap.add_argument("--db")
    ap.add_argument("--calls", type=int, default=200, help="requests per measurement")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--mixed-seconds", type=float, default=60)
    args = ap.parse_args(argv)
    db = Path(args.db or f"/tmp/bench_api_{args.n}x{args.dims}.duckdb")
    cat = Catalog(db)
    build(cat, db, args.n, args.dims)
    if cat.get_embedding("color-texture").get_imported_vector_count() == 0:
        cat.import_datarows([make_images(Path(str(db) + ".images"))])
        cat.compute_embeddings("color-texture")
    pics = cat.filter_datarows({"media_type": "image"}, limit=200).results
    for i, h in enumerate(pics[:40]):
        cat.set_labels(h.id, [f"class{i % 4}"])
    pics = cat.get_datarows([h.id for h in pics])
    image_bytes = Path(pics[-1]["row_data"]).read_bytes()
    for t in cat.tokens.list_tokens():
        cat.tokens.revoke_token(t.name)
    _, token = cat.tokens.create_token("bench")
    # anchors from the clustered rows, as in bench_search.py (a noise row has no neighbourhood to find)
    clustered = np.flatnonzero(~noise_rows(args.n, args.dims))
    anchors = [f"r{i:07d}" for i in np.random.default_rng(3).choice(clustered, 64, replace=False)]
    try:  # the mixed load imports vectors into an embedding of its own, for the rows it inserts
        cat.delete_embedding("mixed")
    except NotFound:
        pass
    cat.create_embedding("mixed", args.dims)
    if cat.search_index_info("bench") is None:
        cat.build_search_index("bench")

    rows = []
    # the library first, holding the file open as the server's worker does (the server then holds it itself)
    vec = cat.encode_query("color-texture", image=image_bytes)
    cat.store.hold()
    library = {}
    for backend in ("exact", "approximate"):
        cat.search("bench", anchors=[anchors[0]], min_score=0.0, limit=10, backend=backend)  # warm the cache
        library[backend] = measure(lambda w, i, b=backend: cat.search("bench", anchors=[anchors[i % 64]],
                                                                      min_score=0.0, limit=10, backend=b),
                                   args.calls, 1)
    cat.label_vector("color-texture", vec)
    library["lbs"] = measure(lambda w, i: cat.label_vector("color-texture", vec), args.calls, 1)
    cat.store.release()
    server = Server(db, args.workers)
    try:
        conns = [Conn(server.port, token) for _ in range(32)]
        for backend in ("exact", "approximate"):
            rows.append((f"search by anchor, {backend}", "library", 1, *library[backend]))
            conns[0].call("POST", "/v1/search", {"embedding": "bench", "anchors": [anchors[0]], "limit": 10,
                                                "min_score": 0.0, "backend": backend})  # warm the server's cache
            for clients in (1, 8, 32):
                def call(w, i, backend=backend):
                    s, _ = conns[w].call("POST", "/v1/search", {"embedding": "bench", "anchors": [anchors[i % 64]],
                                                               "min_score": 0.0, "limit": 10, "backend": backend})
                    assert s == 200, s
                rows.append((f"search by anchor, {backend}", "HTTP", clients,
                             *measure(call, args.calls, clients, [server.proc.pid])))
        rows.append(("label-by-similarity, image vector (encode excluded)", "library", 1, *library["lbs"]))
        for clients in (1, 8, 32):
            def lbs(w, i):
                s, _ = conns[w].call("POST", "/api/similarity-labels?project=color-texture", image_bytes,
                                     "application/octet-stream")
                assert s == 200, s
            rows.append(("label-by-similarity, image bytes", "HTTP", clients,
                         *measure(lbs, args.calls, clients, [server.proc.pid])))
        errors, acked, deleted, vectored = mixed(server.port, token, anchors, args.mixed_seconds, args.dims)
    finally:
        server.stop()
    problems = check_writes(cat, acked, deleted, vectored)
    print("| operation | via | clients | p50 ms | p99 ms | requests/s | requests/s by cpu | p50 over the library |\n"
          "|---|---|---:|---:|---:|---:|---:|---:|")
    base = {}
    for name, via, c, p50, p99, rps, rps_cpu in rows:
        if via == "library":
            base[name] = p50
        over = "" if via == "library" or c != 1 or name not in base else f"{p50 - base[name]:+.1f} ms"
        print(f"| {name} | {via} | {c} | {p50:.1f} | {p99:.1f} | {rps:.0f} | {rps_cpu:.0f} | {over} |")
    print(f"\nmixed load {args.mixed_seconds:g} s: {errors['requests']} requests, {errors['5xx']} server errors, "
          f"{errors['other']} other errors; {len(acked)} inserted rows kept, {len(deleted)} deleted, "
          f"{len(vectored)} given vectors; {len(problems)} acknowledged writes not found afterwards")
    for status, body in sorted(errors["seen"].items()):
        print(f"  first {status}: {body}")
    for p in problems[:10]:
        print(f"  {p}")
    return 0 if errors["5xx"] == 0 and not problems else 1


def body_of_last(c) -> str:
    return getattr(c, "last", b"")[:200].decode("utf-8", "replace")


def mixed(port, token, anchors, seconds, dims):
    """Searches, record inserts, vector imports and deletes from 8 clients for ``seconds``.

    Searches read ``bench``; vectors are imported into ``mixed`` for rows this load inserted (the
    newest acknowledged ones, so a delete, which takes the oldest, never races them). Returns the
    errors, the acknowledged inserts still expected, the acknowledged deletes and the rows whose
    vectors were acknowledged.
    """
    stop = time.monotonic() + seconds
    errors = {"5xx": 0, "other": 0, "seen": {}, "requests": 0}
    acked, deleted, vectored, lock = [], [], set(), threading.Lock()

    def client(w):
        c = Conn(port, token)
        rng = np.random.default_rng(w)
        i = 0
        while time.monotonic() < stop:
            i += 1
            kind = i % 10
            key = f"mixed-{w}-{i}"
            if kind < 6:
                s, c.last = c.call("POST", "/v1/search", {"embedding": "bench", "anchors": [anchors[i % 64]],
                                                          "limit": 10, "min_score": 0.0})
            elif kind < 8:
                s, c.last = c.call("POST", "/v1/datarows", {"records": [{"global_key": key, "text": "mixed"}]})
                if s == 201:
                    with lock:
                        acked.append(key)
            elif kind == 8:
                with lock:
                    keys = acked[-5:] if len(acked) > 25 else []
                if not keys:
                    continue
                body = "\n".join(json.dumps({"id": k, "vector": rng.normal(size=dims).round(3).tolist()})
                                 for k in keys).encode()
                s, c.last = c.call("PUT", "/v1/embeddings/mixed/_import", body, "application/x-ndjson")
                if s < 300:
                    with lock:
                        vectored.update(keys)
            else:
                with lock:
                    victim = acked.pop(0) if len(acked) > 40 else None
                if victim is None:
                    continue
                s, c.last = c.call("DELETE", f"/v1/datarows/{victim}")
                with lock:
                    (deleted if s == 200 else acked).append(victim)
            errors["requests"] += 1
            if s >= 400:
                errors["5xx" if s >= 500 else "other"] += 1
                errors["seen"].setdefault(s, body_of_last(c))

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(client, range(8)))
    return errors, acked, deleted, vectored


def check_writes(cat, acked, deleted, vectored) -> list[str]:
    """What the mixed load acknowledged but the catalog does not show (empty when every write is there)."""
    problems = []
    keys = {h["global_key"]: h["id"] for h in cat.get_datarows(acked)} if acked else {}
    problems += [f"inserted {k} is missing" for k in acked if k not in keys]
    for k in deleted:
        try:
            cat.get_datarows([k])
            problems.append(f"deleted {k} is still there")
        except Exception:  # noqa: BLE001 - NotFound is the expected answer
            pass
    want = {keys[k] for k in vectored if k in keys}
    have = cat.rows_with_vectors("mixed", list(want))
    problems += [f"the vector of {k} is missing" for k in vectored if k in keys and keys[k] not in have]
    return problems


if __name__ == "__main__":
    sys.exit(main())
