"""yieldtune.train: trainer, LR schedules, metrics, LR finder, throughput bench (batching and device choice: model/)."""

from yieldtune.train.schedulers import SCHEDULERS, LRSchedule, build_scheduler
from yieldtune.train.trainer import EpochMetrics, FitResult, Trainer, fit_config

__all__ = ["SCHEDULERS", "EpochMetrics", "FitResult", "LRSchedule", "Trainer", "build_scheduler", "fit_config",
           ]
