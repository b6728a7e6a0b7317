"""``tune run``: create the study once, start N local workers, watch them, report, then ensemble.

Each worker is its own ``tune worker`` process (own CUDA context, own heartbeat), pinned round-robin to the
given GPUs, or on CPU given ``cores // N`` torch threads so N workers never oversubscribe the machine.
Workers run in their own session, so Ctrl-C reaches only this process, which forwards it to every worker
once; each worker then fails and re-queues its running trial and exits.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from yieldtune.errors import ConfigError, YieldtuneError
from yieldtune.study.spec import STORAGE_ENV, StudySpec

if TYPE_CHECKING:  # pragma: no cover
    from yieldtune.study.worker import OnBudgetMet

logger = logging.getLogger(__name__)


@dataclass
class WorkerProcess:
    worker_id: str
    device: str
    threads: int | None
    process: subprocess.Popen
    log_path: Path | None = None

    @property
    def returncode(self) -> int | None:
        return self.process.poll()


@dataclass
class RunSummary:
    study: str
    budget: int
    finished: int
    complete: int
    pruned: int
    failed: int
    seconds: float
    best_value: float | None
    best_number: int | None
    worker_exit_codes: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    ensemble_ran: bool = False
    stepped_back: int = 0
    trials_per_minute: float | None = None  # the study's search rate, as `tune status` shows it

    finished_here: int = 0  # finished by this run's workers (the study may have had trials before)

    @property
    def ok(self) -> bool:
        """No interruption and every worker exited 0 (a worker that hit budget.timeout exits 0 too)."""
        return not self.interrupted and all(rc == 0 for rc in self.worker_exit_codes.values())

    @property
    def budget_met(self) -> bool:
        return self.finished >= self.budget

    def line(self) -> str:
        best = "-" if self.best_value is None else f"{self.best_value:.4f} (trial {self.best_number})"
        rate = "" if self.trials_per_minute is None else f"; {self.trials_per_minute:.2f} trials/min"
        stepped = f", {self.stepped_back} stepped back" if self.stepped_back else ""
        return (f"study {self.study}: {self.finished}/{self.budget} finished ({self.complete} complete, "
                f"{self.pruned} pruned, {self.failed} failed{stepped}) in {self.seconds:.1f}s with "
                f"{len(self.worker_exit_codes)} worker(s){rate}; best {best}")


def plan_workers(jobs: int, gpus: list[int] | None, device: str | None) -> list[tuple[str, int | None]]:
    """(device, torch threads) per worker: GPUs round-robin, or CPU cores divided evenly."""
    if jobs < 1:
        raise ConfigError(f"-j/--jobs must be >= 1, got {jobs}")
    if gpus:
        return [(f"cuda:{gpus[i % len(gpus)]}", None) for i in range(jobs)]
    dev = device or "auto"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // jobs)
    return [(dev, threads) for _ in range(jobs)]


def check_before_workers(spec: StudySpec, devices: list[str]) -> None:
    """What would make every worker fail at once, checked here first: each device exists (``--gpus 0`` on a
    machine without CUDA), and the data set names resolve (fetched or generated now, once, not by N workers).
    The study file itself was validated when it was loaded."""
    from yieldtune.model.device import resolve_device
    from yieldtune.study.datasets import resolve_study_data

    for device in dict.fromkeys(devices):
        resolve_device(device)
    resolve_study_data(spec)


def last_error_line(log_path: Path | None, tail_bytes: int = 65536) -> str | None:
    """The last line of a worker log that states an error (``error: ...``, an exception, a failed trial)."""
    import re

    if log_path is None or not log_path.is_file():
        return None
    with log_path.open("rb") as fh:
        fh.seek(max(0, log_path.stat().st_size - tail_bytes))
        lines = [line.strip() for line in fh.read().decode("utf-8", "replace").splitlines() if line.strip()]
    error = re.compile(r"^(error: |[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b)|\bFAIL: ")
    return next((line for line in reversed(lines) if error.search(line)), lines[-1] if lines else None)


def worker_command(spec: StudySpec, worker_id: str, device: str, threads: int | None, budget: int) -> list[str]:
    cmd = [sys.executable, "-m", "yieldtune.cli.main", "worker", str(spec.path), "--device", device,
           "--n-trials", str(budget), "--worker-id", worker_id]
    if threads:
        cmd += ["--threads", str(threads)]
    return cmd


def start_workers(spec: StudySpec, storage_url: str, plan: list[tuple[str, int | None]], budget: int, *,
                  log_dir: Path | None) -> list[WorkerProcess]:
    """Start one ``tune worker`` process per plan entry (storage URL via env, never on the command line)."""
    workers = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i, (device, threads) in enumerate(plan):
        worker_id = f"w{i}"
        env = dict(os.environ)
        env[STORAGE_ENV] = storage_url
        env["PYTHONUNBUFFERED"] = "1"
        if threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
        log_path, out = None, None
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            log_path = log_dir / f"{stamp}-{worker_id}.log"
            out = log_path.open("w")
        proc = subprocess.Popen(worker_command(spec, worker_id, device, threads, budget), env=env,
                                stdout=out, stderr=subprocess.STDOUT if out else None, start_new_session=True)
        if out is not None:
            out.close()
        workers.append(WorkerProcess(worker_id, device, threads, proc, log_path))
    return workers


def create_study_only(spec: StudySpec, storage_url: str, *, n_trials: int | None = None) -> str:
    """Create the study once (schema, recorded budget, warm-start queue) so workers only ever load it."""
    from yieldtune.study.service import create_or_load_study, state_counts
    from yieldtune.study.storage import open_spec_storage, redact_url

    check_before_workers(spec, [])
    storage = open_spec_storage(spec, storage_url, heartbeat=False)
    study = create_or_load_study(spec, storage, n_trials=int(n_trials or spec.budget.n_trials))
    counts = ", ".join(f"{k.lower()} {v}" for k, v in state_counts(study).items() if v)
    return f"study {study.study_name!r} ready on {redact_url(storage_url)}: {counts or 'no trials yet'}"


def run_study(spec: StudySpec, storage_url: str, *, jobs: int = 1, gpus: list[int] | None = None,
              device: str | None = None, n_trials: int | None = None, live: bool = True,
              on_budget_met: OnBudgetMet | None = None) -> RunSummary:
    """Create the study, run ``jobs`` workers until the budget is met, and return a summary.

    ``on_budget_met`` (if given, and ``[ensemble] auto``) runs once the budget is met, after the workers
    (which were started as ``tune worker`` and did the refits already) have exited.
    """
    from yieldtune.study.service import best_trial_or_none, create_or_load_study, state_counts, trials_per_minute
    from yieldtune.study.status import render_status, study_status
    from yieldtune.study.storage import open_spec_storage

    if spec.path is None:
        raise ConfigError("tune run needs a study file on disk (workers read it)")
    budget = int(n_trials or spec.budget.n_trials)
    plan = plan_workers(jobs, gpus, device)
    check_before_workers(spec, [dev for dev, _ in plan])
    storage = open_spec_storage(spec, storage_url, heartbeat=False)
    study = create_or_load_study(spec, storage, n_trials=budget)
    before = state_counts(study)
    finished_before = before["COMPLETE"] + before["PRUNED"]
    log_dir = spec.artifact_dir.parent / "logs" / spec.name if live else None
    t0 = time.monotonic()
    workers = start_workers(spec, storage_url, plan, budget, log_dir=log_dir)
    if log_dir is not None:
        logger.info(f"{len(workers)} worker(s) started; logs in {log_dir}")

    interrupted = {"signal": None}

    def forward(signum, _frame):
        if interrupted["signal"] is None:
            interrupted["signal"] = signum
            for w in workers:
                if w.returncode is None:
                    try:
                        w.process.send_signal(signum)
                    except ProcessLookupError:
                        pass

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if live:
            from rich.console import Console, Group
            from rich.live import Live
            from rich.text import Text

            console = Console(stderr=True)

            def view():
                try:
                    st = study_status(spec, storage_url, n_trials=budget, storage=storage)
                    body = render_status(st)
                except YieldtuneError as err:
                    body = Text(f"status unavailable: {err}")
                procs = Text("workers: " + "  ".join(
                    f"{w.worker_id}[{w.device}]={'running' if w.returncode is None else f'exit {w.returncode}'}"
                    for w in workers))
                return Group(body, procs)

            with Live(view(), console=console, refresh_per_second=1, transient=False) as live_view:
                while any(w.returncode is None for w in workers):
                    time.sleep(1.0)
                    live_view.update(view())
            console.line()
        else:
            for w in workers:
                while w.process.poll() is None:
                    try:
                        w.process.wait(timeout=1.0)
                    except subprocess.TimeoutExpired:
                        pass
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    seconds = time.monotonic() - t0
    counts = state_counts(study)
    best = best_trial_or_none(study)
    summary = RunSummary(
        study=spec.name, budget=budget, finished=counts["COMPLETE"] + counts["PRUNED"],
        complete=counts["COMPLETE"], pruned=counts["PRUNED"], failed=counts["FAIL"], seconds=seconds,
        stepped_back=counts["STEPPED_BACK"], trials_per_minute=trials_per_minute(study),
        best_value=None if best is None else best.value, best_number=None if best is None else best.number,
        worker_exit_codes={w.worker_id: w.process.returncode for w in workers},
        interrupted=interrupted["signal"] is not None,
    )
    summary.finished_here = summary.finished - finished_before
    for w in workers:
        if w.process.returncode not in (0, None) and not summary.interrupted:
            where = f" (log: {w.log_path})" if w.log_path else ""
            reason = last_error_line(w.log_path)
            logger.warning(f"worker {w.worker_id} exited with code {w.process.returncode}{where}"
                + (f": {reason}" if reason else ""))
    logger.info(summary.line())
    if summary.ok and summary.budget_met and on_budget_met is not None and spec.ensemble.auto:
        logger.info("budget met: building the ensemble")
        on_budget_met(spec, storage_url)
        summary.ensemble_ran = True
    return summary


__all__ = ["run_study", "RunSummary", "plan_workers", "start_workers", "worker_command", "check_before_workers",
           "last_error_line"]
