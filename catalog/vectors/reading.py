"""Reading a vector file: plain or gzip-compressed, in blocks of whole lines."""

from __future__ import annotations

import gzip
from pathlib import Path

READ_BLOCK = 8 * 2**20
PAD = 8


def open_lines(path: Path):
    """The file opened for binary reading; gzip files (by their magic bytes) are decompressed."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb")


def is_compressed(fh) -> bool:
    """Whether ``fh`` (from :func:`open_lines`) decompresses a gzip file."""
    return isinstance(fh, gzip.GzipFile)


def position(fh) -> int:
    """How far into the file on disk ``fh`` has read (compressed bytes for gzip)."""
    return fh.fileobj.tell() if isinstance(fh, gzip.GzipFile) else fh.tell()


def read_blocks(fh, limit=None):
    """The file as ``(buffer, size)`` blocks of whole lines (the last line may lack its newline);
    ``buffer[size:size + PAD]`` holds newlines, the padding the fast path reads past a line's end.
    With ``limit``, reading stops after that many bytes (a line boundary)."""
    buf = bytearray(READ_BLOCK + PAD)
    carry = 0  # bytes of an unfinished line, moved to the front
    remaining = limit
    while True:
        want = len(buf) - PAD - carry
        if remaining is not None:
            want = min(want, remaining)
        got = fh.readinto(memoryview(buf)[carry:carry + want]) if want > 0 else 0
        if remaining is not None:
            remaining -= got
        size = carry + got
        if got == 0:  # end of file (or of the limit): what is left is the last line
            if size:
                buf[size:size + PAD] = b"\n" * PAD
                yield buf, size
            return
        cut = buf.rfind(b"\n", 0, size) + 1
        if cut == 0:  # one line longer than the buffer: grow it and read on
            buf.extend(bytes(len(buf)))
            carry = size
            continue
        tail = bytes(buf[cut:size])
        buf[cut:cut + PAD] = b"\n" * PAD
        yield buf, cut
        buf[:len(tail)] = tail
        carry = len(tail)
