"""``tune proxy``: Optuna's gRPC storage proxy, so many workers share a few database connections."""

from __future__ import annotations

import click

from yieldtune.cli._common import quiet_optuna


@click.command("proxy")
@click.option("--storage", envvar="TUNE_STORAGE", required=True,
              help="Database URL to serve (SQLAlchemy URL); env TUNE_STORAGE.")
@click.option("--host", default="127.0.0.1", help="Address to bind (0.0.0.0 to serve other machines).")
@click.option("--port", default=13000, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--threads", default=10, type=click.IntRange(1, 1024), help="Request handler threads.")
def proxy(storage: str, host: str, port: int, threads: int) -> None:
    """Serve STORAGE over gRPC; point workers at --storage grpc://HOST:PORT."""
    quiet_optuna()
    from yieldtune.report.proxy import serve_proxy

    def ready(safe_url: str) -> None:
        click.echo(f"proxy for {safe_url} listening on grpc://{host}:{port}", err=True)

    serve_proxy(storage, host=host, port=port, threads=threads, on_ready=ready,
                log=lambda msg: click.echo(f"proxy: {msg}", err=True))


COMMANDS = [proxy]
