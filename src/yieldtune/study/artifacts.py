"""Trial artifacts in Optuna's artifact store: the trained predictor and its validation predictions.

Each COMPLETE trial uploads a zip of its ``YieldPredictor.save()`` directory and a CSV ``id,y_true,y_pred``
of its validation predictions; the artifact ids go to the trial's user attributes ``artifact:model`` and
``artifact:val_predictions``. The store's folder is recorded on the study (user attribute
``yieldtune:artifact_dir``), so anything holding the study can find the files again.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from yieldtune.errors import ModelFileError, StorageError

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from yieldtune.model.predictor import YieldPredictor

MODEL_ATTR = "artifact:model"
VAL_PRED_ATTR = "artifact:val_predictions"
ARTIFACT_DIR_ATTR = "yieldtune:artifact_dir"


def artifact_store(directory: str | os.PathLike):
    """Optuna's file-system artifact store rooted at ``directory`` (created if missing)."""
    from optuna.artifacts import FileSystemArtifactStore

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(path))


def store_for_study(study: "optuna.Study", directory: str | os.PathLike | None = None):
    """The artifact store of ``study`` (the folder recorded at creation unless ``directory`` is given)."""
    directory = directory or study.user_attrs.get(ARTIFACT_DIR_ATTR)
    if not directory:
        raise StorageError(f"study {study.study_name!r} has no artifact folder recorded; pass it explicitly")
    return artifact_store(directory)


def _upload(store, trial, path: Path, mimetype: str, study: "optuna.Study | None" = None) -> str:
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial,
                                                mimetype=mimetype)


def zip_directory(directory: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(directory.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(directory).as_posix())
    return dest


def upload_predictor(store, trial: "optuna.Trial", predictor: "YieldPredictor") -> str:
    """Upload a zip of the predictor directory; records and returns the artifact id."""
    with tempfile.TemporaryDirectory(prefix="yt-model-") as tmp:
        model_dir = Path(tmp) / "model"
        predictor.save(model_dir)
        zpath = zip_directory(model_dir, Path(tmp) / f"trial{trial.number}_model.zip")
        artifact_id = _upload(store, trial, zpath, "application/zip")
    trial.set_user_attr(MODEL_ATTR, artifact_id)
    return artifact_id


def predictions_csv(ids: list[str], y_true: np.ndarray, y_pred: np.ndarray) -> str:
    lines = ["id,y_true,y_pred"]
    for i, t, p in zip(ids, y_true, y_pred):
        lines.append(f"{i},{float(t):.6g},{float(p):.6g}")
    return "\n".join(lines) + "\n"


def upload_val_predictions(store, trial: "optuna.Trial", ids: list[str], y_true, y_pred) -> str:
    """Upload the CSV ``id,y_true,y_pred``; records and returns the artifact id."""
    with tempfile.TemporaryDirectory(prefix="yt-pred-") as tmp:
        path = Path(tmp) / f"trial{trial.number}_val_predictions.csv"
        path.write_text(predictions_csv(ids, np.asarray(y_true), np.asarray(y_pred)))
        artifact_id = _upload(store, trial, path, "text/csv")
    trial.set_user_attr(VAL_PRED_ATTR, artifact_id)
    return artifact_id


def _artifact_id(trial_or_id: Any, attr: str) -> str:
    if isinstance(trial_or_id, str):
        return trial_or_id
    artifact_id = trial_or_id.user_attrs.get(attr)
    if not artifact_id:
        raise ModelFileError(f"trial {trial_or_id.number} has no {attr!r} artifact (not a COMPLETE trial?)")
    return artifact_id


def download_file(store, artifact_id: str, dest: str | os.PathLike) -> Path:
    import warnings

    import optuna

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.unlink()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.artifacts.download_artifact(artifact_store=store, file_path=str(dest), artifact_id=artifact_id)
    except Exception as err:
        raise ModelFileError(f"artifact {artifact_id}: cannot download ({type(err).__name__}: {err})") from None
    return dest


def _safe_extract(zf: zipfile.ZipFile, dest: Path) -> None:
    root = dest.resolve()
    for member in zf.namelist():
        target = (dest / member).resolve()
        if root not in target.parents and target != root:
            raise ModelFileError(f"model archive entry {member!r} escapes the target folder")
    zf.extractall(dest)


def download_predictor_dir(study: "optuna.Study", trial_or_artifact_id, dest: str | os.PathLike,
                           store=None) -> Path:
    """Unpack a trial's model zip into ``dest`` (a directory YieldPredictor.load reads)."""
    store = store or store_for_study(study)
    artifact_id = _artifact_id(trial_or_artifact_id, MODEL_ATTR)
    dest = Path(dest)
    with tempfile.TemporaryDirectory(prefix="yt-dl-") as tmp:
        zpath = download_file(store, artifact_id, Path(tmp) / "model.zip")
        try:
            with zipfile.ZipFile(zpath) as zf:
                dest.mkdir(parents=True, exist_ok=True)
                _safe_extract(zf, dest)
        except zipfile.BadZipFile:
            raise ModelFileError(f"artifact {artifact_id}: not a zip archive") from None
    return dest


def download_predictor(study: "optuna.Study", trial_or_artifact_id, dest: str | os.PathLike, *, store=None,
                       device: str = "cpu") -> "YieldPredictor":
    """The trained predictor of a trial (or an artifact id), unpacked into ``dest`` and loaded safely."""
    from yieldtune.model.predictor import YieldPredictor

    return YieldPredictor.load(download_predictor_dir(study, trial_or_artifact_id, dest, store), device=device)


def download_val_predictions(study: "optuna.Study", trial_or_artifact_id, *, store=None):
    """A trial's validation predictions as a pandas DataFrame with columns id, y_true, y_pred."""
    import pandas as pd

    store = store or store_for_study(study)
    artifact_id = _artifact_id(trial_or_artifact_id, VAL_PRED_ATTR)
    with tempfile.TemporaryDirectory(prefix="yt-dl-") as tmp:
        path = download_file(store, artifact_id, Path(tmp) / "val.csv")
        return pd.read_csv(io.StringIO(path.read_text()), dtype={"id": str})


__all__ = ["MODEL_ATTR", "VAL_PRED_ATTR", "ARTIFACT_DIR_ATTR", "artifact_store", "store_for_study",
           "upload_predictor", "upload_val_predictions", "download_predictor", "download_predictor_dir",
           "download_val_predictions", "predictions_csv"]
