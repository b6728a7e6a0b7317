"""User-facing errors.

Anything a user can cause (bad file, bad config, unreachable storage) raises a subclass of
:class:`YieldtuneError`. The CLI prints ``str(err)`` as one line and exits non-zero, never a traceback.
"""

from __future__ import annotations


class YieldtuneError(Exception):
    """Base class for errors that are the user's to fix; the CLI shows them as one line."""

    exit_code = 2


class DataError(YieldtuneError):
    """Bad input data. The message names the file and, where known, the row and column."""

    def __init__(self, message: str, *, path: str | None = None, row: int | None = None,
                 column: str | None = None) -> None:
        self.path, self.row, self.column = path, row, column
        where = []
        if path is not None:
            where.append(str(path))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{': '.join([', '.join(where), message]) if where else message}")


class ConfigError(YieldtuneError):
    """Bad study file or configuration value. The message names the file and the key."""


class StorageError(YieldtuneError):
    """A storage URL that cannot be reached or used. The message never contains a password."""


class ModelFileError(YieldtuneError):
    """A model directory or checkpoint that is missing, tampered with, or unsafe to load."""
