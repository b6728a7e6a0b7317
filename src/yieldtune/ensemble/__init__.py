"""yieldtune.ensemble: top-k refits queued in the shared storage, Caruana-weighted ensembles, safe export.

Public API::

    load_ensemble(dir, device="cpu") -> Ensemble        # export dir, study ensemble dir or `tune train --out` dir
    Ensemble.predict(reactions, tta=None, seed=0) -> (mean, std)
    on_budget_met(spec, storage_url)                    # study runner: queue the refits (idempotent)
    run_refit_worker(spec, storage_url, device)         # work the refit queue (ensure_ensemble builds)
    after_budget(spec, storage_url, device)             # both of the above, for workers past the budget
    build_study_ensemble / ensure_ensemble(spec, storage_url)
    export_best(spec, storage_url, out, ...)            # `tune export-best`
    caruana_select(predictions, y_true, rounds=50)
"""

from __future__ import annotations

from yieldtune.ensemble.auto import after_budget, build_study_ensemble, ensemble_dir, ensure_ensemble, on_budget_met
from yieldtune.ensemble.ensemble import Ensemble, Member, combine
from yieldtune.ensemble.export import export_best
from yieldtune.ensemble.format import load_ensemble
from yieldtune.ensemble.predict import predict_file
from yieldtune.ensemble.refit import enqueue_refits, refit_study_name, run_refit_worker
from yieldtune.ensemble.selection import caruana_select, select_top_trials

__all__ = ["load_ensemble", "Ensemble", "Member", "combine", "on_budget_met", "run_refit_worker", "after_budget",
           "build_study_ensemble", "ensure_ensemble", "ensemble_dir", "export_best", "predict_file",
           "enqueue_refits", "refit_study_name", "caruana_select", "select_top_trials"]
