"""``tune train`` (train one configuration) and ``tune lr-find`` (LR range test)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from yieldtune.cli._common import device_option, json_option
from yieldtune.files import atomic_path, write_atomic

BLEND_GBM_DEFAULT = True  # README Rounds 8 and 9: the mean with fixed LightGBMs, chosen on --select-on hold-outs
MODEL_RUNS_DEFAULT = 1  # README Round 12: two half-length runs led one full run in the blend by 1.5 SE only


def data_options(f):
    """The data options shared by ``train``, ``lr-find`` and ``bench train``."""
    options = [
        click.option("--data", "data", required=True, help="Reaction CSV/TSV file or data set name (NAME[:FILE])."),
        click.option("--layout", type=click.Choice(["auto", "rxn", "components"]), default="auto",
                     help="rxn: one reaction-SMILES column; components: one column per role."),
        click.option("--target", default=None, help="Yield column (default: the column named yield/Yield)."),
        click.option("--percent", is_flag=True, help="Yields are in percent (0-100)."),
        click.option("--data-dir", default=None, envvar="TUNE_DATA_DIR", help="Offline copy of the named data sets."),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


def load_table(data: str, layout: str, target: str | None, percent: bool, data_dir: str | None, *,
               validate: bool = True):
    """Resolve a file or data set name and load it with the right DataSpec."""
    from yieldtune.data import dataset_spec, infer_spec, load_reactions, resolve_dataset

    path = resolve_dataset(data, data_dir)
    spec = dataset_spec(data)
    if spec is None:
        spec = infer_spec(path, layout=None if layout == "auto" else layout, target=target or "", percent=percent)
    elif target or percent:
        spec = spec.model_copy(update={"target": target or spec.target, "percent": percent or spec.percent})
    return load_reactions(path, spec, validate=validate), spec


def val_split_option(f):
    """``--val-split``: the keys of :data:`yieldtune.data.VALIDATION_SPLITS` (listed here, so the CLI starts
    without importing the data package), and ``--val-position`` for the molecules split."""
    f = click.option("--val-position", default=None, type=click.IntRange(min=1),
                     help="--val-split molecules: hold out only molecules written K-th among the reactants and "
                          "agents (one kind, on a plate listed in one order).")(f)
    return click.option("--val-split", type=click.Choice(["random", "molecules"]), default="random",
                        show_default=True, help="Validation rows drawn at random, or whole molecules held out "
                        "(every validation reaction holds a reactant or agent no training reaction has).")(f)


def check_val_position(val_split: str, val_frac: float, val_position: int | None) -> None:
    """A ``--val-position`` only means something for a molecules split of some rows."""
    from yieldtune.errors import ConfigError

    if val_position is not None and (val_split != "molecules" or val_frac <= 0):
        raise ConfigError("--val-position needs --val-split molecules and --val-frac above 0")


def validation_rows(table, val_split: str, val_frac: float, seed: int, val_position: int | None):
    """(train, val or None): ``--val-frac`` rows drawn by ``--val-split`` (and ``--val-position``, which the
    command checked with :func:`check_val_position` before loading anything)."""
    from yieldtune.data import VALIDATION_SPLITS

    if val_frac <= 0:
        return table, None
    position = {} if val_position is None else {"position": val_position}
    return VALIDATION_SPLITS[val_split](table, val_frac, seed=seed, **position)


def config_options(f):
    """``--config`` (a TOML file with [model] and [train] tables) and ``--set KEY=VALUE`` overrides."""
    f = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override a setting, e.g. --set model.d_model=256 --set train.lr=1e-3.")(f)
    return click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
                        help="TOML file with [model] and [train] tables.")(f)


@click.command("train")
@data_options
@click.option("--test", "test_file", default=None, help="Held-out test file (same layout) to report test metrics on.")
@click.option("--val-frac", default=0.0, type=float, show_default=True,
              help="0 trains on every row for the whole schedule (better on new molecules, README Round 7; the "
                   "epochs follow the data size, Round 8); F > 0 holds out that fraction for validation metrics "
                   "and the best epoch.")
@val_split_option
@click.option("--train-rows", default=None, type=int,
              help="First N rows train, the rest test (the standard Buchwald-Hartwig / Suzuki-Miyaura split).")
@config_options
@device_option
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False),
              help="Where randomized-SMILES variants and molecule features are cached (default: in memory only).")
@click.option("--out", "out_dir", default="runs/train", show_default=True, type=click.Path(file_okay=False),
              help="Directory for metrics.json and the trained predictor.")
@click.option("--blend-gbm/--no-blend-gbm", "blend_gbm", default=BLEND_GBM_DEFAULT, show_default=True,
              help="Also train the untuned LightGBM of `tune bench baseline` on Morgan sums and on DRFP, on the "
                   "same rows, and save the mean of the three in OUT/ensemble, which `tune predict OUT FILE` then "
                   "uses (README Rounds 8 and 9).")
@click.option("--model-runs", "runs", default=MODEL_RUNS_DEFAULT, show_default=True,
              type=click.IntRange(min=1),
              help="Train the model this many times (seeds train.seed + 100 k), each for 1/N of the epochs the data "
                   "size gives (a given train.epochs: each), and use their mean as the model, in OUT/ensemble "
                   "(README Round 12). OUT/model holds the first run.")
@json_option
def train_cmd(data, layout, target, percent, data_dir, test_file, val_frac, val_split, val_position, train_rows,
              config_path, overrides, device, cache_dir, out_dir, blend_gbm, runs, as_json) -> None:
    """Train one configuration and save metrics.json plus the predictor into --out (with --blend-gbm or several
    --model-runs also the mean of the runs and the blend's LightGBMs, in --out/ensemble)."""
    from yieldtune.config import load_run_config
    from yieldtune.data import split_first_n
    from yieldtune.data.load import require_varying_target
    from yieldtune.ensemble.format import TRAIN_MODEL_SUBDIR
    from yieldtune.errors import ConfigError
    from yieldtune.metrics import regression_metrics
    from yieldtune.train.model_runs import fit_runs, mean_of_runs

    check_val_position(val_split, val_frac, val_position)
    config = load_run_config(config_path, list(overrides))
    table, spec = load_table(data, layout, target, percent, data_dir)
    if not table.has_targets:
        raise ConfigError(f"{data}: no yield column to train on (use --target COLUMN)")
    require_varying_target(table, spec.target)
    test = None
    if train_rows is not None:
        if test_file:
            raise ConfigError("give either --test or --train-rows, not both")
        table, test = split_first_n(table, train_rows)
    elif test_file:
        test, _ = load_table(test_file, spec.layout, target, spec.percent, data_dir)
    train, val = validation_rows(table, val_split, val_frac, config.train.seed, val_position)

    show_progress = not as_json and sys.stderr.isatty()
    trainers, results = zip(*fit_runs(config, train, val, runs=runs, device=device, cache_dir=cache_dir,
                                      on_epoch=None if show_progress else _echo_epoch, progress=show_progress))
    trainer, result = trainers[0], results[0]  # OUT/model and the figures below: the first run
    summary = {
        "data": str(data), "n_train": len(train), "n_val": 0 if val is None else len(val), "val_split": val_split,
        **({"val_position": val_position} if val_position else {}),
        "device": str(trainer.device), "precision": trainer.precision, "best_epoch": result.best_epoch,
        "epochs": len(result.history), "stopped_early": result.stopped_early, "best": result.best.to_dict(),
        "val": None if val is None else {"r2": result.best.val_r2, "mae": result.best.val_mae,
                                         "rmse": result.best.val_rmse},
        "test": None, "config": config.model_dump(), "history": [m.to_dict() for m in result.history],
    }
    test_preds = [None] * runs
    if test is not None and test.has_targets:
        test_preds = [r.predictor.predict(test)[0] for r in results]
        summary["test"] = {"n": len(test), **regression_metrics(test.yields, test_preds[0])}
    if runs > 1:
        summary["runs"] = [{"seed": t.config.train.seed, "epochs": len(r.history), "best_epoch": r.best_epoch,
                            "val_r2": r.best.val_r2,
                            "test_r2": None if p is None else regression_metrics(test.yields, p)["r2"]}
                           for t, r, p in zip(trainers, results, test_preds)]
    gbms = {}
    if blend_gbm or runs > 1:
        from yieldtune.ensemble.blend import blend_metrics, fit_blend_gbms

        # as tune bench baseline fits them (deterministic), on threads the rows pay for within the model's share
        gbms = fit_blend_gbms(train, cache_dir=cache_dir, threads=None) if blend_gbm else {}
        summary["blend"] = blend_metrics(gbms, ((val, mean_of_runs([r.val_predictions for r in results])),
                                                (test, mean_of_runs(test_preds))))
    out = Path(out_dir)
    result.predictor.save(out / TRAIN_MODEL_SUBDIR)
    summary["model_dir"] = str(out / TRAIN_MODEL_SUBDIR)
    if "blend" in summary:
        from yieldtune.ensemble.blend import save_blend

        summary["ensemble_dir"] = str(save_blend(out, [r.predictor for r in results], gbms,
                                                 metrics=summary["blend"]))
    write_atomic(out / "metrics.json", json.dumps(summary, indent=2))

    if as_json:
        click.echo(json.dumps({k: v for k, v in summary.items() if k != "history"}))
        return
    from rich.console import Console
    from rich.table import Table

    tbl = Table(title=f"tune train: best epoch {result.best_epoch}/{len(result.history)}"
                      + (" (stopped early)" if result.stopped_early else ""))
    for col in ("split", "n", "R²", "MAE", "RMSE"):
        tbl.add_column(col, justify="right" if col != "split" else "left")
    first = ", run 1" if runs > 1 else ""
    if summary["val"]:
        v = summary["val"]
        tbl.add_row("val" + first, str(len(val)), f"{v['r2']:.4f}", f"{v['mae']:.4f}", f"{v['rmse']:.4f}")
    if summary["test"]:
        t = summary["test"]
        tbl.add_row("test" + first, str(t["n"]), f"{t['r2']:.4f}", f"{t['mae']:.4f}", f"{t['rmse']:.4f}")
    from yieldtune.ensemble.blend import MEAN, MODEL_MEMBER

    # the runs' mean is its own row only beside GBMs: one run is the row above, and without GBMs it is the blend
    labels = {MEAN: "the blend" if gbms else f"the mean of {runs} runs",
              MODEL_MEMBER: f"the mean of {runs} runs" if runs > 1 and gbms else None}
    for split, figures in (summary.get("blend") or {}).items():
        for who, m in figures.items():  # the model's runs, each GBM, then the mean of them all (the saved blend)
            label = labels.get(who, who)
            if label:
                tbl.add_row(f"{split}, {label}", str(m["n"]), f"{m['r2']:.4f}", f"{m['mae']:.4f}", f"{m['rmse']:.4f}")
    console = Console()
    console.print(tbl)
    if not summary["val"] and not summary["test"]:
        console.print("no held-out rows: pass --val-frac 0.1, --train-rows N or --test FILE for held-out metrics")
    if summary.get("ensemble_dir"):
        what = (f"the mean of {runs} runs of the model" if runs > 1 else "the model") + (
            " averaged with the blend's LightGBMs (Morgan sums, DRFP)" if gbms else "")
        console.print(f"{what}: {summary['ensemble_dir']} (what `tune predict {out}` uses)")
    console.print(f"train loss {result.best.train_loss:.4f}, {result.history[-1].samples_per_s:,.0f} samples/s "
                  f"on {trainer.device} ({trainer.precision}); saved {out / 'metrics.json'} and "
                  f"{out / TRAIN_MODEL_SUBDIR}")


def _echo_epoch(m) -> None:
    """Without a terminal for the progress bar (logs, CI, ``--json``): one line per epoch on stderr."""
    val = "" if m.val_r2 is None else f"  val R² {m.val_r2:.4f}  MAE {m.val_mae:.4f}"
    click.echo(f"epoch {m.epoch}: loss {m.train_loss:.4f}{val}  lr {m.lr:.2e}  {m.seconds:.1f} s  "
               f"{m.samples_per_s:,.0f} samples/s", err=True)


@click.command("lr-find")
@data_options
@config_options
@device_option
@click.option("--start", "start_lr", default=1e-6, type=float, help="First learning rate.")
@click.option("--end", "end_lr", default=1.0, type=float, help="Last learning rate.")
@click.option("--steps", default=200, type=int,
              help="Number of batches (LR grows exponentially); ~30 per decade keep batch noise from deciding.")
@click.option("--out", "out_path", default="lr_find.html", type=click.Path(dir_okay=False),
              help="Self-contained plotly HTML of loss vs learning rate.")
@json_option
def lr_find_cmd(data, layout, target, percent, data_dir, config_path, overrides, device, start_lr, end_lr, steps,
                out_path, as_json) -> None:
    """LR range test: print the suggested learning rate (a third of the LR at the smoothed loss's minimum) and
    plot loss vs LR."""
    from yieldtune.config import load_run_config
    from yieldtune.errors import ConfigError
    from yieldtune.train.lr_find import lr_find_figure, lr_range_test

    if not 0 < start_lr < end_lr:
        raise ConfigError(f"--start/--end: need 0 < start < end, got {start_lr} and {end_lr}")
    if steps < 5:
        raise ConfigError("--steps must be at least 5")
    config = load_run_config(config_path, list(overrides))
    table, _ = load_table(data, layout, target, percent, data_dir)
    result = lr_range_test(config, table, device=device, start_lr=start_lr, end_lr=end_lr, steps=steps)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, suffix=".html") as tmp:
        lr_find_figure(result).write_html(str(tmp), include_plotlyjs=True, full_html=True)
    if as_json:
        click.echo(json.dumps({"suggested_lr": result.suggested_lr, "min_loss_lr": result.min_loss_lr,
                               "diverged": result.diverged, "steps_run": len(result.lrs), "note": result.note,
                               "plot": str(out)}))
    else:
        lr = (f"none: {result.note}" if result.suggested_lr is None
              else f"{result.suggested_lr:.3g} (a third of {result.min_loss_lr:.3g}, "
                   "where the smoothed loss is lowest)")
        diverged = ", stopped at divergence" if result.diverged else ""
        click.echo(f"suggested lr: {lr}  ({len(result.lrs)} steps{diverged}); plot: {out}")


COMMANDS = [train_cmd, lr_find_cmd]
