"""Writing and hashing files: the one implementation of "write to a temp file, then rename", of SHA-256, and
of switching a SQLite file to WAL.

Readers never see half a file: the data goes to a temporary file in the target's folder, which then
replaces the target in one ``os.replace``; on any error the temporary file is removed and the target is
untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

_CHUNK = 1 << 20


@contextlib.contextmanager
def atomic_path(path: str | Path, *, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path next to ``path`` to write to; renamed over ``path`` when the block succeeds."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the result is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, newlines unchanged) to ``path`` atomically, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def open_sqlite_wal(path: str | Path, timeout_s: float) -> sqlite3.Connection:
    """A connection to the SQLite file ``path`` (created if absent) in WAL mode, which persists in the file.

    SQLite answers ``PRAGMA journal_mode=WAL`` with "database is locked" at once, without waiting for the busy
    timeout, while another connection holds the write lock of a file not yet in WAL mode (several workers
    opening a new file together), so the switch is retried until ``timeout_s`` has passed.
    """
    con = sqlite3.connect(path, timeout=timeout_s)
    deadline, pause = time.monotonic() + timeout_s, 0.01
    while True:
        try:
            con.execute("PRAGMA journal_mode=WAL")
            return con
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                con.close()
                raise
            time.sleep(pause)
            pause = min(2 * pause, 0.5)


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()
