"""Train/validation splits: seeded random holdout, k-fold indices, and the "first N rows" standard splits.

The Buchwald–Hartwig and Suzuki–Miyaura benchmark files are already shuffled; their published splits are
"first N rows train, the rest test", so :func:`split_first_n` reproduces the literature numbers exactly.
"""

from __future__ import annotations

import numpy as np

from yieldtune.data.dedupe import canonical_keys
from yieldtune.data.table import ReactionTable
from yieldtune.data.validate import SmilesCache, molecule_stretches, role_strings
from yieldtune.errors import DataError


def split_holdout(table: ReactionTable, frac: float, seed: int = 0) -> tuple[ReactionTable, ReactionTable]:
    """Random (train, val) with ``round(frac * n)`` rows (at least 1) in val; rows keep their file order."""
    n = len(table)
    if not 0.0 < frac < 1.0:
        raise DataError(f"validation fraction must be in (0, 1), got {frac}")
    if n < 2:
        raise DataError(f"{table.source}: need at least 2 reactions to split, got {n}")
    n_val = min(max(1, int(round(frac * n))), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    val = np.sort(perm[:n_val])
    train = np.sort(perm[n_val:])
    return table.subset(train), table.subset(val)


def kfold_indices(n: int, k: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train_idx, val_idx) pairs; every index is in exactly one val fold, fold sizes differ by <= 1."""
    if k < 2 or k > n:
        raise DataError(f"k-fold needs 2 <= k <= n, got k={k}, n={n}")
    perm = np.random.default_rng(seed).permutation(n)
    folds = np.array_split(perm, k)
    out = []
    for i, fold in enumerate(folds):
        train = np.sort(np.concatenate([f for j, f in enumerate(folds) if j != i]))
        out.append((train, np.sort(fold)))
    return out


def split_first_n(table: ReactionTable, n: int) -> tuple[ReactionTable, ReactionTable]:
    """(first ``n`` rows, the rest): the standard split of the shuffled HTE benchmark files."""
    if not 0 < n < len(table):
        raise DataError(f"{table.source}: first-N split needs 0 < N < {len(table)} rows, got N={n}")
    return table.subset(range(n)), table.subset(range(n, len(table)))


def split_by_molecules(table: ReactionTable, frac: float, seed: int = 0,
                       position: int | None = None) -> tuple[ReactionTable, ReactionTable]:
    """(train, val) where every validation reaction holds a reactant or agent that no training reaction holds.

    A random split of an HTE plate puts every molecule on both sides, so validation measures interpolation
    between known molecules, and ranks models in reverse of a test on unseen additives (README, Molecule
    features). This split holds out whole molecules instead: molecules are drawn in a seeded random order among
    those in fewer than ``frac`` of the reactions (a common solvent or base is never held out: it would take
    most of the data), and every reaction holding a drawn one goes to validation, until validation holds about
    ``round(frac * n)`` reactions. A molecule that would overshoot that by more than half is skipped. Molecules
    are compared in canonical form (``canonical_keys``), products not at all.

    ``position`` K (1-based) draws only among the molecules written K-th among a reaction's reactants and
    agents (cut at each ``.``): on a plate whose every reaction lists its components in one order, validation
    then holds out one kind of molecule, the kind a user expects to be new (Buchwald–Hartwig's files write the
    additive 6th, and Test1–4 hold out additives); a molecule is then compared at that position only. Without
    it the draw mixes every kind rare enough.
    """
    n = len(table)
    if not 0.0 < frac < 1.0:
        raise DataError(f"validation fraction must be in (0, 1), got {frac}")
    if n < 2:
        raise DataError(f"{table.source}: need at least 2 reactions to split, got {n}")
    target = max(1, int(round(frac * n)))
    rows_of: dict[str, list[int]] = {}
    for i, mols in enumerate(_molecules(table) if position is None else _molecules_at(table, position)):
        for mol in mols:
            rows_of.setdefault(mol, []).append(i)
    candidates = sorted(m for m, rows in rows_of.items() if len(rows) < max(2, frac * n))
    in_val = np.zeros(n, dtype=bool)
    for j in np.random.default_rng(seed).permutation(len(candidates)):
        if in_val.sum() >= target:
            break
        grown = in_val.copy()
        grown[rows_of[candidates[j]]] = True
        if grown.sum() <= 1.5 * target and not grown.all():
            in_val = grown
    if not in_val.any():
        raise DataError(f"{table.source}: no molecule is rare enough to hold out {frac:.0%} of the reactions "
                        "for validation by molecule; use a random holdout")
    return table.subset(np.flatnonzero(~in_val)), table.subset(np.flatnonzero(in_val))


def _molecules(table: ReactionTable) -> list[set[str]]:
    """Each reaction's distinct canonical reactant and agent molecules."""
    out = []
    for key in canonical_keys(table):
        reactants, agents = role_strings(key)[:2]
        out.append(set(molecule_stretches(f"{reactants}.{agents}")) - {""})
    return out


def _molecules_at(table: ReactionTable, position: int) -> list[set[str]]:
    """Each reaction's K-th reactant or agent as written, in canonical form (canonical keys sort molecules, so
    the position is read from the reaction as written)."""
    if position < 1:
        raise DataError(f"molecule position must be 1 or more, got {position}")
    cache = SmilesCache()
    out = []
    for row, rxn in zip(table.rows, table.reactions):
        reactants, agents = (role_strings(rxn) + ["", ""])[:2]
        mols = [m for m in molecule_stretches(f"{reactants}.{agents}") if m]
        if len(mols) < position:
            raise DataError(f"{table.source}: row {row}: reaction has {len(mols)} reactant and agent molecules, "
                            f"fewer than the held-out position {position}")
        out.append({cache.canonical(mols[position - 1]) or mols[position - 1]})
    return out


# how ``tune train`` and ``tune bench baseline`` draw validation rows (``--val-split``)
VALIDATION_SPLITS = {"random": split_holdout, "molecules": split_by_molecules}
