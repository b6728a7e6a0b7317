"""``tune data`` through the real CLI: one clear error line and a non-zero exit for every bad input."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from yieldtune.cli.main import main

HEADER = "rxnid,Reactant1,Reactant2,Product,Additive,Solvent,Yield"
GOOD = "r1,Brc1ccccc1,C1COCCN1,c1ccc(N2CCOCC2)cc1,CC(C)(C)[O-].[Na+],Cc1ccccc1,0.5"
GOOD2 = "r2,Clc1ccccc1,C1CCNCC1,c1ccc(N2CCCCC2)cc1,,C1COCCO1,0.25"


def run(*args):
    return CliRunner().invoke(main, ["data", *map(str, args)])


def write(tmp_path, lines, name="data.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("lines, expected", [
    ([HEADER, GOOD, GOOD2.replace("C1CCNCC1", "C1CCNCC")], r"row 3, column 'Reactant2'.*invalid SMILES 'C1CCNCC'"),
    (["rxnid,Reactant1,Product,Additive,Solvent,Yield", "r1,CC,CC,,,0.1"], "column 'Reactant2'.*missing column"),
    ([HEADER, GOOD, GOOD2.replace("0.25", "nan")], r"row 3, column 'Yield'.*target is NaN"),
    ([HEADER, GOOD, GOOD2.replace(",0.25", ",")], r"row 3, column 'Yield'.*blank target"),
    ([HEADER, GOOD.replace("0.5", "55")], r"row 2, column 'Yield'.*outside \[0, 1\].*--percent"),
    ([HEADER, GOOD.replace("0.5", "abc")], r"row 2, column 'Yield'.*not a number"),
    ([""], "empty file"),
    ([HEADER.replace(",", "|"), GOOD.replace(",", "|")], r"row 1.*wrong delimiter\?"),
])
def test_validate_bad_input_is_one_line(tmp_path, lines, expected):
    import re

    path = write(tmp_path, lines)
    line = one_error_line(run("validate", path))
    assert str(path) in line
    assert re.search(expected, line), line


def test_validate_percent_accepted_when_declared(tmp_path):
    path = write(tmp_path, [HEADER, GOOD.replace("0.5", "55"), GOOD2.replace("0.25", "25")])
    result = run("validate", path, "--percent", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["valid"] == 2 and summary["yield_max"] == pytest.approx(0.55)


def test_validate_summary_with_duplicates(tmp_path):
    # Same reaction, molecules in another order and spelled differently (kekulé benzene): a duplicate.
    dup = "r3,C1CCNCC1,ClC1=CC=CC=C1,c1ccc(N2CCCCC2)cc1,,C1COCCO1,0.75"
    path = write(tmp_path, [HEADER, GOOD, GOOD2, dup])
    result = run("validate", path)
    assert result.exit_code == 0, result.output
    assert "3 rows, 3 valid, 0 dropped" in result.stdout
    assert "duplicates: 1 rows in 1 groups, 1 groups with conflicting yields" in result.stdout


def test_validate_drop_invalid_report(tmp_path):
    path = write(tmp_path, [HEADER, GOOD, GOOD2.replace("0.25", "nan"), GOOD2])
    report = tmp_path / "report.csv"
    result = run("validate", path, "--drop-invalid", "--report", report, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["rows"], summary["valid"], summary["dropped"]) == (3, 2, 1)
    with report.open() as fh:
        assert list(csv.reader(fh)) == [["row", "column", "reason", "value"], ["3", "Yield", "target is NaN", "nan"]]


def test_report_without_drop_invalid_is_a_usage_error(tmp_path):
    path = write(tmp_path, [HEADER, GOOD])
    assert "--report needs --drop-invalid" in one_error_line(run("validate", path, "--report", tmp_path / "r.csv"))


def test_validate_rxn_layout_and_no_target(tmp_path):
    path = write(tmp_path, ["rxn", "Brc1ccccc1.C1COCCN1>>c1ccc(N2CCOCC2)cc1"])
    result = run("validate", path, "--layout", "rxn", "--no-target", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["target"] is None
    line = one_error_line(run("validate", path, "--layout", "rxn", "--target", "yield"))
    assert "missing column 'yield'" in line


def test_unknown_dataset_name(tmp_path):
    assert "no such file or data set 'nope'" in one_error_line(run("validate", "nope"))


def test_real_subprocess_prints_one_line_and_no_traceback(tmp_path):
    path = write(tmp_path, [HEADER, GOOD, GOOD2.replace("C1CCNCC1", "C1CCNCC")])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    tune = os.path.join(os.path.dirname(sys.executable), "tune")
    proc = subprocess.run([tune, "data", "validate", str(path)], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "row 3, column 'Reactant2'" in lines[0] and "invalid SMILES" in lines[0]


def test_synth_then_validate(tmp_path):
    out = tmp_path / "plate.csv"
    result = run("synth", "--out", out, "--n", 50, "--seed", 3)
    assert result.exit_code == 0, result.output
    summary = json.loads(run("validate", out, "--json").stdout)
    assert summary["rows"] == summary["valid"] == 50 and summary["target"] == "Yield"


def test_info_lists_datasets():
    result = run("info")
    assert result.exit_code == 0
    for name in ("buchwald-hartwig", "suzuki-miyaura", "aichem2024", "synthetic"):
        assert name in result.stdout
    assert "first 2767 train" in run("info", "buchwald-hartwig").stdout
