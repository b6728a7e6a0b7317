"""``tune run``: create a study and run N local workers on it until the budget is met."""

from __future__ import annotations

import sys

import click

from yieldtune.cli._common import quiet_optuna, storage_option


def _gpu_list(_ctx, _param, value: str | None) -> list[int] | None:
    if not value:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated GPU indices like 0,1, got {value!r}") from None


@click.command("run")
@click.argument("study_file")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, help="Number of local worker processes.")
@click.option("--gpus", callback=_gpu_list, default=None, help="GPU indices, workers assigned round-robin (0,1).")
@click.option("--device", default=None, help="Device for CPU runs without --gpus (cpu, cuda, auto).")
@storage_option
@click.option("--n-trials", type=click.IntRange(min=1), default=None,
              help="Total budget of finished trials (default: the study file's).")
@click.option("--live/--no-live", default=True, help="Live table of trials and workers (else worker logs inline).")
@click.option("--create-only", is_flag=True,
              help="Create the study (schema, budget, warm-start queue) and exit; workers join later.")
def run(study_file: str, jobs: int, gpus, device: str | None, storage: str | None, n_trials: int | None,
        live: bool, create_only: bool) -> None:
    """Create STUDY_FILE's study if needed and run workers until its budget of trials is met."""
    quiet_optuna()
    from yieldtune.ensemble.auto import on_budget_met
    from yieldtune.study.runner import create_study_only, run_study
    from yieldtune.study.spec import load_study_spec

    spec = load_study_spec(study_file)
    if create_only:
        click.echo(create_study_only(spec, spec.storage_url(storage), n_trials=n_trials))
        return
    summary = run_study(spec, spec.storage_url(storage), jobs=jobs, gpus=gpus, device=device, n_trials=n_trials,
                        live=live, on_budget_met=on_budget_met)
    if summary.interrupted:
        sys.exit(130)
    sys.exit(0 if summary.ok else 1)


COMMANDS = [run]
