"""Shared by the tests (importable as ``helpers``: pyproject's pytest ``pythonpath`` puts tests/ on sys.path)."""

from helpers.run_config import tiny_run_config
from helpers.servers import free_port, get, start_dashboard, start_proxy, stop, stop_proxy
from helpers.sqlite_lock import write_locked_sqlite
from helpers.studyfiles import (
    TINY_SEARCH_SPACE,
    run_tune,
    sigint_default,
    study_toml,
    tiny_search_space,
    tune_argv,
    tune_env,
)
from helpers.toy_study import make_study, toy_objective, write_ensemble

__all__ = ["TINY_SEARCH_SPACE", "free_port", "get", "make_study", "run_tune", "sigint_default", "start_dashboard",
           "start_proxy", "stop", "stop_proxy", "study_toml", "tiny_run_config", "tiny_search_space", "toy_objective",
           "tune_argv", "tune_env", "write_ensemble", "write_locked_sqlite"]
