"""Reports and live views of a study: the HTML report page, optuna-dashboard, the gRPC storage proxy."""

from yieldtune.report.page import EnsembleMember, EnsembleSummary, build_report, load_ensemble_summary

__all__ = ["build_report", "load_ensemble_summary", "EnsembleSummary", "EnsembleMember"]
