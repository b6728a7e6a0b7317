"""``tune worker``: serve one study's trials until its shared budget is met."""

from __future__ import annotations

import logging
import sys

import click

from yieldtune.cli._common import device_option, quiet_optuna, storage_option


@click.command("worker")
@click.argument("study_file")
@storage_option
@device_option
@click.option("--n-trials", type=click.IntRange(min=1), default=None,
              help="Total budget of finished trials across all workers (default: the study file's).")
@click.option("--worker-id", default=None, help="Name shown in status and stored on trials (default host-pid).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads for this worker.")
def worker(study_file: str, storage: str | None, device: str, n_trials: int | None, worker_id: str | None,
           threads: int | None) -> None:
    """Pull trials of STUDY_FILE's study from the shared storage until the budget is met."""
    quiet_optuna(logging.ERROR)
    from yieldtune.ensemble.auto import on_budget_met
    from yieldtune.study.runner import check_before_workers
    from yieldtune.study.spec import load_study_spec
    from yieldtune.study.worker import run_worker

    spec = load_study_spec(study_file)
    check_before_workers(spec, [device])  # a missing GPU is one line, not a worker failing trial after trial
    result = run_worker(spec, spec.storage_url(storage), device=device, n_trials=n_trials, worker_id=worker_id,
                        threads=threads, on_budget_met=on_budget_met)
    sys.exit(result.exit_code)


COMMANDS = [worker]
