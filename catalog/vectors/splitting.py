"""Parsing a big vector file on two cores: the second half goes to a second interpreter.

A plain (uncompressed) file of at least ``PARALLEL_MIN_BYTES`` is cut at the first line boundary
after its middle. A fresh interpreter (not multiprocessing, which would re-import the caller's main
module) parses the tail into its own scratch file while this process parses the head; the tail's
line numbers are then shifted by the head's. The helper is started as
``python -c "from catalog.vectors.splitting import tail_main; ..."``.

The helper's scratch file and its result live in a private folder (``tempfile.mkdtemp``: mode
0700, a fresh name) inside the catalog's folder, and the result carries only data: JSON (keys,
errors, counts) read with ``json``, never a pickle, so nothing the helper (or anyone who can write
to the catalog's folder) leaves behind is ever run.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import CatalogError
from .parsing import Errors, parse_lines
from .reading import is_compressed, open_lines
from .writing import Scratch

PARALLEL_MIN_BYTES = 64 * 2**20
RESULT_NAME = "result.json"
_TAIL_CODE = "import sys; from catalog.vectors.splitting import tail_main; tail_main(sys.argv[1:])"


def parse_tail(path: str, offset: int, dims: int, scratch_dir: str) -> dict:
    """Worker process: parse the lines of ``path`` from byte ``offset`` to the end."""
    errors = Errors()
    scratch = Scratch(dims, scratch_dir)
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            keys, lines = parse_lines(fh, dims, scratch, errors)
    finally:
        scratch.fh.close()
    return {"keys": keys, "lines": lines, "errors": errors.items, "total": errors.total,
            "stopped": errors.stopped, "scratch": os.path.basename(scratch.fh.name), "n": scratch.n}


def tail_main(argv) -> None:
    """Entry point of the helper interpreter that parses the second half of a big file."""
    path, offset, dims, private_dir, parent = argv
    _die_with_parent(int(parent))
    res = parse_tail(path, int(offset), int(dims), private_dir)
    tmp = os.path.join(private_dir, RESULT_NAME + ".part")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(res, fh)
    os.replace(tmp, os.path.join(private_dir, RESULT_NAME))


def _die_with_parent(parent: int) -> None:
    """Linux: ask for SIGKILL when the importing process dies, so a killed import's helper does not
    go on filling the disk (best effort elsewhere)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _read_result(private_dir: str) -> dict:
    """The helper's result, checked to be the plain data it should be."""
    with open(os.path.join(private_dir, RESULT_NAME), encoding="utf-8") as fh:
        res = json.load(fh)
    name = res["scratch"]
    if not isinstance(name, str) or os.path.basename(name) != name or not name.startswith("vectors-"):
        raise ValueError("unexpected scratch file name")
    res["keys"] = [(int(line), str(key)) for line, key in res["keys"]]
    res["errors"] = [(None if line is None else int(line), str(reason)) for line, reason in res["errors"]]
    for k in ("lines", "total", "n"):
        res[k] = int(res[k])
    return res


def parse_file(path: Path, dims: int, sink, space, errors: Errors, progress):
    """Parse the whole file into ``sink`` (a :class:`Scratch`); returns ``(keys, extra)``: the
    ``(line, key)`` of every valid line and the further scratch files that hold the rest of the
    vectors, in order. Big plain files are split in two halves parsed on two cores; the helper works
    in ``space`` (a :class:`catalog.store.scratch.ScratchDir`) and shares its lock."""
    size = path.stat().st_size
    with open_lines(path) as fh:
        if is_compressed(fh) or size < PARALLEL_MIN_BYTES or (os.cpu_count() or 1) < 2:
            keys, _ = parse_lines(fh, dims, sink, errors, progress)
            return keys, []
        fh.seek(size // 2)
        fh.readline()
        split = fh.tell()
        fh.seek(0)
        private = tempfile.mkdtemp(prefix="import-", dir=space.path)  # mode 0700, a fresh name
        adopted = False
        child = subprocess.Popen(
            [sys.executable, "-c", _TAIL_CODE, str(path), str(split), str(dims), private, str(os.getpid())],
            pass_fds=[space.fd], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            half = (lambda pos: progress(pos if pos is None else pos * size / max(split, 1))) if progress else None
            keys, head_lines = parse_lines(fh, dims, sink, errors, half, limit=split)
            if errors.stopped:  # the head stopped at a line too long: the tail's lines cannot be numbered
                return keys, []
            _, err = child.communicate()
            if child.returncode != 0:
                raise CatalogError(f"cannot read vector file {path}: the parser of its second half failed "
                                   f"({(err or b'').decode(errors='replace').strip().splitlines()[-1:] or 'killed'})")
            try:
                res = _read_result(private)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise CatalogError(f"cannot read vector file {path}: the result of the parser of its second "
                                   f"half is unreadable ({type(exc).__name__})") from None
            extra = Scratch.adopt(os.path.join(private, res["scratch"]), res["n"], dims, owned_dir=private)
            adopted = True
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            if not adopted:
                shutil.rmtree(private, ignore_errors=True)
    keys.extend((line + head_lines, key) for line, key in res["keys"])
    for line, reason in res["errors"]:
        errors.add(line + head_lines if line is not None else None, reason)
    errors.total += res["total"] - len(res["errors"])
    errors.stopped = errors.stopped or bool(res["stopped"])
    return keys, [extra]
