"""A trained model averaged with fixed LightGBMs (``tune train --blend-gbm``).

On molecules the training rows lack the mean of the two families beats each alone (README Round 8), and the
mean with two LightGBMs, on Morgan sums (the fingerprint baseline) and on DRFP, beats the mean with the
baseline alone (Round 9). Each GBM is the baseline's untuned LightGBM (:mod:`yieldtune.train.baseline`) on
its own feature blocks; the blend is saved as an ensemble next to the model, in the format ``tune predict``
reads.
"""

from __future__ import annotations

from collections.abc import Sequence
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

MODEL_MEMBER = "transformer"
BASELINE_MEMBER = "fingerprint_gbm"  # the fingerprint baseline as a member: here and in study ensembles
# the blend's GBMs: member name -> feature blocks of the baseline's LightGBM (the first is the baseline itself)
BLEND_GBMS: dict[str, str] = {BASELINE_MEMBER: "morgan", "drfp_gbm": "drfp"}
MEAN = "mean"


def fit_blend_gbms(train, *, cache_dir=None, threads: int | None = 1) -> dict[str, Any]:
    """Each blend GBM fitted on ``train``, by member name (deterministic: the same rows give the same GBMs, on
    any number of ``threads``; None: as many as the rows pay for, within the process's CPU share)."""
    from yieldtune.train.baseline import fit_baseline

    return {name: fit_baseline(train, blocks=blocks, cache_dir=cache_dir, threads=threads)
            for name, blocks in BLEND_GBMS.items()}


def blend_predictions(model_pred, *gbm_preds) -> np.ndarray:
    """The plain mean of the model's and the GBMs' predictions (float64): what the saved blend predicts, and
    what ``tune bench baseline --model`` scores as ``blend``."""
    return np.mean([np.asarray(p, np.float64) for p in (model_pred, *gbm_preds)], axis=0)


def blend_metrics(gbms: dict[str, Any], held_out) -> dict[str, Any]:
    """Held-out metrics of the model member, each GBM and the blend: per split ("val", "test") of ``held_out``
    ((table, the model member's predictions: the mean of its runs) pairs) that has both."""
    out = {}
    for split, (table, model_pred) in zip(("val", "test"), held_out):
        if table is None or model_pred is None:
            continue
        preds = {MODEL_MEMBER: model_pred, **{name: gbm.predict(table.reactions)[0] for name, gbm in gbms.items()}}
        preds[MEAN] = blend_predictions(*preds.values())
        out[split] = {who: {"n": len(table), **regression_metrics(table.yields, pred)} for who, pred in preds.items()}
    return out


def model_member_names(runs: int) -> list[str]:
    """The saved names of the model's runs: ``transformer``, then ``transformer_2``, ..."""
    return [MODEL_MEMBER if k == 0 else f"{MODEL_MEMBER}_{k + 1}" for k in range(runs)]


def save_blend(out_dir: str | Path, models: Sequence[Any], gbms: dict[str, Any], *,
               metrics: dict[str, Any] | None = None) -> Path:
    """Write ``out_dir/ensemble``: the mean of the ``models`` (the model's runs, :mod:`yieldtune.train.model_runs`)
    and each of the ``gbms``, with equal weights (so each run weighs ``1 / runs`` of the model's share), a SHA-256
    manifest, ``metrics`` (the held-out figures of each and of the mean) in ensemble.json. Atomic: all of it or
    nothing."""
    target = Path(out_dir) / TRAIN_BLEND_SUBDIR
    weight = 1.0 / (1 + len(gbms))
    members = [({"name": name, "family": "transformer", "weight": weight / len(models)}, model)
               for name, model in zip(model_member_names(len(models)), models)]
    members += [({"name": name, "family": "gbm", "weight": weight,
                  "what": f"the untuned LightGBM of tune bench baseline on {gbm.config.gbm.blocks}, same rows"},
                 gbm) for name, gbm in gbms.items()]
    info = {"format": "yieldtune-ensemble/1", "method": "mean", "source": "tune train --blend-gbm",
            **({"metrics": metrics} if metrics else {})}
    with atomic_directory(target, force=True) as tmp:
        save_ensemble_dir(tmp, members, info)
        write_manifest(tmp)
    return target


__all__ = ["BASELINE_MEMBER", "BLEND_GBMS", "MEAN", "MODEL_MEMBER", "blend_metrics", "blend_predictions",
           "fit_blend_gbms", "model_member_names", "save_blend"]
