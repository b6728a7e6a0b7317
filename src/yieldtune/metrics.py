"""Regression metrics on yields: the one implementation the trainer, the objective, ensembles and reports use.

Plain numpy in float64. R² of a constant target (no variance to explain) is defined as scikit-learn's
``force_finite`` does: 1.0 when every prediction is exact, else 0.0. It stays finite, so a validation split
with one distinct yield neither fails an Optuna trial (NaN), nor breaks Caruana selection, nor shows as
"nan" in a report.
"""

from __future__ import annotations

import numpy as np


def r2_score(y_true, y_pred) -> float:
    """Coefficient of determination (a constant target: 1.0 if predicted exactly, else 0.0)."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    ss_res = float(np.sum((y - p) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


def mae(y_true, y_pred) -> float:
    return float(np.mean(np.abs(np.asarray(y_true, np.float64) - np.asarray(y_pred, np.float64))))


def rmse(y_true, y_pred) -> float:
    return float(np.sqrt(np.mean((np.asarray(y_true, np.float64) - np.asarray(y_pred, np.float64)) ** 2)))


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    return {"r2": r2_score(y_true, y_pred), "mae": mae(y_true, y_pred), "rmse": rmse(y_true, y_pred)}
