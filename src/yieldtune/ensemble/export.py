"""``tune export-best``: a self-contained model directory for a study, with a model card.

The directory is the ensemble format of :mod:`yieldtune.ensemble.format` plus ``metrics.json``,
``best_params.json``, ``MODEL_CARD.md`` and, with ``--predict``, ``predictions.csv``/``submission.csv``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from yieldtune.ensemble.auto import ensemble_dir, ensure_ensemble, same_weighting
from yieldtune.ensemble.format import (
    ENSEMBLE_JSON,
    MEMBERS_DIR,
    _write_json,
    atomic_directory,
    copy_ensemble_files,
    is_nonempty_dir,
    load_ensemble,
    read_ensemble_json,
    read_json,
    save_ensemble_dir,
    verify_manifest,
    write_manifest,
)
from yieldtune.ensemble.predict import predict_file
from yieldtune.ensemble.selection import WEIGHTINGS
from yieldtune.errors import ModelFileError
from yieldtune.files import sha256_file

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

    from yieldtune.metrics import r2_score
    from yieldtune.study.artifacts import artifact_store_for, download_predictor_dir, download_val_predictions

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


def member_featurizers(directory: Path) -> dict[str, str]:
    """Member name -> its molecule featurizers with their parameters (``"none"``), from each config.json."""
    out = {}
    for member in sorted((directory / MEMBERS_DIR).iterdir()) if (directory / MEMBERS_DIR).is_dir() else []:
        try:
            feats = (read_json(member / "config.json").get("molecule_features") or {}).get("featurizers") or []
            out[member.name] = ", ".join(
                f["name"] + (f" ({', '.join(f'{k} {v}' for k, v in f['params'].items())})" if f.get("params") else "")
                + (", robust-scaled on the training molecules" if f.get("scaler") else "")
                for f in feats) or "none"
        except (ModelFileError, AttributeError, KeyError, TypeError):
            out[member.name] = "unknown (no readable config.json)"
    return out


def weighting_text(method: str | None) -> str:
    """How an ensemble's weights were chosen, for its model card (``single``: an export of one trial)."""
    return WEIGHTINGS[method].description if method in WEIGHTINGS else "the best trial alone, weight 1"


def _model_card(spec, study, info: dict, best, counts: dict[str, int], data_file: Path | None,
                note: str | None, out_name: str, featurizers: dict[str, str] | None = None) -> str:
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
    lines += [f"- validation: {v.scheme}" + (f", k={v.k}" if v.scheme == "kfold" else f", fraction {v.fraction}")
              + (f", molecules at position {v.position}" if v.position is not None else "")
              + f", seed {v.seed}", "- target: yield as a fraction in [0, 1]", ""]
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
              f"- weights: {weighting_text(info.get('method'))} on the validation "
              "predictions of the trial models; each configuration's weight is split over its seed refits "
              "(trained on train + validation for the trial's best epoch count).", "",
              "| member | trial | seed | weight | validation R² (trial model) |", "|---|---|---|---|---|"]
    for m in info.get("members", []):
        lines.append(f"| {m['name']} | {m.get('trial_number')} | {m.get('seed')} | {m['weight']:.4f} | "
                     f"{m.get('r2', float('nan')):.4f} |")
    if featurizers:
        lines += ["", "## Molecule features", "",
                  "Computed with RDKit (and rxnmapper's ALBERT for `pretrained`) from the settings saved with each "
                  "member, also for molecules never seen in training; `tune predict` adds similarity_* columns "
                  "(nearest-neighbour Tanimoto to the training molecules of each role).", "",
                  "| member | featurizers |", "|---|---|"]
        lines += [f"| {name} | {text} |" for name, text in featurizers.items()]
    lines += ["", "## Validation metrics", "",
              f"On {info.get('n_holdout', '?')} validation rows (trial models, which never saw them):", "",
              f"- R² weighted ensemble: {info.get('r2_ensemble', float('nan')):.4f}",
              f"- R² plain mean of members: {info.get('r2_mean', float('nan')):.4f}",
              f"- R² best single member: {info.get('r2_best_member', float('nan')):.4f}", "",
              "## How to load", "", LOAD_SNIPPET.format(dir=out_name), "",
              "Or from the shell: `tune predict DIR input.csv --out preds.csv`.", "",
              "## Files", "",
              "`members/<name>/` (model.safetensors, vocab.json, config.json with the molecule featurizers and their "
              "scalers, domain.safetensors with the training molecules' fingerprints), `ensemble.json` (weights), "
              "`metrics.json`, `best_params.json`, `holdout_predictions.csv`, `manifest.json` (SHA-256 of every "
              "file; loading refuses modified files). Weights are safetensors; nothing is ever unpickled.", ""]
    return "\n".join(lines)


def _own_ensemble(spec, storage_url: str) -> Path | None:
    """This study's ensemble, rebuilt from its refits when they are all done; None when they are not."""
    from yieldtune.ensemble.refit import load_refit_study, queue_state

    refit = load_refit_study(spec, storage_url)
    state = None if refit is None else queue_state(refit)
    if state is None or not state.plan or not state.done:
        return None
    return ensure_ensemble(spec, storage_url)


def export_best(spec, storage_url: str, out: str | Path, *, force: bool = False,
                predict: str | Path | None = None, submission: bool = False, tta: int | None = None,
                device: str = "cpu", data_spec=None) -> ExportResult:
    """Write a self-contained model directory for ``spec``'s study (see module docstring for the layout).

    Uses the study's ensemble (``<artifact_dir>/ensemble``) when one has been built; otherwise the
    best single trial is exported as a one-member ensemble, and the card and the result say so
    (``tune ensemble STUDY`` builds the ensemble; export again afterwards).
    """
    from yieldtune.study.service import best_trial_or_none, load_study, other_study, state_counts

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
        built = read_ensemble_json(src)
        belongs_to = other_study(built, study)
        # same artifact dir, another storage's study, or weighted otherwise than the file now says: rebuild
        # ours from its refits, or go without
        if belongs_to is not None or not same_weighting(built, spec):
            src = _own_ensemble(spec, storage_url)
            if src is None:
                held = f"the ensemble of {belongs_to}, not of this study" if belongs_to is not None else \
                    f"an ensemble weighted by {built.get('method')!r}, not ensemble.method {spec.ensemble.method!r}"
                note = (f"{ensemble_dir(spec)} holds {held}; this export holds the best single trial "
                        f"({best.number}). Run `tune ensemble` for this study and export again for its ensemble.")
    else:
        note = (f"no ensemble has been built for study {spec.name!r} yet; this export holds the best single "
                f"trial ({best.number}). Run `tune ensemble {spec.name}` and export again for the ensemble.")
    source = str(src) if note is None else f"trial {best.number}"
    n_pred = None
    with atomic_directory(out, force=force) as tmp, tempfile.TemporaryDirectory(prefix="yt-exp-") as work:
        if note is None:
            copy_ensemble_files(src, tmp)
        else:
            single, member_src, _ = _single_trial_dir(spec, study, best, Path(work))
            save_ensemble_dir(tmp, [(single["entry"], member_src)], single["info"], holdout=single["holdout"])
        info = read_ensemble_json(tmp)
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
            _model_card(spec, study, info, best, counts, _dataset_file(spec), note, out.name,
                        member_featurizers(tmp)), encoding="utf-8")
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
