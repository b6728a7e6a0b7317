"""The ``tune`` command line.

Each module in this package is one thin command file that parses arguments and calls library code.
A module exposes ``COMMANDS``, a list of click commands or groups; they are discovered here, so adding
a command never means editing this file. The library never imports ``yieldtune.cli``.

Logging is configured here, once: the library logs to ``logging.getLogger(__name__)``; ``tune`` shows
those lines on stderr as bare messages (INFO and up; ``-v`` adds DEBUG, ``-q`` keeps warnings, ``-qq``
errors only).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys

import click

from yieldtune.errors import YieldtuneError


class _Group(click.Group):
    """Turns user-facing errors into one line on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except YieldtuneError as err:
            click.echo(f"error: {err}", err=True)
            ctx.exit(err.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (click's test runner swaps it per invocation)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(verbosity: int = 0) -> None:
    """``yieldtune.*`` records to stderr as bare messages; verbosity 1 DEBUG, 0 INFO, -1 WARNING, -2 ERROR."""
    levels = {1: logging.DEBUG, 0: logging.INFO, -1: logging.WARNING}
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("yieldtune")
    logger.handlers[:] = [handler]
    logger.setLevel(levels.get(max(-2, min(1, verbosity)), logging.ERROR))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="yieldtune")
@click.option("-v", "--verbose", count=True, help="More log lines (debug).")
@click.option("-q", "--quiet", count=True, help="Fewer log lines: -q warnings and errors, -qq errors only.")
def main(verbose: int, quiet: int) -> None:
    """yieldtune: tune, ensemble and serve reaction-yield Transformers."""
    configure_logging(verbose - quiet)


def _register() -> None:
    import yieldtune.cli as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "main":
            continue
        module = importlib.import_module(f"yieldtune.cli.{info.name}")
        for cmd in getattr(module, "COMMANDS", []):
            main.add_command(cmd)


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
