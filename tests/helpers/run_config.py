"""A tiny RunConfig for in-process training tests: one place for the defaults the train tests share."""

from __future__ import annotations

from yieldtune.config import RunConfig


def tiny_run_config(model: dict | None = None, **train) -> RunConfig:
    """d_model 32, one layer, 2 heads, constant LR, fp32, one thread; ``model``/``train`` keys override."""
    train_cfg = {"epochs": 3, "batch_size": 8, "lr": 2e-3, "scheduler": "constant", "warmup_frac": 0.0,
                 "precision": "fp32", "seed": 0, "num_threads": 1, **train}
    model_cfg = {"d_model": 32, "n_layers": 1, "n_heads": 2, "ffn_dim": 64, "dropout": 0.0, "max_len": 64,
                 **(model or {})}
    return RunConfig.model_validate({"model": model_cfg, "train": train_cfg})
