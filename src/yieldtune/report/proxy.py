"""Optuna's gRPC storage proxy in front of the study database.

With hundreds of workers, each holding its own pool of database connections overwhelms PostgreSQL/MySQL.
The proxy holds one cached storage and the workers talk to it with ``--storage grpc://host:port``
(:class:`optuna.storages.GrpcStorageProxy`). Optuna's gRPC client sends no heartbeats, so workers send theirs
as a trial system attribute through the proxy (:mod:`yieldtune.study.liveness`), and the proxy fails and
re-queues the trials of workers that went silent, with the study file's grace period and ``max_retry``.
"""

from __future__ import annotations

from yieldtune.errors import ConfigError


def ensure_port_free(host: str, port: int) -> None:
    """ConfigError if ``host:port`` cannot be bound. gRPC binds with SO_REUSEPORT, so a second proxy on a port
    another proxy already serves would start silently and split the traffic; this plain bind refuses it."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise ConfigError(f"--host {host}: {err.strerror}") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror or err} (use --port)") from None


def serve_proxy(storage_url: str, *, host: str = "127.0.0.1", port: int = 13000, threads: int = 10,
                on_ready=None, log=None, watch_every: float = 2.0) -> None:
    """Serve ``storage_url`` (an RDB URL) over gRPC on ``host:port`` until interrupted.

    ``on_ready`` is called with the redacted URL once the database was opened and the server listens; every
    ``watch_every`` seconds the trials of workers whose heartbeats stopped are failed and re-queued (``log``
    hears about each).
    """
    from concurrent.futures import ThreadPoolExecutor

    from optuna.storages import get_storage
    from optuna.storages._grpc.server import make_server  # noqa: I001 run_grpc_proxy_server minus its wait

    from yieldtune.study.liveness import watch_silent_trials
    from yieldtune.study.storage import open_storage, redact_url

    if storage_url.startswith("grpc://"):
        raise ConfigError(f"--storage {storage_url}: the proxy needs the database URL, not another proxy")
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port}: expected 1-65535")
    ensure_port_free(host, port)
    # No database heartbeats on the proxied storage: proxied workers' heartbeats are trial attributes.
    backend = open_storage(storage_url, heartbeat=False)
    storage = get_storage(backend)  # Optuna's in-process cache; the proxy docs ask for it
    try:
        server = make_server(storage, host, port, ThreadPoolExecutor(max_workers=threads))
    except RuntimeError as err:  # grpc could not bind the address
        raise ConfigError(f"cannot listen on {host}:{port}: {err}") from None
    server.start()
    watch_silent_trials(host, port, every=watch_every, log=log)
    if on_ready is not None:
        on_ready(redact_url(storage_url))
    try:
        server.wait_for_termination()
    finally:
        server.stop(grace=None)
