"""The ``tune`` command line.

Each module in this package is one thin command file that parses arguments and calls library code.
A module exposes ``COMMANDS``, a list of click commands or groups; they are discovered here, so adding
a command never means editing this file. The library never imports ``yieldtune.cli``.
"""

from __future__ import annotations

import importlib
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


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(package_name="yieldtune")
def main() -> None:
    """yieldtune: tune, ensemble and serve reaction-yield Transformers."""


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
