"""The gradient-boosted family: LightGBM on reaction fingerprints and descriptors.

A reaction ``reactants>agents>products`` becomes one float32 row from up to three feature blocks
(``gbm.blocks``):

* ``morgan``: Morgan count fingerprints (:mod:`yieldtune.chem.featurizers`) summed over the molecules of
  each role, reactants | agents | products side by side (3 × ``fp_bits`` columns);
* ``rdkit2d``: RDKit 2D descriptors summed per role likewise (trees need no scaling; NaN stays NaN, which
  LightGBM treats as missing);
* ``drfp``: the reaction difference fingerprint of the ``drfp`` package (``DrfpEncoder``), one per
  reaction, ``fp_bits`` long with ``fp_radius``.

Per-molecule vectors and per-reaction DRFPs go through the on-disk :class:`~yieldtune.chem.feature_cache.
FeatureCache`, so trials and workers compute each molecule and each reaction once.

On disk a GBM predictor is ``lightgbm_model.txt`` (LightGBM's own text model format: parsed, never
unpickled) and ``gbm.json`` (format, the RunConfig, the feature settings and the number of columns, which
loading checks against the model).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from yieldtune.config import RunConfig
from yieldtune.data.validate import role_strings
from yieldtune.errors import ModelFileError
from yieldtune.files import atomic_path, write_atomic
from yieldtune.model.saved import read_predictor_meta, require_files, run_config_of

FORMAT = "yieldtune-gbm-predictor"
FORMAT_VERSION = 1
MODEL_FILE = "lightgbm_model.txt"
SETTINGS_FILE = "gbm.json"
ROLES = ("reactants", "agents", "products")


def reaction_roles(rxn: str) -> tuple[list[str], list[str], list[str]]:
    """The molecules of each role of ``reactants>agents>products`` (an empty role is an empty list)."""
    parts = role_strings(rxn)
    if len(parts) != 3:
        parts = [parts[0], "", parts[-1]] if len(parts) == 2 else [rxn, "", ""]
    return tuple([m for m in part.split(".") if m] for part in parts)  # type: ignore[return-value]


def _role_sums(reactions: Sequence[str], featurizer, cache, column_chunk: int = 256) -> np.ndarray:
    """``[n, 3 * dim]`` float32: each role's molecule vectors summed (NaN-aware: NaN only if every one is NaN).

    A sparse reactions-by-molecules count matrix per role times the *distinct* molecules' vectors, summed in
    float64 a block of columns at a time: memory is the output plus one row per distinct molecule, never a row
    per molecule occurrence (aichem2024's 20,000 reactions hold about 100,000).
    """
    from scipy import sparse

    from yieldtune.chem.feature_cache import molecule_features

    index: dict[str, int] = {}
    rows: tuple[list[int], ...] = ([], [], [])
    cols: tuple[list[int], ...] = ([], [], [])
    for i, rxn in enumerate(reactions):
        for r, part in enumerate(reaction_roles(rxn)):
            for m in part:
                rows[r].append(i)
                cols[r].append(index.setdefault(m, len(index)))
    dim = featurizer.dim
    vectors = molecule_features(list(index), featurizer, cache=cache) if index else np.zeros((0, dim), np.float32)
    finite = np.isfinite(vectors)
    all_finite = bool(finite.all())
    out = np.empty((len(reactions), 3 * dim), dtype=np.float32)
    for r in range(3):
        counts = sparse.csr_matrix((np.ones(len(rows[r])), (rows[r], cols[r])), shape=(len(reactions), len(index)))
        has_role = np.diff(counts.indptr) > 0
        for lo in range(0, dim, column_chunk):
            hi = min(dim, lo + column_chunk)
            block = counts @ np.where(finite[:, lo:hi], vectors[:, lo:hi], 0.0).astype(np.float64)
            if not all_finite:  # a descriptor no molecule of the role could compute: missing, not 0
                seen = (counts @ finite[:, lo:hi].astype(np.float64)) > 0
                block[has_role[:, None] & ~seen] = np.nan
            out[:, r * dim + lo:r * dim + hi] = block
    return out


def _drfp_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("drfp")


# DRFPs computed without a disk cache, by (radius, bits): an ensemble's GBM members share one computation
_DRFP_MEMORY: dict[tuple[int, int], dict[str, np.ndarray]] = {}
_DRFP_MEMORY_LIMIT = 100_000  # vectors per setting (400 MB at 1024 bits); cleared beyond


def drfp_features(reactions: Sequence[str], radius: int, bits: int, cache) -> np.ndarray:
    """``[n, bits]`` DRFP of each reaction (canonical SMILES in, so equal reactions share a cache row)."""

    def compute(keys: list[str]) -> np.ndarray:
        from drfp import DrfpEncoder

        if not keys:
            return np.zeros((0, bits), dtype=np.float32)
        return np.asarray(DrfpEncoder.encode(keys, n_folded_length=bits, radius=radius), dtype=np.float32)

    if cache is None:  # no disk cache (a loaded model): remember them in this process, for the other members
        memory = _DRFP_MEMORY.setdefault((radius, bits), {})
        missing = [k for k in dict.fromkeys(reactions) if k not in memory]
        if len(memory) + len(missing) > _DRFP_MEMORY_LIMIT:
            memory.clear()
            missing = list(dict.fromkeys(reactions))
        memory.update(zip(missing, compute(missing)))
        return np.stack([memory[k] for k in reactions]) if reactions else compute([])
    namespace = f"drfp|radius={radius}|bits={bits}|drfp={_drfp_version()}"
    return cache.get_or_compute(namespace, list(reactions), compute)


@dataclass
class ReactionFeatures:
    """The feature blocks of a GBM configuration and how to compute them (no state beyond the settings)."""

    blocks: tuple[str, ...]
    radius: int
    bits: int
    cache_dir: str | None = None
    _cache: Any = field(default=None, repr=False)

    @classmethod
    def for_config(cls, config: RunConfig, cache_dir: str | os.PathLike | None = None) -> "ReactionFeatures":
        g = config.gbm
        return cls(g.block_list, g.fp_radius, g.fp_bits, None if cache_dir is None else str(cache_dir))

    def settings(self) -> dict[str, Any]:
        """What ``gbm.json`` records: blocks, their featurizers and the column count."""
        out: dict[str, Any] = {"blocks": list(self.blocks), "roles": list(ROLES), "n_features": self.n_features}
        for name, f in self._featurizers().items():
            out[name] = f.settings() | {"cache_key": f.cache_key}
        if "drfp" in self.blocks:
            out["drfp"] = {"radius": self.radius, "n_folded_length": self.bits, "drfp": _drfp_version()}
        return out

    def _featurizers(self) -> dict[str, Any]:
        from yieldtune.chem.featurizers import make_featurizer

        out = {}
        if "morgan" in self.blocks:
            out["morgan"] = make_featurizer("morgan", radius=self.radius, n_bits=self.bits)
        if "rdkit2d" in self.blocks:
            out["rdkit2d"] = make_featurizer("rdkit2d")
        return out

    @property
    def cache(self):
        if self._cache is None and self.cache_dir is not None:
            from yieldtune.chem.feature_cache import FeatureCache

            self._cache = FeatureCache(Path(self.cache_dir) / "features")
        return self._cache

    @property
    def n_features(self) -> int:
        n = sum(3 * f.dim for f in self._featurizers().values())
        return n + (self.bits if "drfp" in self.blocks else 0)

    def transform(self, reactions: Sequence[str]) -> np.ndarray:
        """``[len(reactions), n_features]`` float32, blocks in the order morgan, rdkit2d, drfp."""
        from yieldtune.chem.augment import canonical_molecule

        reactions = [">".join(".".join(canonical_molecule(m) for m in part)
                              for part in reaction_roles(r)) for r in reactions]
        parts = [_role_sums(reactions, f, self.cache) for f in self._featurizers().values()]
        if "drfp" in self.blocks:
            parts.append(drfp_features(reactions, self.radius, self.bits, self.cache))
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(reactions), 0), np.float32)


def cpu_share() -> int:
    """The process's share of the cores: torch's threads, which the worker sets (tune run -j N)."""
    import torch

    return torch.get_num_threads()


def lightgbm_params(config: RunConfig, threads: int | None = None) -> dict[str, Any]:
    """LightGBM's parameter dict for ``config.gbm``; threads: the config's, else the worker's CPU share."""
    g = config.gbm
    if g.num_threads:
        threads = g.num_threads
    elif threads is None:
        threads = cpu_share()
    return {
        "objective": "regression", "metric": "None", "learning_rate": g.learning_rate,
        "num_leaves": g.num_leaves, "min_child_samples": g.min_child_samples,
        "feature_fraction": g.feature_fraction, "bagging_fraction": g.bagging_fraction,
        "bagging_freq": 1 if g.bagging_fraction < 1.0 else 0, "lambda_l1": g.lambda_l1, "lambda_l2": g.lambda_l2,
        "extra_trees": g.extra_trees, "seed": g.seed, "deterministic": True, "force_col_wise": True,
        "num_threads": int(threads), "verbosity": -1,
    }


class GBMPredictor:
    """Predicts yields in [0, 1] with a LightGBM booster on :class:`ReactionFeatures`."""

    family = "gbm"

    def __init__(self, booster, config: RunConfig, features: ReactionFeatures) -> None:
        self.booster, self.config, self.features = booster, config, features

    def use_cache(self, directory: str | os.PathLike | None) -> "GBMPredictor":
        """Read and store features in the on-disk feature cache under ``directory`` (None: in memory)."""
        self.features = ReactionFeatures(self.features.blocks, self.features.radius, self.features.bits,
                                         None if directory is None else str(directory))
        return self

    def predict(self, reactions, *, tta: int = 0, seed: int = 0,
                batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)``; std is 0 (canonical features: randomized SMILES would give the same row)."""
        rxns = list(getattr(reactions, "reactions", reactions))
        if not rxns:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        x = self.features.transform(rxns)
        mean = np.clip(self.booster.predict(x), 0.0, 1.0).astype(np.float32)
        return mean, np.zeros_like(mean)

    def config_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "family": self.family,
                "run_config": self.config.model_dump(mode="json"), "features": self.features.settings(),
                "num_trees": int(self.booster.num_trees())}

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``lightgbm_model.txt`` (LightGBM text format) and ``gbm.json`` into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / MODEL_FILE) as tmp:
            self.booster.save_model(str(tmp))
        write_atomic(directory / SETTINGS_FILE, json.dumps(self.config_dict(), indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, device: str = "cpu") -> "GBMPredictor":
        """Load what :meth:`save` wrote; a malformed or mismatching file is a :class:`ModelFileError`."""
        import lightgbm

        directory = Path(directory)
        require_files(directory, (MODEL_FILE, SETTINGS_FILE), "GBM model directory")
        meta_path = directory / SETTINGS_FILE
        config = run_config_of(read_predictor_meta(meta_path, FORMAT, FORMAT_VERSION, "GBM predictor"), meta_path)
        model_path = directory / MODEL_FILE
        with model_path.open("rb") as fh:
            if fh.read(5) != b"tree\n":
                raise ModelFileError(f"{model_path}: not a LightGBM text model (pickled objects are never loaded)")
        try:
            booster = lightgbm.Booster(model_file=str(model_path))
        except lightgbm.basic.LightGBMError as err:
            raise ModelFileError(f"{model_path}: not a valid LightGBM model ({err})") from None
        features = ReactionFeatures.for_config(config)
        if booster.num_feature() != features.n_features:
            raise ModelFileError(f"{model_path}: {booster.num_feature()} features, but {SETTINGS_FILE} describes "
                                 f"{features.n_features}")
        return cls(booster, config, features)


__all__ = ["GBMPredictor", "ReactionFeatures", "cpu_share", "lightgbm_params", "reaction_roles", "MODEL_FILE",
           "SETTINGS_FILE", "FORMAT"]
