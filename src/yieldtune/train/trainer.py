"""Training one configuration: the inner loop every trial, refit and ``tune train`` runs.

Fast by construction: reactions and their cached randomized variants are tokenized once into flat int32
arrays, batches are length-bucketed and padded only to their own maximum, attention runs through torch's
fused SDPA kernels, and autocast (bf16 where the hardware has it) is used for training and validation.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from yieldtune.chem.augment import AugmentationCache, derive_n_variants, extra_copies
from yieldtune.chem.feature_cache import FeatureCache
from yieldtune.chem.tokenizer import SmilesTokenizer
from yieldtune.config import RunConfig
from yieldtune.data.table import ReactionTable
from yieldtune.errors import DataError
from yieldtune.metrics import mae, r2_score, rmse
from yieldtune.model.batching import EncodedReactions, bucketed_batches, encode_reactions
from yieldtune.model.device import autocast, needs_grad_scaler, resolve_device, resolve_precision
from yieldtune.model.domain import Domain
from yieldtune.model.features import MoleculeFeatures
from yieldtune.model.predictor import YieldPredictor, to_device
from yieldtune.model.transformer import YieldTransformer
from yieldtune.train.schedulers import build_scheduler


@dataclass
class EpochMetrics:
    """What one epoch did; ``val_*`` are None when training without a validation set."""

    epoch: int
    train_loss: float
    val_r2: float | None
    val_mae: float | None
    val_rmse: float | None
    lr: float
    seconds: float
    samples_per_s: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FitResult:
    history: list[EpochMetrics]
    best_epoch: int
    best: EpochMetrics
    predictor: YieldPredictor
    val_predictions: np.ndarray | None
    stopped_early: bool


def seed_everything(seed: int) -> None:
    """Same seed, same run (on CPU): Python, NumPy and torch generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: decay matrices, never biases or LayerNorm gains (1-D parameters)."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def target_scaling(yields: np.ndarray) -> tuple[float, float]:
    """Mean and std of the training targets (std floored so constant targets cannot divide by zero)."""
    y = np.asarray(yields, dtype=np.float64)
    return float(y.mean()), float(max(y.std(), 1e-3))


class Trainer:
    """Trains a :class:`YieldTransformer` for one :class:`RunConfig`.

    ``cache_dir`` holds randomized-SMILES variants shared across trials and processes (None: this process
    only). ``progress=True`` shows a rich progress bar.
    """

    def __init__(self, config: RunConfig, device: str = "auto", cache_dir: Path | None = None,
                 progress: bool = False) -> None:
        self.config = config
        self.device = resolve_device(device)
        self.precision = resolve_precision(config.train.precision, self.device, config.model.d_model)
        self.cache = AugmentationCache(cache_dir)
        self.feature_cache = FeatureCache(Path(cache_dir) / "features") if cache_dir is not None else None
        self.progress = progress

    # -- data -------------------------------------------------------------------------------------
    def _prepare(self, train: ReactionTable) -> tuple[SmilesTokenizer, EncodedReactions, int, list[str]]:
        """Tokenizer + one encoded buffer: rows ``0..N-1`` the reactions, then ``n`` variants per reaction
        (those reaction strings are returned too)."""
        tc, mc = self.config.train, self.config.model
        n_var = derive_n_variants(tc.augment_ratio, tc.augment_variants) if tc.augment_ratio > 0 else 0
        variants = self.cache.variants(train.reactions, n_var, tc.seed, tc.augment_scope) if n_var else []
        flat_variants = [v for per_rxn in variants for v in per_rxn]
        tokenizer = SmilesTokenizer.build(train.reactions + flat_variants)
        encoded = encode_reactions(tokenizer, train.reactions + flat_variants, mc.max_len)
        return tokenizer, encoded, n_var, train.reactions + flat_variants

    def _features(self, reactions: list[str], val: ReactionTable | None):
        """Fitted :class:`MoleculeFeatures` and the per-slot lookups for the training buffer and ``val``
        (one featurization per distinct canonical molecule; all None without ``model.molecule_features``)."""
        features = MoleculeFeatures.from_config(self.config.model)
        if not features:
            return None, None, None
        train_feats = features.fit_reactions(reactions, self.feature_cache)
        val_feats = features.for_reactions(val.reactions, self.feature_cache) if val is not None else None
        return (features, train_feats.to(self.device),
                None if val_feats is None else val_feats.to(self.device))

    def _epoch_rows(self, n: int, n_var: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the encoded buffer for one epoch and the reaction each comes from."""
        originals = np.arange(n)
        if n_var == 0:
            return originals, originals
        counts = extra_copies(self.config.train.augment_ratio, n, rng)
        src = np.repeat(originals, counts)
        if len(src) == 0:
            return originals, originals
        # distinct variants per reaction where possible: offset a random start by the copy number; with
        # molecule-scope variants one start for all, so a batch's copies share their molecules' spellings
        shared = self.config.train.augment_scope == "molecule"
        start = np.full(n, rng.integers(0, n_var)) if shared else rng.integers(0, n_var, size=n)
        copy_no = np.arange(len(src)) - np.repeat(np.cumsum(counts) - counts, counts)
        var = (start[src] + copy_no) % n_var
        rows = n + src * n_var + var
        return np.concatenate([originals, rows]), np.concatenate([originals, src])

    # -- training ---------------------------------------------------------------------------------
    def fit(self, train: ReactionTable, val: ReactionTable | None = None,
            on_epoch: Callable[[EpochMetrics], None] | None = None) -> FitResult:
        """Train for ``train.epochs_for(len(train))`` epochs (or until early stopping); ``on_epoch`` exceptions
        propagate."""
        tc, mc = self.config.train, self.config.model
        if not train.has_targets or len(train) == 0:
            raise DataError("training data needs at least one reaction with a yield", path=train.source)
        if val is not None and (not val.has_targets or len(val) == 0):
            val = None
        if tc.num_threads > 0:
            torch.set_num_threads(tc.num_threads)
        seed_everything(tc.seed)
        rng = np.random.default_rng(tc.seed)

        tokenizer, encoded, n_var, buffer_reactions = self._prepare(train)
        features, train_feats, val_feats = self._features(buffer_reactions, val)
        mean, std = target_scaling(train.yields)
        y_scaled = ((train.yields.astype(np.float64) - mean) / std).astype(np.float32)
        val_encoded = encode_reactions(tokenizer, val.reactions, mc.max_len) if val is not None else None

        model = YieldTransformer.for_tokenizer(mc, tokenizer, features.dim if features else 0).to(self.device)
        if features and mc.silence_unseen_features:
            model.silence_feature_columns((train_feats.table[:-1] == 0).all(dim=0))
        # with train.ema_decay the averaged weights are what is validated, kept and saved (a flatter minimum:
        # steadier across seeds and on molecules unlike the training ones); the raw weights only train
        ema = (torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(
            tc.ema_decay)) if tc.ema_decay > 0 else None)
        kept = model if ema is None else ema.module
        predictor = YieldPredictor(kept, tokenizer, self.config, mean, std, self.device, features,
                                   Domain.from_reactions(train.reactions))
        predictor.feature_cache = self.feature_cache
        fused = self.device.type == "cuda"
        optimizer = torch.optim.AdamW(param_groups(model, tc.weight_decay), lr=tc.lr, fused=fused)
        epochs = tc.epochs_for(len(train))
        steps_per_epoch = math.ceil((len(train) * (1.0 + tc.augment_ratio if n_var else 1.0)) / tc.batch_size)
        schedule = build_scheduler(tc.scheduler, optimizer, steps_per_epoch * epochs, steps_per_epoch, tc,
                                   **({"mode": "max" if val is not None else "min"}
                                      if tc.scheduler == "plateau" else {}))
        scaler = torch.amp.GradScaler(self.device.type) if needs_grad_scaler(self.precision) else None
        y_all = torch.from_numpy(y_scaled)

        history: list[EpochMetrics] = []
        best: EpochMetrics | None = None
        best_state: dict | None = None
        best_val_pred: np.ndarray | None = None
        stale, stopped_early = 0, False
        keep_best = tc.keep_epoch == "best"  # else the last epoch's weights, whatever validation says
        bar = _ProgressBar(epochs) if self.progress else None
        try:
            for epoch in range(1, epochs + 1):
                t0 = time.perf_counter()
                rows, src = self._epoch_rows(len(train), n_var, rng)
                if bar is not None:
                    bar.start_epoch(epoch, len(rows))
                model.train()
                # summed on the device: a float() per step would wait for the GPU every batch
                total_loss, seen = torch.zeros((), dtype=torch.float32, device=self.device), 0
                for batch in bucketed_batches(encoded.lengths[rows], tc.batch_size, rng):
                    ids = to_device(encoded.pad(rows[batch], tokenizer.pad_id), self.device)
                    target = y_all[src[batch]].to(self.device, non_blocking=True)
                    feats = None if train_feats is None else train_feats.batch(rows[batch])
                    with autocast(self.precision, self.device):
                        pred = model(ids, feats)
                    loss = nn.functional.mse_loss(pred.float(), target)
                    optimizer.zero_grad(set_to_none=True)
                    if scaler is not None:
                        scaler.scale(loss).backward()
                        scaler.unscale_(optimizer)
                    else:
                        loss.backward()
                    if tc.grad_clip > 0:
                        nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                    if scaler is not None:
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        optimizer.step()
                    schedule.step_batch()
                    if ema is not None:
                        ema.update_parameters(model)
                    total_loss += loss.detach() * len(batch)
                    seen += len(batch)
                    if bar is not None:
                        bar.advance_batch(len(batch))
                train_loss = float(total_loss) / max(1, seen)  # one sync per epoch, before the clock stops
                train_seconds = time.perf_counter() - t0
                if not math.isfinite(train_loss):
                    raise FloatingPointError(f"training loss became {train_loss} at epoch {epoch}; lower train.lr")

                val_pred = None
                val_r2 = val_mae = val_rmse = None
                if val is not None:
                    val_pred = predictor.predict_encoded(val_encoded, max(256, tc.batch_size), val_feats)
                    val_r2, val_mae, val_rmse = (r2_score(val.yields, val_pred), mae(val.yields, val_pred),
                                                 rmse(val.yields, val_pred))
                metrics = EpochMetrics(epoch, train_loss, val_r2, val_mae, val_rmse, schedule.lr,
                                       time.perf_counter() - t0, seen / max(train_seconds, 1e-9))
                history.append(metrics)
                schedule.step_epoch(val_r2 if val is not None else train_loss)

                improved = best is None or (val is not None and val_r2 > best.val_r2)
                if val is None:
                    best = metrics
                elif improved:
                    best, stale = metrics, 0
                    if keep_best:
                        best_state = {k: v.detach().clone() for k, v in kept.state_dict().items()}
                        best_val_pred = val_pred
                else:
                    stale += 1
                if not keep_best:
                    best_val_pred = val_pred
                if bar is not None:
                    bar.end_epoch(metrics)
                if on_epoch is not None:
                    on_epoch(metrics)
                if val is not None and tc.early_stopping_patience and stale >= tc.early_stopping_patience \
                        and epoch < epochs:
                    stopped_early = True
                    break
        finally:
            if bar is not None:
                bar.close()

        if best_state is not None:
            kept.load_state_dict(best_state)
        if not keep_best:
            best = history[-1]
        kept.eval()
        return FitResult(history, best.epoch, best, predictor, best_val_pred, stopped_early)


class _ProgressBar:
    """A rich bar over all batches with the latest epoch's loss, val R² and throughput."""

    def __init__(self, epochs: int) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.epochs = epochs
        self.progress = Progress(TextColumn(f"epoch {{task.fields[epoch]}}/{epochs}"), BarColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), transient=False)
        self.progress.start()
        self.task = self.progress.add_task("train", total=None, epoch=1, info="")
        self.info = ""

    def start_epoch(self, epoch: int, samples: int) -> None:
        self.progress.reset(self.task, total=samples, epoch=epoch, info=self.info)

    def advance_batch(self, n: int) -> None:
        self.progress.advance(self.task, n)

    def end_epoch(self, m: EpochMetrics) -> None:
        r2 = "-" if m.val_r2 is None else f"{m.val_r2:.4f}"
        self.info = f"loss {m.train_loss:.4f}  val R² {r2}  {m.samples_per_s:,.0f} samples/s"
        self.progress.update(self.task, info=self.info)

    def close(self) -> None:
        self.progress.stop()


def fit_config(config: RunConfig, train: ReactionTable, val: ReactionTable | None = None, **kwargs) -> FitResult:
    """Convenience: ``Trainer(config, **kwargs).fit(train, val)``."""
    return Trainer(config, **kwargs).fit(train, val)


__all__ = ["EpochMetrics", "FitResult", "Trainer", "fit_config", "seed_everything", "param_groups"]
