"""``tune dashboard``: optuna-dashboard on the study's storage and artifact store."""

from __future__ import annotations

from pathlib import Path

import click

from yieldtune.cli._common import quiet_optuna, storage_option


@click.command("dashboard")
@click.argument("study")
@storage_option
@click.option("--host", default="127.0.0.1", help="Address to bind; the dashboard has no login, keep it local.")
@click.option("--port", default=8080, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--artifacts", "artifact_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Artifact directory. Default: the study file's artifact dir.")
def dashboard(study: str, storage: str | None, host: str, port: int, artifact_dir: Path | None) -> None:
    """Serve optuna-dashboard for STUDY (a study file, or a name with --storage) until Ctrl-C."""
    quiet_optuna()
    from yieldtune.report.dashboard import resolve_target, serve_dashboard
    from yieldtune.study.storage import redact_url

    target = resolve_target(study, storage, artifact_dir)
    url = f"http://{host}:{port}/"
    serve_dashboard(target, host=host, port=port, on_ready=lambda: click.echo(
        f"dashboard for {target.name} ({redact_url(target.storage_url)}) on {url}", err=True))


COMMANDS = [dashboard]
