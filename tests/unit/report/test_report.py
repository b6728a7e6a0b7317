"""The HTML report: real Optuna studies (pure-Python objective, pruning, worker attrs) rendered to one page."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

from helpers import make_study, write_ensemble
from yieldtune.errors import DataError, ModelFileError
from yieldtune.report.figures import study_sections
from yieldtune.report.page import build_report, load_ensemble_summary

optuna.logging.set_verbosity(optuna.logging.WARNING)

ALL_STUDY_FIGURES = ["history", "intermediate", "importances", "parallel", "slice-model-size",
                     "slice-augmentation", "slice-scheduler", "timeline"]
ENSEMBLE_FIGURES = ["ensemble-r2", "applicability", "ensemble-predictions", "ensemble-residuals"]


@pytest.fixture(scope="module")
def toy_url(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('study') / 'toy.db'}"
    make_study(url)
    return url


@pytest.fixture(scope="module")
def study(toy_url) -> optuna.Study:
    return optuna.load_study(study_name="toy", storage=toy_url)


def test_page_has_every_plot_plotlyjs_once_and_no_network(study, tmp_path):
    from plotly.offline import get_plotlyjs

    truth = write_ensemble(tmp_path / "ens")
    page = build_report(study, tmp_path / "out", tmp_path / "ens")
    assert page == tmp_path / "out" / "index.html"
    text = page.read_text(encoding="utf-8")
    # plotly.js inlined exactly once, and nothing fetched from the network
    assert text.count(get_plotlyjs()[:400]) == 1
    ours = text.replace(get_plotlyjs(), "")  # the page minus the bundle (which names a CDN for geo maps only)
    assert "https://" not in ours and "http://" not in ours
    assert not re.search(r"<script[^>]+src=", ours)
    for key in ALL_STUDY_FIGURES + ENSEMBLE_FIGURES:
        assert f'id="fig-{key}"' in text, key
    assert text.count("Plotly.newPlot") == len(ALL_STUDY_FIGURES + ENSEMBLE_FIGURES)
    assert "no ensemble yet" not in text
    # R² of every member and the ensemble, computed from the CSV because the JSON left them out
    for name, value in truth.items():
        assert json.dumps(f"{name} (R² {value:.3f})")[1:-1] in text  # as the figure JSON spells it
    assert "class='note'" not in text
    assert not [p for p in page.parent.iterdir() if p.name != "index.html"]  # no temp file left


def test_study_figures_come_from_optuna_and_show_pruning_and_workers(study):
    sections = {s.key: s for s in study_sections(study)}
    assert [k for k in sections] == ALL_STUDY_FIGURES
    assert all(s.figure is not None for s in sections.values())
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.PRUNED in states and optuna.trial.TrialState.COMPLETE in states
    # intermediate values: one line per trial that reported, pruned ones shorter than 5 epochs
    lines = [tr for tr in sections["intermediate"].figure.data if tr.mode and "lines" in tr.mode]
    assert len(lines) == len(study.trials)
    assert sorted(len(tr.x) for tr in lines)[0] < 5
    assert sections["importances"].figure.layout.title.text == "Hyperparameter Importances"
    assert {tr.xaxis for tr in sections["slice-model-size"].figure.data} == {"x", "x2"}  # d_model and n_layers
    assert "augment_ratio" in json.dumps(sections["slice-augmentation"].figure.to_dict()["layout"])
    # timeline: Optuna's bars, recoloured by worker, hover names the worker
    timeline = sections["timeline"].figure
    bars = [tr for tr in timeline.data if tr.y is not None and tr.y[0] is not None]
    assert sum(len(tr.y) for tr in bars) == len(study.trials)
    colours = {c for tr in bars for c in tr.marker.color}
    assert len(colours) == 2  # two workers
    legend = {tr.name for tr in timeline.data if tr.showlegend}
    assert {"host-a:0", "host-a:1", "COMPLETE", "PRUNED"} <= legend


def test_young_study_gets_notes_not_errors(tmp_path):
    storage = f"sqlite:///{tmp_path / 'young.db'}"
    empty = optuna.create_study(study_name="empty", storage=storage, direction="maximize")
    text = build_report(empty, tmp_path / "empty", None).read_text(encoding="utf-8")
    assert "no finished trial yet" in text and "no ensemble yet" in text
    assert "Plotly.newPlot" not in text

    one = make_study(storage, n_trials=1, name="one")
    text = build_report(one, tmp_path / "one", tmp_path / "no-such-dir").read_text(encoding="utf-8")
    assert "needs at least 2 complete trials, the study has 1" in text
    assert 'id="fig-history"' in text and 'id="fig-timeline"' in text
    assert "no ensemble yet" in text


def test_only_tuned_parameters_get_slices(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", study_name="lr-only")
    study.optimize(lambda t: (math.log10(t.suggest_float("lr", 1e-5, 1e-1, log=True)) + 3) ** 2, n_trials=4)
    sections = {s.key: s for s in study_sections(study)}
    assert sections["slice-model-size"].figure is None
    assert "d_model, n_layers" in sections["slice-model-size"].note
    assert sections["slice-scheduler"].figure is not None


def test_ensemble_summary_reads_values_and_rejects_bad_files(tmp_path):
    assert load_ensemble_summary(tmp_path / "absent") is None
    truth = write_ensemble(tmp_path / "ok", with_r2=True)
    summary = load_ensemble_summary(tmp_path / "ok")
    assert [m.name for m in summary.members] == ["trial0_seed0", "trial1_seed0", "trial2_seed0"]
    assert summary.prediction_columns()[-1] == "ensemble"
    assert summary.scores() == pytest.approx(truth)

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "ensemble.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="ensemble.json"):  # the one ensemble.json reader's error
        load_ensemble_summary(bad)
    (bad / "ensemble.json").write_text(json.dumps({"members": [{"name": "a", "weight": "heavy"}]}))
    with pytest.raises(ModelFileError, match=r"ensemble.json: members\[0\]\.weight"):
        load_ensemble_summary(bad)
    (bad / "ensemble.json").write_text(json.dumps({"members": [{"name": "a", "weight": 1.0}]}))
    (bad / "holdout_predictions.csv").write_text("id,truth,a\nr1,0.5,0.4\n")
    with pytest.raises(DataError, match="holdout_predictions.csv.*'y_true'"):
        load_ensemble_summary(bad)


def test_failed_render_keeps_the_previous_page(study, tmp_path):
    out = tmp_path / "out"
    first = build_report(study, out, None).read_text(encoding="utf-8")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "ensemble.json").write_text("[]")
    with pytest.raises(ModelFileError):
        build_report(study, out, bad)
    assert (out / "index.html").read_text(encoding="utf-8") == first
    assert [p.name for p in out.iterdir()] == ["index.html"]


def test_cli_report_from_study_file_and_from_name(toy_url, tmp_path, monkeypatch):
    from yieldtune.cli.main import main

    db_url = toy_url
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TUNE_STORAGE", raising=False)
    runner = CliRunner()

    # a bare name + --storage writes ./dashboards/<name>/index.html
    res = runner.invoke(main, ["report", "toy", "--storage", db_url])
    assert res.exit_code == 0, res.output
    page = tmp_path / "dashboards" / "toy" / "index.html"
    assert page.is_file() and Path(res.stdout.strip()).resolve() == page.resolve()
    assert "no ensemble yet" in page.read_text(encoding="utf-8")

    # a study file: storage from the file, ensemble from <artifact dir>/ensemble
    spec = tmp_path / "toy.toml"
    spec.write_text(f'name = "toy"\n[data]\ndataset = "synthetic"\n[storage]\nurl = "{db_url}"\n'
                    '[artifacts]\ndir = "art"\n')
    write_ensemble(tmp_path / "art" / "ensemble")
    # the ensemble names the study it was built from; the report shows it only for that study
    optuna.load_study(study_name="toy", storage=db_url).set_user_attr("yieldtune:study_uid", "toy-uid")
    info_path = tmp_path / "art" / "ensemble" / "ensemble.json"
    info_path.write_text(json.dumps({**json.loads(info_path.read_text()), "study": "toy", "study_uid": "toy-uid"}))
    res = runner.invoke(main, ["report", str(spec), "--out", str(tmp_path / "custom")])
    assert res.exit_code == 0, res.output
    text = (tmp_path / "custom" / "index.html").read_text(encoding="utf-8")
    assert 'id="fig-ensemble-predictions"' in text and "no ensemble yet" not in text
    assert "sqlite:///" in text  # the storage is named on the page

    # user errors: one line, exit 2, no traceback
    res = runner.invoke(main, ["report", "missing", "--storage", db_url])
    assert res.exit_code == 2 and "no study named 'missing'" in res.output and "studies there: toy" in res.output
    res = runner.invoke(main, ["report", "toy"])
    assert res.exit_code == 2 and "--storage" in res.output
    res = runner.invoke(main, ["report", "toy", "--storage", f"sqlite:///{tmp_path / 'nope.db'}"])
    assert res.exit_code == 2 and "no such SQLite database" in res.output
    assert not (tmp_path / "nope.db").exists()


@pytest.mark.postgres
def test_report_from_postgres_study_hides_password(pg_url, tmp_path):
    from sqlalchemy.engine import make_url

    from yieldtune.cli.main import main

    make_study(pg_url, n_trials=6)
    runner = CliRunner()
    res = runner.invoke(main, ["report", "toy", "--storage", pg_url, "--out", str(tmp_path / "pg")])
    assert res.exit_code == 0, res.output
    text = (tmp_path / "pg" / "index.html").read_text(encoding="utf-8")
    assert 'id="fig-timeline"' in text and make_url(pg_url).database in text
    password = make_url(pg_url).password
    assert not password or password not in text


def test_applicability_section_counts_the_test_rows_outside_the_domain(tmp_path):
    from yieldtune.report.figures import ensemble_sections

    write_ensemble(tmp_path / "ens", n_test=20)  # 5 of 20 rows at similarity 0.3, the rest seen in training
    section = {s.key: s for s in ensemble_sections(load_ensemble_summary(tmp_path / "ens"))}["applicability"]
    assert "5 of 20 test reactions (25%)" in section.caption and "below 0.6" in section.caption
    assert {tr.name for tr in section.figure.data} == {"reactants", "agents", "products", "min over roles"}
    write_ensemble(tmp_path / "none", n_test=0)
    section = {s.key: s for s in ensemble_sections(load_ensemble_summary(tmp_path / "none"))}["applicability"]
    assert section.figure is None and "no test split" in section.note
