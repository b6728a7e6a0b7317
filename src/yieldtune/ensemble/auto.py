"""The automatic path: budget met -> refits queued -> (last refit done) -> ensemble built.

Weighting scheme (why it is sound): refit members have seen the validation rows, so their own
validation predictions cannot weight them. The weights are instead fitted by greedy forward
selection with replacement (Caruana et al. 2004) on the validation predictions of the source trial
models (trained on the training split only, uploaded by each trial as ``artifact:val_predictions``),
one column per member configuration. Each configuration's weight is then split evenly over its
seed refits. Members of every model family compete in the same selection (``r2_best_by_family`` and
``weight_by_family`` record how each family fared); with ``ensemble.baseline_member`` so does the untuned
fingerprint GBM of ``tune bench baseline``, fitted on each fold's training rows for its column and refit on
train + validation as a member where it gets weight. The recorded validation metrics (``r2_ensemble``,
``r2_mean``, ``r2_best_member``) are those of the trial models, i.e. honest estimates for the refit
ensemble, not training-set scores.
"""

from __future__ import annotations

import datetime
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from yieldtune.ensemble import format as fmt
from yieldtune.ensemble.blend import BASELINE_MEMBER
from yieldtune.ensemble.refit import (
    enqueue_refits,
    load_refit_study,
    queue_state,
    refit_study_name,
    run_refit_worker,
)
from yieldtune.ensemble.selection import WEIGHTINGS
from yieldtune.errors import ConfigError, ModelFileError
from yieldtune.metrics import mae, r2_score, rmse

if TYPE_CHECKING:  # pragma: no cover
    from yieldtune.study.spec import StudySpec

logger = logging.getLogger(__name__)

ENSEMBLE_SUBDIR = "ensemble"


# the study's objective metric as a "higher is better" score for greedy selection
SELECTION_SCORES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "r2": r2_score, "mae": lambda y, p: -mae(y, p), "rmse": lambda y, p: -rmse(y, p),
}


def ensemble_dir(spec: "StudySpec") -> Path:
    return spec.artifact_dir / ENSEMBLE_SUBDIR


def member_name(source_trial: int, seed: int) -> str:
    return f"trial{int(source_trial)}-seed{int(seed)}"


def on_budget_met(spec: "StudySpec", storage_url: str, *, device: str = "auto", work: bool = True,
                  train_all=None):
    """The budget-met step ``tune worker`` and ``tune run`` pass to the study worker/runner
    (:class:`yieldtune.study.worker.OnBudgetMet`): every worker past the budget, and the runner, call it.

    Queues the refits once (idempotent across processes and machines); with ``work`` (default) it
    then works the refit queue alongside any other worker, waits for refits running elsewhere, and
    builds ``<artifact_dir>/ensemble/`` once the last one is done. Returns the
    :class:`~yieldtune.ensemble.refit.RefitSummary`, or None when ``[ensemble] auto = false`` or no
    trial completed.
    """
    if not spec.ensemble.auto:
        return None
    try:
        refit = enqueue_refits(spec, storage_url)
    except ConfigError as err:  # no COMPLETE trial: nothing to ensemble, not an error for the runner
        logger.info(f"ensemble skipped: {err}")
        return None
    if not work:
        return refit.study_name
    summary = run_refit_worker(spec, storage_url, device, train_all=train_all)
    if summary.complete:
        summary.ensemble_dir = ensure_ensemble(spec, storage_url)
        logger.info(f"ensemble of study {spec.name!r} ready in {summary.ensemble_dir}")
    return summary



# ---- building the ensemble from finished refits ---------------------------------------------

def trained_steps(refit_trial, entry: dict) -> int:
    """Epochs or boosting rounds a refit trained: its own record, else its plan entry's (older refits)."""
    steps = refit_trial.user_attrs.get("steps")
    if steps is None:
        steps = entry.get("steps", entry.get("epochs"))
    return int(steps)


def holdout_matrix(frames: list, names: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Align the trials' validation predictions by id: (ids, y_true, predictions[n, members])."""
    base = frames[0]
    ids = [str(i) for i in base["id"]]
    if len(set(ids)) != len(ids):  # ids are not unique: fall back to row order, which must agree
        for f, name in zip(frames, names):
            if len(f) != len(base) or not np.allclose(f["y_true"].to_numpy(), base["y_true"].to_numpy()):
                raise ModelFileError(f"validation predictions of {name} do not line up with {names[0]}")
        return ids, base["y_true"].to_numpy(np.float64), np.column_stack(
            [f["y_pred"].to_numpy(np.float64) for f in frames])
    cols = []
    for f, name in zip(frames, names):
        by_id = dict(zip((str(i) for i in f["id"]), f["y_pred"].to_numpy(np.float64)))
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise ModelFileError(f"validation predictions of {name} lack id {missing[0]!r} "
                                 f"(trials were validated on different rows)")
        cols.append(np.array([by_id[i] for i in ids]))
    return ids, base["y_true"].to_numpy(np.float64), np.column_stack(cols)


def trials_holdout(study, trials: dict, numbers: list[int], store,
                   extra: tuple = ()) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The validation predictions of these trials' own models, then of the ``extra`` (name, frame) pairs, aligned:
    (ids, y_true, predictions[n, trials + extra])."""
    from yieldtune.study.artifacts import download_val_predictions

    frames = [download_val_predictions(study, trials[n], store=store) for n in numbers]
    return holdout_matrix(frames + [f for _, f in extra], [f"trial {n}" for n in numbers] + [n for n, _ in extra])


def baseline_holdout(spec: "StudySpec", data) -> Any:
    """The fingerprint baseline's validation predictions (``id, y_true, y_pred``), fitted on each fold's training
    rows as a trial's model is, so its weight is chosen on rows it never saw, beside the trials'."""
    import pandas as pd

    from yieldtune.train.baseline import fit_baseline

    frames = []
    for train, val in data.folds:
        pred, _ = fit_baseline(train, cache_dir=spec.cache_dir, threads=None).predict(val.reactions)
        frames.append(pd.DataFrame({"id": list(val.ids), "y_true": val.yields, "y_pred": pred}))
    return pd.concat(frames, ignore_index=True)


def build_study_ensemble(spec: "StudySpec", storage_url: str, *, storage=None) -> Path:
    """Weight the completed refits and write ``<artifact_dir>/ensemble/`` atomically."""
    import pandas as pd

    from yieldtune.study.artifacts import artifact_store_for, download_predictor_dir
    from yieldtune.study.datasets import prepare_folds
    from yieldtune.study.service import ensure_study_uid, load_study, study_identity

    refit = load_refit_study(spec, storage_url, storage)
    if refit is None:
        raise ConfigError(f"study {spec.name!r}: no refits planned yet (run `tune ensemble {spec.name}`)")
    state = queue_state(refit)
    if not state.plan or not state.done:
        n_done = sum(p in state.complete for p in state.pairs)
        raise ConfigError(f"study {spec.name!r}: {n_done} of {len(state.pairs)} refits done; "
                          f"run `tune worker` or `tune ensemble {spec.name}` to finish them")
    main = load_study(spec, storage_url)
    ensure_study_uid(main)
    store = artifact_store_for(spec)
    trials = {t.number: t for t in main.get_trials(deepcopy=False)}
    sources: list[int] = []
    for entry in state.plan:
        if entry["source_trial"] not in sources:
            sources.append(int(entry["source_trial"]))
    data = prepare_folds(spec) if spec.ensemble.baseline_member else None
    # the untuned fingerprint GBM competes for weight as one more column, beside the trials
    extra = (("the fingerprint baseline", baseline_holdout(spec, data)),) if data is not None else ()
    ids, y, preds = trials_holdout(main, trials, sources, store, extra)
    metric = spec.objective.metric
    rounds = spec.ensemble.rounds
    method = spec.ensemble.method
    res = WEIGHTINGS[method].select(preds, y, rounds=rounds, score=SELECTION_SCORES[metric])
    weight_of = {n: float(w) for n, w in zip(sources, res.weights)}
    r2_of = {n: r2_score(y, preds[:, j]) for j, n in enumerate(sources)}
    path_names = [*sources, BASELINE_MEMBER]
    ens_pred = preds @ res.weights
    mean_pred = preds.mean(axis=1)

    seeds_of: dict[int, list[dict]] = {}
    family_of_trial: dict[int, str] = {}
    for entry in state.plan:
        seeds_of.setdefault(int(entry["source_trial"]), []).append(entry)
        family_of_trial[int(entry["source_trial"])] = str(entry.get("family", "transformer"))
    best_by_family: dict[str, float] = {}
    weight_by_family: dict[str, float] = {}
    for n in sources:
        fam = family_of_trial[n]
        best_by_family[fam] = max(best_by_family.get(fam, -np.inf), r2_of[n])
        weight_by_family[fam] = weight_by_family.get(fam, 0.0) + weight_of[n]
    members: list[tuple[dict[str, Any], Any]] = []
    holdout = {"id": ids, "y_true": y}
    with tempfile.TemporaryDirectory(prefix="yt-ens-") as tmp:
        for n in sources:
            for entry in seeds_of[n]:
                pair = (n, int(entry["seed"]))
                refit_trial = state.complete[pair]
                name = member_name(*pair)
                src_dir = download_predictor_dir(refit, refit_trial, Path(tmp) / name, store=store)
                family = str(entry.get("family", "transformer"))
                steps = trained_steps(refit_trial, entry)
                members.append(({"name": name, "family": family, "trial_number": n, "seed": pair[1],
                                 "weight": weight_of[n] / len(seeds_of[n]), "r2": r2_of[n],
                                 "refit_trial": refit_trial.number, "steps": steps, "epochs": steps,
                                 "trial_value": entry.get("value"), "params": entry.get("params", {})},
                                src_dir))
                holdout[name] = preds[:, sources.index(n)]
        baseline_info = {}
        if data is not None:
            from yieldtune.train.baseline import fit_baseline

            j = len(sources)
            baseline_info = {"baseline_member": {"weight": float(res.weights[j]), "r2": r2_score(y, preds[:, j])}}
            if res.weights[j] > 0:  # refit on train + validation, as the trials' refits are
                members.append(({"name": BASELINE_MEMBER, "family": "gbm", "baseline": True,
                                 "weight": float(res.weights[j]), "r2": baseline_info["baseline_member"]["r2"],
                                 "what": "the fingerprint LightGBM of tune bench baseline, untuned, on train + "
                                         "validation"}, fit_baseline(data.train_all, cache_dir=spec.cache_dir,
                                                                     threads=None)))
                holdout[BASELINE_MEMBER] = preds[:, j]
        holdout["ensemble"] = ens_pred
        info = {
            "format": "yieldtune-ensemble/1",
            "method": method,
            "study": spec.name,
            "refit_study": refit_study_name(spec.name),
            "metric": metric,
            "r2_ensemble": r2_score(y, ens_pred),
            "r2_mean": r2_score(y, mean_pred),
            "r2_best_member": max(r2_of.values()),
            "r2_best_by_family": best_by_family,
            "weight_by_family": weight_by_family,
            "weights_by_trial": {str(n): weight_of[n] for n in sources},
            **baseline_info,
            "selection": {"rounds": rounds, "path": [path_names[j] for j in res.selection],
                          "score": res.score, "best_single_trial": path_names[res.best_single]},
            "tta": int(spec.ensemble.tta),
            "n_holdout": len(ids),
            "holdout": "validation rows; predictions of the source trial models (trained without these rows). "
                       "Refit members (train+validation) take their configuration's weight split over seeds.",
            "refit_trials": sorted(t.number for t in state.complete.values()),
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            **study_identity(main, storage_url),  # checked by every reader: one artifact dir, many storages
        }
        target = ensemble_dir(spec)
        with fmt.atomic_directory(target, force=True) as out:
            fmt.save_ensemble_dir(out, members, info, holdout=pd.DataFrame(holdout),
                                  test_applicability=test_applicability(spec))
            fmt.write_manifest(out)
    logger.debug("ensemble of %d members written to %s (r2 %.4f)", len(members), target, info["r2_ensemble"])
    return target


def test_applicability(spec: "StudySpec"):
    """Per row of the study's test split (None without one): the nearest-neighbour similarity of its molecules
    to the molecules the refit members trained on (train + validation), as ``tune predict`` reports it; the
    report shows how much of the test set lies outside the training chemistry."""
    import pandas as pd

    from yieldtune.model.domain import SIMILARITY_COLUMNS, Domain
    from yieldtune.study.datasets import load_study_tables

    train, test = load_study_tables(spec)
    if test is None or not len(test):
        return None
    sim = Domain.from_reactions(train.reactions).similarity(test.reactions)
    return pd.DataFrame({"id": test.ids, **{c: sim[:, j] for j, c in enumerate(SIMILARITY_COLUMNS)}})


def ensemble_progress(spec: "StudySpec", storage_url: str, study=None) -> dict[str, Any]:
    """Where the after-budget step stands: refits planned/done/running/waiting/failed and whether this
    study's ensemble is built (for ``tune status``)."""
    from yieldtune.study.service import load_study, other_study

    refit = load_refit_study(spec, storage_url)
    progress: dict[str, Any] = {"refits": None, "ensemble": None}
    if refit is not None:
        state = queue_state(refit)
        progress["refits"] = {"planned": len(state.pairs), "complete": sum(p in state.complete for p in state.pairs),
                              "running": len(state.running), "waiting": len(state.waiting),
                              "failed_attempts": sum(state.failures.values())}
    target = ensemble_dir(spec)
    if (target / fmt.ENSEMBLE_JSON).is_file():
        info = fmt.read_ensemble_json(target)
        belongs_to = other_study(info, study or load_study(spec, storage_url, heartbeat=False))
        progress["ensemble"] = {"dir": str(target), "members": len(info.get("members", [])),
                                "r2_ensemble": info.get("r2_ensemble"), "created": info.get("created")} \
            if belongs_to is None else {"dir": str(target), "other_study": belongs_to}
    return progress


def same_weighting(info: dict[str, Any], spec: "StudySpec") -> bool:
    """Whether a built ensemble was weighted as the study file now says (``ensemble.method``, ``rounds`` and
    ``baseline_member``)."""
    return info.get("method") == spec.ensemble.method and \
        info.get("selection", {}).get("rounds") == spec.ensemble.rounds and \
        ("baseline_member" in info) == spec.ensemble.baseline_member


def ensure_ensemble(spec: "StudySpec", storage_url: str, *, storage=None, rebuild: bool = False) -> Path:
    """Build the ensemble unless an intact one of this study (same study id) for the same completed refits,
    weighted by the same method, is already there. The directory holds one study's ensemble: a study of the
    same name in another storage (same study file, ``--storage`` elsewhere) rebuilds it from its own refits,
    never reuses the other's.

    Several workers may finish at once: each builds into its own temp dir and renames; if another
    one's rename wins, its (identical) result is kept.
    """
    from yieldtune.study.service import load_study, other_study

    target = ensemble_dir(spec)
    refit = load_refit_study(spec, storage_url, storage)
    if not rebuild and refit is not None and (target / fmt.ENSEMBLE_JSON).is_file():
        try:
            fmt.verify_manifest(target)
            info = fmt.read_ensemble_json(target)
            done = sorted(t.number for t in queue_state(refit).complete.values())
            mine = other_study(info, load_study(spec, storage or storage_url, heartbeat=False)) is None
            if mine and info.get("refit_trials") == done and same_weighting(info, spec):
                return target
        except ModelFileError:
            pass
    try:
        return build_study_ensemble(spec, storage_url, storage=storage)
    except OSError:
        if (target / fmt.ENSEMBLE_JSON).is_file():  # a concurrent builder's rename won
            return target
        raise
