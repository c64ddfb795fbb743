"""Parsing a big vector file on two cores: the second half goes to a second interpreter.

A plain (uncompressed) file of at least ``PARALLEL_MIN_BYTES`` is cut at the first line boundary
after its middle. A fresh interpreter (not multiprocessing, which would re-import the caller's main
module) parses the tail into its own scratch file and hands back its keys and errors in a result
file, while this process parses the head; the tail's line numbers are then shifted by the head's.
The helper is started as ``python -c "from catalog.vectors.splitting import tail_main; ..."``.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import CatalogError
from .parsing import Errors, parse_lines
from .reading import is_compressed, open_lines
from .writing import Scratch

PARALLEL_MIN_BYTES = 64 * 2**20
_TAIL_CODE = "import sys; from catalog.vectors.splitting import tail_main; tail_main(sys.argv[1:])"


def parse_tail(path: str, offset: int, dims: int, scratch_dir: str):
    """Worker process: parse the lines of ``path`` from byte ``offset`` to the end."""
    errors = Errors()
    scratch = Scratch(dims, scratch_dir)
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            keys, lines = parse_lines(fh, dims, scratch, errors)
    finally:
        scratch.fh.close()
    return keys, lines, errors.items, errors.total, scratch.fh.name, scratch.n


def tail_main(argv) -> None:
    """Entry point of the helper interpreter that parses the second half of a big file."""
    path, offset, dims, scratch_dir, out = argv
    res = parse_tail(path, int(offset), int(dims), scratch_dir)
    with open(out, "wb") as fh:
        pickle.dump(res, fh, protocol=pickle.HIGHEST_PROTOCOL)


def parse_file(path: Path, dims: int, sink, scratch_dir: Path, errors: Errors, progress):
    """Parse the whole file into ``sink`` (a :class:`Scratch`); returns ``(keys, extra)``: the
    ``(line, key)`` of every valid line and the further scratch files that hold the rest of the
    vectors, in order. Big plain files are split in two halves parsed on two cores."""
    size = path.stat().st_size
    with open_lines(path) as fh:
        if is_compressed(fh) or size < PARALLEL_MIN_BYTES or (os.cpu_count() or 1) < 2:
            keys, _ = parse_lines(fh, dims, sink, errors, progress)
            return keys, []
        fh.seek(size // 2)
        fh.readline()
        split = fh.tell()
        fh.seek(0)
        result = tempfile.NamedTemporaryFile(prefix="tail-", suffix=".pickle", dir=scratch_dir, delete=False)
        result.close()
        child = subprocess.Popen(
            [sys.executable, "-c", _TAIL_CODE, str(path), str(split), str(dims), str(scratch_dir), result.name],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            half = (lambda pos: progress(pos if pos is None else pos * size / max(split, 1))) if progress else None
            keys, head_lines = parse_lines(fh, dims, sink, errors, half, limit=split)
            _, err = child.communicate()
            if child.returncode != 0:
                raise CatalogError(f"cannot read vector file {path}: the parser of its second half failed "
                                   f"({(err or b'').decode(errors='replace').strip().splitlines()[-1:] or 'killed'})")
            with open(result.name, "rb") as rf:
                t_keys, _, t_items, t_total, t_name, t_n = pickle.load(rf)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            os.unlink(result.name)
    extra = Scratch.adopt(t_name, t_n, dims)
    keys.extend((line + head_lines, key) for line, key in t_keys)
    for line, reason in t_items:
        errors.add(line + head_lines if line is not None else None, reason)
    errors.total += t_total - len(t_items)
    return keys, [extra]
