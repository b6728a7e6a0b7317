"""Canonical duplicate detection, dedupe, and the three split kinds."""

from __future__ import annotations

import numpy as np
import pytest

from yieldtune.data import (
    DataSpec,
    ReactionTable,
    dedupe,
    duplicate_report,
    find_duplicates,
    kfold_indices,
    load_reactions,
    split_first_n,
    split_holdout,
)
from yieldtune.errors import DataError

A = "Brc1ccccc1.C1COCCN1>CC(C)(C)[O-].[Na+]>c1ccc(N2CCOCC2)cc1"
A_REORDERED = "N1CCOCC1.Brc1ccccc1>[Na+].CC(C)(C)[O-]>c1ccc(N2CCOCC2)cc1"  # morpholine spelled otherwise
A_KEKULE = "BrC1=CC=CC=C1.C1COCCN1>CC(C)(C)[O-].[Na+]>C1=CC=C(C=C1)N1CCOCC1"
B = "Clc1ccccc1.C1CCNCC1>>c1ccc(N2CCCCC2)cc1"
B_ROLE_SWAP = "Clc1ccccc1>C1CCNCC1>c1ccc(N2CCCCC2)cc1"  # same molecules, different roles: not a duplicate


def table(reactions, yields):
    return ReactionTable(reactions=list(reactions), yields=np.array(yields, dtype=np.float32))


def test_duplicates_are_order_and_spelling_insensitive_within_a_role():
    t = table([A, B, A_REORDERED, B_ROLE_SWAP, A_KEKULE, B], [0.5, 0.2, 0.5, 0.9, 0.7, 0.2])
    assert find_duplicates(t) == [[0, 2, 4], [1, 5]]
    report = duplicate_report(t)
    assert report.n_groups == 2 and report.n_duplicates == 3
    assert report.conflicts == [[0, 2, 4]]  # 0.5 vs 0.7; group [1, 5] agrees


def test_dedupe_keeps_first_and_averages_only_when_asked():
    t = table([A, B, A_REORDERED, A_KEKULE], [0.5, 0.2, 0.6, 0.7])
    kept = dedupe(t)
    assert kept.reactions == [A, B] and kept.ids == ["0", "1"]
    np.testing.assert_allclose(kept.yields, [0.5, 0.2])
    averaged = dedupe(t, average_conflicts=True)
    np.testing.assert_allclose(averaged.yields, [0.6, 0.2], rtol=1e-6)
    np.testing.assert_allclose(t.yields, [0.5, 0.2, 0.6, 0.7])  # input untouched


def test_loader_keys_agree_with_on_demand_keys(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("rxn,yield\n" + "\n".join(f"{r},0.5" for r in [A, B, A_REORDERED, B_ROLE_SWAP]) + "\n")
    loaded = load_reactions(path, DataSpec.rxn())
    assert loaded.canonical is not None
    fresh = ReactionTable(reactions=loaded.reactions, yields=loaded.yields)
    assert find_duplicates(loaded) == find_duplicates(fresh) == [[0, 2]]
    assert find_duplicates(loaded.subset([2, 3, 0])) == [[0, 2]]


def test_split_holdout_is_seeded_disjoint_and_complete():
    t = table([f"C>>C{'C' * i}" for i in range(50)], np.linspace(0, 1, 50))
    train, val = split_holdout(t, 0.2, seed=1)
    assert len(val) == 10 and len(train) == 40
    assert sorted(train.ids + val.ids, key=int) == t.ids
    assert not set(train.ids) & set(val.ids)
    again, _ = split_holdout(t, 0.2, seed=1)
    other, _ = split_holdout(t, 0.2, seed=2)
    assert again.ids == train.ids and other.ids != train.ids
    with pytest.raises(DataError):
        split_holdout(t, 1.0, seed=0)


def test_kfold_covers_every_index_once():
    folds = kfold_indices(23, 5, seed=0)
    assert len(folds) == 5
    vals = np.concatenate([v for _, v in folds])
    assert sorted(vals.tolist()) == list(range(23))
    for tr, va in folds:
        assert not set(tr) & set(va) and len(tr) + len(va) == 23 and len(va) in (4, 5)
    assert [v.tolist() for _, v in kfold_indices(23, 5, seed=0)] == [v.tolist() for _, v in folds]
    with pytest.raises(DataError):
        kfold_indices(3, 5, seed=0)


def test_split_first_n_keeps_file_order():
    t = table([f"C>>C{'C' * i}" for i in range(10)], np.zeros(10))
    train, test = split_first_n(t, 7)
    assert train.ids == [str(i) for i in range(7)] and test.ids == ["7", "8", "9"]
    assert test.rows == [9, 10, 11]
    with pytest.raises(DataError):
        split_first_n(t, 10)


@pytest.mark.shared_data
def test_buchwald_hartwig_standard_split(shared_data):
    t = load_reactions(shared_data / "buchwald_hartwig" / "FullCV_01.csv", DataSpec.rxn())
    train, test = split_first_n(t, 2767)
    assert (len(train), len(test)) == (2767, 1188)
    assert find_duplicates(t) == []


def _plate(n_additives: int = 12, n_halides: int = 4) -> ReactionTable:
    """A small plate: every halide with every additive (one written in a non-canonical way), base and solvent
    shared by all."""
    halides = ["Brc1ccccc1", "Clc1ccccc1", "Ic1ccccc1", "Brc1ccncc1"][:n_halides]
    additives = [f"C{'C' * i}O" for i in range(n_additives)]  # ethanol, propanol, ...
    rxns = [f"{h}.C1COCCN1>{a}.CC(C)(C)[O-].[Na+]>c1ccc(N2CCOCC2)cc1" for h in halides for a in additives]
    rxns[0] = rxns[0].replace("Brc1ccccc1", "c1ccc(Br)cc1")  # same molecule, other spelling
    return table(rxns, np.linspace(0.0, 1.0, len(rxns)))


def _input_molecules(rxn: str) -> set[str]:
    """The canonical reactants and agents of one reaction (a dative bond's '->' stays inside its molecule)."""
    from yieldtune.chem.augment import canonical_molecule
    from yieldtune.data.validate import role_strings

    reactants, agents = role_strings(rxn)[:2]
    return {canonical_molecule(m) for m in f"{reactants}.{agents}".split(".") if m}


def _molecules(t: ReactionTable) -> set[str]:
    return set().union(*(_input_molecules(r) for r in t.reactions))


def test_split_by_molecules_holds_out_whole_molecules():
    from yieldtune.data import split_by_molecules

    plate = _plate()
    for seed in range(5):
        train, val = split_by_molecules(plate, 0.2, seed=seed)
        assert len(train) + len(val) == len(plate) and not set(train.ids) & set(val.ids)
        assert 0.1 * len(plate) <= len(val) <= 0.3 * len(plate)
        unseen = _molecules(val) - _molecules(train)
        # every validation reaction holds a molecule no training reaction holds (in canonical form)
        for r in val.reactions:
            assert _input_molecules(r) & unseen, r
        # the shared morpholine, base and counter-ion are never held out
        assert {"C1COCCN1", "[Na+]", "CC(C)(C)[O-]"} <= _molecules(train)
    assert split_by_molecules(plate, 0.2, seed=1)[1].ids == split_by_molecules(plate, 0.2, seed=1)[1].ids
    assert split_by_molecules(plate, 0.2, seed=1)[1].ids != split_by_molecules(plate, 0.2, seed=2)[1].ids


def test_split_by_molecules_never_holds_out_a_piece_of_a_dative_product():
    """A product written with a dative bond (``[NH3]->[Pt]...``) is no input molecule, nor is any piece of it."""
    from yieldtune.data import split_by_molecules

    plate = _plate()
    complex_product = "[NH3]->[Pt](Cl)Cl"
    rxns = [r.rpartition(">")[0] + ">" + complex_product if i in (0, 12, 25, 37) else r
            for i, r in enumerate(plate.reactions)]
    plate = table(rxns, plate.yields)
    for seed in range(20):
        train, val = split_by_molecules(plate, 0.2, seed=seed)
        unseen = _molecules(val) - _molecules(train)
        for r in val.reactions:
            assert _input_molecules(r) & unseen, (seed, r)


def test_split_by_molecules_a_random_split_would_leak():
    """The point of it: a random split of a full plate leaves no validation molecule unseen."""
    plate = _plate()
    train, val = split_holdout(plate, 0.2, seed=0)
    assert not _molecules(val) - _molecules(train)


def _at(rxn: str, position: int) -> str:
    """The canonical molecule written ``position``-th among a reaction's reactants and agents."""
    from yieldtune.chem.augment import canonical_molecule
    from yieldtune.data.validate import role_strings

    reactants, agents = role_strings(rxn)[:2]
    return canonical_molecule(f"{reactants}.{agents}".split(".")[position - 1])


@pytest.mark.parametrize("position", [1, 3])
def test_split_by_molecules_at_a_position_holds_out_only_that_kind(position):
    """position=1 holds out halides only, position=3 additives only; every molecule of the other kinds stays in
    training. The halide written two ways counts as one molecule."""
    from yieldtune.data import split_by_molecules

    plate = _plate()
    other = 4 - position  # 3 for halides, 1 for additives
    held = set()
    for seed in range(6):
        train, val = split_by_molecules(plate, 0.3, seed=seed, position=position)
        assert len(train) + len(val) == len(plate) and len(val) >= 4
        val_kind = {_at(r, position) for r in val.reactions}
        assert not val_kind & {_at(r, position) for r in train.reactions}
        assert {_at(r, other) for r in plate.reactions} == {_at(r, other) for r in train.reactions}
        held |= val_kind
    assert len(held) > 1


def test_split_by_molecules_at_a_position_a_reaction_lacks_names_the_row():
    from yieldtune.data import split_by_molecules

    with pytest.raises(DataError, match=r"row 2: reaction has 5 .* position 6"):
        split_by_molecules(_plate(), 0.3, position=6)


def test_split_by_molecules_refuses_when_nothing_is_rare():
    from yieldtune.data import split_by_molecules

    same = table([A] * 3 + [B] * 3, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])  # each molecule in half the rows
    with pytest.raises(DataError, match="random holdout"):
        split_by_molecules(same, 0.1)
    with pytest.raises(DataError, match="fraction"):
        split_by_molecules(_plate(), 1.5)
