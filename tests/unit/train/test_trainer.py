"""Trainer behaviour on a tiny plate, and the ``tune train`` / ``tune lr-find`` / ``tune bench train`` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import tiny_run_config
from helpers.plates import plate, write_plate_csv
from yieldtune.config import RunConfig
from yieldtune.data.table import ReactionTable
from yieldtune.model import YieldPredictor
from yieldtune.train import Trainer


def cfg(**train) -> RunConfig:
    return tiny_run_config(**train)


def split(table):
    idx = np.random.default_rng(0).permutation(len(table))
    return table.subset(idx[:48]), table.subset(idx[48:])


def test_training_lowers_the_loss_and_reports_every_epoch():
    train, val = split(plate())
    seen = []
    result = Trainer(cfg(epochs=10, lr=3e-3), device="cpu").fit(train, val, on_epoch=seen.append)
    assert [m.epoch for m in seen] == list(range(1, 11)) and result.history == seen
    assert seen[-1].train_loss < 0.5 * seen[0].train_loss
    assert result.best.val_r2 > 0.5  # it learned the plate's yield function, not just the mean
    for m in seen:
        assert m.val_r2 is not None and m.val_mae >= 0 and m.val_rmse >= m.val_mae and m.samples_per_s > 0
    # the predictor holds the best-val-epoch weights and reproduces the reported val predictions
    assert result.best.val_r2 == max(m.val_r2 for m in seen)
    again, _ = result.predictor.predict(val)
    np.testing.assert_allclose(again, result.val_predictions, atol=1e-6)
    assert isinstance(result.predictor, YieldPredictor) and not result.stopped_early


def test_same_seed_same_metrics_other_seed_differs(tmp_path):
    train, val = split(plate())
    c = cfg(epochs=2, augment_ratio=1.5)
    a = Trainer(c, device="cpu", cache_dir=tmp_path).fit(train, val)
    b = Trainer(c, device="cpu", cache_dir=tmp_path).fit(train, val)
    assert [m.train_loss for m in a.history] == [m.train_loss for m in b.history]
    assert [m.val_r2 for m in a.history] == [m.val_r2 for m in b.history]
    assert list(tmp_path.glob("*.json.gz"))  # augmentation variants went to the disk cache
    other = Trainer(cfg(epochs=2, augment_ratio=1.5, seed=1), device="cpu").fit(train, val)
    assert [m.train_loss for m in other.history] != [m.train_loss for m in a.history]


@pytest.mark.parametrize("scope", ["molecule", "reaction"])
def test_an_epochs_copies_share_one_variant_only_with_molecule_scope(scope):
    """Molecule-scope variant k spells each molecule alike in every reaction: an epoch that takes variant k
    for all its copies keeps a batch's distinct molecules (what the hierarchical model encodes) few."""
    n, n_var = 40, 4
    trainer = Trainer(cfg(augment_ratio=1.0, augment_scope=scope), device="cpu")
    rows, src = trainer._epoch_rows(n, n_var, np.random.default_rng(0))
    copies = rows[n:] - n - src[n:] * n_var  # the variant each augmented copy takes
    assert (src[:n] == np.arange(n)).all() and len(copies) == n and ((0 <= copies) & (copies < n_var)).all()
    assert (len(set(copies.tolist())) == 1) == (scope == "molecule")


def test_ema_validates_and_keeps_the_averaged_weights(tmp_path):
    import torch

    train, val = split(plate())
    raw = Trainer(cfg(epochs=4, lr=3e-3), device="cpu").fit(train, val)
    averaged = Trainer(cfg(epochs=4, lr=3e-3, ema_decay=0.9), device="cpu").fit(train, val)
    # the same steps, the same seed: only what is validated and kept differs
    assert [m.train_loss for m in raw.history] == [m.train_loss for m in averaged.history]
    assert [m.val_r2 for m in raw.history] != [m.val_r2 for m in averaged.history]
    a, b = raw.predictor.model.state_dict(), averaged.predictor.model.state_dict()
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)
    assert averaged.best.val_r2 > 0.0  # the averaged weights predict better than the mean
    # what it validated is what it keeps and saves
    np.testing.assert_allclose(averaged.predictor.predict(val)[0], averaged.val_predictions, atol=1e-6)
    averaged.predictor.save(tmp_path / "m")
    np.testing.assert_allclose(YieldPredictor.load(tmp_path / "m").predict(val)[0], averaged.val_predictions,
                               atol=1e-6)


def test_keep_epoch_last_keeps_the_final_weights_whatever_validation_says():
    train, val = split(plate())
    misleading = ReactionTable(val.reactions, (1.0 - val.yields).astype(np.float32))  # learning lowers val R²
    best = Trainer(cfg(epochs=6, lr=3e-3), device="cpu").fit(train, misleading)
    last = Trainer(cfg(epochs=6, lr=3e-3, keep_epoch="last"), device="cpu").fit(train, misleading)
    assert [m.val_r2 for m in best.history] == [m.val_r2 for m in last.history]  # same training, other pick
    assert best.best_epoch < 6 and best.best.val_r2 == max(m.val_r2 for m in best.history)
    assert last.best_epoch == 6 and last.best == last.history[-1]  # what a trial reports and a refit trains
    kept, _ = last.predictor.predict(misleading)
    np.testing.assert_allclose(kept, last.val_predictions, atol=1e-6)
    assert not np.allclose(kept, best.predictor.predict(misleading)[0], atol=1e-4)


def test_unset_epochs_follow_the_data_size_and_given_epochs_are_kept():
    train, val = split(plate())  # 48 training reactions
    budgeted = Trainer(cfg(epochs=None, reaction_budget=150), device="cpu").fit(train, val)
    assert len(budgeted.history) == 3  # 150 reactions / 48 rows = 3.1 epochs
    one = Trainer(cfg(epochs=None, reaction_budget=1), device="cpu").fit(train, None)
    assert len(one.history) == 1  # never fewer than one epoch
    given = Trainer(cfg(epochs=4, reaction_budget=1), device="cpu").fit(train, None)
    assert len(given.history) == 4  # a given train.epochs is what trains, whatever the budget


def test_epochs_for_caps_the_default_at_sixty():
    from yieldtune.config import DEFAULT_EPOCHS, TrainConfig

    assert TrainConfig().epochs is None and DEFAULT_EPOCHS == 60
    assert TrainConfig().epochs_for(3057) == 60  # a Buchwald-Hartwig plate: all 60 (200,000 / 3,057 = 65)
    assert TrainConfig().epochs_for(20000) == 10  # the aichem2024 hold-out's training rows
    assert TrainConfig().epochs_for(4032) == 50  # Suzuki-Miyaura random_split_0
    assert TrainConfig(reaction_budget=10**9).epochs_for(1) == 60
    assert TrainConfig(epochs=7).epochs_for(10**6) == 7


def test_early_stopping_stops_when_val_r2_stalls():
    train, val = split(plate())
    # an LR so small that weights cannot change in float32: val R² is flat from epoch 1 on
    result = Trainer(cfg(epochs=10, lr=1e-12, early_stopping_patience=2), device="cpu").fit(train, val)
    assert result.stopped_early and len(result.history) == 3 and result.best_epoch == 1


def test_on_epoch_exception_propagates():
    class Pruned(Exception):
        pass

    def on_epoch(m):
        if m.epoch == 2:
            raise Pruned(m.epoch)

    train, val = split(plate())
    with pytest.raises(Pruned):
        Trainer(cfg(epochs=3), device="cpu").fit(train, val, on_epoch=on_epoch)


def test_every_scheduler_trains_without_val():
    train, _ = split(plate())
    for name in ("cosine", "onecycle", "linear", "step", "plateau"):
        result = Trainer(cfg(epochs=1, scheduler=name, warmup_frac=0.2), device="cpu").fit(train)
        assert result.best_epoch == 1 and result.history[0].val_r2 is None and result.val_predictions is None


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.mark.slow  # a real `tune` process
def test_tune_train_end_to_end(tmp_path):
    data = write_plate_csv(tmp_path / "plate.csv")
    out = tmp_path / "run"
    sets = ["model.d_model=16", "model.n_layers=1", "model.n_heads=2", "model.ffn_dim=32", "train.epochs=2",
            "train.batch_size=8", "train.num_threads=1", "train.precision=fp32", "train.augment_ratio=0.5"]
    cmd = [sys.executable, "-m", "yieldtune.cli.main", "train", "--data", str(data), "--layout", "components",
           "--train-rows", "45", "--val-frac", "0.2", "--device", "cpu", "--out", str(out), "--json"]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["n_train"] == 36 and summary["n_val"] == 9 and summary["test"]["n"] == 15
    assert set(summary["test"]) >= {"r2", "mae", "rmse"} and summary["precision"] == "fp32"
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["history"]) == 2 and metrics["config"]["model"]["d_model"] == 16
    predictor = YieldPredictor.load(out / "model")
    assert predictor.config.train.augment_ratio == 0.5


def test_tune_train_trains_on_every_row_for_the_epochs_of_its_data_size_by_default(tmp_path):
    from click.testing import CliRunner

    from yieldtune.cli.main import main

    data = write_plate_csv(tmp_path / "plate.csv")
    sets = ["model.d_model=16", "model.n_layers=1", "model.n_heads=2", "model.ffn_dim=32", "train.batch_size=8",
            "train.num_threads=1", "train.precision=fp32", "train.reaction_budget=90"]
    args = ["train", "--data", str(data), "--train-rows", "45", "--device", "cpu", "--json",
            *[a for s in sets for a in ("--set", s)]]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "one")])  # one run: the default
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["n_train"] == 45 and summary["n_val"] == 0 and summary["val"] is None
    assert summary["epochs"] == 2 == summary["best_epoch"]  # 90 reactions / 45 rows; the last epoch is kept
    assert summary["config"]["train"]["epochs"] is None and summary["test"]["n"] == 15 and "runs" not in summary
    # two runs (seeds 0 and 100), each half the epochs, so together they cost one run
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "two"), "--model-runs", "2"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert [(r["seed"], r["epochs"]) for r in summary["runs"]] == [(0, 1), (100, 1)]
    assert summary["epochs"] == 1 and summary["test"]["r2"] == summary["runs"][0]["test_r2"]


def test_tune_train_saves_the_model_averaged_with_the_blend_gbms(tmp_path):
    from click.testing import CliRunner

    from yieldtune.cli.main import main
    from yieldtune.ensemble.blend import BLEND_GBMS
    from yieldtune.ensemble.format import load_ensemble, read_ensemble_json, verify_manifest
    from yieldtune.metrics import r2_score

    data = write_plate_csv(tmp_path / "plate.csv")
    sets = ["model.d_model=16", "model.n_layers=1", "model.n_heads=2", "model.ffn_dim=32", "train.batch_size=8",
            "train.num_threads=1", "train.precision=fp32", "train.epochs=2"]
    args = ["train", "--data", str(data), "--train-rows", "45", "--val-frac", "0.2", "--device", "cpu", "--json",
            *[a for s in sets for a in ("--set", s)]]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "run"), "--model-runs", "2"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    ens_dir = tmp_path / "run" / "ensemble"
    assert summary["ensemble_dir"] == str(ens_dir)
    verify_manifest(ens_dir)
    info = read_ensemble_json(ens_dir)
    w = 1 / (1 + len(BLEND_GBMS))
    assert list(BLEND_GBMS)[0] == "fingerprint_gbm" and len(BLEND_GBMS) >= 2
    # the model's two runs share the model's third (train.epochs given: each run trains them, seeds 0 and 100)
    assert [(m["name"], m["family"], m["weight"]) for m in info["members"]] == [
        ("transformer", "transformer", w / 2), ("transformer_2", "transformer", w / 2),
        *[(name, "gbm", w) for name in BLEND_GBMS]]
    assert [(r["seed"], r["epochs"]) for r in summary["runs"]] == [(0, 2), (100, 2)]
    assert info["method"] == "mean" and info["metrics"] == summary["blend"]

    from yieldtune.data import infer_spec
    from yieldtune.data.load import load_reactions

    test = load_reactions(data, infer_spec(data, layout="components")).subset(np.arange(45, 60))
    blend = load_ensemble(tmp_path / "run")  # a tune train dir: its ensemble/
    model = YieldPredictor.load(tmp_path / "run" / "model")  # the first run
    mean, _ = blend.predict(test)
    runs, gbms = [[m.predictor for m in load_ensemble(ens_dir).members][i] for i in (slice(2), slice(2, None))]
    run_preds = [r.predict(test)[0] for r in runs]
    np.testing.assert_array_equal(run_preds[0], model.predict(test)[0])
    assert not np.allclose(run_preds[0], run_preds[1])
    gbm_preds = [g.predict(test.reactions)[0] for g in gbms]
    np.testing.assert_allclose(mean, np.mean([np.mean(run_preds, axis=0), *gbm_preds], axis=0), atol=1e-6)
    # each GBM is the baseline's LightGBM on its own blocks (the first: the baseline itself)
    assert [g.config.gbm.blocks for g in gbms] == list(BLEND_GBMS.values())
    assert [g.config.gbm.n_rounds for g in gbms] == [1500] * len(gbms)
    assert [g.config.gbm.num_threads for g in gbms] == [1] * len(gbms)  # 36 rows pay for one thread
    assert summary["blend"]["test"]["mean"]["r2"] == pytest.approx(r2_score(test.yields, mean), abs=1e-6)
    assert summary["blend"]["test"]["fingerprint_gbm"]["r2"] != summary["test"]["r2"]
    assert set(summary["blend"]["test"]) == {"transformer", *BLEND_GBMS, "mean"}
    assert set(summary["blend"]) == {"val", "test"}
    assert summary["blend"]["test"]["transformer"]["r2"] == pytest.approx(
        r2_score(test.yields, np.mean(run_preds, axis=0)), abs=1e-6)

    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "alone"), "--no-blend-gbm"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "alone" / "ensemble").exists() and "blend" not in json.loads(
        result.output.strip().splitlines()[-1])
    assert load_ensemble(tmp_path / "alone").info["method"] == "single"


@pytest.mark.slow  # a real `tune` process
def test_tune_train_bad_setting_is_one_line_error(tmp_path):
    data = write_plate_csv(tmp_path / "plate.csv")
    proc = subprocess.run([sys.executable, "-m", "yieldtune.cli.main", "train", "--data", str(data),
                           "--set", "model.d_model=30", "--set", "model.n_heads=4", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120, env=_env())
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert "n_heads" in proc.stderr and not (tmp_path / "o").exists()


@pytest.mark.slow  # a real `tune` process
def test_tune_lr_find_writes_plot(tmp_path):
    data = write_plate_csv(tmp_path / "plate.csv")
    plot = tmp_path / "lr.html"
    proc = subprocess.run([sys.executable, "-m", "yieldtune.cli.main", "lr-find", "--data", str(data),
                           "--set", "model.d_model=16", "--set", "model.n_layers=1", "--set", "model.n_heads=2",
                           "--set", "model.ffn_dim=32", "--set", "train.batch_size=8", "--set", "train.num_threads=1",
                           "--steps", "30", "--start", "1e-5", "--end", "10", "--out", str(plot), "--json"],
                          capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # 30 batches of a 60-reaction plate over 6 decades: no trend above the batch noise, and it says so
    assert result["suggested_lr"] is None and "--steps" in result["note"] and 5 < result["steps_run"] <= 30
    html = plot.read_text()
    assert "plotly" in html.lower() and len(html) > 1_000_000  # plotly.js embedded: opens offline


@pytest.mark.slow  # a real `tune` process
def test_tune_bench_train_prints_one_json_line(tmp_path):
    data = write_plate_csv(tmp_path / "plate.csv")
    proc = subprocess.run([sys.executable, "-m", "yieldtune.cli.main", "bench", "train", "--data", str(data),
                           "--steps", "2", "--warmup", "1", "--d-model", "16", "--layers", "1", "--heads", "2",
                           "--ffn", "32", "--batch-size", "8", "--device", "cpu", "--precision", "fp32",
                           "--baseline", "seed", "--threads", "1"],
                          capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["samples_per_s"] > 0 and record["baseline_samples_per_s"] > 0 and record["speedup"] > 0
    assert record["precision"] == "fp32" and record["device"] == "cpu" and record["config"]["d_model"] == 16


@pytest.mark.slow  # a real `tune` process
def test_tune_bench_augment_prints_each_scope_against_plain_training(tmp_path):
    data = write_plate_csv(tmp_path / "plate.csv")
    sets = ["model.d_model=16", "model.n_layers=1", "model.n_heads=2", "model.ffn_dim=32", "train.batch_size=8",
            "train.num_threads=1", "train.precision=fp32", "model.molecule_features=[]"]
    proc = subprocess.run([sys.executable, "-m", "yieldtune.cli.main", "bench", "augment", "--data", str(data),
                           "--epochs", "1", "--ratio", "1", "--device", "cpu", "--cache-dir", str(tmp_path / "c"),
                           *[a for s in sets for a in ("--set", s)]],
                          capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["n_reactions"] == 60 and record["augment_ratio"] == 1.0
    for mode in ("plain", "molecule", "reaction"):
        assert record[mode]["samples_per_s"] > 0 and record[mode]["epoch_seconds"] > 0
    assert record["molecule_over_reaction_speedup"] > 0 and record["molecule_vs_plain_samples_per_s"] > 0
    assert len(list((tmp_path / "c").glob("*.json.gz"))) == 2  # one variant set per scope, cached
    assert record["encoder"] == "scratch" and "warning" not in proc.stderr


@pytest.mark.slow  # a real `tune` process
def test_tune_bench_augment_warns_that_a_features_only_model_reads_no_spelling(tmp_path):
    data = write_plate_csv(tmp_path / "plate.csv")
    sets = ["model.d_model=16", "model.n_heads=2", "model.ffn_dim=32", "train.batch_size=8",
            "train.num_threads=1", "train.precision=fp32"]  # the default features: no token encoder
    proc = subprocess.run([sys.executable, "-m", "yieldtune.cli.main", "bench", "augment", "--data", str(data),
                           "--epochs", "1", "--device", "cpu", *[a for s in sets for a in ("--set", s)]],
                          capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["encoder"] == "none"
    assert proc.stderr.count("warning: model.encoder = none") == 1 and "model.encoder=scratch" in proc.stderr


def test_device_and_precision_resolution():
    import torch

    from yieldtune.errors import ConfigError
    from yieldtune.model.device import resolve_device, resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu, 512) == "fp32" and resolve_precision("bf16", cpu, 16) == "bf16"
    assert resolve_precision("auto", cpu, 32) == "fp32"  # tiny matrices: bf16 casts cost more than they save
    assert resolve_precision("auto", cpu, 512) in ("bf16", "fp32")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == cpu
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda:0")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu9")


def test_bf16_autocast_training_runs_on_cpu():
    train, val = split(plate())
    result = Trainer(cfg(epochs=1, precision="bf16", augment_ratio=0.5), device="cpu").fit(train, val)
    assert np.isfinite(result.history[0].train_loss) and np.isfinite(result.val_predictions).all()
