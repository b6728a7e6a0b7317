"""Learning-rate schedules by name (the names used in study files and ``--set train.scheduler=...``).

Every schedule is an :class:`LRSchedule` with the same two hooks, so the trainer never special-cases one:
``step_batch()`` after each optimizer step and ``step_epoch(metric)`` after each validation. All of them
take an optional linear warmup (``TrainConfig.warmup_frac`` of the total steps) from a low LR to the peak.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau

from yieldtune.config import TrainConfig
from yieldtune.errors import ConfigError


class LRSchedule:
    """A per-step multiplier of the peak LR (``LambdaLR``), optionally followed by ``ReduceLROnPlateau``."""

    def __init__(self, optimizer: Optimizer, multiplier: Callable[[int], float], *,
                 plateau: ReduceLROnPlateau | None = None, warmup_steps: int = 0) -> None:
        self.optimizer = optimizer
        self.lambda_lr = LambdaLR(optimizer, multiplier)
        self.plateau = plateau
        self.warmup_steps = warmup_steps
        self.steps = 0

    def step_batch(self) -> None:
        self.steps += 1
        if self.plateau is None or self.steps <= self.warmup_steps:
            self.lambda_lr.step()

    def step_epoch(self, metric: float | None) -> None:
        """Feed the epoch's monitored metric to a plateau schedule (ignored by the others)."""
        if self.plateau is not None and metric is not None and self.steps >= self.warmup_steps:
            self.plateau.step(metric)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])


def _warmup_steps(total_steps: int, cfg: TrainConfig) -> int:
    return int(round(cfg.warmup_frac * total_steps))


def _with_warmup(after: Callable[[float], float], total_steps: int, warmup: int) -> Callable[[int], float]:
    """Linear ramp ``1/(w+1) .. 1`` over ``warmup`` steps, then ``after(progress in [0, 1])``."""
    span = max(1, total_steps - warmup)

    def multiplier(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return after(min(1.0, (step - warmup) / span))

    return multiplier


def constant(optimizer, total_steps, steps_per_epoch, cfg):
    w = _warmup_steps(total_steps, cfg)
    return LRSchedule(optimizer, _with_warmup(lambda p: 1.0, total_steps, w), warmup_steps=w)


def cosine(optimizer, total_steps, steps_per_epoch, cfg):
    w = _warmup_steps(total_steps, cfg)
    return LRSchedule(optimizer, _with_warmup(lambda p: 0.5 * (1.0 + math.cos(math.pi * p)), total_steps, w),
                      warmup_steps=w)


def linear(optimizer, total_steps, steps_per_epoch, cfg):
    w = _warmup_steps(total_steps, cfg)
    return LRSchedule(optimizer, _with_warmup(lambda p: 1.0 - p, total_steps, w), warmup_steps=w)


def step(optimizer, total_steps, steps_per_epoch, cfg):
    """Multiply the LR by ``step_gamma`` every ``step_size_frac`` of the epochs."""
    w = _warmup_steps(total_steps, cfg)
    epochs = max(1, round(total_steps / max(1, steps_per_epoch)))
    every = max(1, round(cfg.step_size_frac * epochs))

    def multiplier(s: int) -> float:
        if s < w:
            return (s + 1) / (w + 1)
        return cfg.step_gamma ** ((s // max(1, steps_per_epoch)) // every)

    return LRSchedule(optimizer, multiplier, warmup_steps=w)


def onecycle(optimizer, total_steps, steps_per_epoch, cfg, div_factor: float = 25.0,
             final_div_factor: float = 1e4):
    """Smith's one-cycle: cosine up from ``lr/25`` over the warmup (30% if unset), cosine down to ``lr/2.5e5``."""
    up = max(1, _warmup_steps(total_steps, cfg) or int(0.3 * total_steps))
    start, end = 1.0 / div_factor, 1.0 / (div_factor * final_div_factor)
    down = max(1, total_steps - up)

    def multiplier(s: int) -> float:
        if s < up:
            return start + (1.0 - start) * 0.5 * (1.0 - math.cos(math.pi * s / up))
        p = min(1.0, (s - up) / down)
        return end + (1.0 - end) * 0.5 * (1.0 + math.cos(math.pi * p))

    return LRSchedule(optimizer, multiplier)


def plateau(optimizer, total_steps, steps_per_epoch, cfg, mode: str = "max"):
    """Warmup, then ``ReduceLROnPlateau`` on the epoch metric (val R² -> ``mode="max"``, a loss -> ``"min"``)."""
    w = _warmup_steps(total_steps, cfg)
    schedule = LRSchedule(optimizer, _with_warmup(lambda p: 1.0, total_steps, w), warmup_steps=w)
    schedule.plateau = ReduceLROnPlateau(optimizer, mode=mode, factor=cfg.plateau_factor,
                                         patience=cfg.plateau_patience)
    return schedule


SCHEDULERS: dict[str, Callable[..., LRSchedule]] = {
    "constant": constant, "cosine": cosine, "onecycle": onecycle, "linear": linear, "step": step,
    "plateau": plateau,
}


def build_scheduler(name: str, optimizer: Optimizer, total_steps: int, steps_per_epoch: int,
                    cfg: TrainConfig, **kwargs) -> LRSchedule:
    """The schedule registered as ``name``; ``kwargs`` go to it (``mode=`` for plateau)."""
    try:
        factory = SCHEDULERS[name]
    except KeyError:
        raise ConfigError(f"unknown scheduler {name!r}; known: {', '.join(SCHEDULERS)}") from None
    return factory(optimizer, max(1, total_steps), max(1, steps_per_epoch), cfg, **kwargs)
