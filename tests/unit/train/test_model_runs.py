"""The model's runs (``train.model_runs``): seeds, the split schedule, and what ``tune train`` saves of them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from helpers.plates import write_plate_csv
from yieldtune.config import RunConfig
from yieldtune.train.model_runs import mean_of_runs, run_configs


def test_runs_split_the_epochs_of_the_data_size_and_take_seeds_100_apart():
    config = RunConfig().with_overrides({"train.seed": 3})
    assert run_configs(config, 3000, 1) == [config]  # one run: the configuration as given
    two = run_configs(config, 3000, 2)
    assert [(c.train.seed, c.train.epochs) for c in two] == [(3, 30), (103, 30)]  # 60 epochs at 3,000 rows
    assert [c.train.epochs for c in run_configs(config, 20000, 2)] == [5, 5]  # the budget's 10 at 20,000 rows
    assert [c.train.epochs for c in run_configs(config, 200_000, 3)] == [1, 1, 1]  # never below one epoch
    given = config.with_overrides({"train.epochs": 7})
    assert [c.train.epochs for c in run_configs(given, 3000, 2)] == [7, 7]  # explicit epochs are per run
    assert two[0].model == config.model and two[1].train.lr == config.train.lr
    with pytest.raises(ValueError, match="at least 1"):
        run_configs(config, 3000, 0)


def test_mean_of_runs():
    assert mean_of_runs([None, None]) is None and mean_of_runs([]) is None
    np.testing.assert_array_equal(mean_of_runs([np.array([0.0, 1.0], np.float32), [1.0, 0.0]]), [0.5, 0.5])


def test_runs_without_the_gbms_are_saved_as_their_mean(tmp_path):
    from yieldtune.cli.main import main
    from yieldtune.ensemble.format import load_ensemble, read_ensemble_json

    data = write_plate_csv(tmp_path / "plate.csv")
    sets = ["model.d_model=16", "model.n_layers=1", "model.n_heads=2", "model.ffn_dim=32", "train.batch_size=8",
            "train.num_threads=1", "train.precision=fp32", "train.epochs=1"]
    result = CliRunner().invoke(main, ["train", "--data", str(data), "--train-rows", "45", "--device", "cpu",
                                       "--json", "--no-blend-gbm", "--model-runs", "3", "--out", str(tmp_path / "r"),
                                       *[a for s in sets for a in ("--set", s)]])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    info = read_ensemble_json(tmp_path / "r" / "ensemble")
    assert [(m["name"], m["weight"]) for m in info["members"]] == [
        ("transformer", pytest.approx(1 / 3)), ("transformer_2", pytest.approx(1 / 3)),
        ("transformer_3", pytest.approx(1 / 3))]
    assert set(summary["blend"]["test"]) == {"transformer", "mean"}  # no GBMs: the blend is the runs' mean
    assert summary["blend"]["test"]["mean"] == summary["blend"]["test"]["transformer"]
    assert [r["seed"] for r in summary["runs"]] == [0, 100, 200]
    assert load_ensemble(tmp_path / "r").info["method"] == "mean"  # what tune predict DIR uses
