"""``tune predict``: add yield_pred and yield_std columns to a reaction file."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("predict")
@click.argument("model_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("input_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="CSV to write: the input rows plus yield_pred, yield_std and, for models saved with their "
                   "training molecules, similarity_reactants/_agents/_products/_min (applicability domain).")
@click.option("--tta", type=click.IntRange(min=0), default=None,
              help="Randomized SMILES copies per reaction (default: the model's stored setting).")
@click.option("--seed", default=0, show_default=True, help="Seed of the TTA copies.")
@click.option("--layout", type=click.Choice(["components", "rxn"]), default=None,
              help="Input layout (default: inferred from the header).")
@click.option("--rxn-column", default=None, help="rxn layout: the reaction SMILES column.")
@click.option("--id-column", default=None, help="Column with row ids (components layout default: rxnid).")
@click.option("--skip-invalid", is_flag=True,
              help="Leave rows with invalid SMILES out (listed on stderr) and exit 0; without it they fail the run.")
@click.option("--submission", "submission_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write an aichem2024 submission (rxnid,Yield) to this file.")
@click.option("--device", default="cpu", help="cpu, cuda, cuda:N or auto.")
@click.option("--batch-size", default=256, show_default=True)
def predict(model_dir: Path, input_file: Path, out_file: Path, tta: int | None, seed: int, layout: str | None,
            rxn_column: str | None, id_column: str | None, skip_invalid: bool, submission_file: Path | None,
            device: str, batch_size: int) -> None:
    """Predict yields for INPUT_FILE with MODEL_DIR (a `tune export-best` dir or a `tune train --out` dir).

    Rows with invalid SMILES are never silently predicted: each is listed on stderr with its row and
    column, and the command exits 2 writing nothing, unless --skip-invalid (then they are left out).
    """
    from yieldtune.ensemble.format import load_ensemble
    from yieldtune.ensemble.predict import input_spec, predict_file
    from yieldtune.errors import DataError
    from yieldtune.model.domain import WARN_BELOW

    ensemble = load_ensemble(model_dir, device=device)
    spec = input_spec(input_file, layout=layout, rxn_column=rxn_column, id_column=id_column)
    result = predict_file(ensemble, input_file, spec, tta=tta, seed=seed, batch_size=batch_size)
    for line in result.problem_lines():
        click.echo(f"invalid: {line}", err=True)
    if result.problems and not skip_invalid:
        raise DataError(f"{len(result.problems)} invalid row(s) listed above; fix them or pass --skip-invalid",
                        path=str(input_file))
    result.write_rows(out_file)
    if submission_file is not None:
        result.write_submission(submission_file)
    outside = result.n_outside_domain(WARN_BELOW)
    if outside:
        click.echo(f"warning: {outside} of {len(result.mean)} rows have a molecule unlike every training molecule "
                   f"of its role (similarity_min < {WARN_BELOW}, nearest-neighbour Tanimoto on Morgan "
                   f"fingerprints): their predictions are extrapolations", err=True)
    left_out = f", {len(result.problems)} invalid row(s) left out" if result.problems else ""
    click.echo(f"predicted {len(result.mean)} rows -> {out_file}{left_out}")


COMMANDS = [predict]
