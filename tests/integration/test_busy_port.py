"""`tune dashboard` and `tune proxy` on a port that is already taken: one line, nothing announced, no traceback."""

from __future__ import annotations

import socket
import subprocess

import optuna
import pytest

from helpers import run_tune, sigint_default, tune_argv, tune_env


@pytest.fixture
def busy_port():
    """A port held by a listening socket of another program."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.fixture
def storage_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    optuna.create_study(study_name="toy", storage=url).optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    return url


def assert_one_line_refusal(proc: subprocess.CompletedProcess, port: int) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert out.strip().splitlines() == [out.strip()] and out.startswith("error: cannot listen on"), out
    assert f"127.0.0.1:{port}" in out and "in use" in out and "Traceback" not in out


def test_dashboard_on_a_busy_port(busy_port, storage_url):
    proc = run_tune("dashboard", "toy", "--storage", storage_url, "--port", busy_port, check=False, timeout=120)
    assert_one_line_refusal(proc, busy_port)


def test_proxy_on_a_busy_port(busy_port, storage_url):
    proc = run_tune("proxy", "--storage", storage_url, "--port", busy_port, check=False, timeout=120)
    assert_one_line_refusal(proc, busy_port)


def test_second_proxy_on_a_port_a_proxy_serves(tmp_path, storage_url):
    """gRPC binds with SO_REUSEPORT: without a plain bind first, a second proxy would start and split traffic."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    first = subprocess.Popen(tune_argv("proxy", "--storage", storage_url, "--port", port), env=tune_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
    try:
        announced = first.stderr.readline()
        assert f"listening on grpc://127.0.0.1:{port}" in announced, announced
        second = run_tune("proxy", "--storage", storage_url, "--port", port, check=False, timeout=120)
        assert_one_line_refusal(second, port)
    finally:
        first.kill()
        first.communicate()
