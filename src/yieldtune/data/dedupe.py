"""Finding and removing reactions that are the same up to SMILES spelling and molecule order.

Duplicates inflate validation scores when one copy lands in train and another in validation, and
conflicting yields for the same reaction bound the achievable R²; both are worth seeing before tuning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from yieldtune.data.table import ReactionTable
from yieldtune.data.validate import SmilesCache, canonical_reaction


@dataclass
class DuplicateReport:
    """Groups of row indices holding the same canonical reaction (first occurrence first)."""

    groups: list[list[int]] = field(default_factory=list)
    conflicts: list[list[int]] = field(default_factory=list)  # groups whose yields differ by more than tol

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    @property
    def n_duplicates(self) -> int:
        """Rows that ``dedupe`` would remove (all but the first of each group)."""
        return sum(len(g) - 1 for g in self.groups)


def canonical_keys(table: ReactionTable) -> list[str]:
    """One order-insensitive canonical key per reaction (the raw string where RDKit cannot parse it)."""
    if table.canonical is not None:
        return list(table.canonical)
    cache = SmilesCache()
    return [canonical_reaction(r, cache) or r for r in table.reactions]


def find_duplicates(table: ReactionTable) -> list[list[int]]:
    """Index groups (size >= 2) of reactions that are the same canonical reaction, in first-occurrence order."""
    by_key: dict[str, list[int]] = {}
    for i, key in enumerate(canonical_keys(table)):
        by_key.setdefault(key, []).append(i)
    return [g for g in by_key.values() if len(g) > 1]


def duplicate_report(table: ReactionTable, tol: float = 1e-6) -> DuplicateReport:
    """Duplicate groups plus those whose yields disagree by more than ``tol``."""
    groups = find_duplicates(table)
    conflicts = []
    if table.yields is not None:
        conflicts = [g for g in groups if float(np.ptp(table.yields[g])) > tol]
    return DuplicateReport(groups=groups, conflicts=conflicts)


def dedupe(table: ReactionTable, average_conflicts: bool = False) -> ReactionTable:
    """Keep the first occurrence of every reaction; with ``average_conflicts`` it gets the group's mean yield."""
    groups = find_duplicates(table)
    drop = {i for g in groups for i in g[1:]}
    keep = [i for i in range(len(table)) if i not in drop]
    out = table.subset(keep)
    if average_conflicts and table.yields is not None and groups:
        position = {orig: pos for pos, orig in enumerate(keep)}
        yields = out.yields.copy()
        for g in groups:
            yields[position[g[0]]] = float(np.mean(table.yields[g]))
        out.yields = yields
    return out
