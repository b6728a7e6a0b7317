"""YieldTransformer: padding never changes a prediction, molecules are found and deduplicated, the
hierarchical model reads a reaction as a set; YieldPredictor: clipped yields, TTA spread."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yieldtune.chem.tokenizer import SmilesTokenizer
from yieldtune.config import ModelConfig, RunConfig, TrainConfig
from yieldtune.model import YieldPredictor, YieldTransformer
from yieldtune.model.batching import EncodedReactions
from yieldtune.model.transformer import split_molecules

REACTIONS = [
    "Clc1ccccn1.Cc1ccc(N)cc1.CCN=P(N=P(N(C)C)(N(C)C)N(C)C)(N(C)C)N(C)C.Cc1cc(C)on1>>Cc1ccc(Nc2ccccn2)cc1",
    "Brc1ccc2ncccc2c1.CC#N.CC(=O)O~CC(=O)O~[Pd].CCN(CC)CC.O>>Cc1ccc2c(cnn2C2CCCCO2)c1-c1ccc2ncccc2c1",
    "C/C=C/Br.N[C@@H](C)C(=O)O>[Cu+]>C/C=C/N[C@@H](C)C(=O)O",
    "CCO>>CC=O",
]


@pytest.mark.parametrize("architecture", ["hierarchical", "flat"])
@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
def test_extra_padding_changes_no_prediction(architecture, pooling, positional):
    torch.manual_seed(0)
    tok = SmilesTokenizer.build(REACTIONS)
    cfg = ModelConfig(architecture=architecture, encoder="scratch", d_model=32, n_layers=2, n_heads=4, ffn_dim=64,
                      pooling=pooling, positional=positional, max_len=128)
    model = YieldTransformer.for_tokenizer(cfg, tok).eval()
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


def _ids(tok: SmilesTokenizer, reactions: list[str]) -> torch.Tensor:
    enc = EncodedReactions(tok.encode_many(reactions, 128))
    return torch.from_numpy(enc.pad(np.arange(len(reactions))))


def test_split_molecules_finds_each_molecule_once_with_its_role():
    rxns = ["CC.O>[Na+]>CCO", "O.CC>>CCO", "CCO>>", ""]
    tok = SmilesTokenizer.build(rxns)
    m = split_molecules(_ids(tok, rxns), pad_id=tok.pad_id, cls_id=tok.cls_id, dot_id=tok.index["."],
                        arrow_id=tok.index[">"])
    mols = [[(tok.decode(m.tokens[m.index[b, k]].tolist()), int(m.roles[b, k]))
             for k in range(m.index.shape[1]) if m.present[b, k]] for b in range(len(rxns))]
    assert mols == [[("CC", 0), ("O", 0), ("[Na+]", 1), ("CCO", 2)],
                    [("O", 0), ("CC", 0), ("CCO", 2)],  # the empty agent role is no molecule
                    [("CCO", 0)],
                    []]
    assert m.tokens.shape[0] == 4  # CC, O, [Na+], CCO: a molecule shared by reactions is encoded once
    assert (m.tokens[:, 0] != tok.pad_id).all()  # every molecule starts at position 0 of its own row


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_hierarchical_model_reads_a_reaction_as_a_set_of_molecules_with_roles(pooling):
    torch.manual_seed(0)
    rxns = ["Clc1ccccn1.Cc1ccc(N)cc1.CCN(CC)CC.Cc1cc(C)on1>>Cc1ccc(Nc2ccccn2)cc1",
            "Cc1cc(C)on1.CCN(CC)CC.Clc1ccccn1.Cc1ccc(N)cc1>>Cc1ccc(Nc2ccccn2)cc1",  # same molecules, reordered
            "Clc1ccccn1.Cc1ccc(N)cc1.CCN(CC)CC>Cc1cc(C)on1>Cc1ccc(Nc2ccccn2)cc1",  # the additive as an agent
            "Clc1ccccn1.Cc1ccc(N)cc1.CCN(CC)CC.Cc1cc(C)on1>>", ""]
    tok = SmilesTokenizer.build(rxns)
    cfg = ModelConfig(encoder="scratch", d_model=32, n_layers=2, reaction_layers=2, n_heads=4, ffn_dim=64,
                      pooling=pooling, dropout=0.0, max_len=128)
    model = YieldTransformer.for_tokenizer(cfg, tok).eval()
    with torch.no_grad():
        out = model(_ids(tok, rxns))
    assert torch.isfinite(out).all()  # even a reaction without molecules
    torch.testing.assert_close(out[0], out[1], atol=1e-5, rtol=0)  # order within a role does not matter
    assert abs(float(out[0] - out[2])) > 1e-4  # the role does
    flat = YieldTransformer.for_tokenizer(cfg.model_copy(update={"architecture": "flat"}), tok).eval()
    with torch.no_grad():
        out_flat = flat(_ids(tok, rxns[:2]))
    assert abs(float(out_flat[0] - out_flat[1])) > 1e-4  # the flat model is order-sensitive, for contrast


def test_molecules_are_encoded_in_length_chunks_without_changing_predictions(monkeypatch):
    import functools

    import yieldtune.model.transformer as transformer

    tok = SmilesTokenizer.build(REACTIONS)
    ids = _ids(tok, REACTIONS)
    seps = dict(pad_id=tok.pad_id, cls_id=tok.cls_id, dot_id=tok.index["."], arrow_id=tok.index[">"])
    m = split_molecules(ids, **seps, max_chunks=4, min_chunk_rows=2)
    lengths = (m.tokens != tok.pad_id).sum(1).tolist()
    assert lengths == sorted(lengths) and len(m.chunks) == 4
    edges = [(lo, hi) for lo, hi, _ in m.chunks]  # contiguous, non-empty, covering every row
    assert edges[0][0] == 0 and edges[-1][1] == len(lengths) and all(lo < hi for lo, hi in edges)
    assert all(hi == next_lo for (_, hi), (next_lo, _) in zip(edges, edges[1:]))
    assert all(width == max(lengths[lo:hi]) for lo, hi, width in m.chunks)  # each padded to its own longest
    torch.manual_seed(0)
    cfg = ModelConfig(encoder="scratch", d_model=32, n_layers=2, n_heads=4, ffn_dim=64, dropout=0.0, max_len=128)
    model = YieldTransformer.for_tokenizer(cfg, tok).eval()
    with torch.no_grad():
        chunked = model(ids)
        monkeypatch.setattr(transformer, "split_molecules",
                            functools.partial(split_molecules, max_chunks=1, min_chunk_rows=1))
        one_block = model(ids)
    torch.testing.assert_close(chunked, one_block, atol=1e-5, rtol=0)


def test_hierarchical_model_trains_on_shared_molecules():
    """Gradients reach the token encoder through the deduplicated molecules (every weight learns)."""
    torch.manual_seed(0)
    tok = SmilesTokenizer.build(REACTIONS)
    cfg = ModelConfig(encoder="scratch", d_model=16, n_layers=1, reaction_layers=1, n_heads=2, ffn_dim=32, dropout=0.0,
                      max_len=128)
    model = YieldTransformer.for_tokenizer(cfg, tok).train()
    model(_ids(tok, REACTIONS + REACTIONS)).pow(2).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == [], missing


def _predictor(precision="fp32") -> YieldPredictor:
    torch.manual_seed(1)
    tok = SmilesTokenizer.build(REACTIONS)
    cfg = RunConfig(model=ModelConfig(encoder="scratch", d_model=16, n_layers=1, n_heads=2, ffn_dim=32, max_len=128),
                    train=TrainConfig(precision=precision))
    return YieldPredictor(YieldTransformer.for_tokenizer(cfg.model, tok), tok, cfg, target_mean=0.5, target_std=3.0)


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
