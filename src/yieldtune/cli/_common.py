"""Small option helpers shared by command files."""

from __future__ import annotations

import logging
import warnings

import click


def quiet_optuna(level: int = logging.WARNING) -> None:
    """Optuna's own log at ``level`` and its ExperimentalWarnings off, for this process.

    Called first by the commands that use Optuna: process-wide logging and warning filters are the
    entry point's to set, never the library's.
    """
    import optuna

    optuna.logging.set_verbosity(level)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

storage_option = click.option(
    "--storage", envvar="TUNE_STORAGE", default=None,
    help="Storage URL (SQLAlchemy URL, or grpc://host:port). Overrides the study file; env TUNE_STORAGE.",
)
device_option = click.option("--device", default="auto", help="cpu, cuda, cuda:N or auto.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
