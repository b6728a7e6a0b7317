"""A restarted worker draws new configurations; a fresh study run again draws the same ones (README rule)."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState

from helpers import TINY_SEARCH_SPACE, run_tune, study_toml
from yieldtune.data.synth import write_synthetic_plate


def study_file(root: Path) -> Path:
    write_synthetic_plate(root / "plate.csv", n=40)
    path = root / "seeds.toml"
    path.write_text(study_toml("seeds", search_space=TINY_SEARCH_SPACE, n_trials=4, sampler_seed=3))
    return path


def worker(path: Path, storage: str, n_trials: int) -> None:
    run_tune("worker", path, "--worker-id", "w0", "--n-trials", n_trials, "--device", "cpu", "--threads", "1",
             storage=storage)


def lrs(storage: str) -> list[float]:
    trials = optuna.load_study(study_name="seeds", storage=storage).get_trials(states=(TrialState.COMPLETE,))
    return [t.params["lr"] for t in sorted(trials, key=lambda t: t.number)]


def test_restarted_worker_does_not_replay_and_a_fresh_run_reproduces(tmp_path):
    path = study_file(tmp_path)
    first = f"sqlite:///{tmp_path / 'first.db'}"
    worker(path, first, 2)
    worker(path, first, 4)  # the same worker id started again on the same study (a resume)
    drawn = lrs(first)
    assert len(drawn) == 4 and len(set(drawn)) == 4, drawn  # before: the second start replayed the first two

    again = f"sqlite:///{tmp_path / 'again.db'}"
    worker(path, again, 2)
    assert lrs(again) == drawn[:2]  # same file, same seed, same worker id, fresh study: same configurations
