"""Finding a study to show, and serving it live with optuna-dashboard.

``tune report`` and ``tune dashboard`` take either a study file (the usual case: storage URL and artifact
directory come from it) or a bare study name plus ``--storage`` (to look at a study whose file is elsewhere).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from yieldtune.errors import ConfigError, StorageError

if TYPE_CHECKING:
    import optuna

    from yieldtune.study.spec import StudySpec


@dataclass(frozen=True)
class StudyTarget:
    """A study by name in a storage, with the artifact directory its trials uploaded to (if known)."""

    name: str
    storage_url: str
    artifact_dir: Path | None = None
    spec: "StudySpec | None" = None

    def storage(self) -> "optuna.storages.BaseStorage":
        """The storage, read-only use: no heartbeats, no table creation."""
        from yieldtune.study.storage import open_storage, require_sqlite_file

        require_sqlite_file(self.storage_url)
        return open_storage(self.storage_url, heartbeat=False, create_tables=False)

    def load(self, storage: "optuna.storages.BaseStorage | None" = None) -> "optuna.Study":
        """The Optuna study; StorageError (naming the storage, no password) if it is not there."""
        import optuna
        import sqlalchemy.exc

        from yieldtune.study.storage import redact_url

        storage = storage or self.storage()
        try:
            return optuna.load_study(study_name=self.name, storage=storage)
        except sqlalchemy.exc.SQLAlchemyError as err:  # e.g. a database without Optuna's tables
            raise StorageError(f"no Optuna study storage at {redact_url(self.storage_url)} "
                               f"({type(err).__name__})") from None
        except KeyError:
            names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False))
            known = f"; studies there: {', '.join(names)}" if names else "; the storage has no studies"
            raise StorageError(f"no study named {self.name!r} in {redact_url(self.storage_url)}{known}") from None


def resolve_target(study: str, storage: str | None = None, artifact_dir: Path | None = None) -> StudyTarget:
    """A study file path (or ``studies/<name>.toml``) gives everything; a bare name needs a storage URL."""
    from yieldtune.study.spec import STORAGE_ENV, load_study_spec

    path = Path(study)
    if path.is_file() or path.suffix == ".toml" or (Path("studies") / f"{study}.toml").is_file():
        spec = load_study_spec(path)
        return StudyTarget(spec.name, spec.storage_url(storage), Path(artifact_dir or spec.artifact_dir), spec)
    url = storage or os.environ.get(STORAGE_ENV)
    if not url:
        raise ConfigError(f"{study!r} is not a study file; to name a study in a storage, pass --storage URL "
                          f"(or set {STORAGE_ENV})")
    return StudyTarget(study, url, Path(artifact_dir) if artifact_dir else None, None)


def serve_dashboard(target: StudyTarget, *, host: str = "127.0.0.1", port: int = 8080, on_ready=None) -> None:
    """Run optuna-dashboard on the study's storage, with its artifact store so trial files can be browsed.

    Blocks until interrupted. Binds to loopback unless ``host`` says otherwise: the dashboard has no login.
    ``on_ready()`` is called once the study has loaded and the port is held, so nothing announces a server
    that never starts; a busy port is a one-line ConfigError. The app is optuna-dashboard's own WSGI app served
    by wsgiref (what its ``run_server`` does through bottle, which binds only after announcing itself).
    """
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from optuna_dashboard import wsgi

    from yieldtune.study.artifacts import artifact_store, artifact_store_for

    store = None
    if target.spec is not None:
        store = artifact_store_for(target.spec, target.artifact_dir)
    elif target.artifact_dir is not None:
        store = artifact_store(target.artifact_dir)
    storage = target.storage()
    target.load(storage)  # fail with a one-line error now rather than serve an empty dashboard

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args, **kwargs) -> None:  # the page polls every few seconds
            pass

    try:
        server = make_server(host, port, wsgi(storage, artifact_store=store), handler_class=QuietHandler)
    except OSError as err:
        raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror or err} (use --port)") from None
    with server:
        if on_ready is not None:
            on_ready()
        server.serve_forever()
