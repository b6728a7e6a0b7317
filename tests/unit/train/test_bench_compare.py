"""``tune bench compare``: the paired lead of one ``tune bench baseline`` output over another."""

from __future__ import annotations

import json
import statistics

import pytest
from click.testing import CliRunner

from helpers.plates import write_rxn_plate_csv
from yieldtune.cli.main import main as cli

TINY = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.ffn_dim=32", "--set",
        "model.n_layers=1", "--set", "train.epochs=2", "--set", 'model.molecule_features=["morgan"]']


def _bench(data, out, *extra):
    """Two invocations (hold-out seeds 1 and 2) of the selection command, concatenated as a user would."""
    lines = []
    for select_seed in ("1", "2"):
        result = CliRunner().invoke(cli, ["bench", "baseline", "--data", str(data), "--train-rows", "16", "--model",
                                          "--seeds", "0,1", "--select-on", "0.3", "--select-seed", select_seed,
                                          *TINY, *extra])
        assert result.exit_code == 0, result.output
        lines += result.output.strip().splitlines()
    out.write_text("\n".join(lines) + "\n")
    return [json.loads(line) for line in lines if '"run": "model"' in line]


def test_the_lead_is_the_mean_of_the_paired_differences(tmp_path):
    data = write_rxn_plate_csv(tmp_path / "plate.csv")
    ref = _bench(data, tmp_path / "ref.jsonl")
    cand = _bench(data, tmp_path / "cand.jsonl", "--model-runs", "2")
    result = CliRunner().invoke(cli, ["bench", "compare", str(tmp_path / "ref.jsonl"), str(tmp_path / "cand.jsonl")])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    diffs = [c["blend"]["r2"] - r["blend"]["r2"] for r, c in zip(ref, cand)]
    assert [(r["select_seed"], r["seed"]) for r in ref] == [(c["select_seed"], c["seed"]) for c in cand]
    assert out["runs"] == 4 and out["compare"] == "blend"
    assert out["lead"] == pytest.approx(statistics.fmean(diffs))
    assert out["se"] == pytest.approx(statistics.stdev(diffs) / 2)
    assert out["won"] == sum(d > 0 for d in diffs)
    assert out["per_data"][str(data)]["runs"] == 4
    # the model alone: another figure of the same lines
    alone = CliRunner().invoke(cli, ["bench", "compare", str(tmp_path / "ref.jsonl"), str(tmp_path / "cand.jsonl"),
                                     "--figure", "test"])
    assert json.loads(alone.output)["lead"] == pytest.approx(
        statistics.fmean(c["test"]["r2"] - r["test"]["r2"] for r, c in zip(ref, cand)))

    # a run on one side only, and a line that is not JSON: one line naming the file and row, or the run
    lines = (tmp_path / "cand.jsonl").read_text().splitlines()
    (tmp_path / "short.jsonl").write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    short = CliRunner().invoke(cli, ["bench", "compare", str(tmp_path / "ref.jsonl"), str(tmp_path / "short.jsonl")])
    assert short.exit_code == 2 and "2 run(s) in one output only" in short.output
    assert "hold-out 0.3 seed 2, seed 0" in short.output
    # hold-outs of one kind of molecule (--select-position) are other runs than the same seeds' mixed ones
    moved = [json.dumps({**json.loads(line), "select_position": 1}) if '"run": "model"' in line else line
             for line in lines]
    (tmp_path / "moved.jsonl").write_text("\n".join(moved) + "\n")
    other = CliRunner().invoke(cli, ["bench", "compare", str(tmp_path / "ref.jsonl"), str(tmp_path / "moved.jsonl")])
    assert other.exit_code == 2 and "8 run(s) in one output only" in other.output
    assert "at position 1 seed" in other.output
    (tmp_path / "bad.jsonl").write_text(lines[0] + "\nnot json\n")
    bad = CliRunner().invoke(cli, ["bench", "compare", str(tmp_path / "ref.jsonl"), str(tmp_path / "bad.jsonl")])
    assert bad.exit_code == 2 and f"{tmp_path / 'bad.jsonl'}, row 2: not a JSON line" in bad.output
    (tmp_path / "none.jsonl").write_text(lines[0] + "\n")
    none = CliRunner().invoke(cli, ["bench", "compare", str(tmp_path / "ref.jsonl"), str(tmp_path / "none.jsonl")])
    assert none.exit_code == 2 and "no model lines" in none.output
