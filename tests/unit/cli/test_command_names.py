"""Every `tune ...` command the README, the study files and the messages refer to exists; `tune data list`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
from click.testing import CliRunner

from yieldtune.cli.main import main

REPO = Path(__file__).resolve().parents[3]
REFERENCE = re.compile(r"`tune ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?")


def referenced_commands() -> set[tuple[str, str | None, str]]:
    files = [REPO / "README.md", *sorted((REPO / "studies").rglob("*.toml")),
             *sorted((REPO / "src").rglob("*.py"))]
    return {(m[1], m[2], str(path.relative_to(REPO)))
            for path in files for m in REFERENCE.finditer(path.read_text(encoding="utf-8"))}


def test_every_referenced_command_exists():
    ctx = click.Context(main)
    missing = []
    for name, sub, where in referenced_commands():
        command = main.get_command(ctx, name)
        if command is None:
            missing.append(f"tune {name} ({where})")
        elif isinstance(command, click.Group) and sub and command.get_command(ctx, sub) is None:
            missing.append(f"tune {name} {sub} ({where})")
    assert not missing, missing


def test_data_list_names_every_registered_set_and_how_to_get_it(tmp_path):
    from yieldtune.data import DATASETS

    result = CliRunner().invoke(main, ["data", "list", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == list(DATASETS)
    assert "not fetched: tune data fetch buchwald-hartwig" in lines[0] and "generated" in lines[-1]
    (tmp_path / DATASETS["buchwald-hartwig"].folder).mkdir()
    (tmp_path / DATASETS["buchwald-hartwig"].folder / DATASETS["buchwald-hartwig"].files[0].name).write_text("x")
    rows = json.loads(CliRunner().invoke(main, ["data", "list", "--cache-dir", str(tmp_path), "--json"]).output)
    assert rows[0]["status"] == f"fetched (1/{len(DATASETS['buchwald-hartwig'].files)} files)"
