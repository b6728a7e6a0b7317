"""The figures of a study report.

Study plots come from :mod:`optuna.visualization` (plotly backend) and are only decorated here (the
timeline gets per-worker colours, the history per-family colours); in a study of several model families the
plots where mixing families makes no sense (per-step values: epochs vs boosting rounds; parameters, which
belong to one family) are drawn once per family; the ensemble plots are plain plotly scatter/bar charts of the hold-out
predictions written by the ensemble step. A figure that cannot be drawn yet (too few trials, a parameter
not in the search space) becomes a :class:`Section` with a note instead, so a young study still gets a page.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from yieldtune.metrics import r2_score

if TYPE_CHECKING:  # heavy imports stay inside the functions
    import optuna
    import plotly.graph_objects as go

    from yieldtune.report.page import EnsembleSummary


@dataclass(frozen=True)
class Section:
    """One block of the page: a figure, or a note saying why there is none yet."""

    key: str
    title: str
    caption: str
    figure: "go.Figure | None" = None
    note: str | None = None


class _NotYet(Exception):
    """A figure that the study cannot support yet; the message becomes the section's note."""


# Parameter groups for the slice plots. A study parameter matches a key when its name is the key or ends
# in ".<key>" (search spaces may name parameters "model.d_model" or "d_model").
SLICE_GROUPS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "slice-model-size": ("Model size", "Objective against the encoder width and depth.", ("d_model", "n_layers")),
    "slice-augmentation": ("Augmentation ratio", "Objective against randomized-SMILES copies per reaction.",
                           ("use_augmentation", "augment_ratio")),
    "slice-scheduler": ("Scheduler and learning rate", "Objective against the LR schedule and peak LR.",
                        ("scheduler", "lr", "warmup_frac")),
    "slice-gbm": ("Boosting", "Objective against the GBM learning rate, leaves and feature blocks.",
                  ("gbm_lr", "gbm_leaves", "gbm_blocks")),
}
_FAMILY_COLOURS = {"transformer": "#1f77b4", "gbm": "#2ca02c"}

# Where a trial's worker is recorded; the first user attribute present wins (`tune worker` sets "worker").
WORKER_ATTRS = ("worker_id", "worker", "hostname")

_WORKER_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                   "#7f7f7f", "#bcbd22", "#17becf")
# Trial state stays readable on worker-coloured bars as a fill pattern.
_STATE_PATTERNS = {"COMPLETE": "", "PRUNED": "/", "FAIL": "x", "RUNNING": ".", "WAITING": "-", "INFEASIBLE": "\\"}


def _finished(study: "optuna.Study") -> list["optuna.trial.FrozenTrial"]:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def match_params(study: "optuna.Study", keys: Sequence[str]) -> list[str]:
    """Names of the study's parameters (from finished trials) that match ``keys``, in key order."""
    names = sorted({name for t in _finished(study) for name in t.params})
    found: list[str] = []
    for key in keys:
        found += [n for n in names if (n == key or n.endswith("." + key)) and n not in found]
    return found


def families_of(study: "optuna.Study") -> list[str]:
    """The model families of the study's trials, in a stable order."""
    from yieldtune.study.pruners import trial_family

    return sorted({trial_family(t) for t in study.get_trials(deepcopy=False)})


def _history(study: "optuna.Study") -> "go.Figure":
    from optuna.visualization import plot_optimization_history

    from yieldtune.study.pruners import trial_family

    done = _finished(study)
    if not done:
        raise _NotYet("no finished trial yet")
    fig = plot_optimization_history(study)
    family = {t.number: trial_family(t) for t in done}
    if len(set(family.values())) > 1:  # one marker colour per model family, the trial's family on hover
        for trace in fig.data:
            if trace.mode == "markers" and trace.x is not None:
                fams = [family.get(int(n), "?") for n in trace.x]
                trace.marker.color = [_FAMILY_COLOURS.get(f, "#7f7f7f") for f in fams]
                trace.customdata = fams
                trace.hovertemplate = "trial %{x}: %{y}<br>family: %{customdata}<extra></extra>"
        import plotly.graph_objects as go

        for f in sorted(set(family.values())):
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"family: {f}",
                                     marker={"color": _FAMILY_COLOURS.get(f, "#7f7f7f")}, hoverinfo="skip"))
    return fig


def _intermediate(study: "optuna.Study") -> "go.Figure":
    from optuna.visualization import plot_intermediate_values

    if not any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        raise _NotYet("no trial has reported a per-epoch value yet")
    return plot_intermediate_values(study)


def _importances(study: "optuna.Study") -> "go.Figure":
    from optuna.visualization import plot_param_importances

    done = _finished(study)
    if len(done) < 2:
        raise _NotYet(f"needs at least 2 complete trials, the study has {len(done)}")
    if not any(t.params for t in done):
        raise _NotYet("the complete trials have no parameters")
    try:
        with warnings.catch_warnings():  # "few trials per regime" is expected early in a study
            warnings.simplefilter("ignore", UserWarning)
            return plot_param_importances(study)
    except (ValueError, RuntimeError) as err:  # e.g. every trial has the same value for each parameter
        raise _NotYet(f"importances not computable yet: {err}") from err


def _parallel(study: "optuna.Study") -> "go.Figure":
    from optuna.visualization import plot_parallel_coordinate

    if not any(t.params for t in _finished(study)):
        raise _NotYet("no complete trial with parameters yet")
    return plot_parallel_coordinate(study)


def _slice(keys: Sequence[str]) -> Callable[["optuna.Study"], "go.Figure"]:
    def build(study: "optuna.Study") -> "go.Figure":
        from optuna.visualization import plot_slice

        params = match_params(study, keys)
        if not params:
            raise _NotYet(f"none of {', '.join(keys)} is tuned in this study")
        return plot_slice(study, params=params)

    return build


def worker_of(trial: "optuna.trial.FrozenTrial") -> str | None:
    """The worker that ran ``trial`` as recorded in its user attributes, or None."""
    for attr in WORKER_ATTRS:
        value = trial.user_attrs.get(attr)
        if value not in (None, ""):
            return str(value)
    return None


def _timeline(study: "optuna.Study") -> "go.Figure":
    """Optuna's timeline, with each bar recoloured by its worker (state kept as the bar's pattern)."""
    import plotly.graph_objects as go
    from optuna.visualization import plot_timeline

    trials = study.get_trials(deepcopy=False)
    if not trials:
        raise _NotYet("no trial yet")
    fig = plot_timeline(study)
    from yieldtune.study.pruners import trial_family

    by_number = {t.number: worker_of(t) for t in trials}
    family = {t.number: trial_family(t) for t in trials}
    workers = sorted({w for w in by_number.values() if w is not None})
    if not workers:
        return fig
    colour = {w: _WORKER_COLOURS[i % len(_WORKER_COLOURS)] for i, w in enumerate(workers)}
    for trace in fig.data:
        numbers = list(trace.y)
        trace.marker.color = [colour.get(by_number.get(n), "#bbbbbb") for n in numbers]
        trace.marker.pattern = {"shape": _STATE_PATTERNS.get(trace.name, ""), "fillmode": "overlay",
                                "fgcolor": "black", "size": 6, "solidity": 0.25}
        trace.customdata = [[by_number.get(n) or "?", family.get(n, "?")] for n in numbers]
        trace.hovertemplate = ("%{text}<br>worker: %{customdata[0]}<br>family: %{customdata[1]}<extra>"
                               + str(trace.name) + "</extra>")
        trace.showlegend = False
    for state in [t.name for t in fig.data]:  # legend entries for the state patterns, in neutral grey
        fig.add_trace(go.Bar(x=[None], y=[None], orientation="h", name=state, legendgroup="state", showlegend=True,
                             legendgrouptitle={"text": "state (pattern)"}, hoverinfo="skip",
                             marker={"color": "#dddddd", "pattern": {"shape": _STATE_PATTERNS.get(state, ""),
                                                                      "fgcolor": "black", "solidity": 0.25}}))
    for w in workers:  # legend entries for the worker colours
        fig.add_trace(go.Bar(x=[None], y=[None], orientation="h", name=w, marker={"color": colour[w]},
                             legendgroup="worker", legendgrouptitle={"text": "worker (colour)"},
                             showlegend=True, hoverinfo="skip"))
    fig.update_layout(title=f"Timeline Plot ({len(workers)} worker{'s' if len(workers) != 1 else ''})",
                      barmode="overlay")
    return fig


STUDY_FIGURES: list[tuple[str, str, str, Callable[["optuna.Study"], "go.Figure"]]] = [
    ("history", "Optimization history", "Objective of every trial and the best so far (colour: model family).",
     _history),
    ("intermediate", "Intermediate values", "Per-step validation value of each trial (epochs for Transformers, "
     "boosting rounds for GBMs); pruned trials stop early.", _intermediate),
    ("importances", "Parameter importances", "How much each hyperparameter explains the objective.", _importances),
    ("parallel", "Parallel coordinates", "Each complete trial as a line through its parameter values.", _parallel),
    *[(key, title, caption, _slice(keys)) for key, (title, caption, keys) in SLICE_GROUPS.items()],
    ("timeline", "Worker timeline", "When each trial ran and on which worker (colour) with what outcome (pattern).",
     _timeline),
]


def study_sections(study: "optuna.Study") -> list[Section]:
    """Every study figure of the report, each drawn by optuna.visualization or replaced by a note."""
    from yieldtune.study.pruners import family_view

    if len(study.directions) != 1:
        return [Section("multi-objective", "Study plots", "", note="multi-objective studies are not plotted here; "
                        "use `tune dashboard` for Pareto fronts")]
    families = families_of(study)
    sections = []
    for key, title, caption, build in STUDY_FIGURES:
        if key == "slice-gbm" and "gbm" not in families:
            continue
        per_family = len(families) > 1 and key in PER_FAMILY_FIGURES
        views = [(f, family_view(study, f)) for f in families] if per_family else [(None, study)]
        for family, view in views:
            if family is not None and key.startswith("slice-") and (key == "slice-gbm") != (family == "gbm"):
                continue  # a slice group's parameters belong to one family
            k, t = (key, title) if family is None or key == "slice-gbm" else (f"{key}-{family}", f"{title} ({family})")
            try:
                sections.append(Section(k, t, caption, figure=build(view)))
            except _NotYet as why:
                sections.append(Section(k, t, caption, note=str(why)))
    return sections


# drawn once per model family in a study of several: steps and parameters differ between families
PER_FAMILY_FIGURES = ("intermediate", "importances", "parallel", *SLICE_GROUPS)


def ensemble_sections(summary: "EnsembleSummary") -> list[Section]:
    """R² per member and ensemble, predicted-vs-true and residuals on the hold-out set."""
    import plotly.graph_objects as go

    scores = summary.scores()
    family = {m.name: m.family for m in summary.members}
    names = sorted(scores, key=lambda n: (n == "ensemble", family.get(n, ""), n))  # members grouped by family
    bars = go.Figure(go.Bar(
        x=[n if n == "ensemble" else f"{n} ({family.get(n, '?')})" for n in names], y=[scores[n] for n in names],
        marker={"color": ["#d62728" if n == "ensemble" else _FAMILY_COLOURS.get(family.get(n, ""), "#7f7f7f")
                          for n in names]},
        text=[f"{scores[n]:.3f}" for n in names], textposition="outside",
        hovertemplate="%{x}: R² %{y:.4f}<extra></extra>"))
    bars.update_layout(title="Hold-out R² of each member and of the ensemble", yaxis_title="R²",
                       xaxis_title="model")
    sections = [Section("ensemble-r2", "Ensemble R²", "Hold-out R² of each member (grouped and coloured by model "
                        "family) and of the weighted ensemble.", figure=bars)]
    sections.append(_applicability_section(summary))
    frame = summary.predictions
    if frame is None:
        sections.append(Section("ensemble-predictions", "Predicted vs true", "",
                                note="holdout_predictions.csv not found next to ensemble.json"))
        return sections
    y_true = frame["y_true"].to_numpy(dtype=float)
    columns = summary.prediction_columns()
    scatter, residual = go.Figure(), go.Figure()
    for col in columns:
        is_ens = col == "ensemble"
        y_pred = frame[col].to_numpy(dtype=float)
        label = f"{col} (R² {scores.get(col, r2_score(y_true, y_pred)):.3f})"
        style = ({"size": 7, "color": "#d62728", "line": {"width": 0.5, "color": "white"}} if is_ens
                 else {"size": 5, "opacity": 0.45})
        ids = frame["id"].astype(str).tolist() if "id" in frame.columns else None
        scatter.add_trace(go.Scatter(x=y_true, y=y_pred, mode="markers", name=label, marker=style, text=ids,
                                       hovertemplate="%{text}<br>true %{x:.3f}<br>pred %{y:.3f}"))
        residual.add_trace(go.Scatter(x=y_pred, y=y_pred - y_true, mode="markers", name=label, marker=style,
                                        text=ids, hovertemplate="%{text}<br>pred %{x:.3f}<br>residual %{y:.3f}"))
    lo, hi = float(min(y_true.min(), 0.0)), float(max(y_true.max(), 1.0))
    scatter.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x",
                                 line={"dash": "dash", "color": "black"}, hoverinfo="skip"))
    scatter.update_layout(title="Hold-out: predicted vs true yield", xaxis_title="true yield",
                          yaxis_title="predicted yield")
    residual.add_hline(y=0.0, line={"dash": "dash", "color": "black"})
    residual.update_layout(title="Hold-out residuals (predicted − true)", xaxis_title="predicted yield",
                           yaxis_title="residual")
    sections += [
        Section("ensemble-predictions", "Predicted vs true", "Each hold-out reaction, for every member and the "
                "ensemble (red); points on the dashed line are perfect.", figure=scatter),
        Section("ensemble-residuals", "Residuals", "Prediction error against prediction; structure here means "
                "systematic bias.", figure=residual),
    ]
    return sections


def _applicability_section(summary: "EnsembleSummary") -> Section:
    """How close the test set's molecules are to the training molecules: a histogram per role and of the
    minimum, the warning threshold of ``tune predict`` marked, the share below it in the caption."""
    import plotly.graph_objects as go

    from yieldtune.model.domain import ROLE_NAMES, SIMILARITY_COLUMNS, WARN_BELOW

    frame = summary.test_applicability
    title = "Applicability domain of the test set"
    if frame is None:
        return Section("applicability", title, "", note="the study has no test split (data.train_rows or "
                       "data.test), so there is no test set to compare with the training molecules")
    fig = go.Figure()
    for col, label in zip(SIMILARITY_COLUMNS, (*ROLE_NAMES, "min over roles")):
        values = frame[col].dropna()
        if len(values):
            fig.add_trace(go.Histogram(x=values, name=label, xbins={"start": 0.0, "end": 1.0001, "size": 0.05},
                                       opacity=1.0 if col == "similarity_min" else 0.45))
    fig.add_vline(x=WARN_BELOW, line={"dash": "dash", "color": "black"},
                  annotation_text=f"tune predict warns below {WARN_BELOW}")
    fig.update_layout(barmode="overlay", title=title, xaxis_title="nearest-neighbour Tanimoto similarity to the "
                      "training molecules (1 = seen in training)", yaxis_title="test reactions")
    least = frame["similarity_min"].to_numpy(dtype=float)
    n_low, n = int((least < WARN_BELOW).sum()), len(least)
    unseen = int((least < 1.0).sum())
    caption = (f"{n_low} of {n} test reactions ({n_low / max(n, 1):.0%}) hold a molecule below {WARN_BELOW} "
               f"similarity to every training molecule of its role; {unseen} ({unseen / max(n, 1):.0%}) hold at "
               "least one molecule not seen in training. Predictions there extrapolate.")
    return Section("applicability", title, caption, figure=fig)
