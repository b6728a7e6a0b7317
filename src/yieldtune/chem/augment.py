"""Randomized-SMILES augmentation and its on-disk cache.

A reaction is augmented by writing every molecule as a random (non-canonical) SMILES and shuffling the
molecules within each role; the chemistry is unchanged, so the yield label still holds. RDKit is the slow
part, so variants are generated once per (reactions, n, seed, scope, RDKit version) and kept on disk as
gzipped JSON (never pickle), shared by every trial in every process.

Scope ``"molecule"`` spells a molecule the same way in the k-th variant of every reaction (its k-th random
SMILES): the hierarchical model encodes each distinct spelling of a batch once, and a batch of reactions and
their k-th copies holds at most two spellings of a molecule. Scope ``"reaction"`` randomizes each reaction's
molecules on their own stream: more spellings per epoch, and more to encode (Buchwald-Hartwig, one copy
each, batches of 32: 68 distinct spellings per batch by molecule, 129 by reaction, 42 without copies).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from yieldtune.config import AugmentScope
from yieldtune.data.validate import role_strings
from yieldtune.files import atomic_path

CACHE_FORMAT = "yieldtune-augment-cache"


def _rdkit():
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    return Chem


@lru_cache(maxsize=65536)
def parse_molecule(smi: str):
    """Parse a molecule for rewriting; ``None`` where RDKit cannot read it (it is then kept verbatim).

    Full sanitization turns some metal bonds into dative ``->`` bonds, whose ``>`` would collide with the
    reaction role separator; those molecules are read unsanitized instead (same graph, no rewrite of bonds).
    """
    Chem = _rdkit()
    mol = Chem.MolFromSmiles(smi)
    if mol is not None and not any(b.GetBondType() == Chem.BondType.DATIVE for b in mol.GetBonds()):
        return mol
    mol = Chem.MolFromSmiles(smi, sanitize=False)
    if mol is None:
        return None
    try:
        mol.UpdatePropertyCache(strict=False)
        Chem.FastFindRings(mol)  # ring info that fingerprints and descriptors need (sanitization skipped it)
    except Exception:  # noqa: BLE001 - an odd molecule is simply not randomized
        return None
    return mol


def randomize_smiles(smi: str, rng: np.random.Generator) -> str:
    """A random valid SMILES of the same molecule (stereo kept); ``smi`` itself if RDKit cannot parse it.

    The atom order is permuted with ``rng`` and written non-canonically (the unrestricted randomization of
    Arús-Pous et al.), because RDKit's own ``doRandom`` ignores any seed we give it and so could not be cached
    reproducibly.
    """
    mol = parse_molecule(smi)
    if mol is None or mol.GetNumAtoms() < 2:
        return smi
    Chem = _rdkit()
    order = rng.permutation(mol.GetNumAtoms()).tolist()
    try:
        out = Chem.MolToSmiles(Chem.RenumberAtoms(mol, order), canonical=False, isomericSmiles=True)
    except Exception:  # noqa: BLE001
        return smi
    return smi if (">" in out or "<" in out) else out


def _respell(rxn: str, spell: Callable[[str], str], rng: np.random.Generator) -> str:
    """``rxn`` with every molecule replaced by ``spell(molecule)`` and molecules shuffled within each role."""
    out = []
    for role in role_strings(rxn):
        mols = [spell(m) for m in role.split(".")] if role else []
        if len(mols) > 1:
            mols = [mols[i] for i in rng.permutation(len(mols))]
        out.append(".".join(mols))
    return ">".join(out)


def augment_reaction(rxn: str, rng: np.random.Generator) -> str:
    """Randomize every molecule of ``reactants>agents>products`` and shuffle molecules within each role."""
    return _respell(rxn, lambda m: randomize_smiles(m, rng), rng)


@lru_cache(maxsize=65536)
def canonical_molecule(smi: str) -> str:
    """RDKit's canonical SMILES of one molecule; ``smi`` itself where RDKit cannot read it."""
    mol = parse_molecule(smi)
    return smi if mol is None else _rdkit().MolToSmiles(mol)


def derive_n_variants(augment_ratio: float, augment_variants: int = 0) -> int:
    """Variants to cache per reaction: the configured number, else ``max(4*ceil(r), 4)`` capped at 64."""
    if augment_variants > 0:
        return augment_variants
    if augment_ratio <= 0:
        return 0
    return min(max(4 * math.ceil(augment_ratio), 4), 64)


def extra_copies(augment_ratio: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Per-reaction count of extra augmented copies this epoch: ``floor(r)`` plus one with probability ``frac(r)``."""
    base = math.floor(augment_ratio)
    frac = augment_ratio - base
    counts = np.full(n, base, dtype=np.int64)
    if frac > 0:
        counts += rng.random(n) < frac
    return counts


def _rdkit_version() -> str:
    from rdkit import __version__

    return __version__


def cache_key(reactions: Sequence[str], n: int, seed: int, scope: AugmentScope = "reaction") -> str:
    h = hashlib.sha256()
    h.update(f"{CACHE_FORMAT}/1|n={n}|seed={seed}|rdkit={_rdkit_version()}|".encode())
    if scope != "reaction":  # reaction-scope keys are those written before scopes existed
        h.update(f"scope={scope}|".encode())
    for r in reactions:
        h.update(r.encode())
        h.update(b"\n")
    return h.hexdigest()


def generate_variants(reactions: Sequence[str], n: int, seed: int,
                      scope: AugmentScope = "reaction") -> list[list[str]]:
    """``n`` augmented copies of each reaction; reaction ``i`` orders its molecules on its own stream
    ``(seed, i)``, and randomizes them on it too (``"reaction"``) or takes each canonical molecule's ``k``-th
    spelling, drawn on the molecule's own stream, for its ``k``-th copy (``"molecule"``)."""
    out = []
    if scope == "reaction":
        for i, rxn in enumerate(reactions):
            rng = np.random.default_rng([seed, i])
            out.append([augment_reaction(rxn, rng) for _ in range(n)])
        return out
    spellings: dict[str, list[str]] = {}

    def spelled(m: str, k: int) -> str:
        key = canonical_molecule(m)
        if key not in spellings:
            words = np.frombuffer(hashlib.sha256(key.encode()).digest()[:8], dtype=np.uint32).tolist()
            stream = np.random.default_rng([seed, *words])
            spellings[key] = [randomize_smiles(m, stream) for _ in range(n)]
        return spellings[key][k]

    for i, rxn in enumerate(reactions):
        rng = np.random.default_rng([seed, i])
        out.append([_respell(rxn, lambda m, k=k: spelled(m, k), rng) for k in range(n)])
    return out


_MEMORY: dict[str, list[list[str]]] = {}


class AugmentationCache:
    """Randomized variants of a reaction list, generated once and reused.

    ``cache_dir=None`` keeps them in this process only; with a directory they are also stored as
    ``<sha256>.json.gz`` there, so other trials and worker processes skip RDKit entirely.
    """

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None

    def path_for(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"{key}.json.gz"

    def variants(self, reactions: Sequence[str], n: int, seed: int = 0,
                 scope: AugmentScope = "reaction") -> list[list[str]]:
        """``n`` randomized variants per reaction (list per reaction, same order as ``reactions``)."""
        if n <= 0:
            return [[] for _ in reactions]
        key = cache_key(reactions, n, seed, scope)
        if key in _MEMORY:
            return _MEMORY[key]
        result = self._read(key, len(reactions), n)
        if result is None:
            result = generate_variants(reactions, n, seed, scope)
            self._write(key, result)
        _MEMORY[key] = result
        return result

    def _read(self, key: str, n_reactions: int, n: int) -> list[list[str]] | None:
        path = self.path_for(key)
        if path is None or not path.exists():
            return None
        try:
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                data = json.load(fh)
            variants = data["variants"]
            if data.get("format") != CACHE_FORMAT or len(variants) != n_reactions \
                    or any(len(v) != n or not all(isinstance(s, str) for s in v) for v in variants):
                return None
            return variants
        except (OSError, EOFError, ValueError, KeyError, TypeError):
            return None  # a damaged cache entry is regenerated, never trusted

    def _write(self, key: str, variants: list[list[str]]) -> None:
        path = self.path_for(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=".json.gz") as tmp, \
                gzip.open(tmp, "wt", encoding="utf-8", compresslevel=5) as fh:
            json.dump({"format": CACHE_FORMAT, "variants": variants}, fh, separators=(",", ":"))
