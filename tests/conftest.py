"""Shared fixtures: real databases (a fresh one per test), shared data paths, a tiny synthetic plate.

Every test under tests/integration/ is marked ``integration`` and ``slow`` here, so ``pytest -m "not slow"``
runs the fast unit set (plus no unit test marked ``slow`` by hand).

PostgreSQL and MariaDB are used for real on 127.0.0.1; tests that need one skip cleanly where it is not
reachable (CI starts both). Each test gets its own freshly created database, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TUNE_SHARED_DATA", REPO.parent / "shared" / "data"))

PG_ADMIN = os.environ.get("TUNE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN = os.environ.get("TUNE_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test")


INTEGRATION = Path(__file__).resolve().parent / "integration"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if INTEGRATION in item.path.parents:
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    """Two cores are shared by the test process and the worker processes it starts."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip where it is absent."""
    if not (SHARED_DATA / "README.md").exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def _fresh_database(admin_url: str, kind: str):
    sqlalchemy = pytest.importorskip("sqlalchemy")
    name = f"yt_{uuid.uuid4().hex[:12]}"
    try:
        engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    except Exception as err:  # the server is not there: skip, do not fail
        pytest.skip(f"{kind} not reachable: {type(err).__name__}")
    url = sqlalchemy.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with engine.connect() as conn:
            if kind == "postgres":
                conn.execute(sqlalchemy.text(
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name}"))
        engine.dispose()


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database URL for this test."""
    yield from _fresh_database(PG_ADMIN, "postgres")


@pytest.fixture
def mysql_url():
    """A fresh MariaDB/MySQL database URL for this test."""
    yield from _fresh_database(MYSQL_ADMIN, "mysql")
