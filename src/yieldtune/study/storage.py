"""Opening the shared Optuna storage: SQLite, PostgreSQL, MySQL/MariaDB or a gRPC storage proxy.

One function, :func:`open_storage`, turns a URL into an Optuna storage with heartbeats (so a worker that dies
mid-trial has its trial failed and re-queued by Optuna's ``RetryHeartbeatStaleTrialCallback``; through the
gRPC proxy the heartbeats travel as a trial attribute, see :mod:`yieldtune.study.liveness`), connection
health checks, and for SQLite the WAL journal plus a busy timeout so a few local workers never see
"database is locked". Connection failures become one-line :class:`StorageError` messages that never
contain a password.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yieldtune.errors import StorageError
from yieldtune.study.spec import DEFAULT_GRACE_PERIOD, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_MAX_RETRY

if TYPE_CHECKING:  # pragma: no cover
    from optuna.storages import BaseStorage

SQLITE_BUSY_TIMEOUT_S = 60


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe to print or log)."""
    if url.startswith("grpc://"):
        return url
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not parseable as an SQLAlchemy URL: strip anything that looks like user:pass@
        return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def _password(url: str) -> str | None:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).password
    except Exception:
        return None


def _scrub(text: str, url: str) -> str:
    """One line of an error message with the password (if any) removed."""
    line = " ".join(str(text).split())
    pw = _password(url)
    if pw:
        line = line.replace(str(pw), "***")
    return line[:300]


def _sqlite_path(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    db = make_url(url).database
    return None if not db or db == ":memory:" else Path(db)


def require_sqlite_file(url: str) -> None:
    """StorageError if ``url`` is a SQLite file that does not exist: a reader must not create an empty one."""
    db = _sqlite_path(url) if url.startswith("sqlite") else None
    if db is not None and not db.is_file():
        raise StorageError(f"no such SQLite database: {db} (create the study with `tune run`)")


def _enable_sqlite_wal(url: str) -> None:
    """Switch the database file to WAL (persistent in the file) before Optuna opens it."""
    from yieldtune.files import open_sqlite_wal

    path = _sqlite_path(url)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    open_sqlite_wal(path, SQLITE_BUSY_TIMEOUT_S).close()


def _on_sqlite_connect(dbapi_connection, _record) -> None:
    # pysqlite opens no transaction before a SELECT, so Optuna's read-check-write (e.g. popping a WAITING
    # trial) could interleave across processes and hand one trial to two workers. Driver autocommit off
    # here, and every transaction opened with BEGIN IMMEDIATE (see _on_sqlite_begin), makes each one atomic.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _on_sqlite_begin(connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _serialize_sqlite_transactions(engine) -> None:
    """Make every SQLite transaction take the write lock up front (waiting up to the busy timeout)."""
    import sqlalchemy

    sqlalchemy.event.listen(engine, "connect", _on_sqlite_connect)
    sqlalchemy.event.listen(engine, "begin", _on_sqlite_begin)
    engine.dispose()  # connections opened before the listeners existed are not reused


# plain scheme -> (SQLAlchemy's default driver module for it, the driver the yieldtune extras install)
_DEFAULT_DRIVERS = {"mysql://": ("MySQLdb", "mysql+pymysql://"), "postgresql://": ("psycopg2", "postgresql+psycopg://")}


def with_default_driver(url: str) -> str:
    """``mysql://`` / ``postgresql://`` name SQLAlchemy's default drivers (mysqlclient; psycopg2 before
    SQLAlchemy 2.1), which yieldtune does not install: use the extras' PyMySQL / psycopg 3 unless present."""
    import importlib.util

    for plain, (module, explicit) in _DEFAULT_DRIVERS.items():
        if url.startswith(plain) and importlib.util.find_spec(module) is None:
            return explicit + url.removeprefix(plain)
    return url


def engine_kwargs_for(url: str) -> dict[str, Any]:
    """SQLAlchemy engine options: health-checked pooled connections; SQLite waits instead of failing."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    return {"pool_pre_ping": True, "pool_recycle": 1800}


def open_storage(
    url: str,
    *,
    heartbeat: bool = True,
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL,
    grace_period: int = DEFAULT_GRACE_PERIOD,
    max_retry: int = DEFAULT_MAX_RETRY,
    create_tables: bool = True,
) -> "BaseStorage":
    """An Optuna storage for ``url``; raises :class:`StorageError` (password-free, one line) if unusable.

    With ``heartbeat``, running trials record a heartbeat every ``heartbeat_interval`` seconds; a trial
    silent for ``grace_period`` seconds is failed by the next worker that looks, and re-queued up to
    ``max_retry`` times (the retry carries ``failed_trial``/``retry_history`` system attributes).
    """
    import optuna

    url = with_default_driver(url)
    safe = redact_url(url)
    if url.startswith("grpc://"):
        beats = dict(heartbeat_interval=heartbeat_interval, grace_period=grace_period, max_retry=max_retry)
        return _open_grpc(url, beats if heartbeat else None)
    if "://" not in url:
        raise StorageError(f"storage URL {safe!r} is not a URL (expected e.g. sqlite:///study.db, "
                           "postgresql+psycopg://user@host/db, mysql+pymysql://user@host/db, grpc://host:port)")
    import sqlalchemy.exc

    kwargs: dict[str, Any] = {}
    try:
        if heartbeat:
            kwargs = dict(
                heartbeat_interval=int(heartbeat_interval),
                grace_period=int(grace_period),
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=max_retry),
            )
        if url.startswith("sqlite"):
            _enable_sqlite_wal(url)
        storage = _create_rdb_storage(url, create_tables, kwargs)
    except StorageError:
        raise
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError, OSError, RuntimeError) as err:
        raise StorageError(f"cannot open storage {safe}: {_reason(err, url)}") from None
    except Exception as err:  # driver errors not wrapped by SQLAlchemy (e.g. during schema migration checks)
        raise StorageError(f"cannot open storage {safe}: {_reason(err, url)}") from None
    if url.startswith("sqlite"):
        _serialize_sqlite_transactions(storage.engine)
    return storage


def _create_rdb_storage(url: str, create_tables: bool, kwargs: dict[str, Any]):
    """RDBStorage, retrying the schema creation two workers may race on against a fresh database.

    Server databases get :class:`ReconnectingRDBStorage`: later calls wait out a lost connection. Both kinds
    write a trial's first heartbeat in the transaction that starts it
    (:class:`~yieldtune.study.liveness.HeartbeatInStartTransaction`).

    Failures to connect while opening (refused, bad password, no such database) are not retried: the user
    gets one StorageError at once.
    """
    import time

    import sqlalchemy.exc

    from yieldtune.study.liveness import HeartbeatRDBStorage
    from yieldtune.study.reconnect import HeartbeatReconnectingRDBStorage

    for attempt in range(4):
        try:
            if url.startswith("sqlite"):  # a local file: no connection to lose, "locked" waits in SQLite
                return HeartbeatRDBStorage(url, engine_kwargs=engine_kwargs_for(url),
                                           skip_table_creation=not create_tables, **kwargs)
            return HeartbeatReconnectingRDBStorage(url, engine_kwargs=engine_kwargs_for(url),
                                                   skip_table_creation=not create_tables, label=redact_url(url),
                                                   **kwargs)
        except sqlalchemy.exc.OperationalError:
            if not url.startswith("sqlite") or attempt == 3:
                raise
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == 3:
                raise
        time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _reason(err: BaseException, url: str) -> str:
    from optuna.exceptions import StorageInternalError

    # Optuna wraps the driver's error ("connection refused", "access denied") in a generic commit message
    while isinstance(err, StorageInternalError) and err.__cause__ is not None:
        err = err.__cause__
    orig = getattr(err, "orig", None)
    if isinstance(err, ModuleNotFoundError):
        return f"database driver not installed ({err.name}); install it, e.g. pip install 'yieldtune[postgres]'"
    text = str(orig if orig is not None else err).splitlines()[0] if str(orig if orig is not None else err) else ""
    return _scrub(f"{type(orig or err).__name__}: {text}", url)


def _open_grpc(url: str, heartbeat: dict[str, int] | None) -> "BaseStorage":
    """Optuna's gRPC client; with ``heartbeat`` settings one whose trials send heartbeats through the proxy."""
    import optuna

    m = re.fullmatch(r"grpc://([^:/]+):(\d+)/?", url)
    if not m:
        raise StorageError(f"storage URL {url!r}: expected grpc://host:port")
    try:
        import grpc  # noqa: F401
    except ImportError:
        raise StorageError("grpc:// storage needs grpcio: pip install 'yieldtune[grpc]'") from None
    if heartbeat is None:
        proxy = optuna.storages.GrpcStorageProxy(host=m.group(1), port=int(m.group(2)))
    else:
        from yieldtune.study.liveness import GrpcStorageWithHeartbeat

        proxy = GrpcStorageWithHeartbeat(host=m.group(1), port=int(m.group(2)), **heartbeat)
    try:
        proxy.wait_server_ready(timeout=10)
    except Exception as err:
        raise StorageError(f"cannot reach storage proxy {url}: {type(err).__name__}") from None
    return proxy


def open_spec_storage(spec, url: str, *, heartbeat: bool = True, create_tables: bool = True) -> "BaseStorage":
    """:func:`open_storage` with the study file's heartbeat/grace/retry settings."""
    s = spec.storage
    return open_storage(url, heartbeat=heartbeat, heartbeat_interval=s.heartbeat_interval,
                        grace_period=s.grace_period, max_retry=s.max_retry, create_tables=create_tables)


def heartbeat_ages(storage: "BaseStorage", trial_ids: list[int]) -> dict[int, float]:
    """Seconds since each running trial's last heartbeat, by trial id.

    Optuna has no public API for this, so it reads the RDB ``trial_heartbeats`` table directly; it is
    isolated here and returns {} for storages without that table (gRPC proxy, in-memory).
    """
    import sqlalchemy

    rdb = getattr(storage, "_backend", storage)
    engine = getattr(rdb, "engine", None)
    if engine is None or not trial_ids:
        return {}
    try:
        with engine.connect() as conn:
            now = conn.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar()
            rows = conn.execute(
                sqlalchemy.text("SELECT trial_id, heartbeat FROM trial_heartbeats WHERE trial_id IN "
                                f"({', '.join(str(int(t)) for t in trial_ids)})")).all()
    except Exception:
        return {}
    out = {}
    for trial_id, beat in rows:
        if isinstance(beat, str):
            import datetime

            beat = datetime.datetime.fromisoformat(beat)
        if isinstance(now, str):
            import datetime

            now = datetime.datetime.fromisoformat(now)
        out[int(trial_id)] = max(0.0, (now.replace(tzinfo=None) - beat.replace(tzinfo=None)).total_seconds())
    return out


__all__ = ["open_storage", "open_spec_storage", "redact_url", "heartbeat_ages", "engine_kwargs_for"]
