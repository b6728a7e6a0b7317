"""A trained model averaged with the fingerprint LightGBM baseline (``tune train --blend-gbm``).

On molecules the training rows lack the mean of the two families beats each alone (README Round 8), so it is
saved as a two-member ensemble next to the model, in the format ``tune predict`` reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from yieldtune.ensemble.format import (
    TRAIN_BLEND_SUBDIR,
    atomic_directory,
    save_ensemble_dir,
    write_manifest,
)

BLEND_MEMBERS = ("transformer", "fingerprint_gbm")


def save_blend(out_dir: str | Path, model: Any, gbm: Any, *, metrics: dict[str, Any] | None = None) -> Path:
    """Write ``out_dir/ensemble``: ``model`` and ``gbm`` with weight 1/2 each, a SHA-256 manifest, ``metrics``
    (the held-out figures of each and of the mean) in ensemble.json. Atomic: all of it or nothing."""
    target = Path(out_dir) / TRAIN_BLEND_SUBDIR
    members = [({"name": BLEND_MEMBERS[0], "family": "transformer", "weight": 0.5}, model),
               ({"name": BLEND_MEMBERS[1], "family": "gbm", "weight": 0.5,
                 "what": "the fingerprint LightGBM of tune bench baseline, on the same rows"}, gbm)]
    info = {"format": "yieldtune-ensemble/1", "method": "mean", "source": "tune train --blend-gbm",
            **({"metrics": metrics} if metrics else {})}
    with atomic_directory(target, force=True) as tmp:
        save_ensemble_dir(tmp, members, info)
        write_manifest(tmp)
    return target


__all__ = ["BLEND_MEMBERS", "save_blend"]
