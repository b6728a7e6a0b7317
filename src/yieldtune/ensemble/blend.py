"""A trained model averaged with the fingerprint LightGBM baseline (``tune train --blend-gbm``).

On molecules the training rows lack the mean of the two families beats each alone (README Round 8), so it is
saved as a two-member ensemble next to the model, in the format ``tune predict`` reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from yieldtune.ensemble.format import (
    TRAIN_BLEND_SUBDIR,
    atomic_directory,
    save_ensemble_dir,
    write_manifest,
)
from yieldtune.metrics import regression_metrics

BLEND_MEMBERS = ("transformer", "fingerprint_gbm")


def blend_predictions(model_pred, gbm_pred) -> np.ndarray:
    """The plain mean of the two families' predictions (float64): what the saved blend predicts, and what
    ``tune bench baseline`` scores as ``mean_with_baseline``."""
    return (np.asarray(model_pred, np.float64) + np.asarray(gbm_pred, np.float64)) / 2.0


def blend_metrics(gbm: Any, held_out) -> dict[str, Any]:
    """Held-out metrics of the fingerprint GBM and of its mean with the model: per split ("val", "test") of
    ``held_out`` ((table, the model's predictions) pairs) that has both."""
    out = {}
    for split, (table, model_pred) in zip(("val", "test"), held_out):
        if table is None or model_pred is None:
            continue
        gbm_pred, _ = gbm.predict(table.reactions)
        out[split] = {who: {"n": len(table), **regression_metrics(table.yields, pred)}
                      for who, pred in (("gbm", gbm_pred), ("mean", blend_predictions(model_pred, gbm_pred)))}
    return out


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


__all__ = ["BLEND_MEMBERS", "blend_metrics", "blend_predictions", "save_blend"]
