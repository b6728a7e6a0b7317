"""The shared study: created once in the storage, then loaded by every worker.

``tune run`` creates the study (and enqueues warm-start trials exactly once) before any worker starts, so
workers never race on creation; ``tune worker`` alone also creates it if missing, and a concurrent creation
(two workers on a fresh PostgreSQL database) is resolved by loading what the other one created.
"""

from __future__ import annotations

import json
import time
import warnings
from collections import Counter
from typing import TYPE_CHECKING, Any

from yieldtune.errors import ConfigError, StorageError
from yieldtune.study.artifacts import record_artifact_location
from yieldtune.study.pruners import build_pruner
from yieldtune.study.samplers import build_sampler
from yieldtune.study.spec import StudySpec
from yieldtune.study.storage import open_spec_storage, redact_url, require_sqlite_file

if TYPE_CHECKING:  # pragma: no cover
    import optuna

SPEC_ATTR = "yieldtune:spec"
FILE_ATTR = "yieldtune:study_file"
BUDGET_ATTR = "yieldtune:n_trials"
WARM_ATTR = "yieldtune:warm_started"
UID_ATTR = "yieldtune:study_uid"  # what tells two studies of one name (one study file, two storages) apart
FINISHED_STATES_NAMES = ("COMPLETE", "PRUNED")


def finished_states():
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.PRUNED)


def _storage(spec: StudySpec, storage) -> Any:
    return open_spec_storage(spec, storage) if isinstance(storage, str) else storage


def study_pruner(spec: StudySpec, space=None) -> "optuna.pruners.BasePruner":
    """The study's pruner; with several model families each trial is compared only with its own family."""
    space = space or spec.search()
    return build_pruner(spec.pruner, by_family=len(space.families) > 1)


def load_study(spec: StudySpec, storage_url, *, heartbeat: bool = True) -> "optuna.Study":
    """Load the existing study named in ``spec`` (StorageError if it does not exist)."""
    import optuna

    if isinstance(storage_url, str):
        require_sqlite_file(storage_url)  # `tune status`/`export-best` of a study that is not there: no empty .db
        storage = open_spec_storage(spec, storage_url, heartbeat=heartbeat)
    else:
        storage = storage_url
    space = spec.search()
    try:
        return optuna.load_study(study_name=spec.name, storage=storage, sampler=build_sampler(spec.sampler, space),
                                 pruner=study_pruner(spec, space))
    except KeyError:
        where = redact_url(storage_url) if isinstance(storage_url, str) else "the storage"
        raise StorageError(f"no study named {spec.name!r} in {where}; create it with `tune run`") from None


def create_or_load_study(spec: StudySpec, storage_url, *, n_trials: int | None = None) -> "optuna.Study":
    """Create the study if needed, record its spec/artifact folder, enqueue warm starts once; return it."""
    import optuna

    storage = _storage(spec, storage_url)
    space = spec.search()
    sampler, pruner = build_sampler(spec.sampler, space), study_pruner(spec, space)
    for attempt in range(3):
        try:
            study = optuna.create_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner,
                                        direction=spec.direction, load_if_exists=True)
            break
        except optuna.exceptions.DuplicatedStudyError:  # another process created it between check and insert
            time.sleep(0.2 * (attempt + 1))
            try:
                study = optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner)
                break
            except KeyError:
                continue
    else:  # pragma: no cover - three lost races in a row
        raise StorageError(f"could not create or load study {spec.name!r}")
    wanted = optuna.study.StudyDirection.MAXIMIZE if spec.direction == "maximize" else \
        optuna.study.StudyDirection.MINIMIZE
    if study.direction != wanted:
        raise ConfigError(f"{spec.source}: study {spec.name!r} exists with direction "
                          f"{study.direction.name.lower()}, but objective.metric={spec.objective.metric!r} needs "
                          f"{spec.direction}; use another name")
    attrs = study.user_attrs
    if study.metric_names != [spec.objective.metric]:
        # optuna-dashboard shows it as the value's name
        study.set_metric_names([spec.objective.metric])
    ensure_study_uid(study)
    if SPEC_ATTR not in attrs:
        study.set_user_attr(SPEC_ATTR, json.loads(spec.model_dump_json()))
        study.set_user_attr(FILE_ATTR, str(spec.path) if spec.path else None)
    record_artifact_location(study, spec)
    if n_trials is not None:
        study.set_user_attr(BUDGET_ATTR, int(n_trials))
    if not attrs.get(WARM_ATTR):
        enqueue_warm_start(spec, study, storage_url if isinstance(storage_url, str) else None)
        study.set_user_attr(WARM_ATTR, True)
    return study


def ensure_study_uid(study: "optuna.Study") -> str:
    """The study's unique id, created on first use (studies made before ids existed get one then)."""
    import uuid

    uid = study.user_attrs.get(UID_ATTR)
    if uid is None:
        study.set_user_attr(UID_ATTR, uuid.uuid4().hex)
        uid = study.user_attrs[UID_ATTR]  # re-read: a concurrent first use may have written its own
    return uid


def study_identity(study: "optuna.Study", storage_url) -> dict[str, Any]:
    """What files built from ``study`` record about it: name, unique id, and (for people) the storage."""
    where = redact_url(storage_url) if isinstance(storage_url, str) else None
    return {"study": study.study_name, "study_uid": study.user_attrs.get(UID_ATTR), "storage": where}


def other_study(recorded: dict[str, Any], study: "optuna.Study") -> str | None:
    """None when files recording ``recorded`` (see :func:`study_identity`) were built from ``study``; else
    what they belong to. Files without an id (built before ids were recorded) count as another study's."""
    uid = study.user_attrs.get(UID_ATTR)
    if uid is not None and recorded.get("study_uid") == uid:
        return None
    return (f"study {recorded.get('study')!r} in {recorded.get('storage') or 'an unrecorded storage'}"
            + ("" if recorded.get("study_uid") else " (no study id recorded)"))


def warm_start_configs(spec: StudySpec, storage_url: str | None) -> list[dict[str, Any]]:
    """The parameter dicts to try first: the file's list, then ``from_study``'s best ``top_k`` trials."""
    configs = [dict(c) for c in spec.warm_start.configs]
    src = spec.warm_start.from_study
    if src is not None:
        import optuna

        url = src.storage or storage_url
        if url is None:
            raise ConfigError(f"{spec.source}: warm_start.from_study.storage is needed")
        from yieldtune.study.storage import open_storage

        try:
            other = optuna.load_study(study_name=src.name, storage=open_storage(url, heartbeat=False))
        except KeyError:
            raise ConfigError(f"{spec.source}: warm_start.from_study: no study {src.name!r} in "
                              f"{redact_url(url)}") from None
        done = [t for t in other.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                if t.value is not None]
        done.sort(key=lambda t: t.value, reverse=other.direction == optuna.study.StudyDirection.MAXIMIZE)
        searched = set(spec.search().searched)
        for t in done[: src.top_k]:
            configs.append({k: v for k, v in t.params.items() if k in searched})
    return configs


def enqueue_warm_start(spec: StudySpec, study: "optuna.Study", storage_url: str | None) -> int:
    """Enqueue the warm-start configs (idempotent: identical params are skipped); returns how many listed."""
    configs = warm_start_configs(spec, storage_url)
    for params in configs:
        study.enqueue_trial(params, user_attrs={"warm_start": True}, skip_if_exists=True)
    return len(configs)


STEPPED_BACK = "stepped back: "  # fail_reason prefix of a trial that gave its slot back (see StudyObjective)


def is_stepped_back(trial) -> bool:
    """A FAIL trial that never trained: it started as the budget filled and stepped back (Optuna has no state
    for a trial that did not run, so it is FAIL in Optuna and the dashboard, with this fail_reason)."""
    return str(trial.user_attrs.get("fail_reason", "")).startswith(STEPPED_BACK)


def state_counts(study: "optuna.Study") -> dict[str, int]:
    """Number of trials by state name (all states present, zero where none); stepped-back trials are counted
    as STEPPED_BACK, not FAIL: they are bookkeeping, not failures."""
    from optuna.trial import TrialState

    counts = Counter("STEPPED_BACK" if t.state == TrialState.FAIL and is_stepped_back(t) else t.state.name
                     for t in study.get_trials(deepcopy=False))
    return {**{s.name: counts.get(s.name, 0) for s in TrialState}, "STEPPED_BACK": counts.get("STEPPED_BACK", 0)}


def trials_per_minute(study: "optuna.Study") -> float | None:
    """Finished (complete + pruned) trials per minute between the first one's start and the last one's end.

    The one rate that ``tune status``, the live view of ``tune run`` and its summary line all show."""
    finished = [t for t in study.get_trials(deepcopy=False, states=finished_states())
                if t.datetime_start and t.datetime_complete]
    if not finished:
        return None
    span = (max(t.datetime_complete for t in finished) - min(t.datetime_start for t in finished)).total_seconds()
    return round(len(finished) / (span / 60.0), 3) if span > 0 else None


def n_finished(study: "optuna.Study") -> int:
    """Trials that count towards the budget: COMPLETE + PRUNED (FAIL does not count; its retry does)."""
    return len(study.get_trials(deepcopy=False, states=finished_states()))


def best_trial_or_none(study: "optuna.Study"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return study.best_trial
        except ValueError:
            return None


__all__ = ["load_study", "create_or_load_study", "enqueue_warm_start", "warm_start_configs", "state_counts",
           "trials_per_minute", "is_stepped_back", "ensure_study_uid", "study_identity", "other_study",
           "n_finished", "best_trial_or_none", "SPEC_ATTR", "BUDGET_ATTR"]
