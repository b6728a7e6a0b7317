"""One self-contained HTML report page per study.

The page inlines plotly.js once in its head and every figure as a ``<div>`` after it, so it opens from a
file (``file://``), an e-mail attachment or a CI artifact with no network. It is written to a temporary
file in the target directory and moved into place, so a reader never sees half a page.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yieldtune.ensemble.format import ENSEMBLE_JSON, HOLDOUT_CSV, TEST_APPLICABILITY_CSV, read_ensemble_json
from yieldtune.errors import DataError, ModelFileError
from yieldtune.files import write_atomic
from yieldtune.metrics import r2_score

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from yieldtune.report.figures import Section

PAGE_NAME = "index.html"


@dataclass(frozen=True)
class EnsembleMember:
    """One model of the ensemble, as the ensemble step recorded it."""

    name: str
    trial_number: int | None = None
    seed: int | None = None
    weight: float = 0.0
    r2: float | None = None
    family: str = "transformer"


@dataclass(frozen=True)
class EnsembleSummary:
    """What the report shows about the ensemble: its members, their hold-out R² and predictions."""

    members: list[EnsembleMember]
    r2_ensemble: float | None = None
    r2_mean: float | None = None
    r2_best_member: float | None = None
    predictions: "pd.DataFrame | None" = field(default=None, compare=False)
    directory: Path | None = None
    holdout: str | None = None  # what the hold-out rows are, as the ensemble step describes them
    # per test row, similarity of its molecules to the training molecules (yieldtune.model.domain); None: no test
    test_applicability: "pd.DataFrame | None" = field(default=None, compare=False)

    def prediction_columns(self) -> list[str]:
        """Prediction columns of the hold-out CSV: the members, then ``ensemble``."""
        if self.predictions is None:
            return []
        cols = [c for c in self.predictions.columns if c not in ("id", "y_true", "ensemble")]
        return cols + (["ensemble"] if "ensemble" in self.predictions.columns else [])

    def scores(self) -> dict[str, float]:
        """Hold-out R² by model name (members, then ``ensemble``); missing ones computed from the CSV."""
        scores: dict[str, float] = {}
        frame = self.predictions
        for m in self.members:
            if m.r2 is not None:
                scores[m.name] = m.r2
            elif frame is not None and m.name in frame.columns:
                scores[m.name] = r2_score(frame["y_true"], frame[m.name])
        if self.r2_ensemble is not None:
            scores["ensemble"] = self.r2_ensemble
        elif frame is not None and "ensemble" in frame.columns:
            scores["ensemble"] = r2_score(frame["y_true"], frame["ensemble"])
        return scores


def _number(value: Any, path: Path, key: str) -> float | None:
    """A float, or None for missing/NaN (a metric that could not be computed)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelFileError(f"{path}: {key} must be a number, got {value!r}")
    return None if math.isnan(float(value)) else float(value)


def load_ensemble_summary(directory: Path | str | None) -> EnsembleSummary | None:
    """Read ``ensemble.json`` (and ``holdout_predictions.csv`` if present) from ``directory``.

    Returns None where there is no ensemble yet; raises DataError naming the file for a malformed one.
    """
    if directory is None:
        return None
    directory = Path(directory)
    path = directory / ENSEMBLE_JSON
    if not path.is_file():
        return None
    data = read_ensemble_json(directory)
    members = []
    for i, raw in enumerate(data["members"]):
        members.append(EnsembleMember(
            name=raw["name"],
            trial_number=None if raw.get("trial_number") is None else int(raw["trial_number"]),
            seed=None if raw.get("seed") is None else int(raw["seed"]),
            weight=_number(raw.get("weight", 0.0), path, f"members[{i}].weight") or 0.0,
            r2=_number(raw.get("r2"), path, f"members[{i}].r2"),
            family=str(raw.get("family", "transformer")),
        ))
    from yieldtune.model.domain import SIMILARITY_COLUMNS

    predictions = _numeric_csv(directory / HOLDOUT_CSV, ("y_true",))
    applicability = _numeric_csv(directory / TEST_APPLICABILITY_CSV, SIMILARITY_COLUMNS)
    return EnsembleSummary(
        members=members,
        r2_ensemble=_number(data.get("r2_ensemble"), path, "r2_ensemble"),
        r2_mean=_number(data.get("r2_mean"), path, "r2_mean"),
        r2_best_member=_number(data.get("r2_best_member"), path, "r2_best_member"),
        predictions=predictions,
        directory=directory,
        holdout=data["holdout"] if isinstance(data.get("holdout"), str) else None,
        test_applicability=applicability,
    )


def _numeric_csv(csv: Path, required: tuple[str, ...]) -> "pd.DataFrame | None":
    """A CSV of the ensemble dir whose columns other than ``id`` are numbers (None where the file is absent);
    a malformed one is a DataError naming the file and column."""
    if not csv.is_file():
        return None
    import pandas as pd

    try:
        frame = pd.read_csv(csv)
    except (OSError, ValueError) as err:
        raise DataError(f"not a readable CSV: {err}", path=str(csv)) from err
    for col in required:
        if col not in frame.columns:
            raise DataError("missing column", path=str(csv), column=col)
    for col in frame.columns:
        if col != "id" and not pd.api.types.is_numeric_dtype(frame[col]):
            raise DataError("expected numbers", path=str(csv), column=col)
    return frame


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#23395d;color:#fff;padding:1rem 2rem}
header h1{margin:0 0 .3rem 0;font-size:1.5rem} header p{margin:0;opacity:.85} header code{background:none;color:#fff}
nav{padding:.5rem 2rem;background:#e8edf5;font-size:.9rem} nav a{margin-right:1rem;color:#23395d}
main{padding:0 2rem 2rem 2rem;max-width:1300px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;margin:1.2rem 0;padding:.8rem 1rem}
section h2{margin:.2rem 0;font-size:1.15rem} .caption{color:#555;margin:.2rem 0 .6rem 0;font-size:.9rem}
.note{color:#8a6d3b;background:#fcf8e3;border:1px solid #faebcc;padding:.5rem .8rem;border-radius:4px}
table{border-collapse:collapse;font-size:.9rem} td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left}
th{background:#f0f0f0} code{background:#f0f0f0;padding:0 .2rem}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4g}"


def _summary_table(study: "optuna.Study", storage_label: str | None) -> str:
    from optuna.trial import TrialState

    from yieldtune.report.figures import worker_of

    trials = study.get_trials(deepcopy=False)
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
    workers = sorted({w for t in trials if (w := worker_of(t)) is not None})
    rows = [("study", study.study_name),
            ("direction", ", ".join(d.name.lower() for d in study.directions)),
            ("trials", f"{len(trials)} (" + ", ".join(f"{n} {k}" for k, n in counts.items() if n) + ")"),
            ("workers", f"{len(workers)}: {', '.join(workers)}" if workers else "not recorded")]
    if storage_label:
        rows.append(("storage", storage_label))
    if len(study.directions) == 1 and counts.get("complete"):
        best = study.best_trial
        rows.append(("best", f"trial {best.number}: {_fmt(best.value)}"))
        rows += [(f"best {k}", _fmt(v) if isinstance(v, float) else v) for k, v in sorted(best.params.items())]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _ensemble_table(summary: EnsembleSummary) -> str:
    """Members grouped by model family (family, member, trial, seed, weight, R²), then the ensemble."""
    head = ("<tr><th>family</th><th>member</th><th>trial</th><th>seed</th><th>weight</th><th>hold-out R²</th>"
            "</tr>")
    scores = summary.scores()
    members = sorted(summary.members, key=lambda m: m.family)
    rows = "".join(
        f"<tr><td>{_e(m.family)}</td><td>{_e(m.name)}</td>"
        f"<td>{_e('–' if m.trial_number is None else m.trial_number)}</td>"
        f"<td>{_e('–' if m.seed is None else m.seed)}</td><td>{_fmt(m.weight)}</td>"
        f"<td>{_fmt(scores.get(m.name))}</td></tr>" for m in members)
    tail = (f"<tr><th>ensemble</th><td></td><td></td><td></td><td>{_fmt(sum(m.weight for m in summary.members))}</td>"
            f"<th>{_fmt(scores.get('ensemble'))}</th></tr>")
    extra = (f"<p class='caption'>mean member R² {_fmt(summary.r2_mean)}, best member R² "
             f"{_fmt(summary.r2_best_member)}, ensemble R² {_fmt(scores.get('ensemble'))}</p>")
    return f"<table>{head}{rows}{tail}</table>{extra}"


def _section_html(section: "Section") -> str:
    import plotly.io as pio

    if section.figure is not None:
        body = pio.to_html(section.figure, full_html=False, include_plotlyjs=False, div_id=f"fig-{section.key}",
                           config={"displaylogo": False, "responsive": True})
    else:
        body = f"<p class='note'>{_e(section.note or 'not available')}</p>"
    caption = f"<p class='caption'>{_e(section.caption)}</p>" if section.caption else ""
    return f"<section id='{_e(section.key)}'><h2>{_e(section.title)}</h2>{caption}{body}</section>"


def render_report(study: "optuna.Study", ensemble: EnsembleSummary | None = None, *,
                  storage_label: str | None = None) -> str:
    """The whole page as a string: summary, study plots, ensemble plots (or a note), plotly.js inlined once."""
    from plotly.offline import get_plotlyjs

    from yieldtune.report.figures import ensemble_sections, study_sections

    sections = study_sections(study)
    study_html = "".join(_section_html(s) for s in sections)
    if ensemble is None:
        ens_html = ("<section id='ensemble'><h2>Ensemble</h2><p class='note'>no ensemble yet: run "
                    "<code>tune ensemble</code> once the study has finished trials</p></section>")
        ens_sections: list = []
    else:
        ens_sections = ensemble_sections(ensemble)
        ens_html = (f"<section id='ensemble'><h2>Ensemble</h2><p class='caption'>{len(ensemble.members)} members; "
                    f"hold-out: {_e(ensemble.holdout or 'rows held out from training')}</p>"
                    f"{_ensemble_table(ensemble)}</section>"
                    + "".join(_section_html(s) for s in ens_sections))
    nav = "".join(f"<a href='#{_e(s.key)}'>{_e(s.title)}</a>" for s in sections)
    nav += "<a href='#ensemble'>Ensemble</a>"
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = f"yieldtune report: {study.study_name}"
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_STYLE}</style>"
        f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
        f"<header><h1>{_e(title)}</h1><p>generated {stamp} by <code>tune report</code></p></header>"
        f"<nav>{nav}</nav><main><section id='summary'><h2>Summary</h2>{_summary_table(study, storage_label)}"
        f"</section>{study_html}{ens_html}</main></body></html>\n"
    )


def build_report(study: "optuna.Study", out_dir: Path, ensemble_dir: Path | None = None, *,
                 storage_label: str | None = None) -> Path:
    """Write ``out_dir/index.html`` for ``study`` (with the ensemble in ``ensemble_dir`` if any); return its path."""
    ensemble = load_ensemble_summary(ensemble_dir)
    page = Path(out_dir) / PAGE_NAME
    write_atomic(page, render_report(study, ensemble, storage_label=storage_label))
    return page


def default_report_dir(study_name: str, root: Path | None = None) -> Path:
    """``<root or cwd>/dashboards/<study_name>``: where ``tune report`` writes unless told otherwise."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in study_name).strip(".") or "study"
    return (root or Path.cwd()) / "dashboards" / safe
