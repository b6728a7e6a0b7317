"""A synthetic Buchwald–Hartwig-like HTE plate with a hidden, learnable yield function.

Real, valid SMILES (aryl halides x amines x ligands x bases x solvents, products built by an RDKit
reaction template) with a known yield function, so tests and the quickstart can check that tuning finds
signal without downloading anything. The same seed always gives a byte-identical file.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from yieldtune.files import write_atomic

# name, SMILES, halogen, effect of the ring substituent (electron-poor rings add oxidatively faster)
ARYL_HALIDES = [
    ("4-chloroanisole", "COc1ccc(Cl)cc1", "Cl", -0.3),
    ("4-bromoanisole", "COc1ccc(Br)cc1", "Br", -0.3),
    ("4-iodoanisole", "COc1ccc(I)cc1", "I", -0.3),
    ("4-chlorobenzotrifluoride", "FC(F)(F)c1ccc(Cl)cc1", "Cl", 0.3),
    ("4-bromobenzotrifluoride", "FC(F)(F)c1ccc(Br)cc1", "Br", 0.3),
    ("3-iodopyridine", "Ic1cccnc1", "I", 0.1),
]
AMINES = [
    ("morpholine", "C1COCCN1", 0.4),
    ("piperidine", "C1CCNCC1", 0.2),
    ("aniline", "Nc1ccccc1", -0.1),
    ("benzylamine", "NCc1ccccc1", -0.5),
]
LIGANDS = [
    ("XPhos", "CC(C)c1cc(C(C)C)c(-c2ccccc2P(C2CCCCC2)C2CCCCC2)c(C(C)C)c1", 0.5),
    ("tBuXPhos", "CC(C)c1cc(C(C)C)c(-c2ccccc2P(C(C)(C)C)C(C)(C)C)c(C(C)C)c1", 0.2),
    ("BrettPhos", "COc1ccc(OC)c(P(C2CCCCC2)C2CCCCC2)c1-c1c(C(C)C)cc(C(C)C)cc1C(C)C", 0.7),
    ("RuPhos", "CC(C)Oc1cccc(OC(C)C)c1-c1ccccc1P(C1CCCCC1)C1CCCCC1", -0.2),
]
BASES = [
    ("NaOtBu", "CC(C)(C)[O-].[Na+]", 0.6),
    ("Cs2CO3", "O=C([O-])[O-].[Cs+].[Cs+]", 0.0),
    ("K3PO4", "O=P([O-])([O-])[O-].[K+].[K+].[K+]", -0.5),
]
SOLVENTS = [
    ("toluene", "Cc1ccccc1", 0.2),
    ("1,4-dioxane", "C1COCCO1", 0.0),
    ("tert-butanol", "CC(C)(C)O", -0.3),
]
PD_SOURCE = "CC(=O)[O-].CC(=O)[O-].[Pd+2]"  # Pd(OAc)2, the same in every well
HALOGEN_EFFECT = {"I": 0.9, "Br": 0.4, "Cl": -0.9}
# Chlorides need bulky, electron-rich ligands: a ligand x halide interaction the model has to find.
LIGAND_HALOGEN = {("BrettPhos", "Cl"): 0.8, ("tBuXPhos", "Cl"): 0.6, ("RuPhos", "Cl"): -0.4, ("XPhos", "I"): -0.3}
BASE_SOLVENT = {("NaOtBu", "tert-butanol"): -0.4, ("K3PO4", "tert-butanol"): 0.4}

# C-N coupling: aryl carbon bearing Cl/Br/I + amine N-H (not an amide) -> aryl amine.
CN_COUPLING = "[c:1][Cl,Br,I].[N;!H0;!$(NC=O):2]>>[c:1][N:2]"

COLUMNS = ["rxnid", "Reactant1", "Reactant2", "Product", "Additive", "Solvent", "Yield"]


def couple(aryl_halide: str, amine: str) -> str:
    """Canonical SMILES of the C–N coupling product, built with an RDKit reaction template."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    rxn = AllChem.ReactionFromSmarts(CN_COUPLING)
    products = set()
    for (prod,) in rxn.RunReactants((Chem.MolFromSmiles(aryl_halide), Chem.MolFromSmiles(amine))):
        Chem.SanitizeMol(prod)
        products.add(Chem.MolToSmiles(prod))
    if len(products) != 1:
        raise ValueError(f"expected one coupling product for {aryl_halide} + {amine}, got {sorted(products)}")
    return products.pop()


def _logit(halide, amine, ligand, base, solvent) -> float:
    _, _, halogen, ring = halide
    return (-0.2 + HALOGEN_EFFECT[halogen] + ring + amine[2] + ligand[2] + base[2] + solvent[2]
            + LIGAND_HALOGEN.get((ligand[0], halogen), 0.0) + BASE_SOLVENT.get((base[0], solvent[0]), 0.0))


def make_synthetic_plate(seed: int = 0, noise: float = 0.05):
    """The full plate (6 x 4 x 4 x 3 x 3 = 864 wells) as a DataFrame with the aichem2024 column layout.

    Rows are shuffled with ``seed`` (so "first N rows" is a random split, as in the HTE benchmarks);
    yields are sigmoid(hidden logit) plus Gaussian ``noise``, clipped to [0, 1] and rounded to 4 decimals.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    products = {(h[1], a[1]): couple(h[1], a[1]) for h in ARYL_HALIDES for a in AMINES}
    records = []
    for halide, amine, ligand, base, solvent in itertools.product(ARYL_HALIDES, AMINES, LIGANDS, BASES, SOLVENTS):
        clean = 1.0 / (1.0 + np.exp(-_logit(halide, amine, ligand, base, solvent)))
        records.append((halide[1], amine[1], products[(halide[1], amine[1])],
                        f"{ligand[1]}.{base[1]}.{PD_SOURCE}", solvent[1], clean))
    order = rng.permutation(len(records))
    noisy = np.array([r[5] for r in records]) + rng.normal(0.0, noise, len(records)) if noise > 0 else \
        np.array([r[5] for r in records])
    rows = []
    for i, j in enumerate(order):
        r = records[j]
        y = float(np.clip(noisy[j], 0.0, 1.0))
        rows.append((f"synth{i + 1}", r[0], r[1], r[2], r[3], r[4], round(y, 4)))
    return pd.DataFrame(rows, columns=COLUMNS)


def write_synthetic_plate(path: str | Path, n: int | None = None, seed: int = 0, noise: float = 0.05) -> Path:
    """Write the plate (or its first ``n`` shuffled wells) as CSV, atomically; same arguments, same bytes."""
    df = make_synthetic_plate(seed=seed, noise=noise)
    if n is not None:
        if not 1 <= n <= len(df):
            from yieldtune.errors import DataError

            raise DataError(f"--n must be between 1 and {len(df)} (the full plate), got {n}")
        df = df.iloc[:n]
    lines = [",".join(COLUMNS)]
    for row in df.itertuples(index=False):
        *cells, y = row
        lines.append(",".join([*cells, f"{y:.4f}"]))
    return write_atomic(path, "\n".join(lines) + "\n")
