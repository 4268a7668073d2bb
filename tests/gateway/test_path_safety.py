"""Hostile paths through real HTTP: nothing outside the destination is read, written or deleted."""

import os
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.rawhttp import raw_request

A = "/api/2.0/mlflow-artifacts/artifacts"
SECRET = b"top secret"

# Each resolves (if ever decoded too often or joined naively) to ../outside/secret.txt.
HOSTILE_TAILS = [
    "../outside/secret.txt",
    "x/../../outside/secret.txt",
    "%2e%2e/outside/secret.txt",
    "%2E%2E/outside/secret.txt",
    "x/%2e%2e/%2e%2e/outside/secret.txt",
    "..%2foutside%2fsecret.txt",
    "x%2f..%2f..%2foutside%2fsecret.txt",
    "%2e%2e%2foutside%2fsecret.txt",
    "/../outside/secret.txt",
    "%2F..%2Foutside%2Fsecret.txt",
    "..%5coutside%5csecret.txt",
    "x\\..\\..\\outside\\secret.txt".replace("\\", "%5C"),
    "C:%5C..%5Coutside%5Csecret.txt",
    "C:/outside/secret.txt",
    "%5C%5Cserver%5Cshare%5Csecret.txt",
    "//outside/secret.txt",
    "x//../outside/secret.txt",
    "./../outside/secret.txt",
    "x/./../../outside/secret.txt",
    "secret.txt%00.png",
    "%00/../outside/secret.txt",
    "x%0a/../outside/secret.txt",
    "x%0d%0aX-Injected:%201",
    "x%09y",
    "x%7f",
    "%c0%ae%c0%ae/outside/secret.txt",  # overlong UTF-8 dots: not valid UTF-8
    "%ff%fe",
]

# Encoded once more than the server decodes: they become harmless literal names.
LITERAL_TAILS = [
    "%252e%252e/outside/secret.txt",
    "%252e%252e%252foutside%252fsecret.txt",
    "..%252foutside%252fsecret.txt",
]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_bytes(SECRET)
    return folder


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
@pytest.mark.parametrize("tail", HOSTILE_TAILS)
async def test_hostile_url_paths_get_400(
    gateway: TestClient, tmp_path: Path, outside: Path, method: str, tail: str
) -> None:
    before = _snapshot(tmp_path)
    response = await raw_request(gateway.server.port, method, f"{A}/{tail}", b"evil")
    assert response.status == 400, (tail, response.body)
    if method != "HEAD":
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert SECRET not in response.body
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("tail", LITERAL_TAILS)
async def test_double_encoding_stays_a_literal_name_inside(
    gateway: TestClient, tmp_path: Path, destination: Path, outside: Path, tail: str
) -> None:
    port = gateway.server.port
    assert (await raw_request(port, "GET", f"{A}/{tail}")).status == 404
    assert (await raw_request(port, "PUT", f"{A}/{tail}", b"evil")).status == 200
    assert (outside / "secret.txt").read_bytes() == SECRET
    written = [p for p in destination.rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in written] == [b"evil"]
    assert (await raw_request(port, "DELETE", f"{A}/{tail}")).status == 200
    assert (outside / "secret.txt").read_bytes() == SECRET


HOSTILE_QUERY = [
    "..",
    "../outside",
    "x/../..",
    "/etc",
    "/",
    "C:/",
    "C:%5C",
    "%5C%5Cserver%5Cshare",
    "%2e%2e%2foutside",
    "x%00",
    "//etc",
    "a//b",
]


@pytest.mark.parametrize("query", HOSTILE_QUERY)
async def test_hostile_list_paths_get_400(gateway: TestClient, outside: Path, query: str) -> None:
    response = await raw_request(gateway.server.port, "GET", f"{A}?path={query}")
    assert response.status == 400, (query, response.body)
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert b"secret" not in response.body


@pytest.fixture
def links(destination: Path, outside: Path) -> Path:
    """Links inside the destination: one to a file outside, one to a folder outside."""
    (destination / "run").mkdir()
    os.symlink(outside / "secret.txt", destination / "run/leak.txt")
    os.symlink(outside, destination / "run/out")
    (destination / "run/inside.txt").write_bytes(b"fine")
    os.symlink(destination / "run/inside.txt", destination / "run/alias.txt")
    os.symlink("inside.txt", destination / "run/relative.txt")
    os.symlink(
        os.path.relpath(outside / "secret.txt", destination / "run"), destination / "run/up.txt"
    )
    return destination


async def test_links_out_are_not_followed_for_reading(gateway: TestClient, links: Path) -> None:
    for target in ("run/leak.txt", "run/out/secret.txt", "run/up.txt"):
        response = await gateway.get(f"{A}/{target}")
        assert response.status == 403, target
        assert SECRET not in await response.read()
    listing = await gateway.get(A, params={"path": "run/out"})
    assert listing.status == 403
    for inside in ("run/alias.txt", "run/relative.txt"):  # absolute and relative links inside
        assert (await (await gateway.get(f"{A}/{inside}")).read()) == b"fine", inside


async def test_links_out_are_not_followed_for_writing(
    gateway: TestClient, links: Path, outside: Path
) -> None:
    response = await gateway.put(f"{A}/run/out/new.txt", data=b"evil")
    assert response.status == 403
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


async def test_delete_removes_the_link_not_its_target(
    gateway: TestClient, links: Path, outside: Path
) -> None:
    assert (await gateway.delete(f"{A}/run/out/secret.txt")).status == 403
    assert (await gateway.delete(f"{A}/run/out")).status == 200
    assert (await gateway.delete(f"{A}/run/leak.txt")).status == 200
    assert (outside / "secret.txt").read_bytes() == SECRET
    assert not os.path.lexists(links / "run/out")
    assert (await gateway.delete(f"{A}/run")).status == 200
    assert (outside / "secret.txt").read_bytes() == SECRET
