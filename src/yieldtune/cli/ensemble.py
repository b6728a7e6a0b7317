"""``tune ensemble``: queue/finish the refits of a study's top-k trials and build its ensemble."""

from __future__ import annotations

import json

import click

from yieldtune.cli._common import device_option, json_option, quiet_optuna, storage_option


@click.command("ensemble")
@click.argument("study")
@storage_option
@device_option
@click.option("--rebuild", is_flag=True, help="Rebuild ensemble.json even if one for the same refits exists.")
@json_option
def ensemble(study: str, storage: str | None, device: str, rebuild: bool, as_json: bool) -> None:
    """Refit STUDY's top-k trials on train+validation (queued in the storage; other workers help) and
    write <artifact dir>/ensemble/ with Caruana weights. STUDY is a study file."""
    quiet_optuna()
    from yieldtune.ensemble.auto import ensure_ensemble
    from yieldtune.ensemble.format import read_ensemble_json
    from yieldtune.ensemble.refit import enqueue_refits, run_refit_worker
    from yieldtune.study.spec import load_study_spec

    spec = load_study_spec(study)
    url = spec.storage_url(storage)
    enqueue_refits(spec, url)
    run_refit_worker(spec, url, device)
    out = ensure_ensemble(spec, url, rebuild=rebuild)
    info = read_ensemble_json(out)
    if as_json:
        click.echo(json.dumps({"dir": str(out), **{k: info.get(k) for k in
                                                   ("r2_ensemble", "r2_mean", "r2_best_member", "members")}}))
        return
    click.echo(f"ensemble of {len(info['members'])} members in {out}")
    click.echo(f"validation R²: ensemble {info['r2_ensemble']:.4f}, plain mean {info['r2_mean']:.4f}, "
               f"best member {info['r2_best_member']:.4f}")
    for m in info["members"]:
        click.echo(f"  {m['name']}: weight {m['weight']:.3f}, trial R² {m['r2']:.4f}")


COMMANDS = [ensemble]
