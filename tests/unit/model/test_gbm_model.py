"""The GBM family's predictor: features from the shared featurizers and cache, LightGBM's text model
format on disk, and refusal of anything else."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from yieldtune.config import RunConfig
from yieldtune.errors import ModelFileError


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    from yieldtune.data.load import load_reactions
    from yieldtune.data.synth import write_synthetic_plate
    from yieldtune.data.table import DataSpec
    from yieldtune.train.gbm import fit_gbm

    root = tmp_path_factory.mktemp("gbm")
    write_synthetic_plate(root / "plate.csv", n=80)
    table = load_reactions(root / "plate.csv", DataSpec())
    train, val = table.subset(range(60)), table.subset(range(60, 80))
    config = RunConfig(family="gbm").with_overrides({"gbm.n_rounds": 40, "gbm.num_leaves": 4,
                                                     "gbm.min_child_samples": 3, "gbm.fp_bits": 128,
                                                     "gbm.report_every": 10, "gbm.early_stopping_rounds": 0})
    reports = []
    result = fit_gbm(config, train, val, cache_dir=root / "cache", on_report=reports.append, threads=1)
    return root, train, val, result, reports


def test_features_per_role_and_reports_every_n_rounds(fitted):
    from yieldtune.model.gbm import ReactionFeatures, reaction_roles

    root, train, val, result, reports = fitted
    assert [r.round for r in reports] == [10, 20, 30, 40]
    assert result.best_iteration == 40 and result.val_predictions.shape == (20,)
    features = result.predictor.features
    x = features.transform(val.reactions[:3])
    assert x.shape == (3, features.n_features) == (3, 3 * 128 + 3 * features._featurizers()["rdkit2d"].dim + 128)
    reactants, agents, products = reaction_roles(val.reactions[0])
    assert reactants and products
    # the same reaction written with its molecules in another order gives the same row
    shuffled = ">".join(".".join(reversed(part)) for part in reaction_roles(val.reactions[0]))
    assert np.array_equal(features.transform([shuffled]), x[:1], equal_nan=True)
    # a second featurizer over the same cache reads what the first stored
    again = ReactionFeatures.for_config(result.predictor.config, root / "cache")
    assert np.array_equal(again.transform(val.reactions[:3]), x, equal_nan=True)
    assert again.cache.hits > 0 and again.cache.misses == 0


def test_saved_as_lightgbm_text_and_loaded_with_the_same_predictions(fitted, tmp_path):
    from yieldtune.ensemble.format import load_member_predictor
    from yieldtune.model.gbm import MODEL_FILE

    _, _, val, result, _ = fitted
    result.predictor.save(tmp_path / "m")
    assert (tmp_path / "m" / MODEL_FILE).read_text().startswith("tree\n")
    loaded = load_member_predictor(tmp_path / "m")
    assert type(loaded).__name__ == "GBMPredictor"
    a, sa = result.predictor.predict(val.reactions)
    b, sb = loaded.predict(val.reactions)
    assert np.array_equal(a, b) and not sb.any()


def test_a_pickle_in_place_of_the_model_file_is_refused(fitted, tmp_path):
    from yieldtune.model.gbm import MODEL_FILE, GBMPredictor

    _, _, _, result, _ = fitted
    result.predictor.save(tmp_path / "m")
    (tmp_path / "m" / MODEL_FILE).write_bytes(pickle.dumps({"booster": "x"}))
    with pytest.raises(ModelFileError, match="not a LightGBM text model"):
        GBMPredictor.load(tmp_path / "m")


def test_a_model_that_does_not_match_its_feature_settings_is_refused(fitted, tmp_path):
    import json

    from yieldtune.model.gbm import SETTINGS_FILE, GBMPredictor

    _, _, _, result, _ = fitted
    result.predictor.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / SETTINGS_FILE).read_text())
    meta["run_config"]["gbm"]["fp_bits"] = 256
    (tmp_path / "m" / SETTINGS_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="features"):
        GBMPredictor.load(tmp_path / "m")


def test_role_sums_add_each_molecule_once_per_occurrence_and_mark_missing_descriptors():
    """Per role: the sum of its molecules' rows (a molecule written twice counts twice), 0 for an empty role,
    NaN only where no molecule of the role has the value."""
    from yieldtune.chem.featurizers import MoleculeFeaturizer
    from yieldtune.model.gbm import _role_sums

    class Toy(MoleculeFeaturizer):  # [heavy atoms, 1 unless the molecule has N, 2 unless it has O]
        name = "toy"

        @property
        def dim(self) -> int:
            return 3

        def featurize(self, smiles):
            from rdkit import Chem

            return np.array([[Chem.MolFromSmiles(s).GetNumHeavyAtoms(), np.nan if "N" in s else 1.0,
                              np.nan if "O" in s else 2.0] for s in smiles], dtype=np.float32)

    x = _role_sums(["CCO.CN>[Cs+].[Cs+]>CCN", "CN>>", "OCCO.O>>"], Toy(), None, column_chunk=2)
    nan = np.nan
    expected = np.array([[5, 1, 2, 2, 2, 4, 3, nan, 2],
                         [2, nan, 2, 0, 0, 0, 0, 0, 0],
                         [5, 2, nan, 0, 0, 0, 0, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(x, expected)
