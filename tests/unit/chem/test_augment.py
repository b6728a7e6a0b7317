"""Randomized-SMILES augmentation: chemistry-preserving, actually random, cached on disk as gzipped JSON."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from yieldtune.chem import augment
from yieldtune.chem.augment import (
    AugmentationCache,
    augment_reaction,
    derive_n_variants,
    extra_copies,
    randomize_smiles,
)
from yieldtune.data import canonical_reaction

REACTIONS = [
    "Clc1ccccn1.Cc1ccc(N)cc1.O=S(=O)([O][Pd]1[c]2ccccc2-c2ccccc2[NH2]~1)C(F)(F)F.COc1ccc(OC)c(P([C@]23C[C@H]4C[C@H](C[C@H](C4)C2)C3)[C@]23C[C@H]4C[C@H](C[C@H](C4)C2)C3)c1-c1c(C(C)C)cc(C(C)C)cc1C(C)C.CCN=P(N=P(N(C)C)(N(C)C)N(C)C)(N(C)C)N(C)C.Cc1cc(C)on1>>Cc1ccc(Nc2ccccn2)cc1",
    "Brc1ccc2ncccc2c1.CC#N.CC(=O)O~CC(=O)O~[Pd].CCN(CC)CC.Cc1ccc2c(cnn2C2CCCCO2)c1B(O)O.O>>Cc1ccc2c(cnn2C2CCCCO2)c1-c1ccc2ncccc2c1",
    "c1ccc2c(c1)Nc1ccccc1O2.Brc1ccccc1I>CC(C)(C)[O-].F[B-](F)(F)F.[H+].[Na+].[Pd+2].Cc1ccccc1>Brc1ccccc1N1c2ccccc2Oc2ccccc21",
    "C/C=C/Br.N[C@@H](C)C(=O)O>[Cu+]>C/C=C/N[C@@H](C)C(=O)O",
]


def test_randomize_keeps_molecule_and_stereo():
    from rdkit import Chem

    rng = np.random.default_rng(0)
    smi = "C/C=C/C[C@@H](N)C(=O)Oc1ccccc1"
    outs = {randomize_smiles(smi, rng) for _ in range(20)}
    assert len(outs) > 5  # really randomized
    canon = Chem.MolToSmiles(Chem.MolFromSmiles(smi))
    assert {Chem.MolToSmiles(Chem.MolFromSmiles(o)) for o in outs} == {canon}
    assert all("@" in o and ("/" in o or "\\" in o) for o in outs)


def test_randomize_is_reproducible_and_never_emits_arrows():
    a = [randomize_smiles(s, np.random.default_rng(7)) for s in REACTIONS[0].replace(">>", ".").split(".")]
    b = [randomize_smiles(s, np.random.default_rng(7)) for s in REACTIONS[0].replace(">>", ".").split(".")]
    assert a == b
    assert not any(">" in s or "<" in s for s in a)  # dative bonds would clash with role separators
    assert randomize_smiles("not a smiles((", np.random.default_rng(0)) == "not a smiles(("


@pytest.mark.parametrize("rxn", REACTIONS)
def test_augmented_reactions_canonicalize_to_source(rxn):
    rng = np.random.default_rng(1)
    variants = [augment_reaction(rxn, rng) for _ in range(12)]
    assert len(set(variants)) > 3
    assert all(v.count(">") == 2 for v in variants)
    target = canonical_reaction(rxn)
    assert [canonical_reaction(v) for v in variants] == [target] * len(variants)


def test_molecules_are_permuted_within_roles():
    rng = np.random.default_rng(3)
    firsts = {augment_reaction("CCO.CCN.CCCl>O>CC", rng).split(">")[0].split(".")[0] for _ in range(40)}
    assert len(firsts) > 3  # the first reactant is not always the same molecule


def test_extra_copies_has_expected_mean():
    counts = extra_copies(1.25, 20000, np.random.default_rng(0))
    assert set(np.unique(counts)) == {1, 2}
    assert abs(counts.mean() - 1.25) < 0.02
    assert (extra_copies(2.0, 50, np.random.default_rng(0)) == 2).all()
    assert derive_n_variants(0.0) == 0 and derive_n_variants(1.5) == 8 and derive_n_variants(0.3) == 4
    assert derive_n_variants(50) == 64 and derive_n_variants(1.0, augment_variants=3) == 3


def test_cache_on_disk_is_gzipped_json_and_reused(tmp_path, monkeypatch):
    cache = AugmentationCache(tmp_path)
    first = cache.variants(REACTIONS, 3, seed=5)
    assert [len(v) for v in first] == [3] * len(REACTIONS)
    files = list(tmp_path.glob("*.json.gz"))
    assert len(files) == 1
    with gzip.open(files[0], "rt") as fh:
        stored = json.load(fh)
    assert stored["variants"] == first

    # A fresh cache (as in another process) reads the file instead of calling RDKit again:
    monkeypatch.setattr(augment, "_MEMORY", {})
    stored["variants"][0][0] = "marker-from-disk"
    with gzip.open(files[0], "wt") as fh:
        json.dump(stored, fh)
    again = AugmentationCache(tmp_path).variants(REACTIONS, 3, seed=5)
    assert again[0][0] == "marker-from-disk" and again[1:] == first[1:]

    # other n / seed -> other entries; a corrupt entry is regenerated, not trusted
    AugmentationCache(tmp_path).variants(REACTIONS, 2, seed=5)
    assert len(list(tmp_path.glob("*.json.gz"))) == 2
    monkeypatch.setattr(augment, "_MEMORY", {})
    files[0].write_bytes(b"garbage")
    assert AugmentationCache(tmp_path).variants(REACTIONS, 3, seed=5) == first


def test_a_dative_bond_is_not_a_role_separator():
    """RDKit writes metal complexes with ``->``: augmentation and the canonical form keep three roles."""
    rxn = "Ic1ccccc1.C1COCCN1>[NH3]->[Pt](Cl)Cl.[Na+]>c1ccccc1"
    from yieldtune.model.gbm import reaction_roles

    for seed in range(5):
        canonical = canonical_reaction(augment_reaction(rxn, np.random.default_rng(seed)))
        assert canonical == canonical_reaction(rxn)
        assert canonical.count(">") - canonical.count("->") == 2
    assert reaction_roles(rxn)[1] == ["[NH3]->[Pt](Cl)Cl", "[Na+]"]


def _molecules(rxn: str) -> list[str]:
    return [m for role in rxn.split(">") for m in role.split(".") if m]


def test_molecule_scope_spells_a_molecule_alike_in_every_reactions_kth_copy():
    """The hierarchical model encodes each distinct spelling of a batch once: with scope "molecule" the k-th
    copies of a plate hold no more spellings than the plate has molecules."""
    from yieldtune.chem.augment import generate_variants

    plate = [f"{h}.Nc1ccccc1>{b}.CC(C)(C)P(C(C)(C)C)c1ccccc1-c1ccccc1>{h.replace('Br', 'N(c2ccccc2)')}"
             for h in ["Brc1ccc(C)cc1", "Brc1ccc(OC)cc1", "Brc1cccnc1"] for b in ["CCN(CC)CC", "CN(C)C(=NC)N(C)C"]]
    n_molecules = len({m for r in plate for m in _molecules(r)})
    for scope, at_most in (("molecule", n_molecules), ("reaction", None)):
        variants = generate_variants(plate, 3, seed=2, scope=scope)
        for k in range(3):
            spellings = {m for per in variants for m in _molecules(per[k])}
            if at_most is None:  # each reaction on its own: a shared molecule gets several spellings
                assert len(spellings) > n_molecules
            else:
                assert len(spellings) == at_most
        # still random copies of the same chemistry, and different copies spell molecules differently
        assert all(canonical_reaction(v) == canonical_reaction(r) for r, per in zip(plate, variants) for v in per)
        assert len({per[0] for per in variants} | {per[1] for per in variants}) == 2 * len(plate)
    assert generate_variants(plate, 3, 2, "molecule") == generate_variants(plate, 3, 2, "molecule")


def test_the_cache_keeps_the_scopes_apart(tmp_path, monkeypatch):
    by_reaction = AugmentationCache(tmp_path).variants(REACTIONS, 2, seed=1, scope="reaction")
    by_molecule = AugmentationCache(tmp_path).variants(REACTIONS, 2, seed=1, scope="molecule")
    assert len(list(tmp_path.glob("*.json.gz"))) == 2 and by_reaction != by_molecule
    monkeypatch.setattr(augment, "_MEMORY", {})
    assert AugmentationCache(tmp_path).variants(REACTIONS, 2, seed=1, scope="molecule") == by_molecule
