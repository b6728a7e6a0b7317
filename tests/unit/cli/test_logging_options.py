"""`tune -v/-q`: the library's log records reach stderr as bare lines, filtered by the level chosen once in cli/main."""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner

from yieldtune.cli.main import main


@pytest.mark.parametrize(("flags", "shown"), [([], {"info", "warning"}), (["-v"], {"debug", "info", "warning"}),
                                              (["-q"], {"warning"}), (["-qq"], set())])
def test_verbosity_flags_choose_which_library_lines_are_shown(flags, shown, capfd):
    result = CliRunner().invoke(main, [*flags, "data", "list"])
    assert result.exit_code == 0, result.output
    capfd.readouterr()
    logger = logging.getLogger("yieldtune.study.worker")  # any library module's logger
    logger.debug("debug")
    logger.info("info")
    logger.warning("warning")
    err = capfd.readouterr().err
    assert set(err.split()) == shown  # bare messages, one per line, nothing else
