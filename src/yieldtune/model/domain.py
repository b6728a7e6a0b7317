"""Applicability domain: how close a reaction's molecules are to the molecules the model was trained on.

A model saved by the trainer keeps Morgan fingerprints (radius 2, 2,048 bits) of its distinct training
molecules per role (reactants / agents / products) in ``domain.safetensors``. For a new reaction, each
molecule gets its nearest-neighbour Tanimoto similarity to the training molecules of the same role; a role's
figure is the *lowest* over its molecules (the least familiar one decides), and ``similarity_min`` the lowest
over roles. 1.0 means every molecule was seen in training; below :data:`WARN_BELOW` the prediction is an
extrapolation to chemistry the model has not seen (``tune predict`` warns once).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from yieldtune.errors import ModelFileError
from yieldtune.files import atomic_path
from yieldtune.model.gbm import reaction_roles

ROLE_NAMES = ("reactants", "agents", "products")
SIMILARITY_COLUMNS = tuple(f"similarity_{r}" for r in (*ROLE_NAMES, "min"))  # the columns of Domain.similarity
N_BITS, RADIUS = 2048, 2
WARN_BELOW = 0.6


def fingerprints(smiles: Sequence[str]) -> np.ndarray:
    """``[n, N_BITS]`` bool Morgan bit fingerprints (all False where RDKit cannot read a molecule)."""
    from rdkit.Chem import rdFingerprintGenerator

    from yieldtune.chem.augment import parse_molecule

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=RADIUS, fpSize=N_BITS)
    out = np.zeros((len(smiles), N_BITS), dtype=bool)
    for i, smi in enumerate(smiles):
        mol = parse_molecule(smi)
        if mol is not None:
            out[i] = gen.GetFingerprintAsNumPy(mol).astype(bool)
    return out


def nearest_tanimoto(query: np.ndarray, reference: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Per query row, the highest Tanimoto similarity to any reference row (0 with no reference)."""
    if len(reference) == 0 or len(query) == 0:
        return np.zeros(len(query), dtype=np.float32)
    ref = reference.astype(np.float32)
    ref_bits = ref.sum(1)
    best = np.zeros(len(query), dtype=np.float32)
    for start in range(0, len(query), chunk):
        q = query[start:start + chunk].astype(np.float32)
        inter = q @ ref.T
        union = q.sum(1)[:, None] + ref_bits[None, :] - inter
        sim = np.where(union > 0, inter / np.maximum(union, 1.0), 1.0)  # two empty fingerprints: identical
        best[start:start + chunk] = sim.max(1)
    return best


class Domain:
    """Fingerprints of the distinct training molecules, one matrix per role."""

    def __init__(self, per_role: list[np.ndarray] | None = None, reactions: Sequence[str] | None = None) -> None:
        if per_role is not None and len(per_role) != len(ROLE_NAMES):
            raise ValueError("one fingerprint matrix per role")
        self._per_role = None if per_role is None else [np.asarray(f, dtype=bool) for f in per_role]
        self._reactions = reactions

    @classmethod
    def from_reactions(cls, reactions: Sequence[str]) -> Domain:
        """The domain of these training reactions, fingerprinted only when first used (save or predict)."""
        return cls(reactions=list(reactions))

    @property
    def per_role(self) -> list[np.ndarray]:
        if self._per_role is None:
            mols = [reaction_roles(r) for r in self._reactions or []]
            self._per_role = [fingerprints(list(dict.fromkeys(m for rxn in mols for m in rxn[r])))
                              for r in range(len(ROLE_NAMES))]
        return self._per_role

    def similarity(self, reactions: Sequence[str]) -> np.ndarray:
        """``[N, 4]`` float32: nearest-neighbour similarity per role (NaN where the role is empty) and the min."""
        mols = [reaction_roles(r) for r in reactions]
        out = np.full((len(reactions), len(ROLE_NAMES) + 1), np.nan, dtype=np.float32)
        for r in range(len(ROLE_NAMES)):
            distinct = list(dict.fromkeys(m for rxn in mols for m in rxn[r]))
            sim = dict(zip(distinct, nearest_tanimoto(fingerprints(distinct), self.per_role[r])))
            for i, rxn in enumerate(mols):
                if rxn[r]:
                    out[i, r] = min(sim[m] for m in rxn[r])
        with np.errstate(all="ignore"):
            roles = out[:, :len(ROLE_NAMES)]
            has = ~np.isnan(roles).all(1)
            out[has, -1] = np.nanmin(roles[has], axis=1)
        return out

    def save(self, path: str | Path) -> None:
        from safetensors.numpy import save_file

        with atomic_path(path) as tmp:
            save_file({name: np.packbits(f, axis=1) if len(f) else np.zeros((0, N_BITS // 8), np.uint8)
                       for name, f in zip(ROLE_NAMES, self.per_role)}, str(tmp),
                      metadata={"format": "yieldtune-domain", "n_bits": str(N_BITS), "radius": str(RADIUS)})

    @classmethod
    def load(cls, path: str | Path) -> Domain:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="np") as fh:
                meta = fh.metadata() or {}
                if meta.get("format") != "yieldtune-domain" or meta.get("n_bits") != str(N_BITS):
                    raise ValueError("not a yieldtune domain file with 2048-bit fingerprints")
                packed = [fh.get_tensor(name) for name in ROLE_NAMES]
        except Exception as err:  # noqa: BLE001 - SafetensorError, missing tensors, bad header
            raise ModelFileError(f"{path}: not a valid domain file ({type(err).__name__}: {err})") from None
        if any(p.dtype != np.uint8 or p.ndim != 2 or p.shape[1] != N_BITS // 8 for p in packed):
            raise ModelFileError(f"{path}: fingerprint matrices must be uint8 [n, {N_BITS // 8}]")
        return cls([np.unpackbits(p, axis=1).astype(bool) for p in packed])


__all__ = ["Domain", "ROLE_NAMES", "SIMILARITY_COLUMNS", "WARN_BELOW", "fingerprints", "nearest_tanimoto"]
