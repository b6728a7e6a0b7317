"""``tune status``: trials by state, the best so far, and which worker runs what."""

from __future__ import annotations

import json

import click

from yieldtune.cli._common import json_option, quiet_optuna, storage_option


@click.command("status")
@click.argument("study_file")
@storage_option
@json_option
def status(study_file: str, storage: str | None, as_json: bool) -> None:
    """Show the state of STUDY_FILE's study."""
    quiet_optuna()
    from yieldtune.ensemble.auto import ensemble_progress
    from yieldtune.study.spec import load_study_spec
    from yieldtune.study.status import render_status, study_status

    spec = load_study_spec(study_file)
    url = spec.storage_url(storage)
    st = study_status(spec, url)
    st.update(ensemble_progress(spec, url))
    if as_json:
        click.echo(json.dumps(st, indent=2, default=str))
    else:
        from rich.console import Console

        Console().print(render_status(st))


COMMANDS = [status]
