"""Per-molecule feature rows for the model: which featurizers, how they are scaled, and how batches get them.

The model cuts a reaction's tokens at ``.`` and ``>`` into molecule *slots* (see
:func:`yieldtune.model.transformer.split_molecules`). :func:`reaction_slots` cuts the reaction *strings* the
same way once per data set and maps every slot to its canonical molecule, so a randomized SMILES (augmentation,
TTA) gets the row of its canonical molecule. :class:`MoleculeFeatures` computes one row per distinct canonical
molecule (``morgan`` as ``log1p`` counts, ``rdkit2d``/``pretrained`` robustly scaled with statistics fitted on
the training molecules) and :class:`SlotFeatures` gathers ``[B, K, F]`` per batch by indexing: no RDKit
per batch, ever.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from yieldtune.chem.feature_cache import FeatureCache, canonical_molecules, molecule_features
from yieldtune.chem.featurizers import MoleculeFeaturizer, RobustScaler, featurizer_from_settings, make_featurizer
from yieldtune.config import ModelConfig
from yieldtune.data.validate import molecule_stretches

FEATURES_FORMAT = "yieldtune-molecule-features"


def reaction_slots(reactions: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(slots [N, K] int64, roles [N, K] int64, molecules)``: slot k of reaction i holds ``molecules[slots[i, k]]``.

    Slot k is the k-th stretch between ``.``/``>`` characters (``data.validate.molecule_stretches``), exactly as the
    model cuts the tokens. Empty stretches and padding are -1. Each distinct written
    molecule is canonicalized once.
    """
    pieces = [molecule_stretches(r) for r in reactions]
    k = max((len(p) for p in pieces), default=1)
    written = list(dict.fromkeys(m for p in pieces for m in p if m))
    canon = canonical_molecules(written)
    molecules = list(dict.fromkeys(canon))
    row = {c: i for i, c in enumerate(molecules)}
    index = {w: row[c] for w, c in zip(written, canon)}
    slots = np.full((len(reactions), k), -1, dtype=np.int64)
    roles = np.zeros((len(reactions), k), dtype=np.int64)
    for i, (rxn, p) in enumerate(zip(reactions, pieces)):
        slots[i, :len(p)] = [index[m] if m else -1 for m in p]
        role, pos = 0, 0
        for j, m in enumerate(p):
            roles[i, j] = min(role, 2)
            pos += len(m)
            if pos < len(rxn) and rxn[pos] == ">":
                role += 1
            pos += 1
    return slots, roles, molecules


class MoleculeFeatures:
    """The featurizers of ``model.molecule_features`` with their fitted scalers; JSON-saved with a model."""

    def __init__(self, featurizers: list[MoleculeFeaturizer], scalers: list[RobustScaler | None]) -> None:
        self.featurizers, self.scalers = featurizers, scalers

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> MoleculeFeatures:
        """Unfitted featurizers for ``cfg.molecule_features`` (empty list: no features)."""
        made = [make_featurizer(n, radius=cfg.morgan_radius, n_bits=cfg.morgan_bits) if n == "morgan"
                else make_featurizer(n) for n in cfg.molecule_features]
        return cls(made, [None] * len(made))

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.featurizers]

    @property
    def dim(self) -> int:
        return sum(f.dim for f in self.featurizers)

    def __bool__(self) -> bool:
        return bool(self.featurizers)

    def fit(self, molecules: Sequence[str], cache: FeatureCache | None = None) -> MoleculeFeatures:
        """Fit the scalers on the training molecules (canonical SMILES); returns self."""
        self.scalers = [None if f.name == "morgan" else RobustScaler.fit(molecule_features(molecules, f, cache))
                        for f in self.featurizers]
        return self

    def fit_reactions(self, reactions: Sequence[str], cache: FeatureCache | None = None) -> SlotFeatures:
        """Fit the scalers on the molecules of ``reactions`` (the training reactions) and return their per-slot
        lookup, featurizing each distinct molecule once for both."""
        slots, _, molecules = reaction_slots(reactions)
        self.fit(molecules, cache)
        return SlotFeatures(slots, self.transform(molecules, cache), molecules)

    def transform(self, molecules: Sequence[str], cache: FeatureCache | None = None) -> np.ndarray:
        """``[n, dim]`` float32 model inputs for canonical SMILES (unseen molecules are featurized here)."""
        parts = []
        for f, scaler in zip(self.featurizers, self.scalers):
            raw = molecule_features(molecules, f, cache)
            parts.append(np.log1p(np.maximum(raw, 0.0)) if scaler is None else scaler.transform(raw))
        return np.concatenate(parts, axis=1).astype(np.float32) if parts else np.zeros((len(molecules), 0), np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FEATURES_FORMAT, "version": 1,
                "featurizers": [{**f.settings(), "dim": f.dim, "scaler": None if s is None else s.to_dict()}
                                for f, s in zip(self.featurizers, self.scalers)]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MoleculeFeatures:
        """Inverse of :meth:`to_dict`; raises ValueError/KeyError/ConfigError on anything inconsistent."""
        if data.get("format") != FEATURES_FORMAT:
            raise ValueError(f"not {FEATURES_FORMAT}")
        featurizers, scalers = [], []
        for entry in data["featurizers"]:
            f = featurizer_from_settings(entry)
            if f.dim != entry["dim"]:
                raise ValueError(f"featurizer {f.name!r} gives {f.dim} values here, the model was trained on "
                                 f"{entry['dim']} (another RDKit version?)")
            scaler = None if entry.get("scaler") is None else RobustScaler.from_dict(entry["scaler"])
            if scaler is not None and scaler.center.shape[0] != f.dim:
                raise ValueError(f"featurizer {f.name!r}: scaler has {scaler.center.shape[0]} columns, not {f.dim}")
            featurizers.append(f)
            scalers.append(scaler)
        return cls(featurizers, scalers)

    def for_reactions(self, reactions: Sequence[str], cache: FeatureCache | None = None) -> SlotFeatures:
        """The per-slot feature lookup for ``reactions`` (one featurization per distinct molecule)."""
        slots, roles, molecules = reaction_slots(reactions)
        return SlotFeatures(slots, self.transform(molecules, cache), molecules)


class SlotFeatures:
    """Slots of N reactions pointing into a table of per-molecule rows; :meth:`batch` gathers ``[B, K, F]``."""

    def __init__(self, slots: np.ndarray, table: np.ndarray, molecules: list[str]) -> None:
        zero = np.zeros((1, table.shape[1]), dtype=np.float32)
        self.table = torch.from_numpy(np.concatenate([table.astype(np.float32), zero]))  # last row: absent slot
        self.slots = torch.from_numpy(np.where(slots < 0, len(table), slots))
        self.molecules = molecules

    def __len__(self) -> int:
        return self.slots.shape[0]

    def to(self, device: torch.device) -> SlotFeatures:
        self.table = self.table.to(device)
        self.slots = self.slots.to(device)
        return self

    def batch(self, index: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``[B, K, F]`` feature rows for reactions ``index`` (zeros for absent slots)."""
        index = torch.as_tensor(index, device=self.slots.device)
        return self.table[self.slots[index]]


__all__ = ["MoleculeFeatures", "SlotFeatures", "reaction_slots"]
