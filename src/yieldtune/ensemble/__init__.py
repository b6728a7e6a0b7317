"""yieldtune.ensemble: top-k refits queued in the shared storage, Caruana-weighted ensembles, safe export.

Public API::

    load_ensemble(dir, device="cpu") -> Ensemble        # export dir, study ensemble dir or `tune train --out` dir
    Ensemble.predict(reactions, tta=None, seed=0) -> (mean, std)
    on_budget_met(spec, storage_url, device=...)        # budget met: queue the refits (idempotent), work them, build
    run_refit_worker(spec, storage_url, device)         # work the refit queue (ensure_ensemble builds)
    build_study_ensemble / ensure_ensemble(spec, storage_url)
    export_best(spec, storage_url, out, ...)            # `tune export-best`
    caruana_select(predictions, y_true, rounds=50)
"""

from __future__ import annotations

from yieldtune.ensemble.auto import build_study_ensemble, ensemble_dir, ensure_ensemble, on_budget_met
from yieldtune.ensemble.ensemble import Ensemble, Member, combine
from yieldtune.ensemble.export import export_best
from yieldtune.ensemble.format import load_ensemble
from yieldtune.ensemble.predict import predict_file
from yieldtune.ensemble.refit import enqueue_refits, refit_study_name, run_refit_worker
from yieldtune.ensemble.selection import caruana_select, select_top_trials

__all__ = ["load_ensemble", "Ensemble", "Member", "combine", "on_budget_met", "run_refit_worker",
           "build_study_ensemble", "ensure_ensemble", "ensemble_dir", "export_best", "predict_file",
           "enqueue_refits", "refit_study_name", "caruana_select", "select_top_trials"]
