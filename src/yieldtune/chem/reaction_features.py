"""Reaction-level fingerprints from per-molecule features: each role's molecule rows summed.

``reactants>agents>products`` -> ``[sum over reactants | sum over agents | sum over products]`` of a
molecule featurizer's rows (``morgan`` counts by default, 3 x 2,048 columns). Order-free within a role, so
a reaction reads the same however its molecules are listed; each distinct molecule is featurized once
(through :func:`~yieldtune.chem.feature_cache.molecule_features` and its cache).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from yieldtune.chem.feature_cache import FeatureCache, molecule_features
from yieldtune.chem.featurizers import MoleculeFeaturizer, make_featurizer

N_ROLES = 3
_ROLE_SPLIT = re.compile(r"(?<!-)>")  # a bare '>' separates roles; '->' is a dative bond inside a molecule


def reaction_roles(reactions: Sequence[str]) -> list[list[list[str]]]:
    """Per reaction, per role (reactants, agents, products), its molecule strings as written (no RDKit)."""
    out = []
    for rxn in reactions:
        roles = _ROLE_SPLIT.split(rxn)[:N_ROLES]
        roles += [""] * (N_ROLES - len(roles))
        out.append([[m for m in r.split(".") if m] for r in roles])
    return out


def role_summed_features(reactions: Sequence[str], featurizer: MoleculeFeaturizer | None = None,
                         cache: FeatureCache | None = None) -> np.ndarray:
    """``[N, 3 * dim]`` float32: per role, the sum of its molecules' feature rows."""
    featurizer = featurizer or make_featurizer("morgan", radius=2, n_bits=2048)
    roles = reaction_roles(reactions)
    flat = [m for rxn in roles for role in rxn for m in role]
    rows = molecule_features(flat, featurizer, cache)
    out = np.zeros((len(reactions), N_ROLES * featurizer.dim), dtype=np.float32)
    k = 0
    for i, rxn in enumerate(roles):
        for r, mols in enumerate(rxn):
            if mols:
                out[i, r * featurizer.dim:(r + 1) * featurizer.dim] = rows[k:k + len(mols)].sum(0)
                k += len(mols)
    return out


__all__ = ["N_ROLES", "reaction_roles", "role_summed_features"]
