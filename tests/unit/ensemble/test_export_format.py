"""The ensemble directory format: manifest hashes, safetensors-only weights, atomic writes, CSV precision."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest

from yieldtune.ensemble.format import (
    atomic_directory,
    check_safetensors,
    load_ensemble,
    read_predictions_csv,
    save_ensemble_dir,
    verify_manifest,
    write_manifest,
)
from yieldtune.ensemble.predict import write_submission
from yieldtune.errors import ModelFileError


@pytest.fixture(scope="module")
def two_predictors(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    from yieldtune.config import RunConfig
    from yieldtune.data.load import load_reactions
    from yieldtune.data.synth import write_synthetic_plate
    from yieldtune.train.trainer import Trainer

    d = tmp_path_factory.mktemp("plate")
    table = load_reactions(write_synthetic_plate(d / "plate.csv", n=40))
    cfg = RunConfig().with_overrides({"model.d_model": 16, "model.n_layers": 1, "model.n_heads": 2,
                                      "model.ffn_dim": 32, "train.epochs": 1, "train.batch_size": 16})
    preds = [Trainer(cfg.with_overrides({"train.seed": s}), device="cpu").fit(table).predictor for s in (0, 1)]
    return preds, table


@pytest.fixture
def ensemble_dir(tmp_path, two_predictors):
    preds, _ = two_predictors
    d = tmp_path / "ens"
    members = [({"name": f"t0000-s{i}", "trial_number": 0, "seed": i, "weight": w, "r2": 0.1}, p)
               for i, (p, w) in enumerate(zip(preds, (0.75, 0.25)))]
    save_ensemble_dir(d, members, {"method": "caruana", "tta": 0})
    write_manifest(d)
    return d


def test_roundtrip_predicts_like_members(ensemble_dir, two_predictors):
    preds, table = two_predictors
    ens = load_ensemble(ensemble_dir)
    assert [m.name for m in ens.members] == ["t0000-s0", "t0000-s1"]
    mean, std = ens.predict(table.reactions)
    a, _ = preds[0].predict(table.reactions)
    b, _ = preds[1].predict(table.reactions)
    expect = 0.75 * a.astype(np.float64) + 0.25 * b.astype(np.float64)
    assert np.allclose(mean, expect, atol=1e-7)
    assert np.all(std >= 0) and np.any(std > 0)


def test_modified_file_is_refused(ensemble_dir):
    cfg = ensemble_dir / "members" / "t0000-s1" / "config.json"
    data = json.loads(cfg.read_text())
    data["target_mean"] = data["target_mean"] + 0.1
    cfg.write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="SHA-256 does not match"):
        load_ensemble(ensemble_dir)


def test_changed_weight_in_ensemble_json_is_refused(ensemble_dir):
    path = ensemble_dir / "ensemble.json"
    path.write_text(path.read_text().replace("0.75", "0.5"))
    with pytest.raises(ModelFileError, match="ensemble.json"):
        load_ensemble(ensemble_dir)


def test_missing_and_unlisted_files_are_refused(ensemble_dir):
    extra = ensemble_dir / "members" / "t0000-s0" / "extra.bin"
    extra.write_bytes(b"x")
    with pytest.raises(ModelFileError, match="not listed in manifest"):
        load_ensemble(ensemble_dir)
    extra.unlink()
    (ensemble_dir / "members" / "t0000-s0" / "vocab.json").unlink()
    with pytest.raises(ModelFileError, match="missing"):
        load_ensemble(ensemble_dir)


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_pickle_renamed_to_safetensors_is_refused(ensemble_dir, capsys):
    weights = ensemble_dir / "members" / "t0000-s0" / "model.safetensors"
    weights.write_bytes(pickle.dumps({"w": _Evil()}))
    with pytest.raises(ModelFileError):  # manifest catches it first
        load_ensemble(ensemble_dir)
    write_manifest(ensemble_dir)  # even with a matching manifest: not safetensors, never unpickled
    with pytest.raises(ModelFileError, match="not a safetensors file"):
        load_ensemble(ensemble_dir)
    with pytest.raises(ModelFileError, match="not a safetensors file"):
        check_safetensors(weights)
    assert "unpickled!" not in capsys.readouterr().out


def test_torch_save_file_is_refused_for_a_single_model_dir(tmp_path, two_predictors):
    import torch

    d = tmp_path / "single"
    two_predictors[0][0].save(d)
    load_ensemble(d)  # a plain `tune train --out` dir loads as a one-member ensemble
    torch.save(two_predictors[0][0].model.state_dict(), d / "model.safetensors")
    with pytest.raises(ModelFileError, match="not a safetensors file"):
        load_ensemble(d)


def test_atomic_directory_refuses_nonempty_and_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("old")
    with pytest.raises(ModelFileError, match="not empty"):
        with atomic_directory(target):
            pass
    with pytest.raises(RuntimeError):
        with atomic_directory(target, force=True) as tmp:
            (tmp / "half.txt").write_text("x")
            raise RuntimeError("boom")
    assert (target / "keep.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with atomic_directory(target, force=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_submission_and_float_precision(tmp_path):
    y = np.random.default_rng(0).uniform(0, 1, 5)
    write_submission(tmp_path / "s.csv", ["b", "a", "007", "x", "y"], y)
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "rxnid,Yield" and [l.split(",")[0] for l in lines[1:]] == ["b", "a", "007", "x", "y"]
    back = read_predictions_csv(tmp_path / "s.csv")
    assert np.array_equal(back["Yield"].to_numpy(), y)
    assert back["rxnid"].tolist()[2] == "007"


def test_manifest_lists_every_file(ensemble_dir):
    files = verify_manifest(ensemble_dir)
    assert set(files) == {"ensemble.json", *(f"members/t0000-s{i}/{n}" for i in (0, 1)
                                             for n in ("model.safetensors", "vocab.json", "config.json",
                                                       "domain.safetensors"))}
    shutil.rmtree(ensemble_dir / "members" / "t0000-s1")
    with pytest.raises(ModelFileError):
        verify_manifest(ensemble_dir)


def test_the_model_card_says_which_molecules_validation_held_out(tmp_path):
    """A study that validates on one kind of molecule ([validation] position) says so on its model card, and one
    that mixes every kind does not claim a position."""
    import textwrap

    from yieldtune.ensemble.export import _model_card
    from yieldtune.study.spec import load_study_spec

    def card(validation: str) -> str:
        path = tmp_path / "s.toml"
        path.write_text(textwrap.dedent(f"""
            name = "s"
            [data]
            dataset = "plate.csv"
            [validation]
            {validation}
            """))
        return _model_card(load_study_spec(path), None, {}, None, {"COMPLETE": 0}, None, None, "out")

    assert "- validation: molecules, fraction 0.15, molecules at position 6, seed 0" in card(
        'scheme = "molecules"\nfraction = 0.15\nposition = 6')
    assert "- validation: molecules, fraction 0.15, seed 0" in card('scheme = "molecules"\nfraction = 0.15')
