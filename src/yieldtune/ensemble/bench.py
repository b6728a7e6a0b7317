"""Ensemble vs. best single trial: R² on rows no model was tuned on.

With a labelled test split (``data.test`` or ``data.train_rows``) every model predicts the test rows: the best
trial's own model (trained on the training split), each refit member (train + validation), their plain mean
and their Caruana-weighted mixture, plus the same two mixtures of the source trial models, which separates
the gain of ensembling from the gain of refitting on more rows. The fingerprint baseline a chemist would run
by hand (:mod:`yieldtune.train.baseline`, trained on the same train + validation rows) is scored beside them,
in the same invocation, as ``r2_baseline``; where that baseline is also a member (``ensemble.baseline_member``),
``r2_ensemble_without_baseline`` scores the same refits weighted without it.

Without one, the refit members cannot be scored honestly (they trained on the validation rows), so the
figures are those of the trial models' stored validation predictions (which never saw those rows), the
same numbers ``ensemble.json`` records.
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from yieldtune.errors import ConfigError
from yieldtune.metrics import r2_score

if TYPE_CHECKING:  # pragma: no cover
    from yieldtune.study.spec import StudySpec

logger = logging.getLogger(__name__)


def _round(x: float | None, nd: int = 6) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def build_if_needed(spec: "StudySpec", storage_url: str, *, device: str) -> Path:
    """Finish the refits and build ``<artifact_dir>/ensemble`` unless it is already there (as ``tune ensemble``)."""
    from yieldtune.ensemble.auto import ensure_ensemble
    from yieldtune.ensemble.refit import enqueue_refits, run_refit_worker

    enqueue_refits(spec, storage_url)
    run_refit_worker(spec, storage_url, device)
    return ensure_ensemble(spec, storage_url)


def bench_ensemble(spec: "StudySpec", storage_url: str, *, device: str = "cpu",
                   batch_size: int = 256) -> dict[str, Any]:
    """One record: r2_best_single, the best single trial of each model family (``r2_best_<family>``, chosen by
    validation value), r2_ensemble (Caruana), r2_mean, per-member R², differences and ratios."""
    from yieldtune.ensemble.auto import trials_holdout
    from yieldtune.ensemble.format import load_ensemble, load_member_predictor, read_ensemble_json
    from yieldtune.study.artifacts import artifact_store_for, download_predictor_dir
    from yieldtune.study.datasets import prepare_folds
    from yieldtune.study.pruners import trial_family
    from yieldtune.study.service import BUDGET_ATTR, best_trial_or_none, load_study, n_finished

    study = load_study(spec, storage_url, heartbeat=False)
    budget = int(study.user_attrs.get(BUDGET_ATTR) or spec.budget.n_trials)
    done = n_finished(study)
    if done < budget:
        raise ConfigError(f"study {spec.name!r} has {done} of {budget} finished trials; run `tune run "
                          f"{spec.source}` to meet the budget first")
    best = best_trial_or_none(study)
    if best is None:
        raise ConfigError(f"study {spec.name!r} has no COMPLETE trial: nothing to compare")
    ens_dir = build_if_needed(spec, storage_url, device=device)
    info = read_ensemble_json(ens_dir)
    tta = int(info.get("tta", 0) or 0)
    weights_by_trial = {int(k): float(v) for k, v in info["weights_by_trial"].items()}
    sources = list(weights_by_trial)
    w_trials = np.array([weights_by_trial[n] for n in sources])
    w_trials = w_trials / w_trials.sum()
    store = artifact_store_for(spec)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    best_of_family = best_trial_per_family(study, spec.direction)

    data = prepare_folds(spec)
    test = data.test
    record: dict[str, Any] = {"bench": "ensemble", "study": spec.name, "metric": spec.objective.metric,
                              "best_trial": best.number, "best_value": _round(best.value), "tta": tta,
                              "method": info.get("method", "caruana"), "ensemble_dir": str(ens_dir)}
    if test is not None and test.has_targets and len(test) >= 2:
        y = np.asarray(test.yields, dtype=np.float64)
        rxns = list(test.reactions)
        logger.info(f"scoring {len(sources)} trial model(s) and the ensemble's members on {len(y)} test rows")

        def predict(predictor) -> np.ndarray:
            if hasattr(predictor, "use_cache"):  # GBM: test-row features once, in the study's feature cache
                predictor.use_cache(spec.cache_dir)
            mean, _ = predictor.predict(rxns, tta=tta, batch_size=batch_size)
            return np.asarray(mean, dtype=np.float64)

        with tempfile.TemporaryDirectory(prefix="yt-bench-") as tmp:
            trial_pred = {n: predict(load_member_predictor(
                download_predictor_dir(study, trials[n], Path(tmp) / f"trial{n}", store), device=device))
                for n in dict.fromkeys([best.number, *best_of_family.values(), *sources])}
        ens = load_ensemble(ens_dir, device=device)
        member_pred = np.column_stack([predict(m.predictor) for m in ens.members])
        w = ens.weights
        trials_matrix = np.column_stack([trial_pred[n] for n in sources])
        members = [{"name": m.name, "family": m.family, "trial": m.trial_number, "seed": m.seed,
                    "weight": _round(float(wi)),
                    "r2": _round(r2_score(y, member_pred[:, j]))}
                   for j, (m, wi) in enumerate(zip(ens.members, w))]
        from yieldtune.ensemble.blend import BASELINE_MEMBER
        from yieldtune.train.baseline import fit_baseline

        names = [m.name for m in ens.members]  # the baseline member is that same fit on train + validation
        baseline = member_pred[:, names.index(BASELINE_MEMBER)] if BASELINE_MEMBER in names else \
            fit_baseline(data.train_all, cache_dir=spec.cache_dir).predict(rxns)[0].astype(np.float64)
        by_method = _weights_by_method(spec, study, trials, sources, store)
        if "baseline_member" in info:  # the same refits weighted without the baseline (baseline_member = false)
            alone = dict(zip(sources, by_method[info.get("method", "caruana")]))
            seeds = {n: sum(m.trial_number == n for m in ens.members) for n in sources}
            w_alone = np.array([alone[m.trial_number] / seeds[m.trial_number] if m.trial_number in alone else 0.0
                                for m in ens.members])
            record["r2_ensemble_without_baseline"] = r2_score(y, member_pred @ w_alone)
        record.update({
            "eval": "test", "n_eval": len(y),
            "r2_baseline": r2_score(y, baseline),
            "r2_best_single": r2_score(y, trial_pred[best.number]),
            **{f"r2_best_{fam}": r2_score(y, trial_pred[n]) for fam, n in best_of_family.items()},
            "r2_ensemble": r2_score(y, member_pred @ w),
            "r2_mean": r2_score(y, np.mean(configuration_columns(ens.members, member_pred, sources) + (
                [baseline] if "baseline_member" in info else []), axis=0)),
            "r2_best_member": max(r2_score(y, member_pred[:, j]) for j in range(member_pred.shape[1])),
            **{f"r2_trials_{method}": r2_score(y, trials_matrix @ w)
               for method, w in by_method.items()},
            "members": members,
            "trials": [{"trial": n, "weight": _round(float(wt)), "r2": _round(r2_score(y, trial_pred[n]))}
                       for n, wt in zip(sources, w_trials)],
        })
    else:
        logger.info("no labelled test split: scoring the trial models' validation predictions "
            "(refit members trained on those rows and are not scored)")
        numbers = list(dict.fromkeys([best.number, *best_of_family.values(), *sources]))
        _, y, preds = trials_holdout(study, trials, numbers, store)
        col = {n: preds[:, j] for j, n in enumerate(numbers)}
        trials_matrix = np.column_stack([col[n] for n in sources])
        r2_ensemble = r2_score(y, trials_matrix @ w_trials)
        if "baseline_member" in info:  # its column was weighted with the trials': ensemble.json has that mixture's R²
            alone = _weights_by_method(spec, study, trials, sources, store)[info.get("method", "caruana")]
            record["r2_ensemble_without_baseline"] = r2_score(y, trials_matrix @ alone)
            r2_ensemble = float(info["r2_ensemble"])
        record.update({
            "eval": "validation", "n_eval": len(y),
            "r2_best_single": r2_score(y, col[best.number]),
            **{f"r2_best_{fam}": r2_score(y, col[n]) for fam, n in best_of_family.items()},
            "r2_ensemble": r2_ensemble,
            "r2_mean": float(info["r2_mean"]) if "baseline_member" in info else r2_score(y, trials_matrix.mean(axis=1)),
            "r2_best_member": max(r2_score(y, col[n]) for n in sources),
            "members": [{"name": f"trial{n}", "family": trial_family(trials[n]), "trial": n, "seed": None,
                         "weight": _round(float(wt)), "r2": _round(r2_score(y, col[n]))}
                        for n, wt in zip(sources, w_trials)],
            "note": "validation rows, trial models (trained without them); refit members are not scored",
        })
    record["best_trial_by_family"] = dict(best_of_family)
    for key in [k for k in record if k.startswith("r2_") and isinstance(record[k], float)]:
        record[key] = _round(record[key])
    ensemble = record["r2_ensemble"]
    versus = {f"best_{name}": record[f"r2_best_{name}"] for name in ["single", *best_of_family]}
    if "r2_baseline" in record:
        versus["baseline"] = record["r2_baseline"]
    for name, other in versus.items():
        record[f"r2_ensemble_minus_{name}"] = None if other is None or ensemble is None else round(ensemble - other, 6)
        record[f"r2_ensemble_over_{name}"] = None if other is None or ensemble is None or other <= 0 else \
            round(ensemble / other, 4)
    return record


def configuration_columns(members, member_pred: np.ndarray, sources: list[int]) -> list[np.ndarray]:
    """Per source trial, the mean of its seed refits' predictions: the columns ``r2_mean`` averages, one per
    member configuration as in ``ensemble.json``."""
    return [member_pred[:, [j for j, m in enumerate(members) if m.trial_number == n]].mean(axis=1) for n in sources]


def _weights_by_method(spec: "StudySpec", study, trials: dict, sources: list[int], store) -> dict[str, np.ndarray]:
    """Every ``ensemble.method``'s weights for the source trials, fitted on their validation predictions as the
    ensemble step fits the study's own method: one invocation scores them all on the same test rows."""
    from yieldtune.ensemble.auto import SELECTION_SCORES, trials_holdout
    from yieldtune.ensemble.selection import WEIGHTINGS

    _, y_val, val_preds = trials_holdout(study, trials, sources, store)
    score = SELECTION_SCORES[spec.objective.metric]
    return {method: w.select(val_preds, y_val, rounds=spec.ensemble.rounds, score=score).weights
            for method, w in WEIGHTINGS.items()}


def best_trial_per_family(study, direction: str) -> dict[str, int]:
    """The best COMPLETE trial (by its validation value) of each model family: family -> trial number."""
    from yieldtune.ensemble.selection import select_top_trials
    from yieldtune.study.pruners import trial_family

    trials = study.get_trials(deepcopy=False)
    out = {}
    for family in sorted({trial_family(t) for t in trials}):
        top = select_top_trials([t for t in trials if trial_family(t) == family], 1, direction=direction,
                                distinct="none")
        if top:
            out[family] = top[0].number
    return out


__all__ = ["bench_ensemble", "best_trial_per_family", "build_if_needed"]
