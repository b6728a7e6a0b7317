"""An exported ensemble predicts reactions of molecules it never saw, in a fresh ``tune predict`` process,
with every featurizer, and says which rows lie outside its training molecules (applicability domain)."""

from __future__ import annotations

import csv
import itertools

import numpy as np

from helpers.studyfiles import run_tune
from yieldtune.config import RunConfig
from yieldtune.data.table import ReactionTable
from yieldtune.ensemble.export import member_featurizers
from yieldtune.ensemble.format import save_ensemble_dir, write_manifest
from yieldtune.model.domain import WARN_BELOW
from yieldtune.train.trainer import Trainer

HALIDES = ["Ic1ccccc1", "Brc1ccccc1", "Clc1ccccc1"]
AMINES = ["C1COCCN1", "C1CCNCC1", "Nc1ccccc1"]
BASES = ["CC(C)(C)[O-].[Na+]", "CCN(CC)CC"]


def _train(features: list[str]):
    rxns = [f"{h}.{a}>{b}.[Pd]>c1ccccc1" for h, a, b in itertools.product(HALIDES, AMINES, BASES)]
    ys = np.linspace(0.1, 0.9, len(rxns)).astype(np.float32)
    cfg = RunConfig.model_validate({
        "model": {"d_model": 16, "n_layers": 1, "reaction_layers": 1, "n_heads": 2, "ffn_dim": 32, "max_len": 128,
                  "molecule_features": features, "morgan_bits": 128},
        "train": {"epochs": 1, "batch_size": 8, "precision": "fp32", "num_threads": 1}})
    return Trainer(cfg).fit(ReactionTable(rxns, ys)).predictor


def test_export_then_tune_predict_new_molecules_in_a_fresh_process(tmp_path):
    export = tmp_path / "export"
    members = []
    for i, feats in enumerate([["morgan"], ["rdkit2d"], ["pretrained"], []]):
        members.append(({"name": f"m{i}", "weight": 1.0}, _train(feats)))
    save_ensemble_dir(export, members, {"format": "yieldtune-ensemble/1", "method": "test", "tta": 0})
    write_manifest(export)
    cards = member_featurizers(export)
    assert cards["m0"].startswith("morgan (radius 2, n_bits 128)") and "robust-scaled" in cards["m1"]
    assert cards["m2"].startswith("pretrained") and cards["m3"] == "none"

    new = tmp_path / "new.csv"
    rows = [("seen", "Ic1ccccc1.C1COCCN1>CCN(CC)CC.[Pd]>c1ccccc1"),
            ("new_halide", "Ic1ccc(OC)cc1.C1COCCN1>CCN(CC)CC.[Pd]>c1ccccc1"),  # not in training, but close
            ("unlike", "C1CCC2(CC1)OCCO2.C1COCCN1>CCN(CC)CC.[Pd]>c1ccccc1")]   # a ketal: like no training halide
    new.write_text("id,rxn\n" + "".join(f"{i},{r}\n" for i, r in rows))
    out = tmp_path / "preds.csv"
    proc = run_tune("predict", export, new, "--out", out, "--layout", "rxn", "--rxn-column", "rxn", cwd=tmp_path)
    got = {r["id"]: r for r in csv.DictReader(out.open())}
    assert set(got) == {"seen", "new_halide", "unlike"}
    assert all(np.isfinite(float(r["yield_pred"])) for r in got.values())
    sim = {k: float(r["similarity_min"]) for k, r in got.items()}
    assert sim["seen"] == 1.0 and sim["unlike"] < sim["new_halide"] < 1.0
    assert float(got["unlike"]["similarity_reactants"]) < WARN_BELOW <= float(got["seen"]["similarity_reactants"])
    assert got["seen"]["similarity_agents"] == "1.0000"
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    below = sum(v < WARN_BELOW for v in sim.values())
    assert below >= 1 and len(warnings) == 1 and f"{below} of 3 rows" in warnings[0]
