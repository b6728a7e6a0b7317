"""``tune bench train``: training throughput of the yieldtune loop, optionally against the seed-style loop."""

from __future__ import annotations

import json

import click

from yieldtune.cli._common import device_option
from yieldtune.cli.train import data_options, load_table


@click.group("bench")
def bench_group() -> None:
    """Throughput benchmarks."""


@bench_group.command("train")
@data_options
@click.option("--steps", default=20, type=int, help="Timed optimizer steps (after --warmup untimed ones).")
@click.option("--warmup", "warmup_steps", default=2, type=int, help="Untimed warmup steps.")
@click.option("--d-model", default=512, type=int)
@click.option("--layers", default=4, type=int)
@click.option("--heads", default=4, type=int)
@click.option("--ffn", default=1024, type=int)
@click.option("--dropout", default=0.1, type=float)
@click.option("--max-len", default=512, type=int)
@click.option("--batch-size", default=128, type=int)
@click.option("--limit", default=None, type=int, help="Use only the first N reactions of the file.")
@device_option
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto")
@click.option("--baseline", type=click.Choice(["seed"]), default=None,
              help="Also time the seed-style loop (tokenize per batch, random batches, fp32) and report speedup.")
@click.option("--threads", default=0, type=int, help="torch CPU threads (0 = torch default).")
def bench_train_cmd(data, layout, target, percent, data_dir, steps, warmup_steps, d_model, layers, heads, ffn,
                    dropout, max_len, batch_size, limit, device, precision, baseline, threads) -> None:
    """Print ONE JSON line with samples_per_s (and baseline_samples_per_s, speedup with --baseline)."""
    import numpy as np
    import torch

    from yieldtune.config import ModelConfig, validate_config
    from yieldtune.errors import ConfigError
    from yieldtune.train.bench import run_bench

    if steps < 1 or warmup_steps < 0 or batch_size < 1:
        raise ConfigError("--steps and --batch-size must be >= 1, --warmup >= 0")
    if threads > 0:
        torch.set_num_threads(threads)
    model_cfg = validate_config(ModelConfig, {"d_model": d_model, "n_layers": layers, "n_heads": heads,
                                              "ffn_dim": ffn, "dropout": dropout, "max_len": max_len},
                                source="bench options")
    table, _ = load_table(data, layout, target, percent, data_dir, validate=False)
    if limit:
        table = table.subset(range(min(limit, len(table))))
    yields = table.yields if table.has_targets else np.zeros(len(table), dtype=np.float32)
    record = run_bench(table.reactions, yields, model_cfg, batch_size=batch_size, steps=steps, device=device,
                       precision=precision, baseline=baseline, warmup_steps=warmup_steps)
    record["data"] = str(data)
    click.echo(json.dumps(record))


COMMANDS = [bench_group]
