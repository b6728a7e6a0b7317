"""A database restart in the middle of a study, on a private PostgreSQL server started by the test.

The server gets its own data directory and port (``initdb``/``pg_ctl`` from the installed PostgreSQL; run as
the ``postgres`` OS user when the tests run as root); the tests skip where there is none.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from helpers import free_port, study_toml, tiny_search_space, tune_argv, tune_env
from yieldtune.study.service import create_or_load_study, load_study
from yieldtune.study.spec import load_study_spec
from yieldtune.study.storage import open_storage


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on 127.0.0.1:<port> that a test can stop and start."""

    def __init__(self, bindir: Path, root: Path, port: int, as_user: list[str]) -> None:
        self.bindir, self.root, self.port, self.as_user = bindir, root, port, as_user
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def _pg(self, tool: str, *args: str) -> None:
        proc = subprocess.run([*self.as_user, str(self.bindir / tool), *args], capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{tool} failed: {proc.stderr[-2000:]}")

    def init(self) -> None:
        self._pg("initdb", "-D", str(self.root / "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        self._pg("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "server.log"), "-w", "-o",
                 f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")


@pytest.fixture
def private_postgres():
    bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(re.sub(r"\D", "", p) or 0))
    if not bindirs or not os.path.exists(os.path.join(bindirs[-1], "pg_ctl")):
        pytest.skip("no PostgreSQL server installed (/usr/lib/postgresql/*/bin/pg_ctl)")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="yt-pg-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' OS user to run PostgreSQL as")
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    server = PrivatePostgres(Path(bindirs[-1]), root, free_port(), as_user)
    try:
        server.init()
        server.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"cannot start a private PostgreSQL: {err}")
    try:
        yield server
    finally:
        try:
            server.stop()
        except RuntimeError:
            pass
        shutil.rmtree(root, ignore_errors=True)


def test_a_storage_call_waits_out_a_restart_with_one_log_line(private_postgres, caplog):
    caplog.set_level(logging.INFO, logger="yieldtune")
    storage = open_storage(private_postgres.url, heartbeat=False)
    optuna.create_study(study_name="s", storage=storage)
    caplog.clear()
    private_postgres.stop()
    result: list = []
    caller = threading.Thread(target=lambda: result.append(storage.get_all_studies()), daemon=True)
    caller.start()
    time.sleep(3)
    assert caller.is_alive() and not result  # waiting, not failed
    private_postgres.start()
    caller.join(timeout=60)
    assert [s.study_name for s in result[0]] == ["s"]
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("yieldtune")]
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"storage {private_postgres.url}: connection lost")
    assert "retrying with backoff for up to 300 s" in lines[0] and "reconnected after" in lines[1]


@pytest.mark.slow
def test_two_workers_survive_a_database_restart_mid_study(private_postgres, tmp_path):
    from yieldtune.data.synth import write_synthetic_plate

    write_synthetic_plate(tmp_path / "plate.csv", n=60)
    body = study_toml("restart", search_space=tiny_search_space(epochs=15, fixed="[fixed.model]\nmax_len = 128\n"),
                      n_trials=3)
    # the restart silences heartbeats for a few seconds: a grace period longer than that keeps live trials
    (tmp_path / "restart.toml").write_text(body.replace("grace_period = 3", "grace_period = 20"))
    spec = load_study_spec(tmp_path / "restart.toml")
    url = private_postgres.url
    create_or_load_study(spec, url)
    workers = [subprocess.Popen(tune_argv("worker", tmp_path / "restart.toml", "--worker-id", f"w{i}", "--threads",
                                          "1", "--device", "cpu"), env=tune_env(url), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True) for i in range(2)]
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            trials = load_study(spec, url, heartbeat=False).get_trials(deepcopy=False)
            done = {t.number: t.value for t in trials if t.state == TrialState.COMPLETE}
            training = [t for t in trials if t.state == TrialState.RUNNING and t.user_attrs.get("epochs")]
            if done and training:
                break
            assert all(w.poll() is None for w in workers), [w.stdout.read()[-3000:] for w in workers]
            time.sleep(0.3)
        else:
            raise AssertionError("never had a finished trial and one in training at the same time")
        private_postgres.stop()
        time.sleep(2)
        private_postgres.start()
        outputs = [w.communicate(timeout=400)[0] for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.communicate()
    for w, out in zip(workers, outputs):
        assert w.returncode == 0, out[-3000:]
        assert "Traceback" not in out
        assert out.count("connection lost") <= 1, out[-3000:]
    assert sum("connection lost" in out for out in outputs) >= 1  # the workers did see the restart
    trials = load_study(spec, url, heartbeat=False).get_trials(deepcopy=False)
    states = {t.number: t.state for t in trials}
    assert not [n for n, s in states.items() if s == TrialState.RUNNING], states
    assert sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states.values()) == 3, states
    after = {t.number: t.value for t in trials}
    assert all(after[n] == v and states[n] == TrialState.COMPLETE for n, v in done.items())  # none lost
