"""A study searching both model families, end to end with real worker processes: Transformers and
LightGBM models on the synthetic plate, a GBM trial pruned among GBM trials, refits of both families, one
Caruana ensemble holding both, an export that a fresh process predicts with the same numbers, and a
LightGBM member file edited after export refused."""

from __future__ import annotations

import json

import pytest

from helpers import run_tune, study_toml, tiny_search_space

# Four queued trials (warm start), run in order by one worker: a good GBM, a GBM with a learning rate so
# small that the median pruner (comparing GBM trials with GBM trials only) stops it at its first report,
# and two tiny Transformers. The queue makes the test deterministic whatever the sampler would draw.
MIXED_SPACE = tiny_search_space(fixed="""family = ["transformer", "gbm"]
gbm_rounds = 60
gbm_lr = { low = 0.0001, high = 0.3, log = true }
gbm_leaves = 4
gbm_min_child_samples = 3
gbm_feature_fraction = 0.8
gbm_bagging_fraction = 1.0
gbm_l1 = 0.0
gbm_l2 = 0.0
gbm_fp_radius = 2
gbm_fp_bits = 128
gbm_blocks = ["morgan+rdkit2d+drfp", "drfp"]

[fixed.gbm]
report_every = 10
early_stopping_rounds = 20

[warm_start]
configs = [
  { family = "gbm", gbm_lr = 0.2, gbm_blocks = "morgan+rdkit2d+drfp" },
  { family = "gbm", gbm_lr = 0.0001, gbm_blocks = "drfp" },
  { family = "transformer", lr = 0.003 },
  { family = "transformer", lr = 0.001 },
]
""")


@pytest.fixture(scope="module")
def mixed_study(tmp_path_factory):
    from yieldtune.data.synth import write_synthetic_plate

    root = tmp_path_factory.mktemp("mixed")
    write_synthetic_plate(root / "plate.csv", n=96)
    path = root / "mixed.toml"
    path.write_text(study_toml("mixed", search_space=MIXED_SPACE, n_trials=4,
                               pruner='type = "median"\nn_startup_trials = 1\nn_warmup_steps = 0',
                               ensemble="top_k = 1\nseeds = 1"))
    run_tune("run", path, "-j", "1", "--device", "cpu", "--no-live", cwd=root)
    return root, path


def _study(path):
    from yieldtune.study.service import load_study
    from yieldtune.study.spec import load_study_spec

    spec = load_study_spec(path)
    return spec, load_study(spec, spec.storage_url(None), heartbeat=False)


def test_both_families_run_and_a_gbm_trial_is_pruned_among_gbm_trials(mixed_study):
    from optuna.trial import TrialState

    _, path = mixed_study
    _, study = _study(path)
    trials = study.get_trials(deepcopy=False)
    by_family = {t.number: t.params["family"] for t in trials}
    assert sorted(by_family.values()) == ["gbm", "gbm", "transformer", "transformer"]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert [t.params["family"] for t in pruned] == ["gbm"]
    assert pruned[0].params["gbm_lr"] == 0.0001 and pruned[0].last_step == 10  # its first report
    for t in trials:  # each trial holds only its own family's parameters
        names = set(t.params) - {"family"}
        assert all(n.startswith("gbm_") for n in names) if t.params["family"] == "gbm" else \
            not any(n.startswith("gbm_") for n in names)
    good = next(t for t in trials if t.params["family"] == "gbm" and t.state == TrialState.COMPLETE)
    assert good.user_attrs["family"] == "gbm" and good.user_attrs["best_iteration"] >= 1
    assert [r["round"] for r in good.user_attrs["rounds"]][:2] == [10, 20]

    proc = run_tune("status", path, "--json", cwd=path.parent)
    status = json.loads(proc.stdout)
    assert status["families"]["gbm"]["PRUNED"] == 1 and status["families"]["gbm"]["COMPLETE"] == 1
    assert status["families"]["transformer"]["COMPLETE"] + status["families"]["transformer"]["PRUNED"] == 2


def test_ensemble_of_both_families_exports_and_predicts_the_same_in_a_fresh_process(mixed_study, tmp_path):
    import numpy as np
    import pandas as pd

    root, path = mixed_study
    spec, _ = _study(path)
    info = json.loads((spec.artifact_dir / "ensemble" / "ensemble.json").read_text())
    families = {m["family"] for m in info["members"]}
    assert families == {"gbm", "transformer"}  # top_k = 1 of each family
    for m in info["members"]:
        assert {"family", "weight", "r2"} <= set(m)
    assert set(info["r2_best_by_family"]) == {"gbm", "transformer"}
    assert info["r2_ensemble"] >= info["r2_best_member"] - 1e-12

    out = tmp_path / "export"
    run_tune("export-best", path, "--out", out, "--predict", root / "plate.csv", cwd=root)
    gbm_member = next(m["name"] for m in json.loads((out / "ensemble.json").read_text())["members"]
                      if m["family"] == "gbm")
    model_txt = out / "members" / gbm_member / "lightgbm_model.txt"
    assert model_txt.read_text().startswith("tree\n")  # LightGBM's own text format
    manifest = json.loads((out / "manifest.json").read_text())["files"]
    assert f"members/{gbm_member}/lightgbm_model.txt" in manifest and f"members/{gbm_member}/gbm.json" in manifest

    preds = tmp_path / "preds.csv"
    run_tune("predict", out, root / "plate.csv", "--out", preds, cwd=root)  # a fresh process
    fresh = pd.read_csv(preds)
    exported = pd.read_csv(out / "predictions.csv")
    assert np.array_equal(fresh["yield_pred"].to_numpy(), exported["yield_pred"].to_numpy())
    assert (fresh["yield_std"] > 0).any()  # the members disagree somewhere: spread across families

    # a LightGBM member edited after export is refused, as a tampered safetensors file is
    text = model_txt.read_text()
    model_txt.write_text(text.replace("learning_rate", "learning_rate ", 1) if "learning_rate" in text
                         else text + "\n")
    proc = run_tune("predict", out, root / "plate.csv", "--out", tmp_path / "x.csv", cwd=root, check=False)
    assert proc.returncode != 0 and "lightgbm_model.txt" in proc.stderr and "SHA-256" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "x.csv").exists()


def test_bench_ensemble_reports_the_best_of_each_family_side_by_side(mixed_study):
    root, path = mixed_study
    rec = json.loads(run_tune("bench", "ensemble", path, "--json", cwd=root).stdout.strip().splitlines()[-1])
    assert set(rec["best_trial_by_family"]) == {"gbm", "transformer"}
    for family in ("gbm", "transformer"):
        assert rec[f"r2_ensemble_minus_best_{family}"] == pytest.approx(rec["r2_ensemble"] - rec[f"r2_best_{family}"],
                                                                       abs=1e-5)
    assert {m["family"] for m in rec["members"]} <= {"gbm", "transformer"}


def test_report_splits_per_step_and_parameter_plots_by_family(mixed_study, tmp_path):
    import re

    root, path = mixed_study
    run_tune("report", path, "--out", tmp_path / "rep", cwd=root)
    page = (tmp_path / "rep" / "index.html").read_text()
    sections = set(re.findall(r"<section id='([^']+)'>", page))
    assert {"history", "timeline", "intermediate-gbm", "intermediate-transformer", "importances-gbm",
            "parallel-transformer", "slice-model-size-transformer", "slice-gbm"} <= sections
    assert "intermediate" not in sections and "slice-model-size-gbm" not in sections
    assert "family: gbm" in page and "family: transformer" in page  # history legend / hover
    rows = re.findall(r"<tr><td>(gbm|transformer)</td><td>(trial\d+-seed\d+)</td>", page)
    assert [family for family, _ in rows] == ["gbm", "transformer"]  # the ensemble table, by family


@pytest.mark.parametrize("method", ["mean", "bagged"])
def test_ensemble_method_sets_the_weights_the_ensemble_and_its_card_use(mixed_study, method, tmp_path):
    from yieldtune.ensemble.auto import build_study_ensemble
    from yieldtune.ensemble.format import load_ensemble

    root, path = mixed_study
    spec, _ = _study(path)
    other = spec.model_copy(update={"ensemble": spec.ensemble.model_copy(update={"method": method})})
    try:
        ens_dir = build_study_ensemble(other, other.storage_url(None))
        info = json.loads((ens_dir / "ensemble.json").read_text())
        assert info["method"] == method
        weights = [m["weight"] for m in info["members"]]
        if method == "mean":  # two trials and the fingerprint baseline
            assert weights == pytest.approx([1 / 3] * 3)
            assert info["r2_ensemble"] == pytest.approx(info["r2_mean"])
        assert sum(weights) == pytest.approx(1.0)
        assert load_ensemble(ens_dir).weights.tolist() == pytest.approx(weights)
        out = tmp_path / "export"
        run_tune("export-best", path, "--out", out, cwd=root)  # the study file still says caruana: export rebuilds
        card = (out / "MODEL_CARD.md").read_text()
        assert "- method: caruana" in card and "greedy forward selection with replacement (Caruana" in card
    finally:
        build_study_ensemble(spec, spec.storage_url(None))  # the module's other tests see the study's own


def test_the_fingerprint_baseline_competes_for_weight_on_rows_it_never_saw(mixed_study):
    """ensemble.baseline_member: the untuned fingerprint GBM's column is fitted on the fold's training rows (not on
    the validation rows it is weighted on), its member is refit on train + validation, and turning it off leaves
    the trials alone and makes the next ensure_ensemble rebuild."""
    import numpy as np
    import pandas as pd

    from yieldtune.ensemble.auto import BASELINE_MEMBER, build_study_ensemble, ensure_ensemble
    from yieldtune.ensemble.bench import bench_ensemble
    from yieldtune.ensemble.format import load_ensemble
    from yieldtune.metrics import r2_score
    from yieldtune.study.datasets import prepare_folds
    from yieldtune.train.baseline import fit_baseline

    root, path = mixed_study
    spec, _ = _study(path)
    assert spec.ensemble.baseline_member  # the default
    mean = spec.model_copy(update={"ensemble": spec.ensemble.model_copy(update={"method": "mean"})})
    off = spec.model_copy(update={"ensemble": spec.ensemble.model_copy(update={"baseline_member": False})})
    data = prepare_folds(spec)
    (train, val), = data.folds
    honest, _ = fit_baseline(train, cache_dir=spec.cache_dir).predict(val.reactions)
    in_sample, _ = fit_baseline(data.train_all, cache_dir=spec.cache_dir).predict(val.reactions)
    assert r2_score(val.yields, in_sample) > r2_score(val.yields, honest) + 0.05  # the two fits are told apart
    try:
        ens_dir = build_study_ensemble(mean, mean.storage_url(None))
        info = json.loads((ens_dir / "ensemble.json").read_text())
        member = next(m for m in info["members"] if m["name"] == BASELINE_MEMBER)
        assert member["family"] == "gbm" and member["baseline"] is True
        assert member["weight"] == pytest.approx(1 / 3) == info["baseline_member"]["weight"]
        assert info["baseline_member"]["r2"] == pytest.approx(r2_score(val.yields, honest))
        hold = pd.read_csv(ens_dir / "holdout_predictions.csv", dtype={"id": str}).set_index("id")
        assert hold.loc[[str(i) for i in val.ids], BASELINE_MEMBER].to_numpy() == pytest.approx(honest, abs=1e-5)
        saved = next(m for m in load_ensemble(ens_dir).members if m.name == BASELINE_MEMBER)
        np.testing.assert_allclose(saved.predictor.predict(val.reactions)[0], in_sample, atol=1e-6)  # the refit
        # no test split: tune bench ensemble scores the validation mixtures, with and without the baseline's column
        rec = bench_ensemble(mean, mean.storage_url(None))
        trial_cols = [m["name"] for m in info["members"] if m["name"] != BASELINE_MEMBER]
        assert rec["r2_ensemble"] == pytest.approx(info["r2_ensemble"], abs=1e-6)
        assert rec["r2_ensemble_without_baseline"] == pytest.approx(
            r2_score(hold["y_true"], hold[trial_cols].mean(axis=1)), abs=1e-4)

        ens_dir = build_study_ensemble(off, off.storage_url(None))
        info = json.loads((ens_dir / "ensemble.json").read_text())
        assert "baseline_member" not in info and BASELINE_MEMBER not in {m["name"] for m in info["members"]}
        assert BASELINE_MEMBER not in pd.read_csv(ens_dir / "holdout_predictions.csv").columns
        ensure_ensemble(spec, spec.storage_url(None))  # the study file asks for the baseline: rebuilt
        assert "baseline_member" in json.loads((ens_dir / "ensemble.json").read_text())
    finally:
        build_study_ensemble(spec, spec.storage_url(None))  # the module's other tests see the study's own
