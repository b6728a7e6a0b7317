"""``tune export-best``: a self-contained, verifiable model directory for a study."""

from __future__ import annotations

from pathlib import Path

import click

from yieldtune.cli._common import quiet_optuna, storage_option


@click.command("export-best")
@click.argument("study")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory to write (must be empty or absent unless --force).")
@storage_option
@click.option("--predict", "predict_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="Also write predictions.csv (id,yield_pred,yield_std) for this file.")
@click.option("--submission", is_flag=True,
              help="With --predict: also write submission.csv (rxnid,Yield; one row per input row, in order).")
@click.option("--force", is_flag=True, help="Replace a non-empty --out directory.")
@click.option("--tta", type=click.IntRange(min=0), default=None,
              help="Randomized SMILES copies per reaction at prediction time (stored as the export's default).")
@click.option("--device", default="cpu", help="Device for --predict (cpu keeps predictions reproducible).")
def export_best(study: str, out_dir: Path, storage: str | None, predict_file: Path | None, submission: bool,
                force: bool, tta: int | None, device: str) -> None:
    """Export STUDY's ensemble (or, before one is built, its best trial) to --out. STUDY is a study file."""
    quiet_optuna()
    from yieldtune.ensemble.export import export_best as run_export
    from yieldtune.study.spec import load_study_spec

    spec = load_study_spec(study)
    result = run_export(spec, spec.storage_url(storage), out_dir, force=force, predict=predict_file,
                        submission=submission, tta=tta, device=device)
    if result.note:
        click.echo(f"note: {result.note}", err=True)
    click.echo(f"exported {result.n_members} member(s) from {result.source} to {result.out}")
    if result.predictions is not None:
        click.echo(f"predicted {result.predictions} rows -> {result.out / 'predictions.csv'}"
                   + (f" and {result.out / 'submission.csv'}" if submission else ""))


COMMANDS = [export_best]
