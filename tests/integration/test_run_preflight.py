"""`tune run` checks the device and the data set before any worker starts, and names a dead worker's error."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import TINY_SEARCH_SPACE, run_tune, study_toml
from yieldtune.data.synth import write_synthetic_plate


def study_file(root: Path, dataset: str = "plate.csv") -> Path:
    write_synthetic_plate(root / "plate.csv", n=40)
    path = root / "pre.toml"
    path.write_text(study_toml("pre", search_space=TINY_SEARCH_SPACE, n_trials=2).replace(
        'dataset = "plate.csv"', f'dataset = "{dataset}"'))
    return path


def assert_one_line(proc, *needles: str) -> None:
    err = proc.stderr.strip()
    assert proc.returncode == 2, proc.stderr
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_gpus_on_a_cpu_machine_is_one_line_and_starts_nothing(tmp_path):
    path = study_file(tmp_path)
    proc = run_tune("run", path, "--gpus", "0", cwd=tmp_path, check=False)
    assert_one_line(proc, "cuda:0", "CUDA is not available")
    assert not (tmp_path / "pre.db").exists() and not any(tmp_path.rglob("*.log"))  # no study, no FAIL trials
    proc = run_tune("worker", path, "--device", "cuda:0", cwd=tmp_path, check=False)
    assert_one_line(proc, "CUDA is not available")
    assert not (tmp_path / "pre.db").exists()


@pytest.mark.parametrize("create_only", [True, False])
def test_misspelled_data_set_is_one_line_before_anything_is_written(tmp_path, create_only):
    path = study_file(tmp_path, dataset="synthetc")
    proc = run_tune("run", path, *(["--create-only"] if create_only else []), "--device", "cpu", cwd=tmp_path,
                    check=False)
    assert_one_line(proc, "data.dataset", "'synthetc'", "tune data list")
    assert not (tmp_path / "pre.db").exists() and not any(tmp_path.rglob("*.log"))


def test_a_dead_workers_last_error_is_printed_not_only_its_log_path(tmp_path):
    path = study_file(tmp_path)
    rows = (tmp_path / "plate.csv").read_text().splitlines()
    cells = rows[3].split(",")
    cells[2] = "C1CC(N"  # an unparsable amine on the file's line 4
    rows[3] = ",".join(cells)
    (tmp_path / "plate.csv").write_text("\n".join(rows) + "\n")  # found only when a worker loads the data
    proc = run_tune("run", path, "--device", "cpu", cwd=tmp_path, check=False, timeout=300)
    assert proc.returncode == 1
    line = next(x for x in proc.stderr.splitlines() if x.startswith("worker w0 exited with code"))
    assert "(log: " in line and line.split(": ", 1)[1].count("error: ") == 1, line
    assert "plate.csv" in line and "row 4" in line, line
