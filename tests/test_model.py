"""YieldTransformer: padding never changes a prediction; YieldPredictor: clipped yields, TTA spread."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yieldtune.chem.tokenizer import SmilesTokenizer
from yieldtune.config import ModelConfig, RunConfig, TrainConfig
from yieldtune.model import YieldPredictor, YieldTransformer
from yieldtune.train.batching import EncodedReactions

REACTIONS = [
    "Clc1ccccn1.Cc1ccc(N)cc1.CCN=P(N=P(N(C)C)(N(C)C)N(C)C)(N(C)C)N(C)C.Cc1cc(C)on1>>Cc1ccc(Nc2ccccn2)cc1",
    "Brc1ccc2ncccc2c1.CC#N.CC(=O)O~CC(=O)O~[Pd].CCN(CC)CC.O>>Cc1ccc2c(cnn2C2CCCCO2)c1-c1ccc2ncccc2c1",
    "C/C=C/Br.N[C@@H](C)C(=O)O>[Cu+]>C/C=C/N[C@@H](C)C(=O)O",
    "CCO>>CC=O",
]


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
def test_extra_padding_changes_no_prediction(pooling, positional):
    torch.manual_seed(0)
    tok = SmilesTokenizer.build(REACTIONS)
    cfg = ModelConfig(d_model=32, n_layers=2, n_heads=4, ffn_dim=64, pooling=pooling, positional=positional,
                      max_len=128)
    model = YieldTransformer(cfg, tok.vocab_size).eval()
    enc = EncodedReactions(tok.encode_many(REACTIONS, cfg.max_len))
    ids = torch.from_numpy(enc.pad(np.arange(len(REACTIONS))))
    padded = torch.cat([ids, torch.zeros(len(REACTIONS), 9, dtype=ids.dtype)], dim=1)
    with torch.no_grad():
        a, b = model(ids), model(padded)
        alone = torch.cat([model(torch.from_numpy(enc.pad(np.array([i])))) for i in range(len(REACTIONS))])
    assert a.shape == (len(REACTIONS),) and a.dtype == torch.float32
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    torch.testing.assert_close(a, alone, atol=1e-5, rtol=0)
    assert not torch.allclose(a, a[:1].expand_as(a))  # and the model does tell reactions apart


def _predictor(precision="fp32") -> YieldPredictor:
    torch.manual_seed(1)
    tok = SmilesTokenizer.build(REACTIONS)
    cfg = RunConfig(model=ModelConfig(d_model=16, n_layers=1, n_heads=2, ffn_dim=32, max_len=128),
                    train=TrainConfig(precision=precision))
    return YieldPredictor(YieldTransformer(cfg.model, tok.vocab_size), tok, cfg, target_mean=0.5, target_std=3.0)


def test_predictions_are_clipped_and_tta_gives_spread():
    pred = _predictor()
    mean, std = pred.predict(REACTIONS)
    assert mean.shape == (4,) and mean.dtype == np.float32 and (std == 0).all()
    assert ((mean >= 0) & (mean <= 1)).all()
    pred.target_std = 1e-4  # tiny scale: predictions stay strictly inside (0, 1), so TTA spread is visible
    m0, _ = pred.predict(REACTIONS)
    m1, s1 = pred.predict(REACTIONS, tta=4, seed=0)
    m2, s2 = pred.predict(REACTIONS, tta=4, seed=0)
    assert np.array_equal(m1, m2) and np.array_equal(s1, s2)  # TTA is seeded
    assert (s1[:3] > 0).all() and s1[3] >= 0
    assert not np.array_equal(m0, m1)


def test_predict_restores_input_order():
    pred = _predictor()
    mean, _ = pred.predict(REACTIONS)
    rev, _ = pred.predict(REACTIONS[::-1], batch_size=2)
    np.testing.assert_allclose(rev[::-1], mean, atol=1e-6)
