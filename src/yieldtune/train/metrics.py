"""Regression metrics on yields (plain numpy, so the trainer, ensembles and reports agree exactly)."""

from __future__ import annotations

import numpy as np


def r2_score(y_true, y_pred) -> float:
    """Coefficient of determination; 0.0 when the targets are constant (no variance to explain)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    if ss_tot == 0.0:
        return 0.0
    return 1.0 - float(np.sum((y_true - y_pred) ** 2)) / ss_tot


def mae(y_true, y_pred) -> float:
    return float(np.mean(np.abs(np.asarray(y_true, np.float64) - np.asarray(y_pred, np.float64))))


def rmse(y_true, y_pred) -> float:
    return float(np.sqrt(np.mean((np.asarray(y_true, np.float64) - np.asarray(y_pred, np.float64)) ** 2)))


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    return {"r2": r2_score(y_true, y_pred), "mae": mae(y_true, y_pred), "rmse": rmse(y_true, y_pred)}
