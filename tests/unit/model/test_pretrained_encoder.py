"""``model.encoder = "pretrained"``: the token encoder starts from rxnmapper's ALBERT and is fine-tuned."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from yieldtune.chem.featurizers import load_albert
from yieldtune.config import RunConfig
from yieldtune.data.table import ReactionTable
from yieldtune.errors import ConfigError
from yieldtune.model.predictor import YieldPredictor
from yieldtune.train.trainer import Trainer

RXNS = [f"{h}.{a}>{b}.[Pd]>c1ccccc1" for h, a, b in itertools.product(
    ["Ic1ccccc1", "Brc1ccccc1", "Clc1ccccc1"], ["C1COCCN1", "Nc1ccccc1"], ["CCN(CC)CC", "CC(C)(C)[O-].[Na+]"])]


def _cfg(**model) -> RunConfig:
    return RunConfig.model_validate({
        "model": {"encoder": "pretrained", "d_model": 32, "n_heads": 2, "ffn_dim": 64, "reaction_layers": 1,
                  "max_len": 128, **model},
        "train": {"epochs": 1, "batch_size": 4, "precision": "fp32", "num_threads": 1}})


def test_encoder_starts_from_the_albert_and_round_trips(tmp_path):
    from yieldtune.chem.tokenizer import SmilesTokenizer
    from yieldtune.model.transformer import YieldTransformer

    albert, vocab = load_albert()
    tok = SmilesTokenizer.build(RXNS)
    fresh = YieldTransformer.for_tokenizer(_cfg().model, tok)
    for name, p in albert.state_dict().items():
        assert torch.equal(fresh.albert.state_dict()[name], p), name  # initialized from it, not at random
    assert fresh.albert_ids[tok.index["c"]] == vocab["c"] and fresh.albert_ids[tok.pad_id] == vocab["[PAD]"]
    predictor = Trainer(_cfg()).fit(ReactionTable(RXNS, np.linspace(0, 1, len(RXNS)).astype(np.float32))).predictor
    tuned = predictor.model.albert.state_dict()
    # fine-tuned, while the process-wide ALBERT the next model starts from is untouched (a copy was trained)
    assert any(not torch.equal(tuned[n].cpu(), p) for n, p in albert.state_dict().items())
    predictor.save(tmp_path / "m")
    again = YieldPredictor.load(tmp_path / "m")
    np.testing.assert_allclose(predictor.predict(RXNS)[0], again.predict(RXNS)[0], atol=1e-6)


def test_pretrained_encoder_limits_max_len():
    with pytest.raises(ConfigError, match="max_len"):
        RunConfig().with_overrides({"model.encoder": "pretrained", "model.max_len": 1024})
