"""Reading a saved predictor's files and JSON settings: the checks every model family's ``load`` makes first."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from yieldtune.config import RunConfig
from yieldtune.errors import ModelFileError


def require_files(directory: Path, names: Sequence[str], what: str) -> None:
    """Refuse ``directory`` unless every one of ``names`` is a file in it (``what`` names the kind of directory)."""
    for name in names:
        if not (directory / name).is_file():
            raise ModelFileError(f"{directory / name}: missing (a {what} holds {', '.join(names)})")


def read_predictor_meta(path: Path, fmt: str, version: int, what: str) -> dict[str, Any]:
    """The JSON object at ``path``, refused unless its ``format`` is ``fmt`` and its ``format_version`` ``version``."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise ModelFileError(f"{path}: not a yieldtune {what} config")
    if meta.get("format_version") != version:
        raise ModelFileError(f"{path}: unsupported format_version {meta.get('format_version')!r} "
                             f"(this yieldtune reads {version})")
    return meta


def run_config_of(meta: dict[str, Any], path: Path) -> RunConfig:
    """The :class:`RunConfig` saved in ``meta`` (read from ``path``), refused if it does not validate."""
    try:
        return RunConfig.model_validate(meta.get("run_config"))
    except Exception as err:  # noqa: BLE001 - pydantic errors, wrong types
        raise ModelFileError(f"{path}: invalid run_config ({str(err).splitlines()[0]})") from None
