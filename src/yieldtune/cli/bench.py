"""``tune bench``: throughput of training (``train``) and of augmentation (``augment``), of the study service
(``workers``, ``pruning``), the fingerprint baseline (``baseline``) and the ensemble's gain over the best single
trial (``ensemble``). Figures are ratios against a baseline run in the same invocation."""

from __future__ import annotations

import json

import click

from yieldtune.cli._common import device_option, json_option, quiet_optuna, storage_option
from yieldtune.cli.train import (
    MODEL_RUNS_DEFAULT,
    check_val_position,
    config_options,
    data_options,
    load_table,
    val_split_option,
    validation_rows,
)

bench_cache_dir_option = click.option("--cache-dir", default=None, type=click.Path(file_okay=False),
                                      help="Feature / augmentation cache directory (default: in memory).")


@click.group("bench")
def bench_group() -> None:
    """Throughput benchmarks."""


@bench_group.command("train")
@data_options
@click.option("--steps", default=20, type=int, help="Timed optimizer steps (after --warmup untimed ones).")
@click.option("--warmup", "warmup_steps", default=2, type=int, help="Untimed warmup steps.")
@click.option("--architecture", type=click.Choice(["hierarchical", "flat"]), default="hierarchical",
              show_default=True, help="Our model's architecture (the seed-style baseline is always flat).")
@click.option("--d-model", default=512, type=int)
@click.option("--layers", default=4, type=int)
@click.option("--reaction-layers", default=2, type=int, help="Hierarchical: layers across the molecules.")
@click.option("--heads", default=4, type=int)
@click.option("--ffn", default=1024, type=int)
@click.option("--dropout", default=0.1, type=float)
@click.option("--max-len", default=512, type=int)
@click.option("--batch-size", default=128, type=int)
@click.option("--limit", default=None, type=int, help="Use only the first N reactions of the file.")
@device_option
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto")
@click.option("--baseline", type=click.Choice(["seed"]), default=None,
              help="Also time the seed-style loop (tokenize per batch, random batches, fp32) and report speedup.")
@click.option("--threads", default=0, type=int, help="torch CPU threads (0 = torch default).")
def bench_train_cmd(data, layout, target, percent, data_dir, steps, warmup_steps, architecture, d_model, layers,
                    reaction_layers, heads, ffn, dropout, max_len, batch_size, limit, device, precision, baseline,
                    threads) -> None:
    """Print ONE JSON line with samples_per_s (and baseline_samples_per_s, speedup with --baseline)."""
    import numpy as np
    import torch

    from yieldtune.config import ModelConfig, validate_config
    from yieldtune.errors import ConfigError
    from yieldtune.train.bench import run_bench

    if steps < 1 or warmup_steps < 0 or batch_size < 1:
        raise ConfigError("--steps and --batch-size must be >= 1, --warmup >= 0")
    if threads > 0:
        torch.set_num_threads(threads)
    model_cfg = validate_config(ModelConfig, {"architecture": architecture, "d_model": d_model, "n_layers": layers,
                                              "reaction_layers": reaction_layers, "n_heads": heads,
                                              "ffn_dim": ffn, "dropout": dropout, "max_len": max_len,
                                              "molecule_features": ()},  # the token pipeline's throughput
                                source="bench options")
    table, _ = load_table(data, layout, target, percent, data_dir, validate=False)
    if limit:
        table = table.subset(range(min(limit, len(table))))
    yields = table.yields if table.has_targets else np.zeros(len(table), dtype=np.float32)
    record = run_bench(table.reactions, yields, model_cfg, batch_size=batch_size, steps=steps, device=device,
                       precision=precision, baseline=baseline, warmup_steps=warmup_steps)
    record["data"] = str(data)
    click.echo(json.dumps(record))


@bench_group.command("augment")
@data_options
@click.option("--limit", default=None, type=int, help="Use only the first N reactions of the file.")
@click.option("--epochs", default=2, type=click.IntRange(min=1), show_default=True, help="Epochs per mode.")
@click.option("--ratio", default=1.0, type=click.FloatRange(min=0.0, min_open=True), show_default=True,
              help="train.augment_ratio of the augmented modes.")
@config_options
@bench_cache_dir_option
@device_option
def bench_augment_cmd(data, layout, target, percent, data_dir, limit, epochs, ratio, config_path, overrides,
                      cache_dir, device) -> None:
    """ONE JSON line: samples/s without augmentation and with each augment scope, and their ratios."""
    from yieldtune.config import load_run_config
    from yieldtune.train.bench import bench_augmentation

    config = load_run_config(config_path, list(overrides))
    if config.model.encoder == "none":
        click.echo("warning: model.encoder = none reads each molecule's canonical features, so augmentation "
                   "changes none of its input; --set model.encoder=scratch measures the token model", err=True)
    table, _ = load_table(data, layout, target, percent, data_dir)
    if limit:
        table = table.subset(range(min(limit, len(table))))
    record = bench_augmentation(table, config, epochs=epochs, ratio=ratio, device=device, cache_dir=cache_dir)
    click.echo(json.dumps({"data": str(data), **record}))


@bench_group.command("baseline")
@data_options
@click.option("--train-rows", default=None, type=int, help="First N rows train, the rest test.")
@click.option("--test", "test_file", default=None, help="Held-out test file (same layout).")
@click.option("--model/--no-model", "with_model", default=False,
              help="Also train the Transformer (RunConfig + --config/--set) on the same split, per seed.")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated train.seed values for --model.")
@click.option("--val-frac", default=0.0, type=float, show_default=True,
              help="--model: 0 trains on every training row for the whole schedule, as the baseline does (better on "
                   "new molecules, README Round 7); F > 0 holds out that fraction for validation and the best epoch.")
@val_split_option
@click.option("--select-on", "select_frac", default=None, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Choosing a default: score on whole molecules held out of the training rows (this fraction, "
                   "split_by_molecules), never on the test rows, which are then left untouched.")
@click.option("--select-seed", default=1000, show_default=True, type=int, help="Seed of the --select-on hold-out.")
@click.option("--select-position", default=None, type=click.IntRange(min=1),
              help="--select-on: hold out only molecules written K-th among the reactants and agents (on a plate "
                   "listed in one order, one kind of molecule: Buchwald–Hartwig's additive is the 6th).")
@click.option("--model-runs", default=MODEL_RUNS_DEFAULT, show_default=True, type=click.IntRange(min=1),
              help="--model: runs per seed, averaged, each 1/N of the epochs (as tune train; 1: one full run).")
@config_options
@bench_cache_dir_option
@device_option
def bench_baseline_cmd(data, layout, target, percent, data_dir, train_rows, test_file, with_model, seeds, val_frac,
                       val_split, val_position, select_frac, select_seed, select_position, model_runs, config_path,
                       overrides, cache_dir, device) -> None:
    """The fingerprint LightGBM baseline (and with --model the Transformer) on one split: JSON lines.

    One line per run (``{"run": "baseline"|"model", "test": {"r2", ...}, "seconds", ...}``), then a summary
    line with the model's mean and sd test R² over the seeds and its ratio to the baseline's. With ``--model``
    a ``blend_gbms`` line gives each of the blend's GBMs' own R², and each model line
    also scores ``blend`` (the model averaged with the blend's GBMs: what ``tune train`` saves) and
    ``mean_with_baseline`` (with the baseline alone, Round 8's blend). The model is ``--model-runs`` runs
    averaged, as ``tune train`` trains it (``runs_r2``: each run's own figure). With
    ``--select-on F`` every line scores a hold-out of the training rows instead (``"scored_on": "selection"``):
    a default is chosen there, and the test rows stay unseen until it is.
    """
    import statistics
    import time

    from yieldtune.config import load_run_config
    from yieldtune.data import split_by_molecules, split_first_n
    from yieldtune.ensemble.blend import BASELINE_MEMBER, BLEND_GBMS, blend_predictions
    from yieldtune.errors import ConfigError
    from yieldtune.metrics import regression_metrics
    from yieldtune.train.baseline import fit_baseline, run_baseline
    from yieldtune.train.model_runs import fit_runs, mean_of_runs

    if (train_rows is None) == (test_file is None):
        raise ConfigError("give exactly one of --train-rows N or --test FILE")
    check_val_position(val_split, val_frac, val_position)
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds: expected comma-separated integers, got {seeds!r}") from None
    config = load_run_config(config_path, list(overrides)) if with_model else None
    table, spec = load_table(data, layout, target, percent, data_dir)
    if train_rows is not None:
        train, test = split_first_n(table, train_rows)
    else:
        train = table
        test, _ = load_table(test_file, spec.layout, target, spec.percent, data_dir)
    if not (train.has_targets and test.has_targets) or not len(test):
        raise ConfigError(f"{data}: baseline needs yields in both the training and the test rows")
    scored_on = {}
    if select_frac is not None:
        train, test = split_by_molecules(train, select_frac, seed=select_seed, position=select_position)
        scored_on = {"scored_on": "selection", "select_on": select_frac, "select_seed": select_seed,
                     **({"select_position": select_position} if select_position is not None else {})}
    elif select_position is not None:
        raise ConfigError("--select-position needs --select-on")
    base, base_pred = run_baseline(train, test, cache_dir=cache_dir)
    click.echo(json.dumps({"run": "baseline", "data": str(data), **scored_on, **base}))
    summary = {"summary": True, "data": str(data), **scored_on, "baseline_test_r2": base["test"]["r2"]}
    if with_model:
        # what tune train saves: the model averaged with the blend's GBMs, the baseline (fitted above) among them
        gbm_preds = [base_pred if name == BASELINE_MEMBER else
                     fit_baseline(train, blocks=blocks, cache_dir=cache_dir).predict(test.reactions)[0]
                     for name, blocks in BLEND_GBMS.items()]
        click.echo(json.dumps({"run": "blend_gbms", **scored_on, "test_r2": {
            name: regression_metrics(test.yields, p)["r2"] for name, p in zip(BLEND_GBMS, gbm_preds)}}))
        r2s, blend_r2s, with_base_r2s = [], [], []
        for seed in seed_list:
            cfg = config.with_overrides({"train.seed": seed})
            tr, val = validation_rows(train, val_split, val_frac, seed, val_position)
            t0 = time.perf_counter()
            results = [r for _, r in fit_runs(cfg, tr, val, runs=model_runs, device=device, cache_dir=cache_dir)]
            run_preds = [r.predictor.predict(test)[0] for r in results]
            result, pred = results[0], mean_of_runs(run_preds)
            metrics = regression_metrics(test.yields, pred)
            r2s.append(metrics["r2"])
            blend = regression_metrics(test.yields, blend_predictions(pred, *gbm_preds))
            blend_r2s.append(blend["r2"])
            with_base = regression_metrics(test.yields, blend_predictions(pred, base_pred))  # Round 8's blend
            with_base_r2s.append(with_base["r2"])
            click.echo(json.dumps({"run": "model", "seed": seed, **scored_on, "n_train": len(tr),
                                   "val_r2": result.best.val_r2,
                                   "best_epoch": result.best_epoch, "epochs": len(result.history),
                                   "val_split": val_split,
                                   **({"val_position": val_position} if val_position else {}),
                                   "n_val": 0 if val is None else len(val), "test": {"n": len(test), **metrics},
                                   "blend": blend, "mean_with_baseline": with_base, "model_runs": model_runs,
                                   **({"runs_r2": [regression_metrics(test.yields, p)["r2"] for p in run_preds]}
                                      if model_runs > 1 else {}),
                                   "seconds": round(time.perf_counter() - t0, 1),
                                   "molecule_features": list(cfg.model.molecule_features)}))
        summary.update({"model_test_r2_mean": statistics.fmean(r2s),
                        "model_test_r2_sd": statistics.stdev(r2s) if len(r2s) > 1 else 0.0,
                        "ratio_to_baseline": statistics.fmean(r2s) / base["test"]["r2"] if base["test"]["r2"] else None,
                        "blend_r2_mean": statistics.fmean(blend_r2s),
                        "mean_with_baseline_r2_mean": statistics.fmean(with_base_r2s),
                        "seeds": seed_list})
    click.echo(json.dumps(summary))


@bench_group.command("compare")
@click.argument("reference", type=click.Path(exists=True, dir_okay=False))
@click.argument("candidate", type=click.Path(exists=True, dir_okay=False))
@click.option("--figure", type=click.Choice(["test", "blend", "mean_with_baseline"]), default="blend",
              show_default=True, help="Which R² of the model lines: the model alone (test), or a blend.")
def bench_compare_cmd(reference, candidate, figure) -> None:
    """The paired lead of CANDIDATE over REFERENCE: two files of ``tune bench baseline --model`` output (one or
    more invocations each, the same splits, hold-outs and seeds), one JSON line with the mean lead, its standard
    error, the runs won and the means per data file. A default changes only with a lead of more than 2 SE
    (README, Round 7 onwards)."""
    from yieldtune.train.paired import paired_lead, read_model_runs

    result = paired_lead(read_model_runs(reference, figure), read_model_runs(candidate, figure))
    click.echo(json.dumps({"compare": figure, "reference_file": reference, "candidate_file": candidate, **result}))


def _echo_runs(as_json: bool):
    def on_run(run) -> None:
        click.echo(json.dumps(run.record()) if as_json else run.line())
    return on_run


def _echo_summary(summary: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo("summary: " + ", ".join(f"{k}={v}" for k, v in summary.items() if k not in ("bench", "summary")))


@bench_group.command("workers")
@click.argument("study_file")
@click.option("--storage", required=True, envvar="TUNE_STORAGE",
              help="Storage URL the bench studies are created in (a server database for several workers).")
@click.option("--jobs", "jobs", multiple=True, type=click.IntRange(min=1), default=(1, 2), show_default=True,
              help="Number of local workers; repeat for each setting (--jobs 1 --jobs 2).")
@click.option("--n-trials", type=click.IntRange(min=1), default=None, help="Budget per run (default: the file's).")
@click.option("--device", default=None, help="Worker device (cpu, cuda, auto); CPU cores are divided between workers.")
@click.option("--keep", is_flag=True, help="Keep the bench studies and their files.")
@json_option
def bench_workers_cmd(study_file, storage, jobs, n_trials, device, keep, as_json) -> None:
    """Run STUDY_FILE's search once per --jobs value (fresh study, same sampler seed, no ensemble step) and
    print each run, then trials/min(max jobs) / trials/min(min jobs)."""
    quiet_optuna()
    from yieldtune.study.bench import bench_workers
    from yieldtune.study.spec import load_study_spec

    spec = load_study_spec(study_file)
    result = bench_workers(spec, spec.storage_url(storage), list(jobs), n_trials=n_trials, device=device, keep=keep,
                           on_run=_echo_runs(as_json))
    _echo_summary(result["summary"], as_json)


@bench_group.command("pruning")
@click.argument("study_file")
@storage_option
@click.option("--n-trials", type=click.IntRange(min=1), default=None, help="Budget per run (default: the file's).")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Local workers per run.")
@click.option("--device", default=None, help="Worker device (cpu, cuda, auto).")
@click.option("--keep", is_flag=True, help="Keep the bench studies and their files.")
@json_option
def bench_pruning_cmd(study_file, storage, n_trials, jobs, device, keep, as_json) -> None:
    """Run STUDY_FILE's search with its pruner and with none (same sampler seed): epochs trained and best
    value of each, then epochs_with/epochs_without and best_with - best_without."""
    quiet_optuna()
    from yieldtune.study.bench import bench_pruning
    from yieldtune.study.spec import load_study_spec

    spec = load_study_spec(study_file)
    result = bench_pruning(spec, spec.storage_url(storage), n_trials=n_trials, jobs=jobs, device=device, keep=keep,
                           on_run=_echo_runs(as_json))
    _echo_summary(result["summary"], as_json)


@bench_group.command("ensemble")
@click.argument("study_file")
@storage_option
@click.option("--device", default="cpu", show_default=True, help="Device for refits still to do and predictions.")
@json_option
def bench_ensemble_cmd(study_file, storage, device, as_json) -> None:
    """R² of the best single trial of each model family vs. the study's ensemble, side by side, on its test
    split (else validation).

    The study's budget must be met; refits still missing are done and the ensemble is built first."""
    quiet_optuna()
    from yieldtune.ensemble.bench import bench_ensemble
    from yieldtune.study.spec import load_study_spec

    spec = load_study_spec(study_file)
    record = bench_ensemble(spec, spec.storage_url(storage), device=device)
    if as_json:
        click.echo(json.dumps(record))
        return
    click.echo(f"study {record['study']}: {record['eval']} R² on {record['n_eval']} rows (tta {record['tta']})")
    if "r2_baseline" in record:
        click.echo(f"  fingerprint LightGBM baseline (same rows, untuned): {record['r2_baseline']}   ensemble / it: "
                   f"{record['r2_ensemble_over_baseline']}")
    if "r2_ensemble_without_baseline" in record:
        click.echo(f"  the same refits weighted without the baseline member: {record['r2_ensemble_without_baseline']}")
    click.echo(f"  best single trial {record['best_trial']}: {record['r2_best_single']}")
    for family, number in record["best_trial_by_family"].items():
        click.echo(f"  best {family} (trial {number}): {record[f'r2_best_{family}']}   ensemble / it: "
                   f"{record[f'r2_ensemble_over_best_{family}']}")
    for m in record["members"]:
        click.echo(f"  {m['name']} ({m.get('family', 'transformer')}): weight {m['weight']}, R² {m['r2']}")
    click.echo(f"  plain mean: {record['r2_mean']}   ensemble ({record['method']}): {record['r2_ensemble']}   "
               f"diff {record['r2_ensemble_minus_best_single']}, ratio {record['r2_ensemble_over_best_single']}")
    by_method = {k.removeprefix("r2_trials_"): v for k, v in record.items() if k.startswith("r2_trials_")}
    if by_method:
        click.echo("  trial models (no refit), by ensemble.method: "
                   + ", ".join(f"{method} {r2}" for method, r2 in by_method.items()))


COMMANDS = [bench_group]
