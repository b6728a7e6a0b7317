"""End to end with real worker processes: a tiny study reaches its budget, the ensemble appears by
itself, refits survive a SIGKILLed worker, and the export reloads in a fresh process exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import TINY_SEARCH_SPACE as SEARCH_SPACE
from helpers import run_tune, study_toml, tune_argv, tune_env


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A tiny study run to its 3-trial budget by `tune run -j 2` (two worker processes)."""
    from yieldtune.data.synth import write_synthetic_plate

    root = tmp_path_factory.mktemp("study")
    write_synthetic_plate(root / "plate.csv", n=48)
    path = root / "tiny.toml"
    path.write_text(study_toml("tiny", search_space=SEARCH_SPACE, n_trials=3, max_retry=3,
                               ensemble="top_k = 2\nseeds = 2"))
    run = run_tune("run", path, "-j", "2", "--device", "cpu", "--no-live", cwd=root)
    return root, path, run


def _spec(path):
    from yieldtune.study.spec import load_study_spec

    return load_study_spec(path)


def test_budget_met_builds_ensemble_automatically(study):
    import optuna

    from yieldtune.ensemble.refit import pair_of, refit_study_name
    from yieldtune.study.storage import open_spec_storage

    root, path, _ = study
    spec = _spec(path)
    ens_dir = spec.artifact_dir / "ensemble"
    info = json.loads((ens_dir / "ensemble.json").read_text())
    assert info["method"] == "caruana"
    assert len(info["members"]) == 4  # top_k 2 x seeds 2
    for m in info["members"]:
        assert set(m) >= {"name", "trial_number", "seed", "weight", "r2"}
        assert (ens_dir / "members" / m["name"] / "model.safetensors").is_file()
    assert {(m["trial_number"], m["seed"]) for m in info["members"]} == {
        (t, s) for t in {m["trial_number"] for m in info["members"]} for s in (0, 1)}
    assert len({m["trial_number"] for m in info["members"]}) == 2
    assert abs(sum(m["weight"] for m in info["members"]) - 1.0) < 1e-9
    assert info["r2_ensemble"] >= info["r2_best_member"] - 1e-12
    import pandas as pd

    hold = pd.read_csv(ens_dir / "holdout_predictions.csv", dtype={"id": str})
    assert list(hold.columns) == ["id", "y_true", *[m["name"] for m in info["members"]], "ensemble"]
    assert len(hold) == info["n_holdout"] == 12

    storage = open_spec_storage(spec, spec.storage_url(None), heartbeat=False)
    refit = optuna.load_study(study_name=refit_study_name("tiny"), storage=storage)
    trials = refit.get_trials(deepcopy=False)
    queued = [t for t in trials if "fixed_params" in t.system_attrs and "failed_trial" not in t.system_attrs]
    assert len(queued) == 4  # exactly k * seeds enqueued
    complete = [pair_of(t) for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == len(set(complete)) == 4  # none done twice
    assert all(t.user_attrs.get("artifact:model") for t in trials if t.state == optuna.trial.TrialState.COMPLETE)


def test_refits_survive_a_sigkilled_worker(study):
    import optuna
    from optuna.trial import TrialState

    from yieldtune.ensemble.refit import pair_of, refit_study_name
    from yieldtune.study.storage import open_spec_storage

    root, path, _ = study
    spec = _spec(path)
    storage = open_spec_storage(spec, spec.storage_url(None), heartbeat=False)
    optuna.delete_study(study_name=refit_study_name("tiny"), storage=storage)  # start the refits afresh
    ens_dir = spec.artifact_dir / "ensemble"
    before = json.loads((ens_dir / "ensemble.json").read_text())

    victim = subprocess.Popen(tune_argv("ensemble", path, "--device", "cpu"), cwd=root, env=tune_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    killed_trial = None
    deadline = time.monotonic() + 120
    try:
        while killed_trial is None and time.monotonic() < deadline and victim.poll() is None:
            try:
                refit = optuna.load_study(study_name=refit_study_name("tiny"), storage=storage)
            except KeyError:
                time.sleep(0.2)
                continue
            for t in refit.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                if t.user_attrs.get("pid") == victim.pid:
                    os.kill(victim.pid, signal.SIGKILL)
                    killed_trial = t.number
                    break
            time.sleep(0.05)
    finally:
        if victim.poll() is None and killed_trial is None:
            victim.kill()
        victim.wait(timeout=30)
    assert killed_trial is not None, f"never caught the victim during a refit:\n{victim.stderr.read()[-2000:]}"
    assert victim.returncode == -signal.SIGKILL

    survivor = run_tune("ensemble", path, "--device", "cpu", "--json", cwd=root, timeout=240)
    out = json.loads(survivor.stdout.strip().splitlines()[-1])
    assert len(out["members"]) == 4
    refit = optuna.load_study(study_name=refit_study_name("tiny"), storage=storage)
    trials = refit.get_trials(deepcopy=False)
    assert next(t for t in trials if t.number == killed_trial).state == TrialState.FAIL  # failed via heartbeat
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == killed_trial]
    assert retried and any(t.state == TrialState.COMPLETE for t in retried)  # redone as a new trial
    complete = [pair_of(t) for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == len(set(complete)) == 4
    after = json.loads((ens_dir / "ensemble.json").read_text())
    assert after["refit_trials"] != before["refit_trials"] and len(after["members"]) == 4


def test_export_reloads_in_fresh_process_exactly(study, tmp_path):
    root, path, _ = study
    inp = tmp_path / "to_predict.csv"
    lines = (root / "plate.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [l.split(",") for l in lines[1:13]]
    k = header.index("Yield")
    inp.write_text("\n".join(",".join(c for i, c in enumerate(r) if i != k)  # drop the Yield column
                             for r in [header, *rows]) + "\n")
    out = tmp_path / "export"
    run_tune("export-best", path, "--out", out, "--predict", inp, "--submission", cwd=root)
    names = {p.name for p in out.iterdir()}
    assert {"members", "ensemble.json", "metrics.json", "best_params.json", "MODEL_CARD.md", "manifest.json",
            "predictions.csv", "submission.csv", "holdout_predictions.csv"} <= names
    card = (out / "MODEL_CARD.md").read_text()
    assert "SHA-256" in card and "from yieldtune.ensemble import load_ensemble" in card
    sub = (out / "submission.csv").read_text().splitlines()
    assert sub[0] == "rxnid,Yield" and [s.split(",")[0] for s in sub[1:]] == [r[0] for r in rows]

    script = (
        "import sys, numpy as np, pandas as pd, torch\n"
        "torch.set_num_threads(1)\n"
        "from yieldtune.ensemble import load_ensemble\n"
        "from yieldtune.ensemble.predict import predict_file\n"
        "ens = load_ensemble(sys.argv[1])\n"
        "fp = predict_file(ens, sys.argv[2])\n"
        "stored = pd.read_csv(sys.argv[1] + '/predictions.csv', dtype={'id': str})\n"
        "assert stored['id'].tolist() == list(fp.table.ids)\n"
        "assert np.array_equal(stored['yield_pred'].to_numpy(), fp.mean.astype(np.float64)), 'mean differs'\n"
        "assert np.array_equal(stored['yield_std'].to_numpy(), fp.std.astype(np.float64)), 'std differs'\n"
        "print('EXACT')\n")
    proc = subprocess.run([sys.executable, "-c", script, str(out), str(inp)], env=tune_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "EXACT" in proc.stdout, proc.stderr[-2000:]

    # a second export into the non-empty directory is refused in one line
    again = run_tune("export-best", path, "--out", out, cwd=root, check=False)
    assert again.returncode != 0 and again.stderr.strip().startswith("error:")
    assert len(again.stderr.strip().splitlines()) == 1 and "--force" in again.stderr

    # tampering with one member file is refused on load
    cfg = next((out / "members").iterdir()) / "config.json"
    cfg.write_text(cfg.read_text().replace('"target_std"', '"target_std" ', 1))
    bad = run_tune("predict", out, inp, "--out", tmp_path / "p.csv", cwd=root, check=False)
    assert bad.returncode == 2 and "SHA-256" in bad.stderr and "Traceback" not in bad.stderr


def test_export_before_any_ensemble_takes_the_best_trial_with_a_note(study, tmp_path):
    root, path, _ = study
    spec = _spec(path)
    ens_dir = spec.artifact_dir / "ensemble"
    hidden = ens_dir.with_name("ensemble.hidden")
    ens_dir.rename(hidden)
    try:
        proc = run_tune("export-best", path, "--out", tmp_path / "single", cwd=root)
    finally:
        hidden.rename(ens_dir)
    assert "no ensemble has been built" in proc.stderr
    info = json.loads((tmp_path / "single" / "ensemble.json").read_text())
    best = json.loads((tmp_path / "single" / "best_params.json").read_text())
    assert info["method"] == "single" and len(info["members"]) == 1
    assert info["members"][0]["trial_number"] == best["trial_number"]
    assert "no ensemble has been built" in (tmp_path / "single" / "MODEL_CARD.md").read_text()
    from yieldtune.ensemble import load_ensemble

    mean, std = load_ensemble(tmp_path / "single").predict(["CC>>CC"])
    assert mean.shape == (1,) and std.tolist() == [0.0]
