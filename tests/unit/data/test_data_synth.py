"""The synthetic plate: valid chemistry, byte-identical per seed, and a learnable signal."""

from __future__ import annotations

import numpy as np
from rdkit import Chem

from yieldtune.data import DataSpec, load_reactions, split_holdout, write_synthetic_plate
from yieldtune.data.synth import COLUMNS, couple, make_synthetic_plate


def test_full_plate_shape_and_columns():
    df = make_synthetic_plate(seed=0)
    assert list(df.columns) == COLUMNS
    assert len(df) == 6 * 4 * 4 * 3 * 3 == 864
    assert df["Yield"].between(0, 1).all()
    assert df["rxnid"].is_unique


def test_every_smiles_parses_and_product_is_the_cn_coupling():
    df = make_synthetic_plate(seed=0)
    for col in ("Reactant1", "Reactant2", "Product", "Additive", "Solvent"):
        for smi in df[col].unique():
            assert Chem.MolFromSmiles(smi) is not None, (col, smi)
    # Independent check of the product: swap the halogen for the amine N by hand on a few known pairs.
    expected = {
        ("COc1ccc(Br)cc1", "C1COCCN1"): "COc1ccc(N2CCOCC2)cc1",
        ("FC(F)(F)c1ccc(Cl)cc1", "Nc1ccccc1"): "FC(F)(F)c1ccc(Nc2ccccc2)cc1",
        ("Ic1cccnc1", "NCc1ccccc1"): "c1ccc(CNc2cccnc2)cc1",
    }
    canon = lambda s: Chem.MolToSmiles(Chem.MolFromSmiles(s))  # noqa: E731
    for (halide, amine), product in expected.items():
        assert couple(halide, amine) == canon(product)
        rows = df[(df.Reactant1 == halide) & (df.Reactant2 == amine)]
        assert len(rows) == 4 * 3 * 3 and set(rows.Product) == {canon(product)}
    # Atom bookkeeping on every pair: product = halide + amine - HX, no halogen left.
    for (halide, amine), group in df.groupby(["Reactant1", "Reactant2"]):
        p = Chem.MolFromSmiles(group.Product.iloc[0])
        h, a = Chem.MolFromSmiles(halide), Chem.MolFromSmiles(amine)
        assert p.GetNumHeavyAtoms() == h.GetNumHeavyAtoms() + a.GetNumHeavyAtoms() - 1
        assert not p.HasSubstructMatch(Chem.MolFromSmarts("[Cl,Br,I]"))


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    write_synthetic_plate(a, n=200, seed=7)
    write_synthetic_plate(b, n=200, seed=7)
    write_synthetic_plate(c, n=200, seed=8)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert len(a.read_text().splitlines()) == 201
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv", "c.csv"]  # no temp files


def test_default_dataspec_reads_the_plate(tmp_path):
    path = write_synthetic_plate(tmp_path / "plate.csv", n=40, seed=1)
    table = load_reactions(path, DataSpec())
    assert len(table) == 40 and table.ids[0] == "synth1"
    assert table.reactions[0].count(">") == 2


def test_plate_is_learnable_by_a_linear_baseline(tmp_path):
    """One-hot components + least squares explains most of the held-out variance: the signal is real."""
    path = write_synthetic_plate(tmp_path / "plate.csv", seed=0)
    table = load_reactions(path)
    train, val = split_holdout(table, 0.25, seed=0)

    def parts(rxn):
        reactants, agents, _ = rxn.split(">")
        return reactants.split(".") + agents.split(".")

    vocab = sorted({m for r in train.reactions for m in parts(r)})
    index = {m: i for i, m in enumerate(vocab)}

    def features(t):
        x = np.zeros((len(t), len(vocab) + 1))
        x[:, -1] = 1.0
        for row, r in enumerate(t.reactions):
            for m in parts(r):
                if m in index:
                    x[row, index[m]] = 1.0
        return x

    w, *_ = np.linalg.lstsq(features(train), train.yields, rcond=None)
    pred = features(val) @ w
    r2 = 1 - np.sum((val.yields - pred) ** 2) / np.sum((val.yields - val.yields.mean()) ** 2)
    assert r2 > 0.7, r2
