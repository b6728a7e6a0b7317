"""Shared by the tests that run real `tune` processes on tiny study files.

One study-file skeleton (so a change to the study format is made once) and one subprocess environment:
single-threaded BLAS, and no TUNE_STORAGE inherited from the developer's shell unless a test gives one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def tiny_search_space(*, epochs: int = 2, pooling: str = '"cls"',
                      lr: str = "{ low = 0.0005, high = 0.005, log = true }", weight_decay: float = 0.01,
                      fixed: str = "") -> str:
    """A [search_space] of tiny models (d_model 16, 1 layer): seconds per trial on one CPU thread.

    ``pooling``/``lr`` are TOML values (a list or a range searches them); ``fixed`` is appended ([fixed.*] tables).
    """
    return f"""
[search_space]
epochs = {epochs}
d_model = 16
n_layers = 1
reaction_layers = 1
n_heads = 2
ffn_mult = 2.0
dropout = 0.0
pooling = {pooling}
lr = {lr}
weight_decay = {weight_decay}
batch_size = 16
use_augmentation = false
scheduler = "constant"
warmup_frac = 0.0
grad_clip = 1.0
""" + fixed


TINY_SEARCH_SPACE = tiny_search_space()


def study_toml(name: str, *, search_space: str, n_trials: int, sampler_seed: int = 0, pruner: str = 'type = "none"',
               max_retry: int = 2, ensemble: str = "auto = false", data: str = "") -> str:
    """A study over ``plate.csv`` next to the file: random sampler, 25 % holdout, fast heartbeats (1 s, grace 3 s).

    ``search_space`` is TOML appended at the end (a [search_space] table and optionally [fixed.*] tables);
    ``data`` holds extra ``[data]`` keys (e.g. ``train_rows = 40``).
    """
    return (f'name = "{name}"\n'
            '[data]\ndataset = "plate.csv"\n' + (f"{data}\n" if data else "")
            + '[validation]\nfraction = 0.25\nseed = 0\n'
            f'[sampler]\ntype = "random"\nseed = {sampler_seed}\n'
            f'[pruner]\n{pruner}\n'
            f'[budget]\nn_trials = {n_trials}\n'
            f'[storage]\nheartbeat_interval = 1\ngrace_period = 3\nmax_retry = {max_retry}\n'
            f'[ensemble]\n{ensemble}\n'
            + search_space)


def tune_env(storage: str | None = None) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("TUNE_STORAGE", None)
    if storage:
        env["TUNE_STORAGE"] = storage
    return env


def tune_argv(*args) -> list[str]:
    return [sys.executable, "-m", "yieldtune.cli.main", *map(str, args)]


def run_tune(*args, cwd: Path | None = None, storage: str | None = None, check: bool = True,
             timeout: float = 300) -> subprocess.CompletedProcess:
    """``tune *args`` in a subprocess; with ``check`` a non-zero exit fails the test showing stderr's tail."""
    proc = subprocess.run(tune_argv(*args), cwd=cwd, env=tune_env(storage), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"tune {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def sigint_default() -> None:
    """``preexec_fn`` for children the tests stop with Ctrl-C (SIGINT).

    A shell starts background jobs with SIGINT ignored and Python keeps an inherited SIG_IGN, so a test run
    from ``cmd &`` (nohup, some CI runners) would send Ctrl-C into the void; the child gets the default back.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
