"""The on-disk ensemble format: member predictor dirs + JSON, a SHA-256 manifest, safe loading.

Layout (the study's ``<artifact_dir>/ensemble/`` and every ``tune export-best`` directory)::

    ensemble.json              members (name, trial_number, seed, weight, r2) + validation metrics
    holdout_predictions.csv    id,y_true,<one column per member>,ensemble (validation rows)
    members/<name>/            model.safetensors, vocab.json, config.json (YieldPredictor.save)
    manifest.json              SHA-256 of every other file; loading verifies it

Nothing is ever unpickled: weights are safetensors (checked by header before anything else reads
them) and everything else is JSON/CSV. A changed, missing or unexpected member file, or a non-
safetensors weights file, raises :class:`ModelFileError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from yieldtune.errors import ModelFileError
from yieldtune.ensemble.ensemble import Ensemble, Member

MANIFEST = "manifest.json"
ENSEMBLE_JSON = "ensemble.json"
HOLDOUT_CSV = "holdout_predictions.csv"
MEMBERS_DIR = "members"
WEIGHTS_FILE = "model.safetensors"
MEMBER_FILES = ("model.safetensors", "vocab.json", "config.json")
FLOAT_FORMAT = "%.17g"  # round-trips float64 exactly


# ---- hashing and the manifest --------------------------------------------------------------

def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def load_member_predictor(directory: str | Path, device: str = "cpu"):
    """A YieldPredictor from a member dir, after checking its weights file is really safetensors."""
    directory = Path(directory)
    for name in MEMBER_FILES:
        if not (directory / name).is_file():
            raise ModelFileError(f"{directory}: missing {name} (not a saved YieldPredictor directory)")
    check_safetensors(directory / WEIGHTS_FILE)
    from yieldtune.model.predictor import YieldPredictor

    return YieldPredictor.load(directory, device=device)


# ---- JSON/CSV helpers --------------------------------------------------------------------------

def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{path}: file not found") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path}: not valid JSON ({err})") from None


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


def write_json_atomic(path: str | Path, data: Any) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        _write_json(Path(tmp), data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_frame_atomic(frame, path: str | Path) -> None:
    """CSV with floats at full (round-trip) precision, via a temp file and os.replace."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.to_csv(tmp, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_predictions_csv(path: str | Path):
    """Read a CSV written here back with exact floats."""
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False, na_values=[""],
                       dtype={"id": str, "rxnid": str})


def write_submission(path: str | Path, ids: Sequence[str], yields: np.ndarray) -> None:
    """The aichem2024 submission: header exactly ``rxnid,Yield``, one row per input row, input order."""
    import pandas as pd

    if len(ids) != len(yields):
        raise ValueError(f"{len(ids)} ids but {len(yields)} predictions")
    frame = pd.DataFrame({"rxnid": [str(i) for i in ids], "Yield": np.asarray(yields, dtype=np.float64)})
    write_frame_atomic(frame, path)


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
                      info: dict[str, Any], holdout=None) -> None:
    """Write members (``(entry, predictor)``: predictor has ``save(dir)``, or is a path to copy),
    ensemble.json (``info`` + ``members`` entries) and holdout_predictions.csv into ``directory``."""
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
    if holdout is not None:
        holdout.to_csv(directory / HOLDOUT_CSV, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")


def copy_ensemble_files(src: Path, dest: Path) -> None:
    """Copy ensemble.json, holdout_predictions.csv and members/ from a verified ensemble dir."""
    for name in (ENSEMBLE_JSON, HOLDOUT_CSV):
        if (src / name).is_file():
            shutil.copy2(src / name, dest / name)
    shutil.copytree(src / MEMBERS_DIR, dest / MEMBERS_DIR)


def is_single_predictor_dir(directory: Path) -> bool:
    return (directory / WEIGHTS_FILE).is_file() and not (directory / ENSEMBLE_JSON).is_file()


def load_ensemble(directory: str | Path, device: str = "cpu") -> Ensemble:
    """Load an exported (or study) ensemble dir, or a single ``tune train --out`` dir, safely.

    Verifies manifest.json when present (always present in exports), checks every weights file is
    safetensors, and builds an :class:`Ensemble` with the stored weights.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelFileError(f"{directory}: model directory not found")
    if (directory / MANIFEST).is_file():
        verify_manifest(directory)
    if is_single_predictor_dir(directory):
        predictor = load_member_predictor(directory, device)
        return Ensemble([Member(name=directory.name, predictor=predictor, weight=1.0)],
                        info={"method": "single"})
    if not (directory / ENSEMBLE_JSON).is_file():
        raise ModelFileError(f"{directory}: not a model directory (no {ENSEMBLE_JSON} of an export, and no "
                             f"{WEIGHTS_FILE} of a `tune train --out` directory)")
    info = read_json(directory / ENSEMBLE_JSON)
    if not isinstance(info, dict) or not isinstance(info.get("members"), list) or not info["members"]:
        raise ModelFileError(f"{directory / ENSEMBLE_JSON}: no 'members' list")
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
                              r2=entry.get("r2")))
    try:
        return Ensemble(members, info={k: v for k, v in info.items() if k != "members"},
                        tta=int(info.get("tta", 0) or 0))
    except ValueError as err:
        raise ModelFileError(f"{directory / ENSEMBLE_JSON}: {err}") from None


# ---- predicting a file -------------------------------------------------------------------------

class FilePredictions:
    """Predictions for the valid rows of an input file, plus the rows that could not be predicted."""

    def __init__(self, path: Path, header: list[str], rows: list[tuple[int, list[str]]], delimiter: str,
                 table, problems: list, mean: np.ndarray, std: np.ndarray) -> None:
        self.path, self.header, self.rows, self.delimiter = path, header, rows, delimiter
        self.table, self.problems, self.mean, self.std = table, problems, mean, std

    @property
    def by_row(self) -> dict[int, tuple[float, float]]:
        return {r: (float(m), float(s)) for r, m, s in zip(self.table.rows, self.mean, self.std)}

    def problem_lines(self) -> list[str]:
        return [f"{self.path}: row {p.row}, column {p.column!r}: {p.reason}" for p in self.problems]

    def write_rows(self, out: str | Path) -> None:
        """Input rows (cells unchanged) + yield_pred, yield_std; invalid rows are left out."""
        import csv
        import io

        preds = self.by_row
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([*self.header, "yield_pred", "yield_std"])
        for line, cells in self.rows:
            if line in preds:
                m, s = preds[line]
                writer.writerow([*cells, FLOAT_FORMAT % m, FLOAT_FORMAT % s])
        _write_text_atomic(Path(out), buf.getvalue())

    def write_predictions(self, out: str | Path) -> None:
        """``id,yield_pred,yield_std`` for the predicted rows, in input order."""
        import pandas as pd

        write_frame_atomic(pd.DataFrame({"id": list(self.table.ids), "yield_pred": self.mean.astype(np.float64),
                                         "yield_std": self.std.astype(np.float64)}), out)

    def write_submission(self, out: str | Path, id_column: str = "rxnid") -> None:
        from yieldtune.errors import DataError

        if self.problems:
            raise DataError(f"cannot write a submission: {len(self.problems)} invalid row(s), first: "
                            f"row {self.problems[0].row}, column {self.problems[0].column!r}: "
                            f"{self.problems[0].reason}", path=str(self.path))
        if id_column not in self.header:
            raise DataError(f"a submission needs an {id_column!r} column", path=str(self.path), row=1)
        k = self.header.index(id_column)
        ids = [cells[k].strip() for _, cells in self.rows]
        write_submission(out, ids, self.mean.astype(np.float64))


def _write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        Path(tmp).write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def input_spec(path: Path, *, layout: str | None = None, rxn_column: str | None = None,
               id_column: str | None = None):
    """How to read a file to predict: no target; layout/columns inferred from its header unless given."""
    from yieldtune.data.load import infer_spec

    spec = infer_spec(path, layout=layout, target=None)
    update: dict[str, Any] = {}
    if rxn_column:
        update["rxn_column"] = rxn_column
    if id_column:
        update["id_column"] = id_column
    return spec.model_copy(update=update) if update else spec


def predict_file(ensemble: Ensemble, path: str | Path, data_spec=None, *, tta: int | None = None,
                 seed: int = 0, batch_size: int = 256) -> FilePredictions:
    """Predict every valid row of ``path``; invalid rows (bad SMILES, ...) are collected, not predicted."""
    from yieldtune.data.load import read_csv_rows, read_reactions

    path = Path(path)
    data_spec = data_spec or input_spec(path)
    result = read_reactions(path, data_spec, drop_invalid=True)
    header, rows, delimiter = read_csv_rows(path, data_spec.delimiter)
    mean, std = ensemble.predict(result.table.reactions, tta=tta, seed=seed, batch_size=batch_size)
    return FilePredictions(path, header, rows, delimiter, result.table, result.problems, mean, std)


# ---- tune export-best ----------------------------------------------------------------------------

LOAD_SNIPPET = """```python
from yieldtune.ensemble import load_ensemble
ens = load_ensemble("{dir}")  # verifies manifest.json, loads safetensors weights only
reactions = ["Brc1ccccc1.C1COCCN1>CC(C)(C)[O-].[Na+]>c1ccc(N2CCOCC2)cc1"]  # reactants>agents>products
mean, std = ens.predict(reactions)  # yields in [0, 1] and their spread across members (and TTA copies)
print(mean, std)
```"""


class ExportResult:
    def __init__(self, out: Path, source: str, note: str | None, n_members: int, predictions: int | None):
        self.out, self.source, self.note, self.n_members, self.predictions = out, source, note, n_members, predictions


def _dataset_file(spec) -> Path | None:
    try:
        from yieldtune.study.datasets import _dataset_path

        return _dataset_path(spec, spec.data.dataset, "data.dataset")[0]
    except Exception:  # noqa: BLE001 - the card then says the file could not be found
        p = spec.resolve_path(spec.data.dataset)
        return p if p.is_file() else None


def _single_trial_dir(spec, study, trial, tmp: Path) -> tuple[dict, Path, Any]:
    """A one-member ensemble from the best trial (used before any ensemble was built)."""
    import pandas as pd

    from yieldtune.study.artifacts import artifact_store_for, download_predictor_dir, download_val_predictions
    from yieldtune.ensemble.selection import r2_score

    store = artifact_store_for(spec)
    name = f"trial{trial.number}"
    src = download_predictor_dir(study, trial, tmp / name, store=store)
    val = download_val_predictions(study, trial, store=store)
    y, p = val["y_true"].to_numpy(np.float64), val["y_pred"].to_numpy(np.float64)
    r2 = r2_score(y, p)
    entry = {"name": name, "trial_number": trial.number, "seed": None, "weight": 1.0, "r2": r2,
             "trial_value": trial.value, "params": dict(trial.params)}
    info = {"format": "yieldtune-ensemble/1", "method": "single", "study": spec.name,
            "metric": spec.objective.metric, "r2_ensemble": r2, "r2_mean": r2, "r2_best_member": r2,
            "weights_by_trial": {str(trial.number): 1.0}, "tta": int(spec.ensemble.tta), "n_holdout": len(y),
            "holdout": "validation rows; predictions of the trial model (trained on the training split only)"}
    holdout = pd.DataFrame({"id": val["id"].astype(str), "y_true": y, name: p, "ensemble": p})
    return {"entry": entry, "info": info, "holdout": holdout}, src, None


def _model_card(spec, study, info: dict, best, counts: dict[str, int], data_file: Path | None,
                note: str | None, out_name: str) -> str:
    from yieldtune.study.space import describe

    lines = [f"# Model card: {spec.name}", ""]
    if spec.description:
        lines += [spec.description, ""]
    if note:
        lines += [f"> **Note:** {note}", ""]
    lines += ["## Data", ""]
    if data_file is not None and data_file.is_file():
        lines += [f"- data set: `{spec.data.dataset}` (`{data_file.name}`)",
                  f"- SHA-256: `{sha256_file(data_file)}`"]
    else:
        lines += [f"- data set: `{spec.data.dataset}` (file not found when exporting; SHA-256 unknown)"]
    v = spec.validation
    lines += [f"- validation: {v.scheme}" + (f", fraction {v.fraction}" if v.scheme == "holdout" else f", k={v.k}")
              + f", seed {v.seed}", f"- target: yield as a fraction in [0, 1]", ""]
    lines += ["## Search", ""]
    lines += ["- trials by state: " + ", ".join(f"{k} {n}" for k, n in counts.items() if n)]
    if best is not None:
        lines += [f"- best value ({spec.objective.metric}, {spec.direction}): {best.value:.6g} (trial {best.number})"]
    lines += [f"- sampler: `{spec.sampler.model_dump_json()}`", f"- pruner: `{spec.pruner.model_dump_json()}`",
              f"- budget: {spec.budget.n_trials} trials", "", "| parameter | searched over |", "|---|---|"]
    lines += [f"| {n} | {d} |" for n, d in describe(spec.search())]
    lines += ["", "## Ensemble", "",
              f"- method: {info.get('method')}; top_k {spec.ensemble.top_k}, seeds {spec.ensemble.seeds}, "
              f"distinct {spec.ensemble.distinct!r}, default TTA copies {info.get('tta', 0)}",
              "- weights: greedy forward selection with replacement (Caruana et al. 2004) on the validation "
              "predictions of the trial models; each configuration's weight is split over its seed refits "
              "(trained on train + validation for the trial's best epoch count).", "",
              "| member | trial | seed | weight | validation R² (trial model) |", "|---|---|---|---|---|"]
    for m in info.get("members", []):
        lines.append(f"| {m['name']} | {m.get('trial_number')} | {m.get('seed')} | {m['weight']:.4f} | "
                     f"{m.get('r2', float('nan')):.4f} |")
    lines += ["", "## Validation metrics", "",
              f"On {info.get('n_holdout', '?')} validation rows (trial models, which never saw them):", "",
              f"- R² Caruana-weighted ensemble: {info.get('r2_ensemble', float('nan')):.4f}",
              f"- R² plain mean of members: {info.get('r2_mean', float('nan')):.4f}",
              f"- R² best single member: {info.get('r2_best_member', float('nan')):.4f}", "",
              "## How to load", "", LOAD_SNIPPET.format(dir=out_name), "",
              "Or from the shell: `tune predict DIR input.csv --out preds.csv`.", "",
              "## Files", "",
              "`members/<name>/` (model.safetensors, vocab.json, config.json), `ensemble.json` (weights), "
              "`metrics.json`, `best_params.json`, `holdout_predictions.csv`, `manifest.json` (SHA-256 of every "
              "file; loading refuses modified files). Weights are safetensors; nothing is ever unpickled.", ""]
    return "\n".join(lines)


def export_best(spec, storage_url: str, out: str | Path, *, force: bool = False,
                predict: str | Path | None = None, submission: bool = False, tta: int | None = None,
                device: str = "cpu", data_spec=None) -> ExportResult:
    """Write a self-contained model directory for ``spec``'s study (see module docstring for the layout).

    Uses the study's ensemble (``<artifact_dir>/ensemble``) when one has been built; otherwise the
    best single trial is exported as a one-member ensemble, and the card and the result say so
    (``tune ensemble STUDY`` builds the ensemble; export again afterwards).
    """
    from yieldtune.ensemble.auto import ensemble_dir
    from yieldtune.study.service import best_trial_or_none, load_study, state_counts

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ModelFileError(f"{out}: exists and is not a directory")
    if is_nonempty_dir(out) and not force:
        raise ModelFileError(f"{out}: directory is not empty (use --force to overwrite)")
    if submission and predict is None:
        from yieldtune.errors import ConfigError

        raise ConfigError("--submission needs --predict FILE (the rows to submit)")
    study = load_study(spec, storage_url)
    best = best_trial_or_none(study)
    if best is None:
        from yieldtune.errors import ConfigError

        raise ConfigError(f"study {spec.name!r} has no COMPLETE trial yet: nothing to export")
    counts = state_counts(study)
    src = ensemble_dir(spec)
    note = None
    if (src / ENSEMBLE_JSON).is_file():
        verify_manifest(src)
        source = str(src)
    else:
        source = f"trial {best.number}"
        note = (f"no ensemble has been built for study {spec.name!r} yet; this export holds the best single "
                f"trial ({best.number}). Run `tune ensemble {spec.name}` and export again for the ensemble.")
    n_pred = None
    with atomic_directory(out, force=force) as tmp, tempfile.TemporaryDirectory(prefix="yt-exp-") as work:
        if note is None:
            copy_ensemble_files(src, tmp)
        else:
            single, member_src, _ = _single_trial_dir(spec, study, best, Path(work))
            save_ensemble_dir(tmp, [(single["entry"], member_src)], single["info"], holdout=single["holdout"])
        info = read_json(tmp / ENSEMBLE_JSON)
        if tta is not None:
            info["tta"] = int(tta)
        info["exported_from"] = source
        _write_json(tmp / ENSEMBLE_JSON, info)
        metrics = {k: info.get(k) for k in ("metric", "r2_ensemble", "r2_mean", "r2_best_member", "n_holdout",
                                             "method")}
        metrics.update({"best_value": best.value, "best_trial": best.number, "direction": spec.direction,
                        "trials_by_state": counts,
                        "members": {m["name"]: {"weight": m["weight"], "r2": m.get("r2")} for m in info["members"]}})
        _write_json(tmp / "metrics.json", metrics)
        _write_json(tmp / "best_params.json", {"study": spec.name, "trial_number": best.number, "value": best.value,
                                               "metric": spec.objective.metric, "params": best.params,
                                               "config": best.user_attrs.get("config")})
        (tmp / "MODEL_CARD.md").write_text(
            _model_card(spec, study, info, best, counts, _dataset_file(spec), note, out.name), encoding="utf-8")
        if predict is not None:
            ens = load_ensemble(tmp, device=device)
            fp = predict_file(ens, predict, data_spec)
            if fp.problems:
                from yieldtune.errors import DataError

                p = fp.problems[0]
                raise DataError(f"{len(fp.problems)} invalid row(s) cannot be predicted; first: {p.reason} "
                                "(check them with `tune predict`)", path=str(predict), row=p.row, column=p.column)
            fp.write_predictions(tmp / "predictions.csv")
            if submission:
                fp.write_submission(tmp / "submission.csv")
            n_pred = len(fp.mean)
        write_manifest(tmp)
    return ExportResult(out, source, note, len(info["members"]), n_pred)
