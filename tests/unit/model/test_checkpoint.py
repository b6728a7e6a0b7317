"""Predictor directories: exact reload in a fresh process, and refusal of anything tampered or unsafe."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from yieldtune.chem.tokenizer import SmilesTokenizer
from yieldtune.config import ModelConfig, RunConfig, TrainConfig
from yieldtune.errors import ModelFileError
from yieldtune.model import YieldPredictor, YieldTransformer

REACTIONS = [
    "Clc1ccccn1.Cc1ccc(N)cc1.CCN=P(N=P(N(C)C)(N(C)C)N(C)C)(N(C)C)N(C)C.Cc1cc(C)on1>>Cc1ccc(Nc2ccccn2)cc1",
    "Brc1ccc2ncccc2c1.CC#N.CC(=O)O~CC(=O)O~[Pd].CCN(CC)CC.O>>Cc1ccc2c(cnn2C2CCCCO2)c1-c1ccc2ncccc2c1",
    "C/C=C/Br.N[C@@H](C)C(=O)O>[Cu+]>C/C=C/N[C@@H](C)C(=O)O",
    "Ic1ccccc1.C1COCCN1>CC(C)(C)[O-].[Na+]>c1ccc(N2CCOCC2)cc1",
]


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(3)
    tok = SmilesTokenizer.build(REACTIONS)
    cfg = RunConfig(model=ModelConfig(encoder="scratch", d_model=16, n_layers=2, n_heads=2, ffn_dim=32, pooling="mean",
                                      max_len=64),
                    train=TrainConfig(precision="fp32"))
    model = YieldTransformer.for_tokenizer(cfg.model, tok)
    with torch.no_grad():  # non-trivial weights everywhere, including the head
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    pred = YieldPredictor(model, tok, cfg, target_mean=0.55, target_std=0.2)
    pred.save(tmp_path / "model")
    return pred, tmp_path / "model"


def test_save_writes_only_safe_files(saved):
    _, d = saved
    assert sorted(p.name for p in d.iterdir()) == ["config.json", "model.safetensors", "vocab.json"]
    meta = json.loads((d / "config.json").read_text())
    assert meta["format_version"] == 1 and meta["target_mean"] == 0.55
    assert meta["run_config"]["model"]["d_model"] == 16


def test_fresh_process_load_gives_identical_predictions(saved, tmp_path):
    pred, d = saved
    expected, _ = pred.predict(REACTIONS)
    out = tmp_path / "pred.npy"
    code = (
        "import sys, json, numpy as np, torch; torch.set_num_threads(1)\n"
        "from yieldtune.model import YieldPredictor\n"
        "p = YieldPredictor.load(sys.argv[1])\n"
        "m, s = p.predict(json.loads(sys.argv[2]))\n"
        "np.save(sys.argv[3], m)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(d), json.dumps(REACTIONS), str(out)], check=True, timeout=120)
    got = np.load(out)
    assert np.array_equal(got, expected)
    assert np.unique(got).size == len(REACTIONS)  # meaningful, distinct predictions


class _Payload:
    """Unpickling this would create a file: proof that loading never unpickles."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_renamed_to_safetensors_is_refused(saved, tmp_path):
    _, d = saved
    marker = tmp_path / "pwned"
    (d / "model.safetensors").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ModelFileError, match="model.safetensors: not a valid safetensors file"):
        YieldPredictor.load(d)
    assert not marker.exists()


def test_torch_save_pickle_is_refused(saved):
    pred, d = saved
    torch.save(pred.model.state_dict(), d / "model.safetensors")
    with pytest.raises(ModelFileError, match="not a valid safetensors"):
        YieldPredictor.load(d)


def test_truncated_weights_are_refused(saved):
    _, d = saved
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="model.safetensors"):
        YieldPredictor.load(d)


def test_shapes_not_matching_config_are_refused(saved):
    _, d = saved
    meta = json.loads((d / "config.json").read_text())
    meta["run_config"]["model"]["d_model"] = 32
    meta["run_config"]["model"]["ffn_dim"] = 64
    (d / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="do not match"):
        YieldPredictor.load(d)


def test_vocab_size_mismatch_is_refused(saved):
    _, d = saved
    vocab = json.loads((d / "vocab.json").read_text())
    vocab["tokens"].append("[Zz]")
    (d / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(ModelFileError, match="embed.weight has shape"):
        YieldPredictor.load(d)


@pytest.mark.parametrize("missing", ["model.safetensors", "vocab.json", "config.json"])
def test_missing_file_is_refused(saved, missing):
    _, d = saved
    (d / missing).unlink()
    with pytest.raises(ModelFileError, match=f"{missing}: missing"):
        YieldPredictor.load(d)


@pytest.mark.parametrize("text, match", [("{not json", "not valid JSON"), ('{"format": "other"}', "not a yieldtune"),
                                         ('{"format": "yieldtune-predictor", "format_version": 99}', "format_version")])
def test_malformed_config_is_refused(saved, text, match):
    _, d = saved
    (d / "config.json").write_text(text)
    with pytest.raises(ModelFileError, match=match):
        YieldPredictor.load(d)


def test_missing_directory(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        YieldPredictor.load(tmp_path / "nope")


def test_predictor_saved_before_architectures_existed_loads_as_flat(tmp_path):
    torch.manual_seed(4)
    tok = SmilesTokenizer.build(REACTIONS)
    cfg = RunConfig(model=ModelConfig(architecture="flat", d_model=16, n_layers=1, n_heads=2, ffn_dim=32, max_len=64),
                    train=TrainConfig(precision="fp32"))
    pred = YieldPredictor(YieldTransformer.for_tokenizer(cfg.model, tok), tok, cfg, target_mean=0.5, target_std=0.2)
    d = pred.save(tmp_path / "old")
    meta = json.loads((d / "config.json").read_text())
    for key in ("architecture", "reaction_layers"):  # what a predictor written by an earlier yieldtune lacks
        del meta["run_config"]["model"][key]
    (d / "config.json").write_text(json.dumps(meta))
    loaded = YieldPredictor.load(d)
    assert loaded.config.model.architecture == "flat"
    assert np.array_equal(loaded.predict(REACTIONS)[0], pred.predict(REACTIONS)[0])
