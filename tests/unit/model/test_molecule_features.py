"""Molecule features inside the model: slot alignment, training, saving and prediction on unseen molecules."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from yieldtune.chem.augment import augment_reaction, canonical_molecule
from yieldtune.chem.tokenizer import SmilesTokenizer
from yieldtune.config import RunConfig
from yieldtune.data.table import ReactionTable
from yieldtune.model.domain import Domain
from yieldtune.model.features import MoleculeFeatures, reaction_slots
from yieldtune.model.predictor import YieldPredictor
from yieldtune.model.transformer import split_molecules
from yieldtune.train.trainer import Trainer

HALIDES = ["Ic1ccccc1", "Brc1ccccc1", "Clc1ccccc1", "Ic1ccc(C)cc1"]
AMINES = ["C1COCCN1", "C1CCNCC1", "Nc1ccccc1"]
BASES = ["CC(C)(C)[O-].[Na+]", "O=C([O-])[O-].[Cs+].[Cs+]", "CCN(CC)CC"]
UNSEEN_HALIDE = "Clc1ccncc1"


def plate(halides=HALIDES) -> ReactionTable:
    rng = np.random.default_rng(0)
    effect = {m: rng.normal(0, 0.2) for m in [*HALIDES, UNSEEN_HALIDE, *AMINES, *BASES]}
    rxns, ys = [], []
    for h, a, b in itertools.product(halides, AMINES, BASES):
        rxns.append(f"{h}.{a}>{b}.[Pd]>c1ccccc1")
        ys.append(np.clip(0.5 + effect[h] + effect[a] + effect[b], 0, 1))
    return ReactionTable(rxns, np.array(ys, dtype=np.float32))


def cfg(features=("morgan", "rdkit2d"), **model) -> RunConfig:
    return RunConfig.model_validate({
        "model": {"d_model": 32, "n_layers": 1, "reaction_layers": 1, "n_heads": 2, "ffn_dim": 64, "max_len": 128,
                  "molecule_features": list(features), "morgan_bits": 256, **model},
        "train": {"epochs": 2, "batch_size": 8, "scheduler": "constant", "warmup_frac": 0.0, "precision": "fp32",
                  "num_threads": 1}})


@pytest.mark.parametrize("rxn", [
    "Ic1ccccc1.C1COCCN1>CC(C)(C)[O-].[Na+].[Pd]>c1ccccc1",
    # a dative bond's '>' (RDKit writes metal complexes so) is not a role separator, for tokens or features
    "Ic1ccccc1.C1COCCN1>CC(C)(C)[O-].[Na+].[NH3]->[Pt](Cl)Cl>c1ccccc1",
])
def test_slots_follow_the_models_molecule_cut_and_randomized_molecules(rxn):
    variant = augment_reaction(rxn, np.random.default_rng(3))
    assert variant != rxn
    slots, roles, molecules = reaction_slots([rxn, variant])
    tok = SmilesTokenizer.build([rxn, variant])
    ids = _pad([tok.encode(r, 128) for r in (rxn, variant)])
    mols = split_molecules(ids, pad_id=0, cls_id=tok.cls_id, dot_id=tok.index["."], arrow_id=tok.index[">"])
    k = mols.present.shape[1]
    assert slots.shape[1] >= k
    for i, _ in enumerate((rxn, variant)):
        # the token slot k decodes to a molecule whose canonical form is the feature slot's molecule
        for j in range(k):
            if not mols.present[i, j]:
                assert slots[i, j] == -1
                continue
            text = tok.decode(mols.tokens[mols.index[i, j]].tolist())
            assert molecules[slots[i, j]] == canonical_molecule(text)
            assert roles[i, j] == int(mols.roles[i, j])
    # both reactions use the same set of canonical molecules
    assert sorted(slots[0][slots[0] >= 0]) == sorted(slots[1][slots[1] >= 0])
    assert roles[0][slots[0] >= 0].tolist() == [0, 0, 1, 1, 1, 2]  # the complex is one agent


def _pad(seqs):
    width = max(len(s) for s in seqs)
    out = np.zeros((len(seqs), width), dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return torch.from_numpy(out)


@pytest.mark.parametrize("architecture,combine", [("hierarchical", "add"), ("hierarchical", "concat"),
                                                  ("hierarchical", "gate"), ("flat", "add")])
def test_training_with_features_and_save_load_round_trip(tmp_path, architecture, combine):
    table = plate()
    result = Trainer(cfg(architecture=architecture, feature_combine=combine)).fit(
        table.subset(range(30)), table.subset(range(30, 36)))
    predictor = result.predictor
    assert predictor.model.feature_dim == predictor.features.dim == 256 + predictor.features.featurizers[1].dim
    before, _ = predictor.predict(table.reactions)
    predictor.save(tmp_path / "m")
    loaded = YieldPredictor.load(tmp_path / "m")
    # scaling statistics saved and reloaded exactly
    for a, b in zip(predictor.features.scalers, loaded.features.scalers):
        assert (a is None) == (b is None)
        if a is not None:
            assert np.array_equal(a.center, b.center) and np.array_equal(a.scale, b.scale)
    after, _ = loaded.predict(table.reactions)
    np.testing.assert_allclose(before, after, atol=1e-6)


def test_features_change_predictions_and_augmentation_keeps_working():
    table = plate()
    config = cfg(features=("morgan",), encoder="scratch").with_overrides({"train.augment_ratio": 1.0})
    predictor = Trainer(config).fit(table.subset(range(30))).predictor
    # zeroing the features changes the prediction: they are really used
    feats = predictor.reaction_features(table.reactions[:4])
    from yieldtune.model.batching import EncodedReactions

    enc = EncodedReactions(predictor.tokenizer.encode_many(table.reactions[:4], 128))
    with_f = predictor.predict_encoded(enc, 8, feats)
    feats.table.zero_()
    assert not np.allclose(with_f, predictor.predict_encoded(enc, 8, feats))
    # a randomized copy of a reaction looks up exactly the canonical molecules' rows
    variant = augment_reaction(table.reactions[0], np.random.default_rng(1))
    a, b = predictor.reaction_features([table.reactions[0], variant]).batch(np.array([0, 1]))
    assert sorted(map(tuple, a.tolist())) == sorted(map(tuple, b.tolist()))
    mean, std = predictor.predict(table.reactions[:3], tta=2)
    assert np.isfinite(mean).all() and (std > 0).any()  # the token encoder reads each spelling


def test_a_model_without_a_token_encoder_gives_every_spelling_one_prediction():
    table = plate()
    config = cfg(features=("morgan",)).with_overrides({"train.augment_ratio": 1.0})
    predictor = Trainer(config).fit(table.subset(range(30))).predictor
    assert predictor.config.model.encoder == "none"
    plain, _ = predictor.predict(table.reactions[:3])
    mean, std = predictor.predict(table.reactions[:3], tta=4)
    np.testing.assert_allclose(mean, plain, atol=1e-5)  # up to the order molecules are summed in
    assert (std < 1e-5).all()


def test_a_molecule_absent_from_training_is_featurized_at_prediction_time(tmp_path):
    train = plate(HALIDES)
    predictor = Trainer(cfg()).fit(train).predictor
    predictor.save(tmp_path / "m")
    loaded = YieldPredictor.load(tmp_path / "m")
    new = f"{UNSEEN_HALIDE}.C1COCCN1>CCN(CC)CC.[Pd]>c1ccccc1"
    feats = loaded.reaction_features([new])
    assert canonical_molecule(UNSEEN_HALIDE) in feats.molecules
    row = feats.table[feats.molecules.index(canonical_molecule(UNSEEN_HALIDE))]
    expected = loaded.features.transform([canonical_molecule(UNSEEN_HALIDE)])[0]
    assert row.abs().sum() > 0 and np.allclose(row.numpy(), expected)
    # its features differ from every training halide's: the model gets information about it
    train_rows = loaded.features.transform([canonical_molecule(h) for h in HALIDES])
    assert not any(np.allclose(expected, r) for r in train_rows)
    mean, _ = loaded.predict([new])
    assert np.isfinite(mean).all()


def test_saved_features_with_another_width_are_refused(tmp_path):
    import json

    from yieldtune.errors import ModelFileError

    predictor = Trainer(cfg(features=("morgan",))).fit(plate()).predictor
    predictor.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    meta["molecule_features"]["featurizers"][0]["dim"] = 999
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="molecule_features"):
        YieldPredictor.load(tmp_path / "m")


def test_applicability_is_lower_for_an_unlike_molecule(tmp_path):
    train = plate(HALIDES)
    predictor = Trainer(cfg(features=())).fit(train).predictor
    predictor.save(tmp_path / "m")
    domain = YieldPredictor.load(tmp_path / "m").domain
    assert isinstance(domain, Domain)
    seen = train.reactions[0]
    unlike = "C1CCC2(CC1)OCCO2.C1COCCN1>CC(C)(C)[O-].[Na+].[Pd]>c1ccccc1"  # a ketal, nothing like a halide
    sim = domain.similarity([seen, unlike])
    assert sim.shape == (2, 4)
    assert sim[0, 0] == pytest.approx(1.0) and sim[0, 3] == pytest.approx(1.0)
    assert sim[1, 0] < 0.5 and sim[1, 3] < sim[0, 3]
    assert sim[1, 1] == pytest.approx(1.0)  # its agents were all seen


def test_feature_table_is_built_once_per_distinct_molecule(tmp_path):
    from yieldtune.chem.feature_cache import FeatureCache

    cache = FeatureCache(tmp_path)
    features = MoleculeFeatures.from_config(cfg(features=("morgan",)).model)
    reactions = plate().reactions
    slots, _, molecules = reaction_slots(reactions)
    features.fit(molecules, cache)
    features.transform(molecules, cache)
    assert cache.misses == len(molecules) == len(set(molecules))
    assert len(molecules) == len(HALIDES) + len(AMINES) + 5 + 2  # a salt's ions are molecules; + [Pd], benzene


def test_encoder_none_reads_molecules_only_through_their_features(tmp_path):
    table = plate()
    config = cfg(features=("morgan",), encoder="none", feature_dropout=0.3)
    predictor = Trainer(config).fit(table.subset(range(30)), table.subset(range(30, 36))).predictor
    model = predictor.model
    assert not hasattr(model, "layers") and not hasattr(model, "embed")  # no token encoder at all
    # two spellings of one molecule have the same features, hence the same prediction (no token path)
    rxn = table.reactions[0]
    variant = augment_reaction(rxn, np.random.default_rng(5))
    assert variant != rxn
    a, b = predictor.predict([rxn, variant])[0]
    assert a == pytest.approx(b, abs=1e-6)
    # feature dropout acts in training only: evaluation is deterministic, training is not
    feats = predictor.reaction_features(table.reactions[:4])
    ids = _pad([predictor.tokenizer.encode(r, 128) for r in table.reactions[:4]])
    f = feats.batch(np.arange(4))
    model.eval()
    assert torch.equal(model(ids, f), model(ids, f))
    model.train()
    assert not torch.equal(model(ids, f), model(ids, f))
    model.eval()
    predictor.save(tmp_path / "m")
    np.testing.assert_allclose(YieldPredictor.load(tmp_path / "m").predict(table.reactions)[0],
                               predictor.predict(table.reactions)[0], atol=1e-6)


def test_encoder_none_builds_no_combining_layer_and_loads_files_that_have_one(tmp_path):
    """Without a token encoder there is nothing to combine the features with, so ``gate`` / ``concat`` build no
    ``feature_mix``; a model saved while they still built one (dead weights) loads and predicts the same."""
    from safetensors.torch import load_file, save_file

    from yieldtune.model.predictor import WEIGHTS

    table = plate()
    predictor = Trainer(cfg(features=("morgan",), encoder="none", feature_combine="gate")).fit(
        table.subset(range(30))).predictor
    assert not hasattr(predictor.model, "feature_mix")
    predictor.save(tmp_path / "m")
    weights = tmp_path / "m" / WEIGHTS
    state = load_file(str(weights))
    d = predictor.config.model.d_model
    save_file({**state, "feature_mix.weight": torch.ones(d, 2 * d), "feature_mix.bias": torch.ones(d)}, str(weights))
    np.testing.assert_allclose(YieldPredictor.load(tmp_path / "m").predict(table.reactions)[0],
                               predictor.predict(table.reactions)[0], atol=1e-6)


def test_encoder_none_needs_features_and_the_hierarchical_model():
    from yieldtune.errors import ConfigError

    with pytest.raises(ConfigError, match="encoder.*needs model.molecule_features"):
        RunConfig().with_overrides({"model.encoder": "none", "model.molecule_features": []})
    with pytest.raises(ConfigError, match="hierarchical"):
        RunConfig().with_overrides({"model.encoder": "none", "model.architecture": "flat"})


def test_an_unquoted_list_in_set_says_how_to_write_it():
    """A shell strips the quotes of ``--set model.molecule_features=["morgan"]``: the error must say so."""
    from yieldtune.errors import ConfigError

    with pytest.raises(ConfigError, match=r"molecule_features: expected a list .*'\[morgan\]'.*single quotes"):
        RunConfig().with_overrides(["model.molecule_features=[morgan]"])
    assert RunConfig().with_overrides(['model.molecule_features=["morgan"]']).model.molecule_features == ("morgan",)


@pytest.mark.parametrize("silence", [True, False])
def test_bits_no_training_molecule_has_change_nothing_when_silenced(silence):
    config = cfg(features=("morgan",), encoder="none", silence_unseen_features=silence).with_overrides(
        {"train.ema_decay": 0.9})
    predictor = Trainer(config).fit(plate(HALIDES)).predictor
    new = f"{UNSEEN_HALIDE}.C1COCCN1>CCN(CC)CC.[Pd]>c1ccccc1"
    feats = predictor.reaction_features([new])
    train_rows = torch.from_numpy(predictor.features.transform(reaction_slots(plate(HALIDES).reactions)[2]))
    unseen = (train_rows == 0).all(dim=0)
    row = feats.molecules.index(canonical_molecule(UNSEEN_HALIDE))
    assert (feats.table[row][unseen] > 0).any()  # the new halide (a pyridine) has bits no training molecule has
    weights = predictor.model.feature_proj[0].weight
    ids = _pad([predictor.tokenizer.encode(new, 128)])
    with torch.no_grad():
        before = predictor.model(ids, feats.batch(np.arange(1)))
        feats.table[row, unseen] = 0.0
        after = predictor.model(ids, feats.batch(np.arange(1)))
    if silence:  # trained (and averaged) with zero weights on those bits: they cannot move the prediction
        assert torch.count_nonzero(weights[:, unseen]) == 0 and torch.count_nonzero(weights[:, ~unseen]) > 0
        assert torch.equal(before, after)
    else:  # their random initial weights stay and shift a new molecule's prediction
        assert torch.count_nonzero(weights[:, unseen]) > 0
        assert not torch.equal(before, after)


def test_the_encoder_and_feature_dropout_defaults_follow_the_features():
    """Features-only by default (chosen on validation, README Round 4); with no features, or the flat model, the
    token encoder without feature dropout, as it was measured; explicit values always win."""
    from yieldtune.config import ModelConfig

    default = RunConfig()
    assert (default.model.encoder, default.model.feature_dropout) == ("none", 0.5)
    assert default.model.model_fields_set == set()  # derived, not "given": study files' [fixed] stay as written
    token_only = default.with_overrides({"model.molecule_features": []})
    assert (token_only.model.encoder, token_only.model.feature_dropout) == ("scratch", 0.0)
    assert default.with_overrides({"model.architecture": "flat"}).model.encoder == "scratch"
    scratch = default.with_overrides({"model.encoder": "scratch"})
    assert (scratch.model.encoder, scratch.model.feature_dropout) == ("scratch", 0.0)
    assert ModelConfig(encoder="scratch", feature_dropout=0.3).feature_dropout == 0.3
    assert RunConfig.model_validate(default.model_dump()) == default  # a saved config reloads as itself
    with pytest.raises(ValueError, match="needs model.molecule_features"):
        ModelConfig(encoder="none", molecule_features=[])
