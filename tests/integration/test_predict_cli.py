"""`tune predict`: output columns, invalid rows reported (never silently predicted), submission format."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from helpers import run_tune


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A single `tune train --out`-style predictor directory (YieldPredictor.save), trained in-process."""
    import torch

    torch.set_num_threads(1)
    from yieldtune.config import RunConfig
    from yieldtune.data.load import load_reactions
    from yieldtune.data.synth import write_synthetic_plate
    from yieldtune.train.trainer import Trainer

    d = tmp_path_factory.mktemp("model")
    plate = write_synthetic_plate(d / "plate.csv", n=40)
    # the token encoder: TTA's randomized spellings move its predictions (the features-only default reads
    # canonical features, so its TTA spread is 0)
    cfg = RunConfig().with_overrides({"model.encoder": "scratch", "model.d_model": 16, "model.n_layers": 1,
                                      "model.n_heads": 2, "model.ffn_dim": 32, "train.epochs": 1,
                                      "train.batch_size": 16})
    Trainer(cfg, device="cpu").fit(load_reactions(plate)).predictor.save(d / "model")
    return d / "model", plate


def _with_bad_rows(plate: Path, dest: Path) -> Path:
    lines = plate.read_text().splitlines()[:9]
    cells = lines[3].split(",")
    cells[1] = "C1CC(("  # Reactant1 of file row 4
    lines[3] = ",".join(cells)
    cells = lines[6].split(",")
    cells[5] = "not_a_smiles"  # Solvent of file row 7
    lines[6] = ",".join(cells)
    dest.write_text("\n".join(lines) + "\n")
    return dest


def test_invalid_rows_are_listed_and_fail_without_skip(model_dir, tmp_path):
    model, plate = model_dir
    inp = _with_bad_rows(plate, tmp_path / "in.csv")
    out = tmp_path / "out.csv"
    proc = run_tune("predict", model, inp, "--out", out, cwd=tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip().splitlines()
    assert any("row 4" in l and "Reactant1" in l for l in err) and any("row 7" in l and "Solvent" in l for l in err)
    assert err[-1].startswith("error:") and "Traceback" not in proc.stderr
    assert not out.exists()  # nothing half-written

    proc = run_tune("predict", model, inp, "--out", out, "--skip-invalid", "--tta", "2", cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "row 4" in proc.stderr and "row 7" in proc.stderr
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    src = list(csv.DictReader(inp.open()))
    keep = [r for i, r in enumerate(src) if i + 2 not in (4, 7)]
    assert [r["rxnid"] for r in rows] == [r["rxnid"] for r in keep]
    assert list(rows[0]) == [*src[0].keys(), "yield_pred", "yield_std", "similarity_reactants", "similarity_agents",
                             "similarity_products", "similarity_min"]
    assert rows[0]["Yield"] == keep[0]["Yield"]  # input cells are passed through unchanged
    preds = np.array([float(r["yield_pred"]) for r in rows])
    stds = np.array([float(r["yield_std"]) for r in rows])
    assert np.all((preds >= 0) & (preds <= 1)) and np.all(stds >= 0) and np.any(stds > 0)


def test_same_predictions_as_the_library(model_dir, tmp_path):
    from yieldtune.data.load import load_reactions
    from yieldtune.ensemble import load_ensemble

    model, plate = model_dir
    out = tmp_path / "p.csv"
    run_tune("predict", model, plate, "--out", out, cwd=tmp_path)  # fails the test on a non-zero exit
    got = np.array([float(r["yield_pred"]) for r in csv.DictReader(out.open())])
    mean, std = load_ensemble(model).predict(load_reactions(plate).reactions)
    assert np.array_equal(got, mean.astype(np.float64)) and not std.any()


def test_submission_matches_competition_format(model_dir, tmp_path, shared_data):
    model, _ = model_dir
    test_file = shared_data / "aichem2024" / "round1_test_data.csv"
    sub = tmp_path / "submission.csv"
    proc = run_tune("predict", model, test_file, "--out", tmp_path / "p.csv", "--submission", sub, cwd=tmp_path,
                    check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = sub.read_text().splitlines()
    assert lines[0] == "rxnid,Yield"
    with test_file.open() as fh:
        ids = [r["rxnid"] for r in csv.DictReader(fh)]
    assert len(ids) == 2616
    got = [l.split(",") for l in lines[1:]]
    assert [g[0] for g in got] == ids
    assert all(0.0 <= float(g[1]) <= 1.0 for g in got)


def test_refuses_a_model_dir_that_is_not_one(tmp_path, model_dir):
    _, plate = model_dir
    (tmp_path / "empty").mkdir()
    proc = run_tune("predict", tmp_path / "empty", plate, "--out", tmp_path / "x.csv", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error:") and len(proc.stderr.strip().splitlines()) == 1


def test_predict_accepts_a_tune_train_out_directory(tmp_path):
    """`tune train --out DIR` saves metrics.json, the predictor in DIR/model/ and its mean with the blend's
    GBMs in DIR/ensemble/; `tune predict DIR` takes DIR and predicts with the mean (--no-blend-gbm: the model),
    computing each GBM's features (DRFP among them) in the fresh process."""
    from yieldtune.data.synth import write_synthetic_plate

    plate = write_synthetic_plate(tmp_path / "plate.csv", n=40)
    run_tune("train", "--data", plate, "--out", tmp_path / "trained", "--device", "cpu", "--set", "model.d_model=16",
             "--set", "model.n_layers=1", "--set", "model.n_heads=2", "--set", "model.ffn_dim=32",
             "--set", "train.epochs=1", "--set", "train.num_threads=1", cwd=tmp_path)
    assert (tmp_path / "trained" / "metrics.json").is_file()
    for model, out in ((tmp_path / "trained", "a.csv"), (tmp_path / "trained" / "ensemble", "b.csv"),
                       (tmp_path / "trained" / "model", "c.csv")):
        proc = run_tune("predict", model, plate, "--out", tmp_path / out, cwd=tmp_path, check=False)
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    assert (tmp_path / "a.csv").read_text() != (tmp_path / "c.csv").read_text()  # the mean, not the model alone
    run_tune("train", "--data", plate, "--out", tmp_path / "alone", "--device", "cpu", "--no-blend-gbm",
             "--set", "model.d_model=16", "--set", "model.n_layers=1", "--set", "model.n_heads=2",
             "--set", "model.ffn_dim=32", "--set", "train.epochs=1", "--set", "train.num_threads=1", cwd=tmp_path)
    for model, out in ((tmp_path / "alone", "d.csv"), (tmp_path / "alone" / "model", "e.csv")):
        proc = run_tune("predict", model, plate, "--out", tmp_path / out, cwd=tmp_path, check=False)
        assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "d.csv").read_text() == (tmp_path / "e.csv").read_text()
    # --model-runs 2: the blend holds two runs of the model; a fresh process loads and predicts with all five
    run_tune("train", "--data", plate, "--out", tmp_path / "runs", "--device", "cpu", "--model-runs", "2",
             "--set", "model.d_model=16", "--set", "model.n_layers=1", "--set", "model.n_heads=2",
             "--set", "model.ffn_dim=32", "--set", "train.epochs=1", "--set", "train.num_threads=1", cwd=tmp_path)
    proc = run_tune("predict", tmp_path / "runs", plate, "--out", tmp_path / "f.csv", cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "f.csv").read_text() != (tmp_path / "a.csv").read_text()
