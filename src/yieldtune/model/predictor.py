"""A trained model packaged with everything needed to use it: tokenizer, RunConfig and target scaling.

On disk a predictor is a directory of three files: ``model.safetensors`` (weights only, never a pickle),
``vocab.json`` and ``config.json``, plus ``domain.safetensors`` (fingerprints of the training molecules per
role, for the applicability domain) where it was saved with one. ``config.json`` carries the molecule
featurizer settings and fitted scalers, so molecules never seen in training are featurized at prediction
time. Loading never unpickles anything, and a missing, malformed or tampered file is a
:class:`ModelFileError` that says which file and why.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from yieldtune.chem.tokenizer import SmilesTokenizer
from yieldtune.config import RunConfig
from yieldtune.data.table import ReactionTable
from yieldtune.errors import ConfigError, ModelFileError
from yieldtune.files import atomic_path, write_atomic
from yieldtune.model.batching import EncodedReactions, sorted_batches
from yieldtune.model.device import autocast, resolve_device, resolve_precision
from yieldtune.model.domain import Domain
from yieldtune.model.features import MoleculeFeatures, SlotFeatures
from yieldtune.model.saved import read_predictor_meta, require_files, run_config_of
from yieldtune.model.transformer import YieldTransformer

FORMAT = "yieldtune-predictor"
FORMAT_VERSION = 1
WEIGHTS, VOCAB, CONFIG, DOMAIN = "model.safetensors", "vocab.json", "config.json", "domain.safetensors"


def to_device(batch: np.ndarray, device: torch.device) -> torch.Tensor:
    """Host array -> device tensor; pinned + non-blocking on CUDA so the copy overlaps compute."""
    t = torch.from_numpy(batch)
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t


class YieldPredictor:
    """Predicts yields in [0, 1] for reaction SMILES, optionally with test-time augmentation."""

    def __init__(self, model: YieldTransformer, tokenizer: SmilesTokenizer, config: RunConfig,
                 target_mean: float, target_std: float, device: str | torch.device = "cpu",
                 features: MoleculeFeatures | None = None, domain: Domain | None = None) -> None:
        self.tokenizer, self.config = tokenizer, config
        self.target_mean, self.target_std = float(target_mean), float(target_std)
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.features = features if features else None
        if self.features is None and config.model.molecule_features:  # record what the model really uses
            self.config = config.model_copy(update={"model": config.model.model_copy(
                update={"molecule_features": ()})})
        self.domain = domain
        self.feature_cache = None  # a FeatureCache the trainer shares; None: new molecules computed in memory

    def reaction_features(self, reactions: list[str]) -> SlotFeatures | None:
        """Per-slot molecule features for ``reactions`` (None for a model without features)."""
        if self.features is None:
            return None
        return self.features.for_reactions(reactions, self.feature_cache).to(self.device)

    # -- prediction -------------------------------------------------------------------------------
    def predict_encoded(self, encoded, batch_size: int = 256, features: SlotFeatures | None = None) -> np.ndarray:
        """Yields for pre-encoded sequences (:class:`~yieldtune.model.batching.EncodedReactions`) and, for a
        model with molecule features, their :class:`SlotFeatures` (same rows)."""
        if self.features is not None and features is None:
            raise ValueError("this predictor uses molecule features: pass the reactions' features")
        out = np.empty(len(encoded), dtype=np.float32)
        if len(encoded) == 0:
            return out
        precision = resolve_precision(self.config.train.precision, self.device, self.config.model.d_model)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode(), autocast(precision, self.device):
                for idx in sorted_batches(encoded.lengths, batch_size):
                    ids = to_device(encoded.pad(idx, self.tokenizer.pad_id), self.device)
                    feats = None if features is None else features.batch(idx)
                    out[idx] = self.model(ids, feats).float().cpu().numpy()
        finally:
            self.model.train(was_training)
        return np.clip(out * self.target_std + self.target_mean, 0.0, 1.0)

    def predict(self, reactions: list[str] | ReactionTable, *, tta: int = 0, seed: int = 0,
                batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, std)`` per reaction; with ``tta=N`` over the original plus N randomized copies."""
        from yieldtune.chem.augment import generate_variants

        rxns = list(reactions.reactions if isinstance(reactions, ReactionTable) else reactions)
        max_len = self.config.model.max_len
        preds = [self.predict_encoded(EncodedReactions(self.tokenizer.encode_many(rxns, max_len)), batch_size,
                                      self.reaction_features(rxns))]
        if tta > 0 and rxns:
            variants = generate_variants(rxns, tta, seed, self.config.train.augment_scope)
            flat = [v for per_rxn in variants for v in per_rxn]
            extra = self.predict_encoded(EncodedReactions(self.tokenizer.encode_many(flat, max_len)), batch_size,
                                         self.reaction_features(flat))
            preds.extend(extra.reshape(len(rxns), tta).T)
        stacked = np.stack(preds).astype(np.float32)
        mean = stacked.mean(axis=0)
        std = stacked.std(axis=0) if tta > 0 else np.zeros_like(mean)
        return mean.astype(np.float32), std.astype(np.float32)

    # -- persistence ------------------------------------------------------------------------------
    def config_dict(self) -> dict:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "run_config": self.config.model_dump(),
                "target_mean": self.target_mean, "target_std": self.target_std,
                "vocab_size": self.tokenizer.vocab_size,
                "molecule_features": None if self.features is None else self.features.to_dict()}

    def save(self, directory: str | Path) -> Path:
        """Write ``model.safetensors``, ``vocab.json`` and ``config.json`` into ``directory`` (atomic per file)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in self.model.state_dict().items()}
        with atomic_path(directory / WEIGHTS) as tmp:
            save_file(state, str(tmp), metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
        self.tokenizer.save(directory / VOCAB)
        if self.domain is not None:
            self.domain.save(directory / DOMAIN)
        write_atomic(directory / CONFIG, json.dumps(self.config_dict(), indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> "YieldPredictor":
        """Load a directory written by :meth:`save`, refusing anything malformed or unsafe."""
        from safetensors.torch import load_file

        directory = Path(directory)
        if not directory.is_dir():
            raise ModelFileError(f"{directory}: model directory not found")
        require_files(directory, (WEIGHTS, VOCAB, CONFIG), "model directory")
        cfg_path = directory / CONFIG
        meta = read_predictor_meta(cfg_path, FORMAT, FORMAT_VERSION, "predictor")
        run_config = meta.get("run_config")
        if isinstance(run_config, dict) and isinstance(run_config.get("model"), dict):
            # predictors saved before the hierarchical architecture existed are all flat
            run_config["model"].setdefault("architecture", "flat")
            # ... and those saved before molecule features existed use none (the default has some now)
            run_config["model"].setdefault("molecule_features", [])
            # ... and those saved before model.encoder existed read tokens, without feature dropout
            run_config["model"].setdefault("encoder", "scratch")
            run_config["model"].setdefault("feature_dropout", 0.0)
        config = run_config_of(meta, cfg_path)
        try:
            mean, std = float(meta["target_mean"]), float(meta["target_std"])
        except (KeyError, TypeError, ValueError):
            raise ModelFileError(f"{cfg_path}: target_mean/target_std missing or not numbers") from None
        if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
            raise ModelFileError(f"{cfg_path}: target_mean/target_std must be finite, std > 0")
        tokenizer = SmilesTokenizer.load(directory / VOCAB)
        features = None
        if meta.get("molecule_features") is not None:
            try:
                features = MoleculeFeatures.from_dict(meta["molecule_features"])
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                raise ModelFileError(f"{cfg_path}: invalid molecule_features ({err})") from None
            except ConfigError as err:  # e.g. the pretrained extra is not installed here
                raise ModelFileError(f"{cfg_path}: {err}") from None
        elif config.model.molecule_features:
            raise ModelFileError(f"{cfg_path}: run_config names molecule features but molecule_features is missing")
        domain = Domain.load(directory / DOMAIN) if (directory / DOMAIN).is_file() else None
        weights_path = directory / WEIGHTS
        try:
            state = load_file(str(weights_path), device="cpu")
        except Exception as err:  # noqa: BLE001 - SafetensorError, OSError, header errors
            raise ModelFileError(
                f"{weights_path}: not a valid safetensors file ({type(err).__name__}: {err})") from None
        model = YieldTransformer.for_tokenizer(config.model, tokenizer, features.dim if features else 0)
        expected = model.state_dict()
        if not model.tokens_encoded:  # saved before encoder "none" stopped building feature_mix: dead weights
            state = {k: v for k, v in state.items() if not k.startswith("feature_mix.")}
        problems = [k for k in expected if k not in state] + [k for k in state if k not in expected]
        problems += [f"{k} has shape {tuple(state[k].shape)}, config needs {tuple(v.shape)}"
                     for k, v in expected.items() if k in state and state[k].shape != v.shape]
        problems += [f"{k} has dtype {state[k].dtype}" for k in expected
                     if k in state and not state[k].is_floating_point()]
        if problems:
            shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
            raise ModelFileError(f"{weights_path}: weights do not match {CONFIG}/{VOCAB}: {shown}")
        model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=True)
        try:
            return cls(model, tokenizer, config, mean, std, device, features, domain)
        except ConfigError as err:
            raise ModelFileError(f"{directory}: {err}") from None
