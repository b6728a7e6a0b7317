"""Molecule featurizers and the on-disk feature cache, with real RDKit, real SQLite and the real ALBERT."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from helpers import write_locked_sqlite
from yieldtune.chem.augment import randomize_smiles
from yieldtune.chem.feature_cache import FeatureCache, canonical_molecules, molecule_features
from yieldtune.chem.featurizers import FEATURIZERS, RobustScaler, make_featurizer
from yieldtune.errors import ConfigError

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
MOLS = [ASPIRIN, "c1ccccc1Br", "CCN(CC)CC", "O=C([O-])[O-].[K+].[K+]", "CC(C)(C)P(C(C)(C)C)C(C)(C)C"]
REPO = Path(__file__).resolve().parents[3]


def _featurizer(name):
    return make_featurizer(name, radius=2, n_bits=256) if name == "morgan" else make_featurizer(name)


@pytest.mark.parametrize("name", list(FEATURIZERS))
def test_randomized_smiles_get_the_canonical_molecules_features(name):
    f = _featurizer(name)
    rng = np.random.default_rng(0)
    variants = [randomize_smiles(ASPIRIN, rng) for _ in range(3)]
    assert len(set(variants + [ASPIRIN])) > 1  # really different strings
    x = molecule_features([ASPIRIN, *variants], f)
    assert x.shape == (4, f.dim) and x.dtype == np.float32
    assert np.array_equal(np.nan_to_num(x[0]), np.nan_to_num(x[1])) and all(
        np.array_equal(np.nan_to_num(x[0]), np.nan_to_num(r)) for r in x[1:])
    assert np.abs(np.nan_to_num(x[0])).sum() > 0


def test_morgan_counts_and_parameters_change_the_key():
    f = make_featurizer("morgan", radius=2, n_bits=512)
    x = f.featurize(["CCCCCC", "C"])
    assert x.max() > 1  # counts, not bits: hexane repeats the CH2 environment
    assert f.cache_key != make_featurizer("morgan", radius=3, n_bits=512).cache_key
    assert "rdkit=" in f.cache_key
    with pytest.raises(ConfigError, match="n_bits"):
        make_featurizer("morgan", n_bits=3)
    with pytest.raises(ConfigError, match="unknown molecule featurizer 'ecfp'"):
        make_featurizer("ecfp")


def test_rdkit2d_handles_nonfinite_and_the_scaler_round_trips():
    f = make_featurizer("rdkit2d")
    x = f.featurize(MOLS + ["[Pd]"])
    assert x.shape == (len(MOLS) + 1, f.dim)
    assert not np.isinf(x).any()  # overflow became NaN, never inf
    scaler = RobustScaler.fit(x[:4])
    z = scaler.transform(x)
    assert np.isfinite(z).all() and np.abs(z).max() <= scaler.clip
    again = RobustScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    assert np.array_equal(again.transform(x), z)
    with pytest.raises(ValueError):
        RobustScaler.from_dict({"center": [0.0], "scale": [0.0]})


def test_cache_hits_misses_and_invalidation(tmp_path):
    cache = FeatureCache(tmp_path)
    f = make_featurizer("morgan", radius=2, n_bits=128)
    calls = []

    def counting(keys):
        calls.append(list(keys))
        return f.featurize(keys)

    smiles = [MOLS[0], MOLS[1], MOLS[0], randomize_smiles(MOLS[1], np.random.default_rng(1))]
    canon = canonical_molecules(smiles)
    first = cache.get_or_compute(f.cache_key, canon, counting)
    assert calls == [[canon[0], canon[1]]]  # once per distinct canonical molecule
    assert (cache.hits, cache.misses) == (0, 2)
    again = FeatureCache(tmp_path)  # a new process would see the same file
    second = again.get_or_compute(f.cache_key, canon + [MOLS[2]], counting)
    assert calls[-1] == [MOLS[2]] and (again.hits, again.misses) == (2, 1)
    assert np.array_equal(first, second[:4])
    # another featurizer setting (or RDKit version: it is in the key) never reads these rows
    other = make_featurizer("morgan", radius=1, n_bits=128)
    assert other.cache_key != f.cache_key
    third = FeatureCache(tmp_path)
    molecule_features(smiles, other, cache=third)
    assert (third.hits, third.misses) == (0, 2)
    # a damaged row (wrong byte length) is recomputed, not trusted
    import sqlite3

    con = sqlite3.connect(tmp_path / "features.sqlite")
    with con:
        con.execute("UPDATE vectors SET data = x'00' WHERE key = ?", (canon[0],))
    con.close()
    fourth = FeatureCache(tmp_path)
    assert np.array_equal(fourth.get_or_compute(f.cache_key, canon, f.featurize), first)
    assert fourth.misses == 1


def _worker(directory: str, out: str) -> None:
    f = make_featurizer("morgan", radius=2, n_bits=64)
    x = molecule_features(MOLS * 20, f, cache=FeatureCache(directory))
    np.save(out, x)


def test_concurrent_workers_share_one_cache(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(str(tmp_path / "cache"), str(tmp_path / f"{i}.npy"))) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    results = [np.load(tmp_path / f"{i}.npy") for i in range(3)]
    assert all(np.array_equal(results[0], r) for r in results[1:])
    import sqlite3

    con = sqlite3.connect(tmp_path / "cache" / "features.sqlite")
    assert con.execute("SELECT COUNT(*) FROM vectors").fetchone()[0] == len(MOLS)
    con.close()


def test_a_new_cache_file_locked_by_another_worker_is_waited_for(tmp_path):
    """Several workers opening a fresh cache at once: one holds the write lock while another switches the file
    to WAL, which SQLite refuses at once; the second waits and both keep their rows."""
    f = make_featurizer("morgan", radius=2, n_bits=64)
    with write_locked_sqlite(tmp_path / "features.sqlite", seconds=0.5):
        x = molecule_features(MOLS, f, cache=FeatureCache(tmp_path))
    again = FeatureCache(tmp_path)
    assert np.array_equal(molecule_features(MOLS, f, cache=again), x) and again.misses == 0


BLOCK_TRANSFORMERS = textwrap.dedent("""
    import sys
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name == "transformers" or name.startswith("transformers."):
                raise ModuleNotFoundError("No module named 'transformers'", name=name)
            return None
    sys.meta_path.insert(0, _Block())
""")


def test_missing_extra_is_one_clear_error(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BLOCK_TRANSFORMERS)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO / "src")]))
    code = ("from yieldtune.chem.featurizers import make_featurizer\n"
            "from yieldtune.errors import ConfigError\n"
            "try:\n    make_featurizer('pretrained')\nexcept ConfigError as e:\n    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ERR ") and "yieldtune[pretrained]" in out.stdout and "transformers" in out.stdout
    assert len(out.stdout.strip().splitlines()) == 1
