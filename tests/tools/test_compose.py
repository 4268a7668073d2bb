"""compose/: docker-compose.yml as Debian's docker-compose resolves it, and its parts agreeing with
each other (ports, service names, the seed's commands, what the Dockerfile copies), and the twin's
nginx configuration derived from the compose one.

Docker cannot run containers here, so the file is checked with `docker-compose config`;
tests/setup-system.sh installs docker-compose and nginx. Missing tools fail these tests in CI and
skip them elsewhere.
"""

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from compose.nginx import TEMPLATE, nginx_binary, render

pytestmark = pytest.mark.serial

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts/experiments"
SEED_COMMANDS = (
    "docker-compose build",
    "docker-compose up -d",
    "docker-compose run -v ${PWD}/example.py:/app/example.py client python example.py",
    "docker-compose down --rmi all --volumes --remove-orphans",
)


def need(tool: str, found: str | None) -> str:
    if found:
        return found
    message = f"{tool} is missing: run tests/setup-system.sh as root"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    binary = need("docker-compose", shutil.which("docker-compose"))
    done = subprocess.run(
        [binary, "-f", str(COMPOSE / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def option(command: str, name: str) -> str:
    words = command.split()
    return words[words.index(name) + 1]


def nginx_directive(name: str) -> list[str]:
    return re.findall(rf"^\s*{name} ([^;\n]+);", TEMPLATE.read_text(), re.MULTILINE)


def test_the_services_of_the_seed_scaled_out(config: dict[str, Any]) -> None:
    services = config["services"]
    assert set(services) == {
        "postgres",
        "minio",
        "minio-create-bucket",
        "artifacts-gateway",
        "artifacts",
        "tracking",
        "client",
    }
    gateway = services["artifacts-gateway"]
    assert gateway["deploy"]["replicas"] == 2
    assert "ports" not in gateway  # replicas publish nothing: nginx is their front
    assert "--artifacts-only" in gateway["command"].split()
    assert option(gateway["command"], "--artifacts-destination") == "s3://bucket"
    assert gateway["environment"]["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert "9001" in {str(port["published"]) for port in services["minio"]["ports"]}
    assert "--console-address" in services["minio"]["command"]


def test_the_tracking_service_uses_postgres_and_the_load_balancer(config: dict[str, Any]) -> None:
    services = config["services"]
    db = services["postgres"]["environment"]
    command = services["tracking"]["command"]
    expected = f"postgresql://{db['POSTGRES_USER']}:{db['POSTGRES_PASSWORD']}@postgres:5432/"
    assert option(command, "--backend-store-uri") == expected + db["POSTGRES_DB"]
    (listen,) = nginx_directive("listen")
    assert option(command, "--default-artifact-root") == f"http://artifacts:{listen}{ARTIFACTS}"
    assert {str(p["target"]) for p in services["artifacts"]["ports"]} == {listen}
    assert services["client"]["environment"]["MLFLOW_TRACKING_URI"] == "http://tracking:5000"


def test_nginx_balances_the_gateway_replicas(config: dict[str, Any]) -> None:
    gateway = config["services"]["artifacts-gateway"]
    (upstream,) = nginx_directive("server")
    assert upstream.split()[0] == f"artifacts-gateway:{option(gateway['command'], '--port')}"
    mounts = config["services"]["artifacts"]["volumes"]
    assert any(str(m).startswith(f"{COMPOSE / 'nginx.conf'}:/etc/nginx/nginx.conf") for m in mounts)
    next_upstream = nginx_directive("proxy_next_upstream")[0].split()
    assert {"error", "timeout", "non_idempotent"} <= set(next_upstream)
    assert nginx_directive("proxy_request_buffering") == ["on"]  # a retried PUT needs its body
    assert nginx_directive("client_max_body_size") == ["0"]


def test_the_dockerfile_copies_every_package() -> None:
    dockerfile = (COMPOSE / "Dockerfile").read_text()
    copied = {line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY")}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {name.split(".")[0] for name in project["tool"]["setuptools"]["packages"]}
    assert packages <= copied
    assert {"compose/example.py", "pyproject.toml"} <= copied
    assert ".venv" in (REPO / ".dockerignore").read_text().split()


def test_the_readme_has_the_seed_commands() -> None:
    readme = (COMPOSE / "README.md").read_text()
    for command in SEED_COMMANDS:
        assert f"$ {command}\n" in readme


def test_the_twin_runs_the_compose_nginx_conf(tmp_path: Path) -> None:
    text = render(TEMPLATE.read_text(), tmp_path, 8080, [9001, 9002])
    directives = "\n".join(line.partition("#")[0] for line in text.splitlines())
    assert "artifacts-gateway" not in directives and "5500" not in directives
    assert "listen 127.0.0.1:8080;" in text
    assert "server 127.0.0.1:9002 max_fails=1 fail_timeout=5s;" in text
    kept = [line for line in TEMPLATE.read_text().splitlines() if "proxy_" in line]
    assert all(line in text.splitlines() for line in kept)
    binary = need("nginx", shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin"))
    assert binary == nginx_binary()
    (tmp_path / "nginx.conf").write_text(text)
    home, config, errors = f"{tmp_path}/", str(tmp_path / "nginx.conf"), str(tmp_path / "e.log")
    checked = subprocess.run(
        [binary, "-t", "-p", home, "-c", config, "-e", errors],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr


def test_every_artgw_service_runs_with_the_users_file(config: dict[str, Any]) -> None:
    from gateway.auth.hashing import verify_password
    from gateway.auth.users_file import load

    services = config["services"]
    for name in ("artifacts-gateway", "tracking"):
        service = services[name]
        assert option(service["command"], "--auth-file") == "/etc/artgw/users.toml"
        mounts = service["volumes"]
        assert any(
            str(m).startswith(f"{COMPOSE / 'users.toml'}:/etc/artgw/users.toml") for m in mounts
        )
    client = services["client"]["environment"]
    user = load(COMPOSE / "users.toml").users[client["MLFLOW_TRACKING_USERNAME"]]
    assert verify_password(user.password or "", client["MLFLOW_TRACKING_PASSWORD"])
    assert "auth" in (COMPOSE / "Dockerfile").read_text().split("'.[")[1].split("]")[0]
