"""Small option helpers shared by command files."""

from __future__ import annotations

import click

storage_option = click.option(
    "--storage", envvar="TUNE_STORAGE", default=None,
    help="Storage URL (SQLAlchemy URL, or grpc://host:port). Overrides the study file; env TUNE_STORAGE.",
)
device_option = click.option("--device", default="auto", help="cpu, cuda, cuda:N or auto.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
