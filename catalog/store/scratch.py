"""Scratch space beside a catalog file, and removing what dead processes left behind.

An operation that needs big temporary files (a vector import's parsed vectors) gets a private folder
``.<catalog file name>.scratch-<pid>-<random>`` (mode 0700) in the catalog's folder, on the disk the
catalog is written to. Its owner holds a lock on the folder (``flock``) for as long as it — or a helper
process it starts and hands the lock to — uses it, and removes it on every exit it survives: success,
an error, Ctrl-C, SIGTERM (the command line turns SIGTERM into a normal exit). A SIGKILL or a power
cut leaves it behind; the next process that opens the catalog for writing removes every such folder
whose lock it can take, that is whose owners are gone. A lock, unlike a pid, cannot be mistaken for
a live process that happens to reuse a dead one's pid.

Derived files written under a temporary name and renamed into place (the vector cache, IVF indexes)
carry their writer's pid in that name (``.tmp<pid>-<thread>``); the same sweep removes those whose pid
no longer exists.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import shutil
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locks, so leftovers are never swept
    fcntl = None

_TMP_TAG = re.compile(r"\.tmp(\d+)-\d+")


def _prefix(db_path: Path) -> str:
    return f".{db_path.name}.scratch-"


class ScratchDir:
    """A private, locked folder for one operation's temporary files; ``close()`` removes it."""

    def __init__(self, db_path: Path):
        self.path, self.fd = None, None
        try:
            with _signals_held():  # no Ctrl-C between making the folder and owning it
                self._make(Path(db_path))
        except BaseException:  # a signal held back is raised on leaving the block: remove what was made
            self.close()
            raise

    def _make(self, db_path: Path) -> None:
        parent = db_path.parent
        for _ in range(5):  # a sweep may remove the folder between its creation and its lock: make another
            self.path = Path(tempfile.mkdtemp(prefix=f"{_prefix(db_path)}{os.getpid()}-", dir=parent))
            self.fd = os.open(self.path, os.O_RDONLY)
            if fcntl is not None:
                fcntl.flock(self.fd, fcntl.LOCK_SH)
            try:
                if os.path.samestat(os.fstat(self.fd), os.stat(self.path)):
                    return
            except FileNotFoundError:
                pass
            os.close(self.fd)
            self.fd = None
        raise OSError(f"cannot make a scratch folder in {parent}")

    def close(self) -> None:
        if self.path is None:
            return
        with _signals_held():  # a Ctrl-C or SIGTERM arriving now waits until the folder is gone
            try:
                shutil.rmtree(self.path, ignore_errors=True)
            finally:  # one that was already pending is raised inside the first pass: finish the job
                shutil.rmtree(self.path, ignore_errors=True)
                if self.fd is not None:
                    os.close(self.fd)
                self.path, self.fd = None, None

    def __enter__(self) -> "ScratchDir":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def _signals_held():
    """SIGINT and SIGTERM held back (delivered on leaving) where the platform allows, so that a signal
    cannot cut a clean-up short (DuckDB, for one, reports a Ctrl-C during a query and Python then
    raises it again at the next line, which may be in the middle of the clean-up)."""
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is None:  # pragma: no cover - Windows
        yield
        return
    old = mask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        mask(signal.SIG_SETMASK, old)


def _owner_gone(path: Path) -> bool:
    """Whether no process holds the scratch folder's lock (taking it briefly tells)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases the lock


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, under another user
        return True
    return True


def sweep(db_path: Path, cache_dir: Path | None = None) -> list[Path]:
    """Remove the scratch folders of ``db_path`` whose owners are gone, and the temporary derived files
    of dead processes in ``cache_dir`` (its top level and one level down). Best effort: a file that
    cannot be removed stays, and nothing here raises. Returns what was removed."""
    removed: list[Path] = []
    prefix = _prefix(Path(db_path))
    try:
        entries = [e for e in os.scandir(Path(db_path).parent) if e.name.startswith(prefix)]
    except OSError:
        entries = []
    for entry in entries:
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False) and _owner_gone(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if cache_dir is not None:
        removed += _sweep_tmp(Path(cache_dir), depth=1)
    return removed


def _sweep_tmp(folder: Path, depth: int) -> list[Path]:
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TMP_TAG.search(entry.name)
        is_dir = entry.is_dir(follow_symlinks=False)
        if m and not _pid_alive(int(m.group(1))):
            path = Path(entry.path)
            if is_dir:
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    path.unlink()
                except OSError:
                    continue
            removed.append(path)
        elif is_dir and depth > 0:
            removed += _sweep_tmp(Path(entry.path), depth - 1)
    return removed
