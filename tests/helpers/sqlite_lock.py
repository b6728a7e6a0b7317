"""A SQLite file whose write lock another connection holds for a while: what a new worker meets when several
open a fresh database file at once."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def write_locked_sqlite(path: str | Path, seconds: float) -> Iterator[None]:
    """Create ``path`` in rollback-journal mode, take its write lock (BEGIN IMMEDIATE) and release it after
    ``seconds`` from a thread; on exit wait for the release. While it is held, switching the file to WAL fails
    at once with "database is locked" (no busy wait), so a caller that does not retry fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    con.execute("CREATE TABLE IF NOT EXISTS held (x)")
    con.execute("BEGIN IMMEDIATE")
    release = threading.Timer(seconds, lambda: (con.execute("ROLLBACK"), con.close()))
    release.start()
    try:
        yield
    finally:
        release.join()
