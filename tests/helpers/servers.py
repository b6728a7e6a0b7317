"""Servers the integration tests start: a free port, HTTP GET, ``tune dashboard`` and ``tune proxy`` up and down."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import optuna
import pytest

from helpers.studyfiles import sigint_default, tune_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def start_dashboard(args: list[str], port: int) -> subprocess.Popen:
    """``tune dashboard ARGS --port PORT`` in a subprocess, returned once it answers HTTP."""
    env = tune_env()
    log = tempfile.NamedTemporaryFile("w+", prefix="dashboard-", suffix=".log", delete=False)
    # a file, not a pipe: a full pipe would block the server's request log
    proc = subprocess.Popen([sys.executable, "-m", "yieldtune.cli.main", "dashboard", *args, "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, text=True, env=env, preexec_fn=sigint_default)
    proc.log_path = log.name  # type: ignore[attr-defined]
    log.close()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dashboard exited {proc.returncode}: {Path(log.name).read_text()[-2000:]}")
        try:
            if get(f"http://127.0.0.1:{port}/api/meta", timeout=2)[0] == 200:
                return proc
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    proc.kill()
    pytest.fail("dashboard did not answer within 120 s")


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    """Ctrl-C, repeated: wsgiref swallows an interrupt that lands inside a request handler."""
    for _ in range(5):
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    log = Path(proc.log_path)  # type: ignore[attr-defined]
    text = log.read_text()
    log.unlink(missing_ok=True)
    return proc.returncode, text


def start_proxy(storage_url: str, port: int) -> subprocess.Popen:
    """``tune proxy --storage URL --port PORT`` in a subprocess, returned once its gRPC server is ready."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "yieldtune.cli.main", "proxy", "--storage", storage_url, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=tune_env(), preexec_fn=sigint_default)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        client = optuna.storages.GrpcStorageProxy(host="127.0.0.1", port=port)
    try:
        client.wait_server_ready(timeout=90)
    except ConnectionError:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"proxy did not come up: {err[-2000:]}")
    finally:
        client.close()
    return proc


def stop_proxy(proc: subprocess.Popen) -> tuple[int, str]:
    """Ctrl-C (a hard kill after 30 s): the exit code and stderr."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err
