"""Reading a saved predictor's JSON settings file: the checks every model family's ``load`` makes first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from yieldtune.errors import ModelFileError


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
