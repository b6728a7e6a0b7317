"""``tune data``: validate reaction files, fetch named data sets, generate the synthetic plate."""

from __future__ import annotations

import json

import click

from yieldtune.errors import ConfigError


@click.group("data")
def data_group() -> None:
    """Check, fetch and generate reaction-yield data."""


@data_group.command("validate")
@click.argument("file")
@click.option("--layout", type=click.Choice(["auto", "rxn", "components"]), default="auto",
              help="rxn: one reaction-SMILES column; components: Reactant1,Reactant2,Product,Additive,Solvent.")
@click.option("--target", default=None, help="Yield column (default: a column named yield/Yield if present).")
@click.option("--no-target", is_flag=True, help="Unlabelled file: no yield column.")
@click.option("--percent", is_flag=True, help="Yields are in percent (0-100); they are divided by 100.")
@click.option("--delimiter", default=None, help="Field delimiter (default: sniff ',', tab, ';').")
@click.option("--drop-invalid", is_flag=True, help="Drop bad rows instead of failing on the first one.")
@click.option("--report", "report_path", default=None, type=click.Path(dir_okay=False),
              help="With --drop-invalid: write a CSV row,column,reason,value of dropped rows here.")
@click.option("--data-dir", default=None, envvar="TUNE_DATA_DIR", help="Offline copy of the named data sets.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def validate_cmd(file, layout, target, no_target, percent, delimiter, drop_invalid, report_path, data_dir,
                 as_json) -> None:
    """Load FILE (a path or a data set name) with RDKit checks; print rows, valid rows and duplicates."""
    from yieldtune.data import dataset_spec, duplicate_report, infer_spec, read_reactions, resolve_dataset
    from yieldtune.data.validate import write_problem_report

    if report_path and not drop_invalid:
        raise ConfigError("--report needs --drop-invalid (without it the first bad row is an error)")
    if target and no_target:
        raise ConfigError("give either --target or --no-target, not both")
    path = resolve_dataset(file, data_dir)
    spec = dataset_spec(file)
    if spec is None:
        spec = infer_spec(path, layout=None if layout == "auto" else layout,
                          target=None if no_target else (target or ""), percent=percent)
    else:
        update = {"percent": percent or spec.percent}
        if no_target or target:
            update["target"] = None if no_target else target
        spec = spec.model_copy(update=update)
    if delimiter:
        spec = spec.model_copy(update={"delimiter": "\t" if delimiter in ("tab", "\\t") else delimiter})
    result = read_reactions(path, spec, drop_invalid=drop_invalid)
    if report_path:
        write_problem_report(report_path, result.problems)
    table = result.table
    dup = duplicate_report(table)
    summary = {
        "file": str(path),
        "layout": spec.layout,
        "target": spec.target,
        "rows": result.n_rows,
        "valid": len(table),
        "dropped": len(result.dropped_rows),
        "duplicate_groups": dup.n_groups,
        "duplicate_rows": dup.n_duplicates,
        "conflicting_groups": len(dup.conflicts),
    }
    if table.yields is not None:
        summary.update(yield_mean=round(float(table.yields.mean()), 4), yield_min=float(table.yields.min()),
                       yield_max=float(table.yields.max()))
    if report_path:
        summary["report"] = str(report_path)
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(f"{path}: {summary['rows']} rows, {summary['valid']} valid, {summary['dropped']} dropped "
               f"({spec.layout} layout, target {spec.target or 'none'})")
    click.echo(f"duplicates: {dup.n_duplicates} rows in {dup.n_groups} groups, "
               f"{len(dup.conflicts)} groups with conflicting yields")
    if table.yields is not None:
        click.echo(f"yield: mean {summary['yield_mean']}, min {summary['yield_min']:.4g}, "
                   f"max {summary['yield_max']:.4g}")
    if report_path:
        click.echo(f"report: {report_path}")


@data_group.command("fetch")
@click.argument("name")
@click.option("--data-dir", default=None, envvar="TUNE_DATA_DIR",
              help="Offline copy laid out as DIR/<folder>/<file> to copy from (env TUNE_DATA_DIR).")
@click.option("--cache-dir", default=None, envvar="TUNE_CACHE_DIR",
              help="Where fetched files live (env TUNE_CACHE_DIR, default ~/.cache/yieldtune).")
@click.option("--mirror", default=None, envvar="TUNE_DATA_MIRROR",
              help="Download the upstream files from this base URL with the rxn_yields layout "
                   "(MIRROR/data/Buchwald-Hartwig/...) instead of GitHub.")
@click.option("--file", "files", multiple=True, help="Only this file of the set (repeatable).")
def fetch_cmd(name, data_dir, cache_dir, mirror, files) -> None:
    """Fetch data set NAME into the cache, verifying every file's SHA-256.

    buchwald-hartwig and suzuki-miyaura are downloaded from the rxn_yields repository at a fixed commit and
    converted to rxn,yield CSVs; aichem2024 is downloaded by hand (the message says from where) and verified.
    """
    from yieldtune.data import fetch_dataset, get_dataset

    folder = fetch_dataset(name, cache_dir, data_dir=data_dir, mirror=mirror, files=list(files) or None)
    ds = get_dataset(name)
    chosen = [ds.file(f).name for f in files] if files else [f.name for f in ds.files]
    click.echo(f"{name}: {len(chosen)} file{'s' if len(chosen) != 1 else ''} verified in {folder}")


@data_group.command("synth")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="CSV file to write.")
@click.option("--n", "n", type=int, default=None, help="Number of wells (default: the full 864-well plate).")
@click.option("--seed", type=int, default=0)
@click.option("--noise", type=float, default=0.05, help="Standard deviation of the Gaussian yield noise.")
def synth_cmd(out, n, seed, noise) -> None:
    """Write the synthetic C-N coupling plate (components layout, hidden learnable yield function)."""
    from yieldtune.data import write_synthetic_plate

    if noise < 0:
        raise ConfigError(f"--noise must be >= 0, got {noise}")
    path = write_synthetic_plate(out, n=n, seed=seed, noise=noise)
    click.echo(f"wrote {path}")


@data_group.command("list")
@click.option("--cache-dir", default=None, envvar="TUNE_CACHE_DIR",
              help="Where fetched files live (env TUNE_CACHE_DIR, default ~/.cache/yieldtune).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def list_cmd(cache_dir, as_json) -> None:
    """The data set names a study file's ``dataset`` (or ``--data``) accepts, and whether each is fetched."""
    from pathlib import Path

    from yieldtune.data import DATASETS
    from yieldtune.data.fetch import default_cache_dir

    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    rows = []
    for ds in DATASETS.values():
        fetched = sum((cache / ds.folder / f.name).is_file() for f in ds.files)
        where = ("generated on first use" if ds.generated else
                 f"fetched ({fetched}/{len(ds.files)} files)" if fetched else f"not fetched: tune data fetch {ds.name}")
        rows.append({"name": ds.name, "files": len(ds.files), "status": where, "description": ds.description})
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        click.echo(f"{row['name']:18s} {row['files']:2d} file(s)  {row['description']}  [{row['status']}]")


@data_group.command("info")
@click.argument("name", required=False)
@click.pass_context
def info_cmd(ctx, name) -> None:
    """One data set's files, checksums and standard splits (without NAME: ``tune data list``)."""
    from yieldtune.data import get_dataset

    if name is None:
        ctx.invoke(list_cmd)
        return
    ds = get_dataset(name)
    click.echo(f"{ds.name}: {ds.description}")
    click.echo(f"layout {ds.spec.layout}, target {ds.spec.target}; folder {ds.folder}/")
    for f in ds.files:
        split = f"first {f.train_n} train" if f.train_n else "no standard split"
        label = "" if f.labelled else ", unlabelled"
        click.echo(f"  {f.name:24s} {split}{label}  sha256 {f.sha256 or '(generated)'}"
                   + (f"  from {f.source.path}" if f.source else ""))


COMMANDS = [data_group]
