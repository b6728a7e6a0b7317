"""Refits of the top-k trials on train+validation, queued in the shared storage like trials.

The queue is a companion Optuna study ``<study>:refit`` in the same storage. Planning (once, by
whoever creates that study) enqueues exactly ``top_k * seeds`` WAITING trials, one per
(source_trial, seed) pair, and stores the plan as a study user attr. Any worker on any machine then
runs them through ``study.optimize`` so Optuna's heartbeats apply: a refit whose worker dies goes
stale, ``RetryHeartbeatStaleTrialCallback`` re-queues it as a new WAITING trial with the same params,
and the next worker redoes it. A pair is done when one trial for it is COMPLETE; a trial popped for
an already finished or already running pair is pruned without training, so no refit is done twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from yieldtune.ensemble.selection import select_top_trials, trial_best_epoch
from yieldtune.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from yieldtune.study.spec import StudySpec

logger = logging.getLogger(__name__)

REFIT_SUFFIX = ":refit"
PLAN_ATTR = "refit_plan"
ENTRY_ATTR = "refit"
MAX_PARAM = 2**31 - 1  # fixed-range int distributions keep every refit trial's params compatible


def refit_study_name(study_name: str) -> str:
    return f"{study_name}{REFIT_SUFFIX}"


def pair_of(trial) -> tuple[int, int] | None:
    entry = trial.user_attrs.get(ENTRY_ATTR)
    if not isinstance(entry, dict):
        return None
    return int(entry["source_trial"]), int(entry["seed"])


# ---- planning --------------------------------------------------------------------------------

def plan_refits(spec: "StudySpec", study: "optuna.Study") -> list[dict[str, Any]]:
    """One entry per (top-k trial of each model family, seed): source trial, family, its params and value,
    the steps to train (``ensemble.refit_steps``: the trial's schedule, None where its epochs follow the rows;
    or its best epoch or boosting round) and the seed."""
    from yieldtune.study.pruners import trial_family
    from yieldtune.train.families import FAMILIES

    ens = spec.ensemble
    trials = study.get_trials(deepcopy=False)
    plan = []
    for family in dict.fromkeys(trial_family(t) for t in trials):  # every family with trials, first seen first
        top = select_top_trials([t for t in trials if trial_family(t) == family], ens.top_k,
                                direction=spec.direction, distinct=ens.distinct)
        for rank, t in enumerate(top):
            config = trial_config(spec, t)
            fam = FAMILIES[config.family]
            if ens.refit_steps == "full":
                steps = fam.schedule_steps(config)
            elif fam.best_step_attr == "best_epoch":
                steps = trial_best_epoch(t, direction=spec.direction, default=fam.default_steps(config))
            else:
                steps = max(1, int(t.user_attrs.get(fam.best_step_attr) or fam.default_steps(config)))
            for seed in range(ens.seeds):
                plan.append({"source_trial": t.number, "seed": seed, "family": fam.name, "steps": steps,
                             "epochs": steps, "rank": rank, "value": t.value, "params": dict(t.params),
                             "config": config.model_dump(mode="json")})
    if not plan:
        raise ConfigError(f"study {spec.name!r} has no COMPLETE trial yet: nothing to ensemble")
    return plan


def trial_config(spec: "StudySpec", trial):
    """The RunConfig a trial trained (its ``config`` user attr, else rebuilt from its params)."""
    from yieldtune.config import RunConfig, validate_config

    stored = trial.user_attrs.get("config")
    if isinstance(stored, dict):
        return validate_config(RunConfig, stored, source=f"study {spec.name}: trial {trial.number} config")
    return spec.search().config_from_params(trial.params)


def _open(spec: "StudySpec", storage_url: str):
    from yieldtune.study.storage import open_spec_storage, require_sqlite_file

    require_sqlite_file(storage_url)  # refits belong to an existing study: never create an empty database
    return open_spec_storage(spec, storage_url)


def load_refit_study(spec: "StudySpec", storage_url: str, storage=None) -> "optuna.Study | None":
    """The companion refit study, or None when no refit has been planned yet."""
    import optuna

    storage = storage or _open(spec, storage_url)
    try:
        return optuna.load_study(study_name=refit_study_name(spec.name), storage=storage,
                                 sampler=optuna.samplers.RandomSampler(seed=0))
    except KeyError:
        return None


def _enqueue_plan(refit: "optuna.Study", plan: list[dict], *, skip: set | None = None) -> None:
    for entry in plan:
        if skip and (entry["source_trial"], entry["seed"]) in skip:
            continue
        refit.enqueue_trial({"source_trial": entry["source_trial"], "seed": entry["seed"]},
                            user_attrs={ENTRY_ATTR: entry})


def enqueue_refits(spec: "StudySpec", storage_url: str, storage=None) -> "optuna.Study":
    """Create ``<study>:refit`` with its plan and queue (idempotent: a later caller just loads it).

    Creating the study is the lock: only its creator plans and enqueues. Callers that find it
    already there wait for the plan attr, which the creator stores after the last enqueue.
    """
    import optuna

    from yieldtune.study.service import load_study

    storage = storage or _open(spec, storage_url)
    refit = load_refit_study(spec, storage_url, storage)
    if refit is None:
        plan = plan_refits(spec, load_study(spec, storage_url))  # raises before creating anything
        try:
            refit = optuna.create_study(study_name=refit_study_name(spec.name), storage=storage,
                                        direction="minimize", load_if_exists=False,
                                        sampler=optuna.samplers.RandomSampler(seed=0))
        except optuna.exceptions.DuplicatedStudyError:
            refit = load_refit_study(spec, storage_url, storage)
        else:
            from yieldtune.study.artifacts import record_artifact_location

            refit.set_user_attr("source_study", spec.name)
            refit.set_user_attr("what", f"refit queue of study {spec.name!r}: its top trials retrained on "
                                        "train+validation for the ensemble (not a search); value = final training "
                                        "loss")
            refit.set_metric_names(["final_train_loss"])  # optuna-dashboard names the value instead of "Objective 0"
            record_artifact_location(refit, spec)
            _enqueue_plan(refit, plan)
            refit.set_user_attr(PLAN_ATTR, plan)  # last: its presence means the queue is complete
            logger.debug("queued %d refits for study %s", len(plan), spec.name)
            return refit
    assert refit is not None
    wait_for_plan(refit, spec, storage_url)
    return refit


def wait_for_plan(refit: "optuna.Study", spec: "StudySpec", storage_url: str,
                  timeout: float | None = None) -> list[dict]:
    """The stored plan; waits while its creator is still enqueueing, and finishes the job if the
    creator died between creating the study and storing the plan."""
    from yieldtune.study.service import load_study

    timeout = timeout if timeout is not None else 2.0 * spec.storage.grace_period
    deadline = time.monotonic() + timeout
    while True:
        plan = refit.user_attrs.get(PLAN_ATTR)
        if plan is not None:
            return plan
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    plan = plan_refits(spec, load_study(spec, storage_url))
    _enqueue_plan(refit, plan, skip={pair_of(t) for t in refit.get_trials(deepcopy=False)})
    refit.set_user_attr(PLAN_ATTR, plan)
    return plan


# ---- queue state -----------------------------------------------------------------------------

@dataclass
class QueueState:
    """Where every planned (source_trial, seed) pair stands."""

    plan: list[dict]
    complete: dict[tuple[int, int], Any] = field(default_factory=dict)  # pair -> first COMPLETE trial
    running: set = field(default_factory=set)
    waiting: set = field(default_factory=set)
    failures: dict[tuple[int, int], int] = field(default_factory=dict)

    @property
    def pairs(self) -> list[tuple[int, int]]:
        return [(e["source_trial"], e["seed"]) for e in self.plan]

    @property
    def done(self) -> bool:
        return all(p in self.complete for p in self.pairs)

    @property
    def orphaned(self) -> list[tuple[int, int]]:
        """Pairs not complete and with no trial waiting or running for them (their last try failed)."""
        return [p for p in self.pairs if p not in self.complete and p not in self.running
                and p not in self.waiting]


def queue_state(refit: "optuna.Study") -> QueueState:
    from optuna.trial import TrialState

    state = QueueState(plan=list(refit.user_attrs.get(PLAN_ATTR) or []))
    for t in sorted(refit.get_trials(deepcopy=False), key=lambda t: t.number):
        pair = pair_of(t)
        if pair is None:
            continue
        if t.state == TrialState.COMPLETE:
            state.complete.setdefault(pair, t)
        elif t.state == TrialState.RUNNING:
            state.running.add(pair)
        elif t.state == TrialState.WAITING:
            state.waiting.add(pair)
        elif t.state == TrialState.FAIL:
            state.failures[pair] = state.failures.get(pair, 0) + 1
    return state


# ---- the worker ------------------------------------------------------------------------------

class RefitFailedError(ConfigError):
    """A refit failed on every allowed try (the message says which and why)."""


@dataclass
class RefitSummary:
    """What one worker did in the refit queue."""

    done: int = 0       # refits this worker completed
    skipped: int = 0    # trials it pruned (pair already done/running, or empty queue race)
    complete: bool = False  # every planned pair is COMPLETE
    ensemble_dir: Any = None  # set by whoever built the ensemble afterwards


def refit_config(spec: "StudySpec", entry: dict):
    """The source trial's RunConfig, trained for the planned step count (epochs or boosting rounds; None: the
    schedule's own) with this seed, no early stop."""
    from yieldtune.config import RunConfig, validate_config
    from yieldtune.train.families import family_of

    config = validate_config(RunConfig, entry["config"], source=f"refit of trial {entry['source_trial']}")
    steps = entry.get("steps", entry.get("epochs"))
    return family_of(config).refit_config(config, None if steps is None else int(steps), int(entry["seed"]))


def _duplicate_reason(refit: "optuna.Study", trial: "optuna.Trial", pair: tuple[int, int]) -> str | None:
    from optuna.trial import TrialState

    for t in refit.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)):
        if t.number == trial.number or pair_of(t) != pair:
            continue
        if t.state == TrialState.COMPLETE:
            return f"refit {pair} already done by trial {t.number}"
        if t.number < trial.number:
            return f"refit {pair} is running as trial {t.number}"
    return None


def _make_objective(spec: "StudySpec", refit: "optuna.Study", device: str, get_data, summary: RefitSummary):
    import optuna

    def objective(trial: "optuna.Trial") -> float:
        entry = trial.user_attrs.get(ENTRY_ATTR)
        if not isinstance(entry, dict):  # the queue emptied between our look and optimize's pop
            trial.set_user_attr("skipped", "no refit queued")
            summary.skipped += 1
            raise optuna.TrialPruned("no refit queued")
        source = trial.suggest_int("source_trial", 0, MAX_PARAM)
        seed = trial.suggest_int("seed", 0, MAX_PARAM)
        reason = _duplicate_reason(refit, trial, (source, seed))
        if reason:
            trial.set_user_attr("skipped", reason)
            summary.skipped += 1
            raise optuna.TrialPruned(reason)
        import os
        import socket

        from yieldtune.study.artifacts import artifact_store_for, upload_predictor
        from yieldtune.train.families import family_of

        config = refit_config(spec, entry)
        trial.set_user_attr("config", config.model_dump(mode="json"))
        trial.set_user_attr("hostname", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("device", device)
        family = family_of(config)
        trial.set_user_attr("family", family.name)
        fit = family.fit(config, get_data(), None, device=device, cache_dir=spec.cache_dir,
                         metric=spec.objective.metric, on_step=None)
        upload_predictor(artifact_store_for(spec), trial, fit.predictor)
        trial.set_user_attr("steps", fit.steps)
        trial.set_user_attr("epochs", fit.steps)  # the log line and older readers
        summary.done += 1
        return float(fit.train_loss if fit.train_loss is not None else 0.0)

    return objective


def run_refit_worker(spec: "StudySpec", storage_url: str, device: str = "auto", *,
                     poll_interval: float | None = None,
                     wait_for_others: bool = True, train_all=None) -> RefitSummary:
    """Work through ``<study>:refit`` until every planned refit is COMPLETE (building the ensemble is the
    caller's next step: :func:`yieldtune.ensemble.auto.ensure_ensemble`).

    ``train_all`` (train + validation rows) is the data a study worker already prepared; without it the
    data is loaded and validated here, once.

    Returns at once (``complete=False``) when no refit is planned. While other workers still run
    the last refits it waits (``wait_for_others``), failing stale ones so they are re-queued. A
    pair whose last try failed without a retry is re-queued up to ``storage.max_retry`` times.
    """
    import optuna

    storage = _open(spec, storage_url)
    summary = RefitSummary()
    refit = load_refit_study(spec, storage_url, storage)
    if refit is None:
        return summary
    wait_for_plan(refit, spec, storage_url)
    poll = poll_interval if poll_interval is not None else max(0.5, min(5.0, spec.storage.heartbeat_interval))
    data: list = [] if train_all is None else [train_all]

    def get_data():
        if not data:
            from yieldtune.study.datasets import prepare_folds

            data.append(prepare_folds(spec).train_all)  # every train row: train + validation
        return data[0]

    objective = _make_objective(spec, refit, device, get_data, summary)
    last: list = []
    while True:
        state = queue_state(refit)
        if state.done:
            summary.complete = True
            break
        if state.waiting:
            get_data()  # data errors surface here, as user errors, not as failed refits
            last.clear()
            refit.optimize(objective, n_trials=1, catch=(Exception,),
                               callbacks=[lambda _s, ft: last.append(ft)])
            for ft in last:
                pair = pair_of(ft)
                if ft.state.name == "COMPLETE":
                    unit = "epochs" if ft.user_attrs.get("family", "transformer") == "transformer" else "rounds"
                    logger.info(f"refit {ft.number} of study {spec.name!r}: trial {pair[0]} seed {pair[1]} done "
                        f"({ft.user_attrs.get('steps')} {unit} on train+validation)")
                elif ft.state.name == "FAIL":
                    logger.warning(f"refit {ft.number} of study {spec.name!r}: {pair} FAILED: "
                        f"{ft.system_attrs.get('fail_reason', ft.user_attrs.get('fail_reason', '?'))}")
            continue
        orphaned = state.orphaned
        if orphaned:
            for pair in orphaned:
                if state.failures.get(pair, 0) > spec.storage.max_retry:
                    raise RefitFailedError(
                        f"study {spec.name!r}: refit of trial {pair[0]} seed {pair[1]} failed "
                        f"{state.failures[pair]} times; see the failed trials of {refit.study_name!r}")
            entries = {(e["source_trial"], e["seed"]): e for e in state.plan}
            for pair in orphaned:
                refit.enqueue_trial({"source_trial": pair[0], "seed": pair[1]},
                                    user_attrs={ENTRY_ATTR: entries[pair]})
            continue
        if not wait_for_others:  # others are running the rest
            return summary
        time.sleep(poll)
        optuna.storages.fail_stale_trials(refit)
    return summary
