"""The objective: one trial = sample a RunConfig, train it, report every step, upload the result.

A step is an epoch for a Transformer and ``gbm.report_every`` boosting rounds for a GBM (the trial's model
family, :mod:`yieldtune.train.families`). Per-step validation metrics go to ``trial.report`` so Optuna's
pruner can stop a hopeless trial (comparing it with trials of its own family); a pruned trial raises
``optuna.TrialPruned`` from the training callback. With k-fold validation the pruner
watches fold 0 (every trial's fold 0 is the same rows, so epoch-by-epoch values are comparable); the
trial's value is the mean of the folds' best-epoch metrics, and its validation predictions are the
out-of-fold predictions of all folds.
"""

from __future__ import annotations

import datetime
import math
import os
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from yieldtune.study.artifacts import upload_predictor, upload_val_predictions
from yieldtune.study.datasets import PreparedData
from yieldtune.study.service import STEPPED_BACK
from yieldtune.study.spec import StudySpec

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from yieldtune.study.space import SearchSpace


class BudgetReached(Exception):
    """This trial started after the shared budget was already taken by trials that started earlier."""


@dataclass
class WorkerInfo:
    """Who runs a trial; stored on every trial as user attributes for ``tune status`` and the live view."""

    worker_id: str
    device: str
    hostname: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    def attrs(self) -> dict[str, Any]:
        return {"worker": self.worker_id, "hostname": self.hostname, "pid": self.pid, "device": self.device}


class StudyObjective:
    """Callable objective for ``study.optimize``; holds the data prepared once per worker."""

    def __init__(self, spec: StudySpec, space: "SearchSpace", data: PreparedData, *, device: str,
                 worker: WorkerInfo, store, budget: int, cache_dir=None) -> None:
        self.spec, self.space, self.data = spec, space, data
        self.device, self.worker, self.store = device, worker, store
        self.budget = budget
        self.cache_dir = cache_dir
        self.current: "optuna.Trial | None" = None
        self.stepped_back = False
        self.stop = None  # the worker's stop switch (signals interrupt training only)

    # -- budget --------------------------------------------------------------------------------
    def check_slot(self, trial: "optuna.Trial") -> None:
        """Raise :class:`BudgetReached` if trials that started before this one already fill the budget.

        Workers check ``finished + running < budget`` before asking for a trial, but two can pass that check
        at the same moment; the later starter (by start time, then number) steps back, so the number of
        finished trials never exceeds the budget.
        """
        from optuna.trial import TrialState

        trials = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                                TrialState.RUNNING))
        finished = sum(t.state != TrialState.RUNNING for t in trials)

        def start_key(t) -> tuple:
            return (t.datetime_start or datetime.datetime.max, t.number)

        me = next((t for t in trials if t.number == trial.number), None)
        mine = start_key(me) if me is not None else (datetime.datetime.max, trial.number)
        ahead = sum(1 for t in trials if t.state == TrialState.RUNNING and t.number != trial.number
                    and start_key(t) < mine)
        if finished + ahead >= self.budget:
            raise BudgetReached(f"budget of {self.budget} finished trials is taken by earlier trials")

    # -- the trial -------------------------------------------------------------------------------
    def _guard(self, interruptible: bool) -> None:
        """Let a stop signal interrupt only the training itself, never a storage write."""
        if self.stop is None:
            return
        if interruptible:
            self.stop.check()
        self.stop.interruptible = interruptible

    def __call__(self, trial: "optuna.Trial") -> float:
        import optuna

        self.current = trial
        self.stepped_back = False
        try:
            self._guard(True)  # a stop requested while the trial was being created ends it here
            self._guard(False)
            return self._run(trial)
        except BudgetReached as err:
            self.stepped_back = True
            trial.set_user_attr("fail_reason", f"{STEPPED_BACK}{err}")
            raise
        except optuna.TrialPruned:
            raise
        except Exception as err:
            self._guard(False)
            trial.set_user_attr("fail_reason", f"{type(err).__name__}: {err}"[:500])
            raise

    def _run(self, trial: "optuna.Trial") -> float:
        import optuna

        from yieldtune.study.pruners import FAMILY_ATTR
        from yieldtune.train.families import family_of

        for key, value in self.worker.attrs().items():
            trial.set_user_attr(key, value)
        self.check_slot(trial)
        config = self.space.suggest(trial)
        family = family_of(config)
        trial.set_user_attr(FAMILY_ATTR, family.name)  # before any report: the pruner compares within a family
        trial.set_user_attr("config", config.model_dump(mode="json"))
        metric = self.spec.objective.metric
        history: list[dict[str, Any]] = []
        history_attr = "epochs" if family.step_name == "epoch" else "rounds"
        t_start = time.perf_counter()

        def on_step(r, fold: int) -> None:
            self._guard(False)
            value = r.val.get(metric)
            history.append({"fold": fold, family.step_name: r.step, "train_loss": _num(r.train_loss),
                            "val": _num(value), "seconds": None if r.seconds is None else round(r.seconds, 3)})
            trial.set_user_attr(history_attr, history)
            if fold == 0:
                trial.report(float("nan") if value is None else value, r.step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at {family.step_name} {r.step} ({metric}={_num(value)})")
            self._guard(True)

        values, preds, predictor = [], [], None
        for fold, (train, val) in enumerate(self.data.folds):
            self._guard(True)
            fit = family.fit(config, train, val, device=self.device, cache_dir=self.cache_dir, metric=metric,
                             on_step=lambda r, f=fold: on_step(r, f))
            self._guard(False)
            values.append(fit.best_val.get(metric))
            preds.append(fit.val_predictions)
            if fold == 0:
                predictor = fit.predictor
                trial.set_user_attr(family.best_step_attr, int(fit.best_step))
        value = float(np.mean([v if v is not None else np.nan for v in values]))
        trial.set_user_attr("fold_values", [_num(v) for v in values])
        trial.set_user_attr("train_seconds", round(time.perf_counter() - t_start, 3))
        if not math.isfinite(value):
            raise FloatingPointError(f"validation {metric} is {value}")
        val_all = self.data.val_all
        y_pred = np.concatenate([np.asarray(p, dtype=np.float64) for p in preds])
        upload_predictor(self.store, trial, predictor)
        upload_val_predictions(self.store, trial, val_all.ids, val_all.yields, y_pred)
        return value


def _num(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


__all__ = ["StudyObjective", "WorkerInfo", "BudgetReached"]
