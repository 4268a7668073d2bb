"""The `artgw` command itself: options, environment variables, the README's contract."""

import re
import subprocess
from pathlib import Path

import requests

from gateway.settings import SETTINGS
from tests.artgw_process import REPO, artgw_command

A = "/api/2.0/mlflow-artifacts/artifacts"


def test_readme_documents_every_setting() -> None:
    readme = (REPO / "README.md").read_text()
    for setting in SETTINGS:
        row = re.search(rf"^\| `{setting.flag}` \| `{setting.env}` \|", readme, re.M)
        assert row, f"README's settings table lacks {setting.flag} / {setting.env}"


def test_help_lists_every_setting() -> None:
    out = subprocess.run([*artgw_command(), "serve", "--help"], capture_output=True, text=True)
    for setting in SETTINGS:
        assert setting.flag in out.stdout


def test_version() -> None:
    out = subprocess.run([*artgw_command(), "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("artgw, version")


def test_curl_round_trip(artgw, tmp_path: Path) -> None:
    server = artgw("--artifacts-only", "--workers", "2")
    upload = tmp_path / "a.txt"
    upload.write_text("hello from curl\n")
    url = f"{server.url}{A}/0/r1/artifacts/a.txt"

    def curl(*args: str) -> str:
        return subprocess.run(
            ["curl", "-sSf", *args], capture_output=True, text=True, check=True
        ).stdout

    curl("-T", str(upload), url)
    assert curl(url) == "hello from curl\n"
    assert '"file_size": 16' in curl(f"{server.url}{A}?path=0/r1/artifacts")
    curl("-X", "DELETE", url)
    assert not (tmp_path / "mlartifacts/0/r1/artifacts/a.txt").exists()


def test_environment_variables_configure_the_server(artgw, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    server = artgw(
        env={
            "ARTGW_ARTIFACTS_DESTINATION": str(elsewhere),
            "ARTGW_ARTIFACTS_ONLY": "1",
            "ARTGW_WORKERS": "1",
        }
    )
    assert requests.put(f"{server.url}{A}/x.txt", data=b"x", timeout=10).status_code == 200
    assert (elsewhere / "x.txt").read_bytes() == b"x"


def test_debug_log_prints_one_line_per_request(artgw) -> None:
    server = artgw("--artifacts-only", "--workers", "1", "--gunicorn-opts", "--log-level debug")
    requests.put(f"{server.url}{A}/0/r/artifacts/a.txt", data=b"a", timeout=10)
    requests.get(f"{server.url}{A}", params={"path": "0/r/artifacts"}, timeout=10)
    server.stop()
    log = server.log()
    assert re.search(
        r"\[DEBUG\] PUT /api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/a.txt 200", log
    )
    assert "[DEBUG] GET /api/2.0/mlflow-artifacts/artifacts?path=0%2Fr%2Fartifacts 200" in log


def test_unknown_destination_scheme_fails_at_start(tmp_path: Path) -> None:
    out = subprocess.run(
        [*artgw_command(), "serve", "--artifacts-only", "--artifacts-destination", "nosuch://x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
    )
    assert out.returncode != 0
    assert "nosuch" in out.stderr and "Traceback" not in out.stderr
