"""``tune report``: write the study's self-contained HTML report page."""

from __future__ import annotations

from pathlib import Path

import click

from yieldtune.cli._common import quiet_optuna, storage_option


@click.command("report")
@click.argument("study")
@storage_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory that receives index.html. Default: ./dashboards/<study name>.")
@click.option("--ensemble-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory with ensemble.json + holdout_predictions.csv. Default: <artifact dir>/ensemble.")
def report(study: str, storage: str | None, out_dir: Path | None, ensemble_dir: Path | None) -> None:
    """Write one self-contained HTML page (plots + ensemble) for STUDY (a study file, or a name with --storage)."""
    quiet_optuna()
    from yieldtune.ensemble.format import ENSEMBLE_JSON, read_ensemble_json
    from yieldtune.report.dashboard import resolve_target
    from yieldtune.report.page import build_report, default_report_dir
    from yieldtune.study.service import other_study
    from yieldtune.study.storage import redact_url

    target = resolve_target(study, storage)
    loaded = target.load()
    if ensemble_dir is None and target.artifact_dir is not None:
        ensemble_dir = target.artifact_dir / "ensemble"
        if (ensemble_dir / ENSEMBLE_JSON).is_file():
            belongs_to = other_study(read_ensemble_json(ensemble_dir), loaded)
            if belongs_to is not None:  # one artifact dir, a study of the same name in another storage
                click.echo(f"note: {ensemble_dir} holds the ensemble of {belongs_to}; the report shows none "
                           "(run `tune ensemble` for this study)", err=True)
                ensemble_dir = None
    page = build_report(loaded, out_dir or default_report_dir(target.name), ensemble_dir,
                        storage_label=redact_url(target.storage_url))
    click.echo(str(page))


COMMANDS = [report]
