"""Study benchmarks: worker scaling and pruning savings, measured on throw-away copies of a study.

Every measured run is a fresh study (``<name>-bench-<tag>-<uuid6>``) written as its own study file in a
work folder: same data, search space and sampler seed as the original, its own artifact and augmentation
cache folders (so no run profits from another's cache), and ``[ensemble] auto = false`` so only the
search itself is timed. Runs use the runner's worker processes (``start_workers``), exactly what
``tune run -j N`` starts. Figures are reported as ratios against a baseline run of the same invocation,
never as absolute targets. The bench studies are deleted afterwards unless asked to keep them.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from yieldtune.errors import ConfigError, YieldtuneError
from yieldtune.study.spec import StudySpec, load_study_spec

logger = logging.getLogger(__name__)
STOP_GRACE_SECONDS = 30.0


class BenchFailed(YieldtuneError):
    """A bench run's worker exited non-zero; its log is kept and named in the message."""

    exit_code = 1


@dataclass
class BenchRun:
    """One measured run of a bench study (all counts read back from the storage)."""

    bench: str
    study: str
    label: str
    jobs: int
    threads_per_worker: int | None
    device: str
    pruner: str
    sampler_seed: int | None
    budget: int
    finished: int
    complete: int
    pruned: int
    failed: int
    wall_seconds: float
    trials_per_minute: float
    epochs_trained: int
    intermediate_values: int
    epochs_per_minute: float
    trial_seconds_sum: float
    worker_busy_fraction: float  # trial time / (wall time x workers): startup, waiting and storage are the rest
    load_avg_before: float | None  # 1-minute load average when the run started: other work skews timings
    best_value: float | None
    best_trial: int | None

    def record(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("wall_seconds", "trials_per_minute", "epochs_per_minute", "trial_seconds_sum",
                    "worker_busy_fraction", "load_avg_before"):
            if out[key] is not None:
                out[key] = round(out[key], 3)
        return out

    def line(self) -> str:
        best = "-" if self.best_value is None else f"{self.best_value:.4f} (trial {self.best_trial})"
        return (f"{self.label}: {self.finished}/{self.budget} finished ({self.complete} complete, "
                f"{self.pruned} pruned, "
                f"{self.failed} failed) in {self.wall_seconds:.1f}s with {self.jobs} worker(s): "
                f"{self.trials_per_minute:.2f} trials/min, {self.epochs_trained} epochs "
                f"({self.epochs_per_minute:.1f}/min); best {best}")


def bench_name(base: str, tag: str, token: str | None = None) -> str:
    """``<base>-bench-<tag>-<uuid6>``: unique per invocation, recognisable as a bench study."""
    return f"{base}-bench-{tag}-{token or uuid.uuid4().hex[:6]}"


def write_bench_study(spec: StudySpec, work_dir: Path, name: str, *, n_trials: int | None = None,
                      pruner: dict[str, Any] | None = None) -> StudySpec:
    """Write a copy of ``spec``'s study file under ``work_dir`` as study ``name`` and load it.

    The original TOML is copied (not the parsed spec, so keys left to the data set registry stay unset);
    local data paths become absolute, artifacts/cache go under ``work_dir``, the sampler seed is fixed
    (0 when the file has none) and the ensemble step is off.
    """
    import tomli_w

    from yieldtune.config import read_toml

    if spec.path is None:
        raise ConfigError("a benchmark needs a study file on disk (its workers read it)")
    raw = read_toml(spec.path)
    raw["name"] = name
    data = dict(raw.get("data", {}))
    for key in ("dataset", "test"):
        value = data.get(key)
        if value and spec.resolve_path(value).exists():
            data[key] = str(spec.resolve_path(value).resolve())
    raw["data"] = data
    sampler = dict(raw.get("sampler", {"type": spec.sampler.type}))
    sampler["seed"] = spec.sampler.seed if spec.sampler.seed is not None else 0
    raw["sampler"] = sampler
    if pruner is not None:
        raw["pruner"] = dict(pruner)
    if n_trials is not None:
        raw["budget"] = {**raw.get("budget", {}), "n_trials": int(n_trials)}
    raw["artifacts"] = {"dir": str(work_dir / "artifacts" / name), "cache_dir": str(work_dir / "cache" / name)}
    raw["ensemble"] = {**raw.get("ensemble", {}), "auto": False}
    path = work_dir / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(raw), encoding="utf-8")
    return load_study_spec(path)


def trial_epochs(trial) -> int:
    """Epochs a trial trained, all folds: its ``epochs`` history, else its reported intermediate values."""
    history = trial.user_attrs.get("epochs")
    if isinstance(history, list):
        return len(history)
    return len(trial.intermediate_values)


def trial_seconds(trial) -> float:
    """Start to finish of a finished trial (pruned ones too; ``train_seconds`` exists only for COMPLETE)."""
    if trial.datetime_start is None or trial.datetime_complete is None:
        return 0.0
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def _stop_workers(workers) -> None:
    """SIGTERM (each worker fails and re-queues its trial), then SIGKILL whatever is still up."""
    for w in workers:
        if w.process.poll() is None:
            try:
                w.process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for w in workers:
        try:
            w.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.info(f"worker {w.worker_id} did not stop in {STOP_GRACE_SECONDS:.0f}s: killing it")
            w.process.kill()
            w.process.wait()


def run_bench_study(spec: StudySpec, storage_url: str, *, bench: str, label: str, jobs: int,
                    device: str | None, log_dir: Path) -> BenchRun:
    """Create the bench study, run ``jobs`` local worker processes to its budget, and measure it."""

    from yieldtune.study.runner import plan_workers, start_workers
    from yieldtune.study.service import best_trial_or_none, create_or_load_study, state_counts
    from yieldtune.study.storage import open_spec_storage

    budget = int(spec.budget.n_trials)
    storage = open_spec_storage(spec, storage_url, heartbeat=False)
    study = create_or_load_study(spec, storage, n_trials=budget)
    plan = plan_workers(jobs, None, device)
    logger.info(f"{label}: study {spec.name!r}, {jobs} worker(s), budget {budget}; logs in {log_dir}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    t0 = time.monotonic()
    workers = start_workers(spec, storage_url, plan, budget, log_dir=log_dir)
    try:
        for w in workers:
            w.process.wait()
    except BaseException:
        _stop_workers(workers)
        raise
    wall = time.monotonic() - t0
    bad = {w.worker_id: (w.process.returncode, w.log_path) for w in workers if w.process.returncode != 0}
    if bad:
        detail = "; ".join(f"{wid} exited {rc} (log {path})" for wid, (rc, path) in bad.items())
        raise BenchFailed(f"{label}: worker(s) failed: {detail}")
    counts = state_counts(study)
    trials = study.get_trials(deepcopy=False)
    best = best_trial_or_none(study)
    finished = counts["COMPLETE"] + counts["PRUNED"]
    epochs = sum(trial_epochs(t) for t in trials)
    minutes = wall / 60.0
    busy = sum(trial_seconds(t) for t in trials)
    return BenchRun(
        bench=bench, study=spec.name, label=label, jobs=jobs, threads_per_worker=plan[0][1],
        device=plan[0][0], pruner=spec.pruner.type, sampler_seed=spec.sampler.seed, budget=budget,
        finished=finished, complete=counts["COMPLETE"], pruned=counts["PRUNED"], failed=counts["FAIL"],
        wall_seconds=wall, trials_per_minute=finished / minutes if minutes > 0 else 0.0,
        epochs_trained=epochs, intermediate_values=sum(len(t.intermediate_values) for t in trials),
        epochs_per_minute=epochs / minutes if minutes > 0 else 0.0,
        trial_seconds_sum=busy,
        worker_busy_fraction=busy / (wall * jobs) if wall > 0 else 0.0, load_avg_before=load,
        best_value=None if best is None else float(best.value), best_trial=None if best is None else best.number,
    )


def delete_bench_studies(spec: StudySpec, storage_url: str, names: list[str]) -> None:
    """Remove the bench studies from the storage (best effort: a failure is reported, not raised)."""
    import optuna

    from yieldtune.study.storage import open_spec_storage

    storage = open_spec_storage(spec, storage_url, heartbeat=False)
    for name in names:
        try:
            optuna.delete_study(study_name=name, storage=storage)
        except KeyError:
            pass
        except Exception as err:  # noqa: BLE001 - cleanup must not hide the measurement
            logger.info(f"could not delete bench study {name!r}: {type(err).__name__}: {err}")


class _BenchSession:
    """Work folder + names of the studies created, removed together unless ``keep``."""

    def __init__(self, spec: StudySpec, storage_url: str, work_dir: Path | None, keep: bool) -> None:
        import tempfile

        self.spec, self.storage_url, self.keep = spec, storage_url, keep
        self.own_dir = work_dir is None
        self.work_dir = Path(tempfile.mkdtemp(prefix="tune-bench-")) if work_dir is None else Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.names: list[str] = []

    def __enter__(self) -> "_BenchSession":
        return self

    def __exit__(self, *exc) -> None:
        import shutil

        if self.keep:
            logger.info(f"kept bench studies {self.names} and their files in {self.work_dir}")
            return
        delete_bench_studies(self.spec, self.storage_url, self.names)
        if exc[0] is not None:
            logger.info(f"bench studies deleted; files and worker logs kept in {self.work_dir}")
        elif self.own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        else:
            for name in self.names:
                shutil.rmtree(self.work_dir / "artifacts" / name, ignore_errors=True)
                shutil.rmtree(self.work_dir / "cache" / name, ignore_errors=True)
                (self.work_dir / f"{name}.toml").unlink(missing_ok=True)

    def run(self, name: str, *, bench: str, label: str, jobs: int, device: str | None,
            n_trials: int | None, pruner: dict[str, Any] | None = None) -> BenchRun:
        self.names.append(name)
        bench_spec = write_bench_study(self.spec, self.work_dir, name, n_trials=n_trials, pruner=pruner)
        return run_bench_study(bench_spec, self.storage_url, bench=bench, label=label, jobs=jobs, device=device,
                               log_dir=self.work_dir / "logs" / name)


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 4)


def bench_workers(spec: StudySpec, storage_url: str, jobs: list[int], *, n_trials: int | None = None,
                  device: str | None = None, keep: bool = False, work_dir: Path | None = None,
                  on_run: Callable[[BenchRun], None] | None = None) -> dict[str, Any]:
    """The same study with each number of local workers; summary = trials/min(max jobs) / trials/min(min jobs)."""
    jobs = sorted(set(int(j) for j in jobs))
    if not jobs or jobs[0] < 1:
        raise ConfigError("--jobs values must be >= 1")
    token = uuid.uuid4().hex[:6]
    runs: list[BenchRun] = []
    with _BenchSession(spec, storage_url, work_dir, keep) as session:
        for j in jobs:
            run = session.run(bench_name(spec.name, f"j{j}", token), bench="workers", label=f"jobs={j}", jobs=j,
                              device=device, n_trials=n_trials)
            runs.append(run)
            if on_run:
                on_run(run)
    base, top = runs[0], runs[-1]
    summary = {
        "bench": "workers", "summary": True, "study": spec.name, "baseline_jobs": base.jobs, "jobs": top.jobs,
        "trials_per_minute_ratio": _ratio(top.trials_per_minute, base.trials_per_minute),
        "epochs_per_minute_ratio": _ratio(top.epochs_per_minute, base.epochs_per_minute),
        "wall_ratio": _ratio(top.wall_seconds, base.wall_seconds),
    }
    return {"runs": runs, "summary": summary}


NO_PRUNER = {"type": "none"}


def bench_pruning(spec: StudySpec, storage_url: str, *, n_trials: int | None = None, jobs: int = 1,
                  device: str | None = None, keep: bool = False, work_dir: Path | None = None,
                  on_run: Callable[[BenchRun], None] | None = None) -> dict[str, Any]:
    """The study with its pruner, then with ``pruner = none`` (same seed): epochs saved vs. best value lost."""
    if spec.pruner.type == "none":
        raise ConfigError(f"{spec.source}: pruner type is 'none': nothing to compare against")
    token = uuid.uuid4().hex[:6]
    with _BenchSession(spec, storage_url, work_dir, keep) as session:
        with_pruner = session.run(bench_name(spec.name, "pruner", token), bench="pruning",
                                  label=f"pruner={spec.pruner.type}", jobs=jobs, device=device, n_trials=n_trials)
        if on_run:
            on_run(with_pruner)
        without = session.run(bench_name(spec.name, "nopruner", token), bench="pruning", label="pruner=none",
                              jobs=jobs, device=device, n_trials=n_trials, pruner=NO_PRUNER)
        if on_run:
            on_run(without)
    diff = None if with_pruner.best_value is None or without.best_value is None else \
        round(with_pruner.best_value - without.best_value, 6)
    summary = {
        "bench": "pruning", "summary": True, "study": spec.name, "pruner": spec.pruner.type,
        "direction": spec.direction,
        "epochs_with": with_pruner.epochs_trained, "epochs_without": without.epochs_trained,
        "epochs_ratio": _ratio(with_pruner.epochs_trained, without.epochs_trained),
        "best_with": with_pruner.best_value, "best_without": without.best_value, "best_diff": diff,
        "wall_ratio": _ratio(with_pruner.wall_seconds, without.wall_seconds),
    }
    return {"runs": [with_pruner, without], "summary": summary}


__all__ = ["BenchRun", "bench_workers", "bench_pruning", "write_bench_study", "run_bench_study", "trial_epochs",
           "bench_name", "delete_bench_studies"]
