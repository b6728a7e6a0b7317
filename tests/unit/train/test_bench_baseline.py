"""``tune bench baseline``: the fingerprint LightGBM and, with --model, the Transformer on the same split."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from helpers.plates import write_rxn_plate_csv
from yieldtune.cli.main import main as cli


def test_baseline_and_model_in_one_invocation(tmp_path):
    data = write_rxn_plate_csv(tmp_path / "plate.csv")
    result = CliRunner().invoke(cli, [
        "bench", "baseline", "--data", str(data), "--train-rows", "14", "--model", "--seeds", "0,1",
        "--cache-dir", str(tmp_path / "cache"),
        "--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.ffn_dim=32",
        "--set", "model.n_layers=1", "--set", "train.epochs=2", "--set", 'model.molecule_features=["morgan"]',
        "--model-runs", "2"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.strip().splitlines()]
    assert [x.get("run") for x in lines[:4]] == ["baseline", "blend_gbms", "model", "model"]
    # each blend GBM's own figure, the baseline's the same as its own line
    from yieldtune.ensemble.blend import BASELINE_MEMBER, BLEND_GBMS

    gbms = lines.pop(1)["test_r2"]
    assert list(gbms) == list(BLEND_GBMS) and gbms[BASELINE_MEMBER] == lines[0]["test"]["r2"]
    assert lines[0]["n_train"] == 14 and lines[0]["test"]["n"] == 4
    assert [x["seed"] for x in lines[1:3]] == [0, 1] and lines[1]["molecule_features"] == ["morgan"]
    # by default the model, like the baseline, trains on every training row and keeps its last epoch
    assert all(x["n_train"] == 14 and x["n_val"] == 0 and x["val_r2"] is None and x["best_epoch"] == 2
               for x in lines[1:3])
    summary = lines[-1]
    assert summary["summary"] and summary["seeds"] == [0, 1]
    assert summary["ratio_to_baseline"] == summary["model_test_r2_mean"] / summary["baseline_test_r2"]
    # the families averaged, scored on the same rows: neither model's own figure; the blend (what tune train
    # saves: the model with the baseline and the blend's other GBMs) is not Round 8's mean with the baseline alone
    for key in ("blend", "mean_with_baseline"):
        blends = [x[key]["r2"] for x in lines[1:3]]
        assert summary[f"{key}_r2_mean"] == pytest.approx(sum(blends) / 2)
        assert all(b not in (x["test"]["r2"], lines[0]["test"]["r2"]) for b, x in zip(blends, lines[1:3]))
    assert all(x["blend"]["r2"] != x["mean_with_baseline"]["r2"] for x in lines[1:3])
    # --model-runs 2: the model is two runs averaged, as tune train --model-runs 2 trains it; neither run's figure
    assert all(x["model_runs"] == 2 and len(x["runs_r2"]) == 2 and x["test"]["r2"] not in x["runs_r2"]
               for x in lines[1:3])
    assert (tmp_path / "cache" / "features" / "features.sqlite").is_file()


def _val_split_args(data):
    return ["bench", "baseline", "--data", str(data), "--train-rows", "14", "--model", "--seeds", "0",
            "--val-split", "molecules", "--val-frac", "0.3", "--set", "model.d_model=16", "--set", "model.n_heads=2",
            "--set", "model.ffn_dim=32", "--set", "model.n_layers=1", "--set", "train.epochs=1",
            "--set", 'model.molecule_features=["morgan"]', "--set", "model.encoder=none"]


def test_validation_by_held_out_molecules(tmp_path):
    """--val-split molecules: the validation rows of each seed hold a molecule the training rows do not."""
    data = write_rxn_plate_csv(tmp_path / "plate.csv")
    result = CliRunner().invoke(cli, _val_split_args(data))
    assert result.exit_code == 0, result.output
    model = [json.loads(line) for line in result.output.strip().splitlines()][2]
    assert model["val_split"] == "molecules" and 0 < model["n_val"] < 14
    assert model["val_r2"] is not None
    # --val-position 1: whole halides only, and the one rare enough is in 2 of the 14 rows
    at = CliRunner().invoke(cli, [*_val_split_args(data), "--val-position", "1"])
    assert at.exit_code == 0, at.output
    model = [json.loads(line) for line in at.output.strip().splitlines()][2]
    assert model["val_position"] == 1 and model["n_val"] == 2
    # a position needs the molecules split: one line, for tune bench baseline and tune train alike
    for command in (["bench", "baseline", "--train-rows", "14"], ["train", "--train-rows", "14"]):
        bad = CliRunner().invoke(cli, [*command, "--data", str(data), "--val-frac", "0.3", "--val-position", "1"])
        assert bad.exit_code == 2, bad.output
        assert bad.output.strip() == "error: --val-position needs --val-split molecules and --val-frac above 0"


def test_split_is_required(tmp_path):
    result = CliRunner().invoke(cli, ["bench", "baseline", "--data", str(write_rxn_plate_csv(tmp_path / "p.csv"))])
    assert result.exit_code == 2 and "--train-rows" in result.output


def test_val_split_choices_are_the_registry():
    """The CLI lists --val-split's choices without importing the data package: they must stay its keys."""
    from yieldtune.cli.train import train_cmd
    from yieldtune.data import VALIDATION_SPLITS

    (option,) = [p for p in train_cmd.params if p.name == "val_split"]
    assert list(option.type.choices) == list(VALIDATION_SPLITS)


def test_select_on_scores_molecules_held_out_of_the_training_rows(tmp_path):
    """--select-on: baseline and model score whole molecules held out of the 14 training rows; the 4 test rows
    are never read, so a default chosen on these lines has not seen them."""
    data = write_rxn_plate_csv(tmp_path / "plate.csv")
    result = CliRunner().invoke(cli, [
        "bench", "baseline", "--data", str(data), "--train-rows", "14", "--select-on", "0.3", "--model",
        "--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.ffn_dim=32",
        "--set", "model.n_layers=1", "--set", "train.epochs=1", "--set", 'model.molecule_features=["morgan"]'])
    assert result.exit_code == 0, result.output
    base, gbms, model, summary = [json.loads(line) for line in result.output.strip().splitlines()]
    assert base["n_train"] + base["test"]["n"] == 14 and 0 < base["test"]["n"] < 14
    assert model["test"]["n"] == base["test"]["n"]
    assert base["scored_on"] == gbms["scored_on"] == model["scored_on"] == summary["scored_on"] == "selection"
    bad = CliRunner().invoke(cli, ["bench", "baseline", "--data", str(data), "--train-rows", "14",
                                   "--select-on", "1.5"])
    assert bad.exit_code == 2 and "--select-on" in bad.output


def test_select_position_holds_out_one_kind_of_molecule(tmp_path):
    """--select-position 1: the hold-out is whole halides, and the only halide rare enough is the third, in 2
    of the 14 training rows (without the position the draw may take an amine's 4 rows); the lines say so.
    Without --select-on it is one clear error."""
    data = write_rxn_plate_csv(tmp_path / "plate.csv")
    args = ["bench", "baseline", "--data", str(data), "--train-rows", "14", "--cache-dir", str(tmp_path / "c")]
    result = CliRunner().invoke(cli, [*args, "--select-on", "0.3", "--select-position", "1"])
    assert result.exit_code == 0, result.output
    base, summary = [json.loads(line) for line in result.output.strip().splitlines()]
    assert base["select_position"] == summary["select_position"] == 1
    assert base["test"]["n"] == 2 and base["n_train"] == 12
    bad = CliRunner().invoke(cli, [*args, "--select-position", "1"])
    assert bad.exit_code == 2 and bad.output.strip() == "error: --select-position needs --select-on"


def test_the_baseline_grows_the_same_trees_on_any_number_of_threads(tmp_path):
    """LightGBM's deterministic mode: tune train and study ensembles fit the baseline on as many threads as the
    rows pay for (threads=None) and get the one-thread baseline's predictions, bit for bit."""
    import numpy as np

    from yieldtune.data.load import load_reactions
    from yieldtune.data.synth import write_synthetic_plate
    from yieldtune.data.table import DataSpec
    from yieldtune.metrics import r2_score
    from yieldtune.train.baseline import fit_baseline

    write_synthetic_plate(tmp_path / "plate.csv", n=300)
    table = load_reactions(tmp_path / "plate.csv", DataSpec())
    train, test = table.subset(range(240)), table.subset(range(240, 300))
    preds = {threads: fit_baseline(train, n_trees=200, n_bits=256, threads=threads,
                                   cache_dir=str(tmp_path / "cache")).predict(test.reactions)[0]
             for threads in (1, 2, None)}
    assert r2_score(test.yields, preds[1]) > 0.3  # a model that learned something, not a constant
    assert np.array_equal(preds[1], preds[2]) and np.array_equal(preds[1], preds[None])


def test_baseline_threads_follow_the_rows_within_the_cpu_share():
    from yieldtune.train.baseline import ROWS_PER_THREAD, baseline_threads

    assert baseline_threads(864, share=2) == 1  # the quick start's plate: thread overhead outweighs the work
    assert baseline_threads(3058, share=2) == 2 == baseline_threads(20_000, share=2)
    assert baseline_threads(20_000, share=16) == 20_000 // ROWS_PER_THREAD == 13
    assert baseline_threads(0, share=4) == 1 and baseline_threads(10**6, share=1) == 1
    assert baseline_threads(10**6) >= 1  # the process's share: torch's threads
