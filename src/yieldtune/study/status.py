"""What a study is doing right now: trials by state, the best so far, and who runs what."""

from __future__ import annotations

import datetime
from typing import Any

from yieldtune.study.spec import StudySpec


def study_status(spec: StudySpec, storage_url: str, *, n_trials: int | None = None, storage=None) -> dict[str, Any]:
    """A JSON-ready summary of the study (counts, best trial, running trials with heartbeat age)."""
    from optuna.trial import TrialState

    from yieldtune.study.liveness import proxied_heartbeat_age
    from yieldtune.study.pruners import trial_family
    from yieldtune.study.service import BUDGET_ATTR, best_trial_or_none, load_study, state_counts, trials_per_minute
    from yieldtune.study.storage import heartbeat_ages, redact_url

    study = load_study(spec, storage if storage is not None else storage_url, heartbeat=False)
    counts = state_counts(study)
    families: dict[str, dict[str, int]] = {name: {s.name: 0 for s in TrialState} for name in spec.search().families}
    for t in study.get_trials(deepcopy=False):
        families.setdefault(trial_family(t), {s.name: 0 for s in TrialState})[t.state.name] += 1
    budget = n_trials or study.user_attrs.get(BUDGET_ATTR) or spec.budget.n_trials
    best = best_trial_or_none(study)
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    ages = heartbeat_ages(study._storage, [t._trial_id for t in running])
    for t in running:  # workers behind `tune proxy` send their heartbeats as a trial attribute
        if t._trial_id not in ages and (age := proxied_heartbeat_age(t)) is not None:
            ages[t._trial_id] = age
    now = datetime.datetime.now()
    rate = trials_per_minute(study)
    return {
        "study": spec.name,
        "storage": redact_url(storage_url),
        "direction": spec.direction,
        "metric": spec.objective.metric,
        "budget": int(budget),
        "finished": counts["COMPLETE"] + counts["PRUNED"],
        "counts": counts,
        "families": families,
        "trials_per_minute": rate,
        "best": None if best is None else {
            "number": best.number, "value": best.value, "params": best.params,
            "worker": best.user_attrs.get("worker")},
        "running": [{
            "number": t.number,
            "family": trial_family(t),
            "worker": t.user_attrs.get("worker"),
            "hostname": t.user_attrs.get("hostname"),
            "pid": t.user_attrs.get("pid"),
            "device": t.user_attrs.get("device"),
            "epoch": t.last_step,
            "last_value": t.intermediate_values.get(t.last_step) if t.last_step is not None else None,
            "running_s": round((now - t.datetime_start).total_seconds(), 1) if t.datetime_start else None,
            "heartbeat_age_s": None if t._trial_id not in ages else round(ages[t._trial_id], 1),
        } for t in running],
    }


def _after_budget_line(status: dict[str, Any]) -> str | None:
    """Refit and ensemble progress, when the caller added it (``tune status`` does: see ensemble_progress)."""
    if "refits" not in status:
        return None
    r, e = status["refits"], status.get("ensemble")
    if r is None:
        refits = "refits: not queued yet (they start when the budget is met, or with `tune ensemble`)"
    else:
        extra = ", ".join(f"{r[k]} {k.replace('_', ' ')}" for k in ("running", "waiting", "failed_attempts") if r[k])
        refits = f"refits {r['complete']}/{r['planned']} done" + (f" ({extra})" if extra else "")
    if e is None:
        ensemble = "ensemble: not built yet"
    elif "other_study" in e:
        ensemble = f"ensemble: none for this study ({e['dir']} holds the one of {e['other_study']})"
    else:
        r2 = "" if e.get("r2_ensemble") is None else f", validation R² {e['r2_ensemble']:.4f}"
        ensemble = f"ensemble: built in {e['dir']} ({e['members']} members{r2})"
    return f"{refits}; {ensemble}"


def render_status(status: dict[str, Any]):
    """A rich renderable of :func:`study_status` output (used by ``tune status`` and the live view)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    c = status["counts"]
    head = Text.assemble(
        (f"{status['study']}", "bold"), f"  {status['storage']}\n",
        f"finished {status['finished']}/{status['budget']}  ",
        f"complete {c['COMPLETE']}  pruned {c['PRUNED']}  running {c['RUNNING']}  waiting {c['WAITING']}  "
        f"failed {c['FAIL']}" + (f"  stepped back {c['STEPPED_BACK']}" if c.get("STEPPED_BACK") else ""))
    if status.get("trials_per_minute"):
        head.append(f"  ({status['trials_per_minute']:.2f} trials/min)")
    if len(status.get("families") or {}) > 1:
        head.append("\n" + "  ".join(
            f"{name}: {fc['COMPLETE']} complete, {fc['PRUNED']} pruned" for name, fc in status["families"].items()))
    best = status["best"]
    if best:
        head.append(f"\nbest {status['metric']} {best['value']:.4f} (trial {best['number']}): {best['params']}")
    after = _after_budget_line(status)
    if after:
        head.append("\n" + after)
    parts: list = [head]
    if status["running"]:
        table = Table("trial", "worker", "device", "epoch", "last value", "running s", "heartbeat age s",
                      box=None, pad_edge=False)
        for r in status["running"]:
            table.add_row(str(r["number"]), str(r["worker"] or "-"), str(r["device"] or "-"), str(r["epoch"] or "-"),
                          "-" if r["last_value"] is None else f"{r['last_value']:.4f}", str(r["running_s"] or "-"),
                          "-" if r["heartbeat_age_s"] is None else f"{r['heartbeat_age_s']:.0f}")
        parts.append(table)
    return Group(*parts)


__all__ = ["study_status", "render_status"]
