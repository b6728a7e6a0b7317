"""Commands that read a study which is not there: one line, and no empty SQLite file left behind."""

from __future__ import annotations

import pytest

from helpers import TINY_SEARCH_SPACE, run_tune, study_toml


@pytest.mark.parametrize("command", [["export-best", "{f}", "--out", "{root}/m"], ["status", "{f}"],
                                     ["ensemble", "{f}", "--device", "cpu"], ["report", "{f}"]])
def test_reading_a_study_that_does_not_exist_creates_nothing(tmp_path, command):
    path = tmp_path / "absent.toml"
    path.write_text(study_toml("absent", search_space=TINY_SEARCH_SPACE, n_trials=1))
    args = [a.format(f=path, root=tmp_path) for a in command]
    proc = run_tune(*args, cwd=tmp_path, check=False, timeout=120)
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "no such SQLite database" in err and "absent.db" in err, err
    assert not (tmp_path / "absent.db").exists() and not (tmp_path / "m").exists()
