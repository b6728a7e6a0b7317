"""A real Optuna study that looks like a yieldtune one (pure-Python objective: no training), and an
ensemble summary as the ensemble step writes it; used by the report, dashboard and browser tests."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import optuna
import pandas as pd


def toy_objective(trial: optuna.Trial) -> float:
    """Looks like a yieldtune trial: same parameter names (with the same conditionals), per-epoch R², workers."""
    d_model = trial.suggest_categorical("d_model", [16, 32, 64])
    n_layers = trial.suggest_int("n_layers", 1, 4)
    use_aug = trial.suggest_categorical("use_augmentation", [False, True])
    ratio = trial.suggest_float("augment_ratio", 0.5, 5.0) if use_aug else 0.0
    scheduler = trial.suggest_categorical("scheduler", ["constant", "cosine", "step"])
    if scheduler != "step":
        trial.suggest_float("warmup_frac", 0.0, 0.2)
    lr = trial.suggest_float("lr", 1e-5, 1e-2, log=True)
    trial.set_user_attr("worker_id", f"host-a:{trial.number % 2}")
    trial.set_user_attr("hostname", "host-a")
    ceiling = (0.55 + 0.08 * math.log2(d_model / 16) + 0.03 * n_layers + 0.01 * ratio
               - 0.08 * abs(math.log10(lr) + 3) + (0.04 if scheduler == "cosine" else 0.0))
    value = 0.0
    for epoch in range(1, 6):
        value = ceiling * (1.0 - math.exp(-epoch))
        trial.report(value, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return value


def make_study(storage: str, n_trials: int = 16, name: str = "toy") -> optuna.Study:
    """A real study with complete and pruned trials from two 'workers'."""
    study = optuna.create_study(
        study_name=name, storage=storage, direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=1, n_startup_trials=4),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1))
    study.optimize(toy_objective, n_trials=n_trials)
    return study


def write_ensemble(directory: Path, n: int = 40, members: int = 3, with_r2: bool = False,
                   n_test: int = 20) -> dict[str, float]:
    """ensemble.json + holdout_predictions.csv (+ test_applicability.csv with ``n_test`` rows, the first quarter
    of them below 0.6 similarity) as the ensemble step writes them; returns each model's true R²."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y = rng.uniform(0.0, 1.0, n)
    preds = {f"trial{i}_seed0": np.clip(y + rng.normal(0.0, 0.05 + 0.05 * i, n), 0, 1) for i in range(members)}
    ens = np.mean(list(preds.values()), axis=0)
    frame = pd.DataFrame({"id": [f"rxn{i}" for i in range(n)], "y_true": y, **preds, "ensemble": ens})
    frame.to_csv(directory / "holdout_predictions.csv", index=False)
    if n_test:
        low = np.arange(n_test) < n_test // 4
        sim = np.where(low, 0.3, 1.0)
        pd.DataFrame({"id": [f"test{i}" for i in range(n_test)], "similarity_reactants": sim,
                      "similarity_agents": np.ones(n_test), "similarity_products": sim,
                      "similarity_min": sim}).to_csv(directory / "test_applicability.csv", index=False)

    def r2(p):
        return 1.0 - float(((y - p) ** 2).sum()) / float(((y - y.mean()) ** 2).sum())

    truth = {k: r2(v) for k, v in preds.items()} | {"ensemble": r2(ens)}
    summary = {
        "members": [{"name": k, "trial_number": i, "seed": 0, "weight": 1.0 / members,
                     "r2": truth[k] if with_r2 else None} for i, k in enumerate(preds)],
        "r2_ensemble": truth["ensemble"] if with_r2 else None,
        "r2_mean": float(np.mean([truth[k] for k in preds])),
        "r2_best_member": max(truth[k] for k in preds),
    }
    (directory / "ensemble.json").write_text(json.dumps(summary))
    return truth
