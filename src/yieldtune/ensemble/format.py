"""The on-disk ensemble format: member dirs + JSON, a SHA-256 manifest, atomic directories, safe loading.

Layout (the study's ``<artifact_dir>/ensemble/`` and every ``tune export-best`` directory)::

    ensemble.json              members (name, trial_number, seed, weight, r2) + validation metrics
    holdout_predictions.csv    id,y_true,<one column per member>,ensemble (validation rows)
    members/<name>/            one saved predictor per member (its family's files, see MEMBER_FORMATS)
    manifest.json              SHA-256 of every other file; loading verifies it

Nothing is ever unpickled: weights are safetensors (checked by header before anything else reads
them) and everything else is JSON/CSV. A changed, missing or unexpected member file, or a non-
safetensors weights file, raises :class:`ModelFileError`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from yieldtune.ensemble.ensemble import Ensemble, Member, Predictor
from yieldtune.errors import ModelFileError
from yieldtune.files import atomic_path, sha256_file

MANIFEST = "manifest.json"
ENSEMBLE_JSON = "ensemble.json"
HOLDOUT_CSV = "holdout_predictions.csv"
TEST_APPLICABILITY_CSV = "test_applicability.csv"  # per test row: similarity of its molecules to the training ones
MEMBERS_DIR = "members"
WEIGHTS_FILE = "model.safetensors"
MEMBER_FILES = ("model.safetensors", "vocab.json", "config.json")
FLOAT_FORMAT = "%.17g"  # round-trips float64 exactly

# ---- hashing and the manifest --------------------------------------------------------------

def _all_files(root: Path) -> list[str]:
    """Every regular file under ``root`` except the manifest itself, as sorted POSIX paths."""
    return sorted(rel for rel in (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
                  if rel != MANIFEST)


def write_manifest(root: str | Path) -> dict[str, str]:
    """Hash every file under ``root`` (except the manifest itself) into ``manifest.json``."""
    root = Path(root)
    files = {rel: sha256_file(root / rel) for rel in _all_files(root)}
    _write_json(root / MANIFEST, {"format": "yieldtune-manifest/1", "algorithm": "sha256", "files": files})
    return files


def verify_manifest(root: str | Path) -> dict[str, str]:
    """Check every file listed in ``manifest.json`` and that no unlisted file sits under members/."""
    root = Path(root)
    data = read_json(root / MANIFEST)
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        raise ModelFileError(f"{root / MANIFEST}: not a yieldtune manifest (no 'files' table)")
    for rel, digest in sorted(files.items()):
        path = root / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise ModelFileError(f"{root / MANIFEST}: refuses path {rel!r} outside the model directory")
        if not path.is_file():
            raise ModelFileError(f"{path}: listed in the manifest but missing")
        if sha256_file(path) != digest:
            raise ModelFileError(f"{path}: SHA-256 does not match manifest.json (file was modified)")
    members = root / MEMBERS_DIR
    if members.is_dir():
        for p in sorted(members.rglob("*")):
            rel = p.relative_to(root).as_posix()
            if p.is_file() and rel not in files:
                raise ModelFileError(f"{p}: not listed in manifest.json (unexpected file in a model directory)")
    return files


# ---- safe weights ------------------------------------------------------------------------------

def check_safetensors(path: str | Path) -> None:
    """Refuse anything that is not a safetensors file (e.g. a pickle renamed to .safetensors)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError("too short")
            (n,) = struct.unpack("<Q", head)
            if n < 2 or 8 + n > size or n > 100_000_000:
                raise ValueError("bad header length")
            header = json.loads(fh.read(n).decode("utf-8"))
            if not isinstance(header, dict):
                raise ValueError("header is not a JSON object")
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise ModelFileError(
            f"{path}: not a safetensors file ({err}); refusing to load (pickled objects are never loaded)"
        ) from None



# ---- member formats: one loader per model family ---------------------------------------------

@dataclass(frozen=True)
class MemberFormat:
    """How one model family's saved predictor looks on disk and how to load it.

    ``files[0]`` marks the family (a directory holding it is this family's); every file in ``files``
    must be there; every file in ``safetensors`` is header-checked before ``load`` reads anything.
    """

    family: str
    files: tuple[str, ...]
    safetensors: tuple[str, ...]
    load: Callable[[Path, str], Predictor]


def _load_transformer(directory: Path, device: str) -> Predictor:
    from yieldtune.model.predictor import YieldPredictor

    return YieldPredictor.load(directory, device=device)


def _load_gbm(directory: Path, device: str) -> Predictor:
    from yieldtune.model.gbm import GBMPredictor

    return GBMPredictor.load(directory, device=device)


# keyed by family name; a new model family adds its entry here. GBM members are LightGBM's own text model
# format (parsed, never unpickled) plus gbm.json; GBMPredictor.load checks the file is a text model.
MEMBER_FORMATS: dict[str, MemberFormat] = {
    "transformer": MemberFormat("transformer", MEMBER_FILES, (WEIGHTS_FILE,), _load_transformer),
    "gbm": MemberFormat("gbm", ("lightgbm_model.txt", "gbm.json"), (), _load_gbm),
}


def register_member_format(fmt: MemberFormat) -> None:
    MEMBER_FORMATS[fmt.family] = fmt


def member_format(directory: Path) -> MemberFormat | None:
    """The family whose marker file ``directory`` holds, or None."""
    for fmt in MEMBER_FORMATS.values():
        if (directory / fmt.files[0]).is_file():
            return fmt
    return None


def load_member_predictor(directory: str | Path, device: str = "cpu") -> Predictor:
    """A member's predictor from its dir, after checking its weights files are really safetensors."""
    directory = Path(directory)
    fmt = member_format(directory)
    if fmt is None:
        known = "; ".join(f"{f.family}: {', '.join(f.files)}" for f in MEMBER_FORMATS.values())
        raise ModelFileError(f"{directory}: not a saved predictor directory (expected the files of one "
                             f"model family: {known})")
    for name in fmt.files:
        if not (directory / name).is_file():
            raise ModelFileError(f"{directory}: missing {name} (not a saved {fmt.family} predictor directory)")
    for name in fmt.safetensors:
        check_safetensors(directory / name)
    return fmt.load(directory, device)


# ---- JSON/CSV helpers --------------------------------------------------------------------------

def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{path}: file not found") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path}: not valid JSON ({err})") from None


def read_ensemble_json(directory: str | Path) -> dict[str, Any]:
    """``directory/ensemble.json``: an object with a non-empty ``members`` list of named entries.

    The one reader of that file (loading, building, exporting, reporting): anything else is a
    :class:`ModelFileError` naming the file.
    """
    path = Path(directory) / ENSEMBLE_JSON
    info = read_json(path)
    if not isinstance(info, dict) or not isinstance(info.get("members"), list) or not info["members"]:
        raise ModelFileError(f"{path}: no 'members' list")
    for i, entry in enumerate(info["members"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise ModelFileError(f"{path}: members[{i}] needs a non-empty 'name'")
    return info


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n", encoding="utf-8")


def _json_default(obj: Any):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def write_frame_atomic(frame, path: str | Path) -> None:
    """CSV with floats at full (round-trip) precision, written atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")


def read_predictions_csv(path: str | Path):
    """Read a CSV written here back with exact floats."""
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False, na_values=[""],
                       dtype={"id": str, "rxnid": str})


# ---- whole directories -----------------------------------------------------------------------

def is_nonempty_dir(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


@contextlib.contextmanager
def atomic_directory(target: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a fresh temp dir next to ``target``; on success it replaces ``target`` in one rename.

    A non-empty ``target`` is refused unless ``force``. On error the temp dir is removed and
    ``target`` is untouched, so nothing is ever half-written.
    """
    target = Path(target).absolute()
    if target.exists() and not target.is_dir():
        raise ModelFileError(f"{target}: exists and is not a directory")
    if is_nonempty_dir(target) and not force:
        raise ModelFileError(f"{target}: directory is not empty (use --force to overwrite)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        yield tmp
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
            os.rmdir(old)
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_ensemble_dir(directory: Path, members: Sequence[tuple[dict[str, Any], Any]],
                      info: dict[str, Any], holdout=None, test_applicability=None) -> None:
    """Write members (``(entry, predictor)``: predictor has ``save(dir)``, or is a path to copy),
    ensemble.json (``info`` + ``members`` entries), holdout_predictions.csv and test_applicability.csv into
    ``directory``."""
    directory = Path(directory)
    (directory / MEMBERS_DIR).mkdir(parents=True, exist_ok=True)
    entries = []
    for entry, predictor in members:
        dest = directory / MEMBERS_DIR / entry["name"]
        if isinstance(predictor, (str, Path)):
            shutil.copytree(predictor, dest)
        else:
            predictor.save(dest)
        entries.append(entry)
    _write_json(directory / ENSEMBLE_JSON, {**info, "members": entries})
    for frame, name in ((holdout, HOLDOUT_CSV), (test_applicability, TEST_APPLICABILITY_CSV)):
        if frame is not None:
            frame.to_csv(directory / name, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")


def copy_ensemble_files(src: Path, dest: Path) -> None:
    """Copy ensemble.json, holdout_predictions.csv, test_applicability.csv and members/ from a verified
    ensemble dir."""
    for name in (ENSEMBLE_JSON, HOLDOUT_CSV, TEST_APPLICABILITY_CSV):
        if (src / name).is_file():
            shutil.copy2(src / name, dest / name)
    shutil.copytree(src / MEMBERS_DIR, dest / MEMBERS_DIR)


TRAIN_MODEL_SUBDIR = "model"  # where `tune train --out DIR` saves its predictor (next to metrics.json)
TRAIN_BLEND_SUBDIR = "ensemble"  # and, with --blend-gbm, that predictor averaged with the blend's GBMs


def is_single_predictor_dir(directory: Path) -> bool:
    return member_format(directory) is not None and not (directory / ENSEMBLE_JSON).is_file()


def load_ensemble(directory: str | Path, device: str = "cpu") -> Ensemble:
    """Load an exported (or study) ensemble dir, or a ``tune train --out`` dir (its ``ensemble/`` where
    ``--blend-gbm`` wrote one, else its ``model/``), safely.

    Verifies manifest.json when present (always present in exports), checks every weights file is
    safetensors, and builds an :class:`Ensemble` with the stored weights.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelFileError(f"{directory}: model directory not found")
    if not (directory / ENSEMBLE_JSON).is_file():  # a `tune train --out` dir: metrics.json, model/, ensemble/
        if (directory / TRAIN_BLEND_SUBDIR / ENSEMBLE_JSON).is_file():
            directory = directory / TRAIN_BLEND_SUBDIR  # the model averaged with the blend's LightGBMs
        elif is_single_predictor_dir(directory / TRAIN_MODEL_SUBDIR):
            directory = directory / TRAIN_MODEL_SUBDIR
    if (directory / MANIFEST).is_file():
        verify_manifest(directory)
    if is_single_predictor_dir(directory):
        predictor = load_member_predictor(directory, device)
        return Ensemble([Member(name=directory.name, predictor=predictor, weight=1.0)],
                        info={"method": "single"})
    if not (directory / ENSEMBLE_JSON).is_file():
        raise ModelFileError(f"{directory}: not a model directory (no {ENSEMBLE_JSON} of an export, and no "
                             f"saved predictor of a `tune train --out` directory)")
    info = read_ensemble_json(directory)
    members = []
    for entry in info["members"]:
        try:
            name = str(entry["name"])
            weight = float(entry["weight"])
        except (KeyError, TypeError, ValueError):
            raise ModelFileError(f"{directory / ENSEMBLE_JSON}: member entry without name/weight: {entry!r}") from None
        if "/" in name or "\\" in name or name in ("", ".", ".."):
            raise ModelFileError(f"{directory / ENSEMBLE_JSON}: bad member name {name!r}")
        predictor = load_member_predictor(directory / MEMBERS_DIR / name, device)
        members.append(Member(name=name, predictor=predictor, weight=weight,
                              trial_number=entry.get("trial_number"), seed=entry.get("seed"),
                              r2=entry.get("r2"), family=str(entry.get("family", "transformer"))))
    try:
        return Ensemble(members, info={k: v for k, v in info.items() if k != "members"},
                        tta=int(info.get("tta", 0) or 0))
    except ValueError as err:
        raise ModelFileError(f"{directory / ENSEMBLE_JSON}: {err}") from None
