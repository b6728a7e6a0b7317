"""Train/validation splits: seeded random holdout, k-fold indices, and the "first N rows" standard splits.

The Buchwald–Hartwig and Suzuki–Miyaura benchmark files are already shuffled; their published splits are
"first N rows train, the rest test", so :func:`split_first_n` reproduces the literature numbers exactly.
"""

from __future__ import annotations

import numpy as np

from yieldtune.data.table import ReactionTable
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
