"""Training-throughput benchmarks: the yieldtune pipeline against a seed-style loop on the same model, and what
augmentation costs in each ``train.augment_scope``.

The seed-style loop is what a first implementation typically does: regex-tokenize every batch in the
collate function, draw random (unbucketed) batches padded to their maximum, train in fp32, and read the
reaction as one flat token sequence (the seed's model; the same width, depth and heads as ours). Only
steady-state steps are timed, after ``warmup_steps`` untimed ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from yieldtune.chem.tokenizer import SmilesTokenizer, tokenize
from yieldtune.config import ModelConfig, RunConfig
from yieldtune.data.table import ReactionTable
from yieldtune.model.batching import bucketed_batches, encode_reactions, random_batches
from yieldtune.model.device import autocast, resolve_device, resolve_precision
from yieldtune.model.predictor import to_device
from yieldtune.model.transformer import YieldTransformer
from yieldtune.train.trainer import Trainer, param_groups, seed_everything


def _cycle(make: Callable[[], list[np.ndarray]]) -> Iterator[np.ndarray]:
    while True:
        yield from make()


def _timed_loop(model: nn.Module, batches: Iterator[tuple[torch.Tensor, torch.Tensor]], steps: int,
                warmup_steps: int, precision: str, device: torch.device) -> tuple[float, int, int]:
    """Run ``warmup_steps + steps`` optimizer steps; return (seconds, samples, tokens) of the timed ones."""
    optimizer = torch.optim.AdamW(param_groups(model, 0.01), lr=1e-4)
    model.train()
    seconds, samples, tokens = 0.0, 0, 0
    for i in range(warmup_steps + steps):
        if i == warmup_steps:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
        ids, target = next(batches)  # batch preparation is inside the timed region on purpose
        with autocast(precision, device):
            pred = model(ids)
        loss = nn.functional.mse_loss(pred.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if i >= warmup_steps:
            samples += ids.shape[0]
            tokens += ids.numel()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    return seconds, samples, tokens


def bench_train(reactions: list[str], yields: np.ndarray, model_cfg: ModelConfig, *, batch_size: int,
                steps: int, device: str = "auto", precision: str = "auto", warmup_steps: int = 2,
                seed: int = 0) -> dict:
    """The yieldtune loop: pre-tokenized int32 arrays, length-bucketed batches, autocast where supported."""
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev, model_cfg.d_model)
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    tokenizer = SmilesTokenizer.build(reactions)
    encoded = encode_reactions(tokenizer, reactions, model_cfg.max_len)
    y = torch.from_numpy(np.asarray(yields, dtype=np.float32))
    model = YieldTransformer.for_tokenizer(model_cfg, tokenizer).to(dev)

    def gen():
        for idx in _cycle(lambda: bucketed_batches(encoded.lengths, batch_size, rng)):
            yield to_device(encoded.pad(idx, tokenizer.pad_id), dev), y[idx].to(dev, non_blocking=True)

    seconds, samples, tokens = _timed_loop(model, gen(), steps, warmup_steps, prec, dev)
    return {"samples_per_s": samples / seconds, "seconds": seconds, "steps": steps, "samples": samples,
            "padded_tokens_per_sample": tokens / max(1, samples), "device": str(dev), "precision": prec}


def bench_seed_baseline(reactions: list[str], yields: np.ndarray, model_cfg: ModelConfig, *, batch_size: int,
                        steps: int, device: str = "auto", warmup_steps: int = 2, seed: int = 0) -> dict:
    """The seed-style loop: tokenize in collate, random batches, fp32, the flat architecture."""
    dev = resolve_device(device)
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    tokenizer = SmilesTokenizer.build(reactions)
    vocab = tokenizer.index
    y = np.asarray(yields, dtype=np.float32)
    model = YieldTransformer.for_tokenizer(model_cfg.model_copy(update={"architecture": "flat"}), tokenizer).to(dev)

    def collate(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        seqs = [[tokenizer.cls_id] + [vocab.get(t, tokenizer.unk_id) for t in tokenize(reactions[i])]
                [: model_cfg.max_len - 1] for i in idx]
        width = max(len(s) for s in seqs)
        ids = torch.tensor([s + [tokenizer.pad_id] * (width - len(s)) for s in seqs], dtype=torch.long)
        return ids.to(dev), torch.tensor(y[idx]).to(dev)

    def gen():
        for idx in _cycle(lambda: random_batches(len(reactions), batch_size, rng)):
            yield collate(idx)

    seconds, samples, tokens = _timed_loop(model, gen(), steps, warmup_steps, "fp32", dev)
    return {"samples_per_s": samples / seconds, "seconds": seconds, "steps": steps, "samples": samples,
            "padded_tokens_per_sample": tokens / max(1, samples), "device": str(dev), "precision": "fp32"}


BASELINES: dict[str, Callable[..., dict]] = {"seed": bench_seed_baseline}


def run_bench(reactions: list[str], yields: np.ndarray, model_cfg: ModelConfig, *, batch_size: int, steps: int,
              device: str = "auto", precision: str = "auto", baseline: str | None = None,
              warmup_steps: int = 2, seed: int = 0) -> dict:
    """One JSON-ready record: our throughput, and with ``baseline`` the baseline's and the speedup."""
    ours = bench_train(reactions, yields, model_cfg, batch_size=batch_size, steps=steps, device=device,
                       precision=precision, warmup_steps=warmup_steps, seed=seed)
    record = {"samples_per_s": round(ours["samples_per_s"], 2), "seconds": round(ours["seconds"], 3),
              "steps": steps, "batch_size": batch_size, "device": ours["device"], "precision": ours["precision"],
              "padded_tokens_per_sample": round(ours["padded_tokens_per_sample"], 1),
              "n_reactions": len(reactions), "torch_threads": torch.get_num_threads(),
              "config": model_cfg.model_dump()}
    if baseline:
        base = BASELINES[baseline](reactions, yields, model_cfg, batch_size=batch_size, steps=steps,
                                   device=device, warmup_steps=warmup_steps, seed=seed)
        record.update({"baseline": baseline, "baseline_samples_per_s": round(base["samples_per_s"], 2),
                       "baseline_seconds": round(base["seconds"], 3),
                       "baseline_padded_tokens_per_sample": round(base["padded_tokens_per_sample"], 1),
                       "speedup": round(ours["samples_per_s"] / base["samples_per_s"], 3)})
    return record


def bench_augmentation(table: ReactionTable, config: RunConfig, *, epochs: int = 2, ratio: float = 1.0,
                       device: str = "auto", cache_dir=None) -> dict:
    """Training throughput of one configuration without augmentation and with ``ratio`` extra randomized
    copies per reaction in each ``train.augment_scope``, same data, seed and epochs (no validation, variants
    generated before the clock starts). The hierarchical model encodes each distinct molecule spelling of a
    batch once, so what it pays for augmentation depends on how many spellings a batch holds."""
    modes = {"plain": {"train.augment_ratio": 0.0},
             "molecule": {"train.augment_ratio": ratio, "train.augment_scope": "molecule"},
             "reaction": {"train.augment_ratio": ratio, "train.augment_scope": "reaction"}}
    record: dict = {"n_reactions": len(table), "epochs": epochs, "augment_ratio": ratio,
                    "architecture": config.model.architecture, "encoder": config.model.encoder,
                    "torch_threads": torch.get_num_threads()}
    for name, overrides in modes.items():
        cfg = config.with_overrides({**overrides, "train.epochs": epochs, "train.early_stopping_patience": 0})
        history = Trainer(cfg, device=device, cache_dir=cache_dir).fit(table).history
        record[name] = {"samples_per_s": round(float(np.median([m.samples_per_s for m in history])), 1),
                        "epoch_seconds": round(float(np.median([m.seconds for m in history])), 2)}
    for name in ("molecule", "reaction"):
        record[f"{name}_vs_plain_samples_per_s"] = round(
            record[name]["samples_per_s"] / record["plain"]["samples_per_s"], 3)
    record["molecule_over_reaction_speedup"] = round(
        record["molecule"]["samples_per_s"] / record["reaction"]["samples_per_s"], 3)
    return record
