"""A worker: pulls trials of the shared study until the shared budget is met, then exits.

Any number of workers (processes, GPUs, machines) can serve one study through one storage. The budget is
the number of FINISHED (complete + pruned) trials of all workers together and is met exactly:

* before asking for a trial (one ``study.optimize(n_trials=1)`` at a time) a worker checks
  ``finished + running < budget``: it waits while running trials could still fail and need replacing,
  and stops once ``finished >= budget``;
* two workers passing that check at the same moment are resolved inside the trial: the later starter
  steps back (:class:`~yieldtune.study.objective.BudgetReached`, the trial ends FAIL and its queued
  parameters are re-queued);
* failed trials do not count; a trial whose worker died is failed through Optuna's heartbeat and re-queued
  by ``RetryHeartbeatStaleTrialCallback`` (bounded by ``storage.max_retry``).

SIGTERM/SIGINT end the current trial as FAIL at once (never left RUNNING), re-queue its parameters so the
configuration is not lost, and the worker exits with 128 + the signal number.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Protocol

from yieldtune.errors import YieldtuneError
from yieldtune.study.spec import StudySpec

logger = logging.getLogger(__name__)

MAX_CONSECUTIVE_FAILURES = 3


class WorkerStopped(KeyboardInterrupt):
    """SIGTERM/SIGINT arrived; propagates like Ctrl-C so Optuna marks the running trial FAIL."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class WorkerFailed(YieldtuneError):
    """Trials keep failing on this worker (broken device, bad data, a bug): stop instead of spinning."""

    exit_code = 1


@dataclass
class WorkerResult:
    worker_id: str
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    stepped_back: int = 0
    signal: int | None = None
    seconds: float = 0.0
    trials: list[int] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if self.signal is None else 128 + self.signal


class _StopSwitch:
    """Turns SIGTERM/SIGINT into :class:`WorkerStopped`, but only where raising is safe.

    Raising while the worker is writing to the storage could leave a half-done write; there the signal is
    remembered and raised at the next safe point (the end of the epoch callback, or between trials).
    """

    def __init__(self) -> None:
        self.requested: int | None = None
        self.interruptible = True
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def _handle(self, signum, _frame) -> None:
        if self.requested is not None:
            return  # already stopping: do not interrupt the cleanup
        self.requested = signum
        if self.interruptible:
            self.interruptible = False
            raise WorkerStopped(signum)

    def check(self) -> None:
        if self.requested is not None:
            self.interruptible = False
            raise WorkerStopped(self.requested)

    def sleep(self, seconds: float) -> None:
        self.check()
        time.sleep(seconds)
        self.check()


def default_worker_id() -> str:
    import socket

    return f"{socket.gethostname()}-{os.getpid()}"


def _requeue(study, frozen) -> None:
    """Put a trial's fixed/queued parameters back as WAITING so they run later."""
    import optuna

    if not frozen.params and "fixed_params" not in frozen.system_attrs:
        return  # freshly sampled: nothing to preserve
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.WAITING, params=frozen.params or None,
        distributions=frozen.distributions or None, user_attrs={k: v for k, v in frozen.user_attrs.items()
                                                                if k == "warm_start"},
        system_attrs=dict(frozen.system_attrs)))


class OnBudgetMet(Protocol):
    """What runs once the trial budget is met (the entry point passes it in; the ensemble step in ``tune``)."""

    def __call__(self, spec: StudySpec, storage_url: str, *, device: str = ..., train_all=...) -> object: ...


def run_worker(spec: StudySpec, storage_url: str, device: str = "auto", n_trials: int | None = None,
               worker_id: str | None = None, *, threads: int | None = None,
               handle_signals: bool = True, on_budget_met: OnBudgetMet | None = None) -> WorkerResult:
    """Serve ``spec``'s study from ``storage_url`` until ``n_trials`` trials are finished.

    ``n_trials`` defaults to the budget ``tune run`` recorded on the study, else the study file's.
    ``on_budget_met`` (if given) runs once the budget is met, with the worker's prepared training rows.
    """
    import optuna
    from optuna.trial import TrialState

    from yieldtune.study.artifacts import artifact_store_for
    from yieldtune.study.datasets import prepare_folds
    from yieldtune.study.objective import StudyObjective, WorkerInfo
    from yieldtune.study.samplers import build_sampler, record_worker_start
    from yieldtune.study.service import BUDGET_ATTR, create_or_load_study, finished_states
    from yieldtune.study.storage import open_spec_storage

    worker_id = worker_id or default_worker_id()
    result = WorkerResult(worker_id)
    t0 = time.monotonic()
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    stop = _StopSwitch()
    if handle_signals:
        stop.install()
    study = objective = None
    try:
        stop.interruptible = False
        storage = open_spec_storage(spec, storage_url)
        study = create_or_load_study(spec, storage)
        study.sampler = build_sampler(spec.sampler, spec.search(), worker_id=worker_id,
                                      start=record_worker_start(study, worker_id))
        # the budget `tune run` recorded on the study wins over the file, so late joiners agree with it
        budget = int(n_trials or study.user_attrs.get(BUDGET_ATTR) or spec.budget.n_trials)
        data = prepare_folds(spec)
        store = artifact_store_for(spec)
        stop.interruptible = True
        stop.check()
        objective = StudyObjective(spec, spec.search(), data, device=device,
                                   worker=WorkerInfo(worker_id, device), store=store, budget=budget,
                                   cache_dir=spec.cache_dir)
        objective.stop = stop if handle_signals else None
        logger.info(f"worker {worker_id}: study {spec.name!r}, budget {budget} finished trials, device {device}, "
            f"{len(data.train_all)} train rows, {len(data.folds)} fold(s)")
        last_trial: list = []
        consecutive_failures = 0
        budget_met = False
        poll = max(0.5, min(5.0, spec.storage.heartbeat_interval / 2))
        deadline = None if spec.budget.timeout is None else t0 + spec.budget.timeout

        while True:
            stop.interruptible = False
            stop.check()
            if deadline is not None and time.monotonic() > deadline:
                logger.info(f"worker {worker_id}: timeout of {spec.budget.timeout:g}s reached")
                break
            optuna.storages.fail_stale_trials(study)
            trials = study.get_trials(deepcopy=False, states=(*finished_states(), TrialState.RUNNING))
            finished = sum(t.state != TrialState.RUNNING for t in trials)
            running = len(trials) - finished
            if finished >= budget:
                budget_met = True
                break
            if finished + running >= budget:  # the rest is running elsewhere; wait in case one fails
                stop.interruptible = True
                stop.sleep(poll)
                continue
            last_trial.clear()
            objective.current = None
            study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=[lambda _s, ft: last_trial.append(ft)])
            stop.interruptible = False
            if not last_trial:
                continue
            ft = last_trial[0]
            result.trials.append(ft.number)
            reason = str(ft.user_attrs.get("fail_reason", ""))
            if ft.state == TrialState.FAIL and objective.stepped_back:
                result.stepped_back += 1
                _requeue(study, ft)
                logger.info(f"worker {worker_id}: trial {ft.number} stepped back (budget taken by earlier trials)")
                continue
            if ft.state == TrialState.COMPLETE:
                result.complete += 1
                consecutive_failures = 0
                logger.info(f"worker {worker_id}: trial {ft.number} COMPLETE {spec.objective.metric}={ft.value:.4f} "
                    f"params={ft.params}")
            elif ft.state == TrialState.PRUNED:
                result.pruned += 1
                consecutive_failures = 0
                family = ft.user_attrs.get("family", "transformer")
                logger.info(f"worker {worker_id}: trial {ft.number} ({family}) PRUNED at step {ft.last_step}")
            else:
                result.failed += 1
                consecutive_failures += 1
                logger.warning(f"worker {worker_id}: trial {ft.number} FAIL: {reason or '?'}")
                if consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                    raise WorkerFailed(f"worker {worker_id}: {consecutive_failures} trials failed in a row; "
                                       f"last: {reason or 'unknown error'}")
        if budget_met and on_budget_met is not None:
            # every worker shares the refits of the best trials; the one finishing last builds the ensemble
            stop.interruptible = True
            on_budget_met(spec, storage_url, device=device, train_all=data.train_all)
            stop.interruptible = False
    except WorkerStopped as stopped:
        result.signal = stopped.signum
        stop.interruptible = False
        _finish_interrupted(spec, study, objective, worker_id)
    finally:
        if handle_signals:
            stop.uninstall()
        result.seconds = time.monotonic() - t0
    logger.info(f"worker {worker_id}: done: {result.complete} complete, {result.pruned} pruned, {result.failed} failed"
        + (f", stopped by {signal.Signals(result.signal).name}" if result.signal else ""))
    return result


def _finish_interrupted(spec: StudySpec, study, objective, worker_id: str) -> None:
    """Make sure the interrupted trial is not left RUNNING and its configuration runs again later."""
    import optuna
    from optuna.trial import TrialState

    trial = getattr(objective, "current", None) if objective is not None else None
    if study is None or trial is None:
        return
    frozen = study._storage.get_trial(trial._trial_id)
    if frozen.state == TrialState.RUNNING:
        try:
            study.tell(trial, state=TrialState.FAIL)
        except Exception:  # pragma: no cover - another process finished it meanwhile
            pass
        frozen = study._storage.get_trial(trial._trial_id)
    if frozen.state == TrialState.FAIL:
        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=spec.storage.max_retry)(study, frozen)
        logger.info(f"worker {worker_id}: trial {frozen.number} interrupted -> FAIL, re-queued")


__all__ = ["run_worker", "OnBudgetMet", "WorkerResult", "WorkerStopped", "WorkerFailed", "default_worker_id"]
