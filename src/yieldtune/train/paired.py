"""The rule that chooses a default, as a command: paired leads of one ``tune bench baseline`` output over another.

Every round of the README chose on the same rule: a candidate's figure minus the reference's on the same
split, hold-out and seed, averaged over the runs, and adopted only with a lead of more than twice its standard
error. ``tune bench compare REF CAND`` computes it from the JSON lines the two sets of ``tune bench baseline
--model`` invocations printed (files of concatenated invocations), so a table's lead is re-run from the README
instead of from a one-off script.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from yieldtune.errors import DataError

FIGURES = ("test", "blend", "mean_with_baseline")  # what a model line scores (the model alone, the blends)


def read_model_runs(path: str | Path, figure: str) -> dict[tuple, float]:
    """``figure``'s R² of each model line of a ``tune bench baseline`` output, keyed by (data file, rows scored
    on, hold-out fraction, position and seed, seed); the data file is the one of the invocation's preceding
    baseline line. Hold-outs drawn otherwise are other runs, never paired."""
    runs: dict[tuple, float] = {}
    data = None
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise DataError("not a JSON line of tune bench baseline", path=path, row=number) from None
        if record.get("run") == "baseline":
            data = record.get("data")
        if record.get("run") != "model":
            continue
        if figure not in record:
            raise DataError(f"the model line has no {figure!r} figure", path=path, row=number)
        key = (data, record.get("scored_on", "test"), record.get("select_on"), record.get("select_position"),
               record.get("select_seed"), record["seed"])
        if key in runs:
            raise DataError(f"a second run of {_name(key)}", path=path, row=number)
        runs[key] = record[figure]["r2"]
    if not runs:
        raise DataError("no model lines (tune bench baseline --model prints them)", path=path)
    return runs


def paired_lead(reference: dict[tuple, float], candidate: dict[tuple, float]) -> dict[str, Any]:
    """Mean and standard error of candidate minus reference over the runs both hold, runs won, and the means
    per data file; the runs only one side holds are an error (a lead needs pairs)."""
    unpaired = sorted(set(reference) ^ set(candidate), key=str)
    if unpaired:
        raise DataError(f"{len(unpaired)} run(s) in one output only, e.g. {_name(unpaired[0])}")
    keys = sorted(reference, key=str)
    diffs = [candidate[k] - reference[k] for k in keys]
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else None  # one run: no spread
    lead = statistics.fmean(diffs)
    per_data = {}
    for data in sorted({k[0] for k in keys}, key=str):
        mine = [k for k in keys if k[0] == data]
        per_data[str(data)] = {"runs": len(mine), "reference": statistics.fmean(reference[k] for k in mine),
                               "candidate": statistics.fmean(candidate[k] for k in mine)}
    return {"runs": len(keys), "reference": statistics.fmean(reference.values()),
            "candidate": statistics.fmean(candidate.values()), "lead": lead, "se": se,
            "lead_over_se": lead / se if se else None,
            "won": sum(d > 0 for d in diffs), "per_data": per_data}


def _name(key: tuple) -> str:
    data, scored_on, select_on, position, select_seed, seed = key
    at = f" at position {position}" if position is not None else ""
    hold_out = f", hold-out {select_on}{at} seed {select_seed}" if scored_on == "selection" else ""
    return f"{data} ({scored_on}{hold_out}, seed {seed})"


__all__ = ["FIGURES", "paired_lead", "read_model_runs"]
