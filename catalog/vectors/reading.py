"""Reading a vector file: plain or gzip-compressed, in blocks of whole lines.

A line may be at most :func:`max_line_bytes` long (64 bytes per value + 4 KiB for the id, the
member names and whitespace), so memory stays bounded whatever a (compressed) file expands to: a
longer line stops the reading with :class:`LineTooLong`. A gzip file that cannot be decompressed
(corrupt data, a bad checksum, cut short) raises :class:`DamagedGzip`.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

READ_BLOCK = 8 * 2**20
PAD = 8
BYTES_PER_VALUE = 64
LINE_SLACK = 4096


def max_line_bytes(dims: int) -> int:
    """The longest line (without its newline) a vector of ``dims`` values may take."""
    return BYTES_PER_VALUE * dims + LINE_SLACK


class LineTooLong(Exception):
    """A line longer than the limit; ``length`` is how many bytes of it were read."""

    def __init__(self, length: int, limit: int):
        super().__init__(length, limit)
        self.length, self.limit = length, limit


class DamagedGzip(Exception):
    """The gzip stream cannot be decompressed; the text says why."""


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


def _reader(fh):
    """``fh.readinto``, with the errors of a damaged gzip stream turned into :class:`DamagedGzip`."""
    if not is_compressed(fh):
        return fh.readinto

    def readinto(view):
        try:
            return fh.readinto(view)
        except (zlib.error, EOFError, gzip.BadGzipFile) as exc:
            raise DamagedGzip(str(exc) or type(exc).__name__) from None
    return readinto


def read_blocks(fh, limit=None, max_line=None):
    """The file as ``(buffer, size)`` blocks of whole lines (the last line may lack its newline);
    ``buffer[size:size + PAD]`` holds newlines, the padding the fast path reads past a line's end.
    With ``limit``, reading stops after that many bytes (a line boundary). A line longer than
    ``max_line`` bytes raises :class:`LineTooLong` (the lines before it have been yielded)."""
    readinto = _reader(fh)
    cap = None if max_line is None else max_line + 1  # room for the longest line and its newline
    buf = bytearray(READ_BLOCK + PAD)
    carry = 0  # bytes of an unfinished line, moved to the front
    remaining = limit
    while True:
        want = len(buf) - PAD - carry
        if remaining is not None:
            want = min(want, remaining)
        got = readinto(memoryview(buf)[carry:carry + want]) if want > 0 else 0
        if remaining is not None:
            remaining -= got
        size = carry + got
        if got == 0:  # end of file (or of the limit): what is left is the last line
            if max_line is not None and size > max_line:
                raise LineTooLong(size, max_line)
            if size:
                buf[size:size + PAD] = b"\n" * PAD
                yield buf, size
            return
        cut = buf.rfind(b"\n", 0, size) + 1
        if cut == 0:  # no line end yet: read on, growing the buffer up to the longest line allowed
            if max_line is not None and size > max_line:
                raise LineTooLong(size, max_line)
            if size == len(buf) - PAD:
                grown = 2 * (len(buf) - PAD) if cap is None else min(2 * (len(buf) - PAD), max(cap, size + 1))
                buf.extend(bytes(grown + PAD - len(buf)))
            carry = size
            continue
        tail = bytes(buf[cut:size])
        buf[cut:cut + PAD] = b"\n" * PAD
        yield buf, cut
        buf[:len(tail)] = tail
        carry = len(tail)
