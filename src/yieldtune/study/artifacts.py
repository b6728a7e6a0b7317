"""Trial artifacts in Optuna's artifact store: the trained predictor and its validation predictions.

Each COMPLETE trial uploads a zip of its predictor's ``save()`` directory (either model family) and a CSV
``id,y_true,y_pred`` of its validation predictions; the artifact ids go to the trial's user attributes
``artifact:model`` and ``artifact:val_predictions``. The store's location is recorded on the study (user attributes
``yieldtune:artifact_dir`` and, for S3, ``yieldtune:artifact_url``), so anything holding the study can find
the files again.

The store is Optuna's ``FileSystemArtifactStore`` under the study's artifact folder unless the study file
says ``[artifacts] url = "s3://bucket/prefix"`` (``Boto3ArtifactStore``; credentials the usual boto3 way,
``endpoint_url`` for MinIO and other S3-compatible servers). Either way the local artifact folder still holds
what is not a trial file: the built ensemble (``<artifact_dir>/ensemble``), the augmentation cache and logs.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from yieldtune.errors import ConfigError, ModelFileError, StorageError

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from yieldtune.model.predictor import YieldPredictor
    from yieldtune.study.spec import StudySpec

MODEL_ATTR = "artifact:model"
VAL_PRED_ATTR = "artifact:val_predictions"
ARTIFACT_DIR_ATTR = "yieldtune:artifact_dir"
ARTIFACT_URL_ATTR = "yieldtune:artifact_url"


def artifact_store(directory: str | os.PathLike):
    """Optuna's file-system artifact store rooted at ``directory`` (created if missing)."""
    from optuna.artifacts import FileSystemArtifactStore

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(path))


class _KeyPrefixStore:
    """An artifact store that keeps another's objects under ``prefix/``: Boto3ArtifactStore has no prefix."""

    def __init__(self, store, prefix: str):
        self.store, self.prefix = store, prefix.strip("/") + "/"

    def open_reader(self, artifact_id: str):
        return self.store.open_reader(self.prefix + artifact_id)

    def write(self, artifact_id: str, content_body) -> None:
        self.store.write(self.prefix + artifact_id, content_body)

    def remove(self, artifact_id: str) -> None:
        self.store.remove(self.prefix + artifact_id)


def s3_artifact_store(url: str, endpoint_url: str | None = None):
    """Optuna's ``Boto3ArtifactStore`` for ``s3://bucket[/prefix]``; ConfigError when boto3 is not installed."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    try:
        import boto3
    except ImportError:
        raise ConfigError(f"artifacts.url {url!r} needs boto3: pip install 'yieldtune[s3]'") from None
    from optuna.artifacts import Boto3ArtifactStore

    store = Boto3ArtifactStore(bucket, client=boto3.client("s3", endpoint_url=endpoint_url))
    return _KeyPrefixStore(store, prefix) if prefix.strip("/") else store


def artifact_store_for(spec: "StudySpec", directory: str | os.PathLike | None = None):
    """The one place a study's trial-artifact store is made: S3 when the study file names a url, else the
    file system under ``directory`` (default: the study's artifact folder)."""
    if spec.artifacts.url:
        return s3_artifact_store(spec.artifacts.url, spec.artifacts.endpoint_url)
    return artifact_store(directory or spec.artifact_dir)


def record_artifact_location(study: "optuna.Study", spec: "StudySpec") -> None:
    """Write where ``spec`` keeps artifacts onto ``study`` (for :func:`store_for_study`), if it changed."""
    attrs = study.user_attrs
    if attrs.get(ARTIFACT_DIR_ATTR) != str(spec.artifact_dir):
        study.set_user_attr(ARTIFACT_DIR_ATTR, str(spec.artifact_dir))
    url = {"url": spec.artifacts.url, "endpoint_url": spec.artifacts.endpoint_url} if spec.artifacts.url else None
    if attrs.get(ARTIFACT_URL_ATTR) != url:
        study.set_user_attr(ARTIFACT_URL_ATTR, url)


def store_for_study(study: "optuna.Study", directory: str | os.PathLike | None = None):
    """The artifact store of ``study`` (the location recorded at creation unless ``directory`` is given)."""
    s3 = study.user_attrs.get(ARTIFACT_URL_ATTR)
    if directory is None and s3:
        return s3_artifact_store(s3["url"], s3.get("endpoint_url"))
    directory = directory or study.user_attrs.get(ARTIFACT_DIR_ATTR)
    if not directory:
        raise StorageError(f"study {study.study_name!r} has no artifact folder recorded; pass it explicitly")
    return artifact_store(directory)


def _upload(store, trial, path: Path, mimetype: str, study: "optuna.Study | None" = None) -> str:

    import optuna

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

    import optuna

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.unlink()
    try:
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


__all__ = ["MODEL_ATTR", "VAL_PRED_ATTR", "ARTIFACT_DIR_ATTR", "ARTIFACT_URL_ATTR", "artifact_store",
           "artifact_store_for", "s3_artifact_store", "record_artifact_location", "store_for_study",
           "upload_predictor", "upload_val_predictions", "download_predictor", "download_predictor_dir",
           "download_val_predictions", "predictions_csv"]
