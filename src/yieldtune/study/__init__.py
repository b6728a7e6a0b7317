"""The shared Optuna study service: study files, search space, storage, workers, runner, status.

Names are imported lazily so ``import yieldtune.study`` stays cheap (no Optuna/torch until used).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "StudySpec": "spec", "EnsembleSpec": "spec", "load_study_spec": "spec", "parse_study_spec": "spec",
    "SearchSpace": "space",
    "open_storage": "storage", "open_spec_storage": "storage", "redact_url": "storage",
    "build_sampler": "samplers", "SAMPLERS": "samplers", "build_pruner": "pruners", "PRUNERS": "pruners",
    "load_study": "service", "create_or_load_study": "service", "state_counts": "service", "n_finished": "service",
    "prepare_data": "datasets", "prepare_folds": "datasets", "PreparedData": "datasets",
    "StudyObjective": "objective",
    "run_worker": "worker", "run_study": "runner", "study_status": "status",
    "upload_predictor": "artifacts", "download_predictor": "artifacts", "download_val_predictions": "artifacts",
    "artifact_store": "artifacts",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"yieldtune.study.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'yieldtune.study' has no attribute {name!r}")
