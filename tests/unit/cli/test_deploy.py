"""Deployment files: docker-compose.yml, Dockerfile, .env.example, .dockerignore.

There is no Docker engine in CI, so the compose file is checked by `docker compose config` where the compose
plugin exists, and always by parsing it: every service command must be a real `tune` command line that
click accepts (right subcommand, existing options, valid values), and the wiring the README promises
(healthcheck, one-shot init before workers, scalable workers, GPU profile, loopback-only ports) must hold.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import click
import pytest

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])((?:[^{}]|\{[^{}]*\})*))?\}")


def read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
            env[key.strip()] = value.strip()
    return env


def interpolate(value, env: dict[str, str]):
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} (nested defaults too), and $$ escapes."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        current = env.get(name, "")
        if op in (":-", "-"):
            return current if (current if op == ":-" else name in env) else interpolate(arg, env)
        if op in (":?", "?"):
            if not current:
                raise AssertionError(f"required variable {name} unset: {arg}")
        return current

    previous = None
    while previous != value:
        previous, value = value, _VAR.sub(sub, value.replace("$$", "\0"))
    return value.replace("\0", "$")


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return read_env(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(raw, env) -> dict[str, dict]:
    return interpolate(raw["services"], env)


def resolve_tune_command(argv: list[str]) -> click.Context:
    """Parse ``tune ARGV`` exactly as click would (without running it); fails on any unknown option/value."""
    from yieldtune.cli.main import main

    assert argv and argv[0] == "tune", argv
    args, cmd, path = argv[1:], main, ["tune"]
    while isinstance(cmd, click.Group):
        assert args, f"{' '.join(argv)}: no subcommand"
        name = args.pop(0)
        sub = cmd.get_command(click.Context(cmd), name)
        assert sub is not None, f"`{' '.join(path)} {name}` is not a command: {' '.join(argv)}"
        cmd, path = sub, [*path, name]
    return cmd.make_context(" ".join(path), list(args))


def test_compose_config_with_docker_when_available(tmp_path):
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("docker compose plugin not installed; the YAML checks below still run")
    for profiles in ([], ["--profile", "gpu", "--profile", "tools", "--profile", "proxy"]):
        res = subprocess.run([docker, "compose", "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), *profiles,
                              "config", "--quiet"], capture_output=True, text=True, cwd=tmp_path)
        assert res.returncode == 0, res.stderr


def test_every_service_command_is_a_real_tune_command(services, monkeypatch):
    commands = {name: svc["command"] for name, svc in services.items() if "command" in svc and name != "postgres"}
    assert set(commands) == {"init", "worker", "worker-gpu", "dashboard", "ensemble", "report", "proxy"}
    for name, argv in commands.items():
        assert isinstance(argv, list), f"{name}: use the exec (list) form, no shell"
        with monkeypatch.context() as m:  # options may come from the service's environment (envvar=TUNE_STORAGE)
            for key in ("TUNE_STORAGE",):
                m.delenv(key, raising=False)
            for key, value in (services[name].get("environment") or {}).items():
                m.setenv(key, str(value))
            ctx = resolve_tune_command(list(argv))
        assert ctx.command.name == argv[1], name
    from click.testing import CliRunner

    from yieldtune.cli.main import main

    for name, argv in commands.items():  # and their help pages work (the command modules import cleanly)
        res = CliRunner().invoke(main, [argv[1], "--help"])
        assert res.exit_code == 0, f"{name}: {res.output}"


def test_the_resolver_rejects_what_click_rejects():
    with pytest.raises(AssertionError, match="not a command"):
        resolve_tune_command(["tune", "no-such-command"])
    with pytest.raises(click.UsageError):
        resolve_tune_command(["tune", "dashboard", "s.toml", "--no-such-option"])
    with pytest.raises(click.BadParameter):
        resolve_tune_command(["tune", "dashboard", "s.toml", "--port", "http"])


def test_study_file_used_by_compose_is_in_the_image(services, env):
    from yieldtune.study.spec import load_study_spec

    study = env["TUNE_STUDY"]
    assert study.startswith("studies/"), "the Dockerfile copies studies/ into /app/studies"
    spec = load_study_spec(REPO / study)
    for name in ("init", "worker", "worker-gpu", "dashboard", "ensemble", "report"):
        assert study in services[name]["command"], name
    assert spec.artifact_dir.parent == (REPO / "studies" / "artifacts")  # on the shared artifacts volume
    for name in ("init", "worker", "worker-gpu", "dashboard", "ensemble", "report"):
        assert "artifacts:/app/studies/artifacts" in services[name]["volumes"], name


def test_postgres_init_worker_wiring(raw, services, env):
    pg = services["postgres"]
    assert pg["image"] == "postgres:16"
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    volume = pg["volumes"][0].split(":")[0]
    assert volume in raw["volumes"]  # a named volume, not a bind mount
    assert {k: pg["environment"][k] for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")} == \
        {k: env[k] for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")}
    assert "change-me" not in COMPOSE.read_text()  # credentials only come from .env

    assert services["init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["init"]["command"][1:3] == ["run", env["TUNE_STUDY"]]
    assert "--create-only" in services["init"]["command"]
    for name in ("worker", "worker-gpu", "dashboard", "proxy"):
        assert services[name]["depends_on"]["init"]["condition"] == "service_completed_successfully", name
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker  # so `--scale worker=N` works
    assert worker["build"]["context"] == "."
    assert worker["environment"]["TUNE_STORAGE"] == env["TUNE_STORAGE"]  # TUNE_WORKER_STORAGE empty: same DB
    assert interpolate(raw["services"]["worker"]["environment"]["TUNE_STORAGE"],
                       {**env, "TUNE_WORKER_STORAGE": "grpc://proxy:13000"}) == "grpc://proxy:13000"


def test_gpu_worker_is_a_profile_with_nvidia_devices(services):
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "cu" in gpu["build"]["args"]["TORCH_INDEX_URL"].rsplit("/", 1)[-1]
    assert "--gpus" in gpu["command"]


def test_published_ports_are_loopback_only_by_default(services):
    dash = services["dashboard"]
    assert dash["ports"] == ["127.0.0.1:8080:8080"]
    assert dash["command"][dash["command"].index("--host") + 1] == "0.0.0.0"  # inside the container
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this host"


def test_env_example_defines_every_variable_and_a_consistent_url(raw, env):
    from sqlalchemy.engine import make_url

    used = set(_VAR.findall(COMPOSE.read_text()))
    missing = sorted({name for name, _, _ in used} - set(env))
    assert not missing, f".env.example lacks {missing}"
    url = make_url(env["TUNE_STORAGE"])
    assert (url.username, url.password, url.database, url.host) == \
        (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"], "postgres")
    assert url.drivername == "postgresql+psycopg"


def test_secrets_stay_out_of_git_and_the_image():
    gitignore = (REPO / ".gitignore").read_text().split()
    dockerignore = (REPO / ".dockerignore").read_text().split()
    assert ".env" in gitignore and ".env" in dockerignore
    for local_state in (".venv", ".git", "*.db"):
        assert local_state in dockerignore


def test_dockerfile_cpu_torch_then_project_with_postgres():
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r"^ARG TORCH_VERSION=2\.13\.0$", text, re.M)
    assert re.search(r"^ARG TORCH_INDEX_URL=https://download\.pytorch\.org/whl/cpu$", text, re.M)
    torch_at = text.index('pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"')
    project_at = text.index('pip install ".[postgres')
    assert torch_at < project_at  # torch from its index first, so the project's dependency is already met
    assert re.search(r"^USER tune$", text, re.M)
    ignored = (REPO / ".dockerignore").read_text().split()
    for src in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for path in src.split():
            assert (REPO / path).exists(), f"Dockerfile copies missing {path}"
            assert path not in ignored, f"Dockerfile copies {path} but .dockerignore drops it"
