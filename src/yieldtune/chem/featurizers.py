"""Molecule featurizers: chemistry the token model cannot learn from a few thousand reactions.

A featurizer turns canonical molecule SMILES into fixed-length float32 rows. It never caches (see
:mod:`yieldtune.chem.feature_cache`) and never scales: ``rdkit2d`` descriptors span many orders of
magnitude, so models fit a :class:`RobustScaler` on their *training* molecules and save it with the weights.

Registered names (the ones study files and ``model.molecule_features`` use):

* ``morgan``: Morgan *count* fingerprint from ``rdFingerprintGenerator`` (``radius``, ``n_bits``).
* ``rdkit2d``: every RDKit 2D descriptor (``Descriptors.CalcMolDescriptors``); values RDKit cannot compute
  or that overflow float32 are NaN (the scaler maps them to the median).
* ``pretrained``: the mean-pooled last hidden state of the ALBERT that ``rxnmapper`` ships (hidden 256,
  MLM-pretrained on 1.31 M USPTO reactions), frozen. Needs the optional extra ``yieldtune[pretrained]``.
  The files are located with ``importlib.metadata`` and loaded with ``transformers.AlbertModel``; rxnmapper
  itself is never imported (its ``__init__`` needs ``pkg_resources``, which current setuptools lacks).

A SMILES RDKit cannot read gets an all-zero row (``morgan``/``pretrained`` still tokenizes it), never an error:
data validation already reported it.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from yieldtune.errors import ConfigError

PRETRAINED_EXTRA = "yieldtune[pretrained]"
ALBERT_SUBDIR = "rxnmapper/models/transformers/albert_heads_8_uspto_all_1310k"


def rdkit_version() -> str:
    from rdkit import __version__

    return __version__


def _mol(smiles: str):
    from yieldtune.chem.augment import parse_molecule

    return parse_molecule(smiles)


class MoleculeFeaturizer:
    """Base class: ``name``, JSON-able ``params``, ``dim`` and a ``cache_key`` that changes with any of them."""

    name: str = ""

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = params

    @property
    def dim(self) -> int:
        raise NotImplementedError

    @property
    def version(self) -> str:
        """What else changes the output (RDKit version, model files); part of :attr:`cache_key`."""
        return f"rdkit={rdkit_version()}"

    @property
    def cache_key(self) -> str:
        params = json.dumps(self.params, sort_keys=True, separators=(",", ":"))
        return f"{self.name}|{params}|{self.version}"

    def featurize(self, canonical_smiles: Sequence[str]) -> np.ndarray:
        """``[n, dim]`` float32 rows, one per SMILES."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """What a saved model records to rebuild this featurizer: ``{"name": ..., "params": {...}}``."""
        return {"name": self.name, "params": dict(self.params)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"


class MorganFeaturizer(MoleculeFeaturizer):
    """Morgan count fingerprint (ECFP-like counts of circular substructures)."""

    name = "morgan"

    def __init__(self, radius: int = 2, n_bits: int = 2048) -> None:
        if not (isinstance(radius, int) and 0 <= radius <= 8):
            raise ConfigError(f"morgan featurizer: radius must be an integer 0..8, got {radius!r}")
        if not (isinstance(n_bits, int) and 16 <= n_bits <= 1 << 16):
            raise ConfigError(f"morgan featurizer: n_bits must be an integer 16..65536, got {n_bits!r}")
        super().__init__(radius=radius, n_bits=n_bits)

    @property
    def dim(self) -> int:
        return self.params["n_bits"]

    def featurize(self, canonical_smiles: Sequence[str]) -> np.ndarray:
        from rdkit.Chem import rdFingerprintGenerator

        gen = rdFingerprintGenerator.GetMorganGenerator(radius=self.params["radius"], fpSize=self.dim)
        out = np.zeros((len(canonical_smiles), self.dim), dtype=np.float32)
        for i, smi in enumerate(canonical_smiles):
            mol = _mol(smi)
            if mol is not None:
                out[i] = gen.GetCountFingerprintAsNumPy(mol)
        return out


@lru_cache(maxsize=1)
def descriptor_names() -> tuple[str, ...]:
    from rdkit.Chem import Descriptors

    return tuple(name for name, _ in Descriptors._descList)


class Rdkit2dFeaturizer(MoleculeFeaturizer):
    """RDKit's 2D descriptors (~217 with RDKit 2024+), unscaled; NaN where one is not computable."""

    name = "rdkit2d"

    def __init__(self) -> None:
        super().__init__()

    @property
    def dim(self) -> int:
        return len(descriptor_names())

    @property
    def version(self) -> str:
        names = hashlib.sha256("\n".join(descriptor_names()).encode()).hexdigest()[:12]
        return f"rdkit={rdkit_version()}|descriptors={names}"

    def featurize(self, canonical_smiles: Sequence[str]) -> np.ndarray:
        from rdkit import rdBase
        from rdkit.Chem import Descriptors

        names = descriptor_names()
        out = np.full((len(canonical_smiles), len(names)), np.nan, dtype=np.float64)
        for i, smi in enumerate(canonical_smiles):
            mol = _mol(smi)
            if mol is None:
                continue
            with rdBase.BlockLogs(), np.errstate(all="ignore"):
                try:
                    values = Descriptors.CalcMolDescriptors(mol, missingVal=math.nan)
                except Exception:  # noqa: BLE001 - an unsanitized odd molecule: leave it NaN
                    continue
            out[i] = [values.get(n, math.nan) for n in names]
        out[~np.isfinite(out) | (np.abs(out) > 1e30)] = np.nan
        return out.astype(np.float32)


def _pretrained_missing() -> str | None:
    """Which part of the ``pretrained`` extra is missing, or None."""
    import importlib.metadata
    import importlib.util

    try:
        if importlib.util.find_spec("transformers") is None:
            return "transformers"
        import transformers  # noqa: F401 - a broken install counts as missing
    except Exception:  # noqa: BLE001 - ImportError and anything a half-installed package raises
        return "transformers"
    try:
        path = importlib.metadata.distribution("rxnmapper").locate_file(ALBERT_SUBDIR)
    except importlib.metadata.PackageNotFoundError:
        return "rxnmapper"
    if not (path / "config.json").is_file():  # type: ignore[operator]
        return "rxnmapper's ALBERT model files"
    return None


def require_pretrained() -> None:
    """Raise one clear :class:`ConfigError` naming the extra when the pretrained model cannot load."""
    missing = _pretrained_missing()
    if missing is not None:
        raise ConfigError(f"the 'pretrained' featurizer/encoder needs the optional extra {PRETRAINED_EXTRA} "
                          f"({missing} is not installed): pip install '{PRETRAINED_EXTRA}'")


def albert_path():
    """Directory of rxnmapper's ALBERT (``config.json``, ``vocab.txt``, weights), without importing rxnmapper."""
    import importlib.metadata

    require_pretrained()
    return importlib.metadata.distribution("rxnmapper").locate_file(ALBERT_SUBDIR)


@lru_cache(maxsize=1)
def load_albert():
    """``(AlbertModel in eval mode, vocab dict)``, loaded once per process."""
    require_pretrained()
    import transformers

    path = albert_path()
    model = transformers.AlbertModel.from_pretrained(str(path), add_pooling_layer=False)
    model.eval()
    vocab = {line.rstrip("\n"): i for i, line in enumerate((path / "vocab.txt").read_text().splitlines())}
    return model, vocab


def albert_token_ids(smiles: str, vocab: dict[str, int], max_len: int = 512) -> list[int]:
    """``[CLS]`` + regex SMILES tokens (``[UNK]`` for unknown) + ``[SEP]``, as the rxnmapper tokenizer does."""
    from yieldtune.chem.tokenizer import tokenize

    unk = vocab["[UNK]"]
    ids = [vocab.get(t, unk) for t in tokenize(smiles)][: max_len - 2]
    return [vocab["[CLS]"], *ids, vocab["[SEP]"]]


class PretrainedFeaturizer(MoleculeFeaturizer):
    """Frozen rxnmapper ALBERT: mean of the last hidden state over the molecule's tokens (256 floats)."""

    name = "pretrained"

    def __init__(self) -> None:
        require_pretrained()
        super().__init__()

    @property
    def dim(self) -> int:
        return 256

    @property
    def version(self) -> str:
        path = albert_path()
        weights = next((p for p in ("model.safetensors", "pytorch_model.bin") if (path / p).is_file()), "")
        digest = hashlib.sha256((path / "config.json").read_bytes()).hexdigest()[:12]
        size = (path / weights).stat().st_size if weights else 0
        return f"albert_uspto_1310k|config={digest}|weights={size}"

    def featurize(self, canonical_smiles: Sequence[str], batch_size: int = 64) -> np.ndarray:
        import torch

        model, vocab = load_albert()
        pad = vocab["[PAD]"]
        out = np.zeros((len(canonical_smiles), self.dim), dtype=np.float32)
        order = sorted(range(len(canonical_smiles)), key=lambda i: len(canonical_smiles[i]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                seqs = [albert_token_ids(canonical_smiles[i], vocab) for i in rows]
                width = max(len(s) for s in seqs)
                ids = torch.full((len(seqs), width), pad, dtype=torch.long)
                for j, s in enumerate(seqs):
                    ids[j, :len(s)] = torch.tensor(s)
                mask = (ids != pad).long()
                hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
                pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
                out[rows] = pooled.float().numpy()
        return out


FEATURIZERS: dict[str, Callable[..., MoleculeFeaturizer]] = {
    "morgan": MorganFeaturizer,
    "rdkit2d": Rdkit2dFeaturizer,
    "pretrained": PretrainedFeaturizer,
}


def make_featurizer(name: str, **params: Any) -> MoleculeFeaturizer:
    """The featurizer registered as ``name``; unknown names or parameters are a :class:`ConfigError`."""
    try:
        factory = FEATURIZERS[name]
    except KeyError:
        raise ConfigError(f"unknown molecule featurizer {name!r}; known: {', '.join(FEATURIZERS)}") from None
    try:
        return factory(**params)
    except TypeError as err:
        raise ConfigError(f"featurizer {name!r}: bad parameters {params} ({err})") from None


def featurizer_from_settings(settings: dict[str, Any]) -> MoleculeFeaturizer:
    """Inverse of :meth:`MoleculeFeaturizer.settings`."""
    return make_featurizer(settings["name"], **settings.get("params", {}))


class RobustScaler:
    """Per-column ``(x - median) / IQR`` fitted on training rows, NaN -> 0 (the median), clipped to ±``clip``.

    Columns with zero IQR fall back to the standard deviation, then to 1; saved as plain JSON numbers.
    """

    def __init__(self, center: np.ndarray, scale: np.ndarray, clip: float = 10.0) -> None:
        self.center = np.asarray(center, dtype=np.float32)
        self.scale = np.asarray(scale, dtype=np.float32)
        self.clip = float(clip)

    @classmethod
    def fit(cls, x: np.ndarray, clip: float = 10.0) -> "RobustScaler":
        x = np.asarray(x, dtype=np.float64)
        if len(x) == 0:
            return cls(np.zeros(x.shape[1]), np.ones(x.shape[1]), clip)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: handled below
            center = np.nanmedian(x, axis=0)
            q75, q25 = np.nanpercentile(x, [75, 25], axis=0)
            scale = q75 - q25
            std = np.nanstd(x, axis=0)
        center = np.where(np.isfinite(center), center, 0.0)
        fallback = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
        scale = np.where(np.isfinite(scale) & (scale > 1e-12), scale, fallback)
        return cls(center, scale, clip)

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = (np.asarray(x, dtype=np.float32) - self.center) / self.scale
        return np.clip(np.nan_to_num(x, nan=0.0, posinf=self.clip, neginf=-self.clip), -self.clip, self.clip)

    def to_dict(self) -> dict[str, Any]:
        return {"center": self.center.tolist(), "scale": self.scale.tolist(), "clip": self.clip}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RobustScaler":
        center, scale = np.asarray(data["center"], np.float32), np.asarray(data["scale"], np.float32)
        if center.shape != scale.shape or center.ndim != 1 or not (np.isfinite(center).all() and (scale > 0).all()):
            raise ValueError("scaler: center/scale must be equal-length finite vectors with scale > 0")
        return cls(center, scale, float(data.get("clip", 10.0)))


__all__ = ["FEATURIZERS", "MoleculeFeaturizer", "MorganFeaturizer", "PRETRAINED_EXTRA", "PretrainedFeaturizer",
           "Rdkit2dFeaturizer", "RobustScaler", "albert_path", "albert_token_ids", "descriptor_names",
           "featurizer_from_settings", "load_albert", "make_featurizer", "rdkit_version", "require_pretrained"]
