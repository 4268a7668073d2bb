"""Folder downloads as zip, tar and tar.gz (`?archive=`), on every store, checked by the real
`unzip -t` and `tar -t` and by comparing every member's bytes."""

import asyncio
import io
import os
import subprocess
import tarfile
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from backends.mounts import Mount
from backends.registry import open_destination
from gateway.archive import _produce
from gateway.archive_formats import ZipWriter
from tests.conftest import ARTIFACTS, GatewayFactory
from tests.stores import ALL_STORES, StoreView

FILES = {
    "a.txt": b"hello a\n",
    "empty.bin": b"",
    "dir/b.json": b'{"b": 1}',
    "dir/sub/c.bin": os.urandom(1000_000) + b"\x00end",  # < 1 MiB: the seeding SDKs warn above
    "dir/ünïcode name %41.txt": b"names exactly as stored",
    "deep/" + "/".join(f"level{i}" for i in range(12)) + "/" + "n" * 120: b"long path",
}
KINDS = ["zip", "tar", "tar.gz"]


@pytest.fixture(params=ALL_STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.param


async def seed(store: StoreView, root: str = "0/r1/artifacts") -> None:
    for name, data in FILES.items():
        await store.put(f"{root}/{name}", data)
    await store.mkdir(f"{root}/emptydir")


async def fetch(client: TestClient, path: str, kind: str) -> bytes:
    response = await client.get(f"{ARTIFACTS}/{path}", params={"archive": kind})
    assert response.status == 200, await response.text()
    assert response.headers["Transfer-Encoding"] == "chunked"
    return await response.read()


def members(data: bytes, kind: str) -> dict[str, bytes | None]:
    """Every member name -> its bytes (None for a folder)."""
    if kind == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {
                i.filename.rstrip("/"): None if i.is_dir() else archive.read(i)
                for i in archive.infolist()
            }
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        found: dict[str, bytes | None] = {}
        for info in archive:
            handle = archive.extractfile(info) if info.isfile() else None
            found[info.name.rstrip("/")] = handle.read() if handle else None
        return found


async def tool_check(data: bytes, kind: str, where: Path) -> str:
    """`unzip -t` or `tar -t` on the archive; returns the tool's listing."""
    target = where / f"archive.{kind}"
    target.write_bytes(data)
    command = ["unzip", "-t", str(target)] if kind == "zip" else ["tar", "-tvf", str(target)]
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("kind", KINDS)
async def test_a_folder_as_an_archive(
    gateway: TestClient, store: StoreView, kind: str, tmp_path: Path
) -> None:
    await seed(store)
    data = await fetch(gateway, "0/r1/artifacts", kind)
    listing = await tool_check(data, kind, tmp_path)
    assert "ünïcode name %41.txt" in listing
    expected: dict[str, bytes | None] = {f"artifacts/{k}": v for k, v in FILES.items()}
    folders = {"artifacts", "artifacts/emptydir", "artifacts/dir", "artifacts/dir/sub"}
    folders |= {"artifacts/deep"} | {
        "artifacts/deep/" + "/".join(f"level{i}" for i in range(n + 1)) for n in range(12)
    }
    expected.update(dict.fromkeys(folders))
    assert members(data, kind) == expected


async def test_archive_of_a_sub_folder_and_of_the_root(
    gateway: TestClient, store: StoreView
) -> None:
    await seed(store)
    data = await fetch(gateway, "0/r1/artifacts/dir/", "tar")
    assert members(data, "tar") == {
        "dir": None,
        "dir/b.json": FILES["dir/b.json"],
        "dir/sub": None,
        "dir/sub/c.bin": FILES["dir/sub/c.bin"],
        "dir/ünïcode name %41.txt": FILES["dir/ünïcode name %41.txt"],
    }
    response = await gateway.get(ARTIFACTS, params={"path": "0/r1/artifacts/dir", "archive": "zip"})
    assert members(await response.read(), "zip") == members(data, "tar")
    everything = members(await fetch(gateway, "", "zip"), "zip")
    assert everything["artifacts/0/r1/artifacts/a.txt"] == FILES["a.txt"]


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("0/r1/artifacts/a.txt", "zip", 400),
        ("0/r1/artifacts/missing", "zip", 404),
        ("0/r1/artifacts", "rar", 400),
        ("%2E%2E/etc", "zip", 400),
    ],
)
async def test_archive_errors_are_mlflow_json(
    gateway: TestClient, store: StoreView, path: str, query: str, status: int
) -> None:
    await seed(store)
    url = URL(f"{ARTIFACTS}/{path}?archive={query}", encoded=True)
    response = await gateway.get(url)
    assert response.status == status
    assert "error_code" in await response.json()


@pytest.mark.parametrize("store_kind", ["local"])
async def test_links_and_special_files_are_left_out(
    gateway: TestClient, store: StoreView, destination: Path, tmp_path: Path
) -> None:
    await seed(store)
    folder = destination / "0/r1/artifacts"
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"outside")
    (folder / "out-link").symlink_to(outside)
    (folder / "in-link").symlink_to(folder / "a.txt")
    (folder / "dir-link").symlink_to(folder / "dir")
    os.mkfifo(folder / "fifo")
    for kind in KINDS:
        names = members(await fetch(gateway, "0/r1/artifacts", kind), kind)
        assert not {n for n in names if "link" in n or "fifo" in n}, kind
        assert b"outside" not in [v for v in names.values() if v]


async def test_mounts_are_archived_with_their_parent(
    make_gateway: GatewayFactory, store: StoreView, tmp_path: Path
) -> None:
    client = await make_gateway(mounts=(Mount.of("exp/fast", str(tmp_path / "fast")),))
    await client.put(f"{ARTIFACTS}/exp/fast/m.bin", data=b"on the mount")
    await client.put(f"{ARTIFACTS}/exp/plain.txt", data=b"in the default")
    assert members(await fetch(client, "exp", "zip"), "zip") == {
        "exp": None,
        "exp/fast": None,
        "exp/fast/m.bin": b"on the mount",
        "exp/plain.txt": b"in the default",
    }


async def test_the_html_listing_links_the_archives(gateway: TestClient, store: StoreView) -> None:
    await seed(store)
    response = await gateway.get(f"{ARTIFACTS}/0/r1/artifacts/", headers={"Accept": "text/html"})
    page = await response.text()
    assert 'href="./?archive=zip" download' in page
    assert 'href="./?archive=tar.gz" download' in page


# -- failures while streaming ------------------------------------------------------------------

BIG = 64 << 20


async def big_folder(destination: Path) -> Path:
    folder = destination / "big"
    folder.mkdir()
    (folder / "a-small.txt").write_bytes(b"first")
    with open(folder / "b-big.bin", "wb") as handle:
        handle.truncate(BIG)  # sparse: instant to make, read at memory speed
    return folder / "b-big.bin"


@pytest.mark.parametrize("kind", ["zip", "tar"])
@pytest.mark.parametrize("store_kind", ["local"])
async def test_a_failure_midway_cuts_the_connection(
    gateway: TestClient, destination: Path, kind: str, tmp_path: Path
) -> None:
    big = await big_folder(destination)
    received = bytearray()
    async with gateway.get(f"{ARTIFACTS}/big", params={"archive": kind}) as response:
        assert response.status == 200
        received += await response.content.readexactly(1 << 20)
        await asyncio.to_thread(os.truncate, big, BIG // 2)  # the file changes under the archive
        with pytest.raises(aiohttp.ClientPayloadError):
            async for chunk in response.content.iter_chunked(1 << 20):
                received += chunk
    target = tmp_path / f"cut.{kind}"
    target.write_bytes(received)
    command = ["unzip", "-t", str(target)] if kind == "zip" else ["tar", "-tf", str(target)]
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True)
    assert done.returncode != 0


@pytest.mark.parametrize("store_kind", ["local"])
async def test_a_client_that_drops_midway_releases_everything(
    gateway: TestClient, destination: Path
) -> None:
    big = await big_folder(destination)

    def open_on_big() -> int:
        fds = Path("/proc/self/fd")
        return sum(1 for fd in fds.iterdir() if _target(fd) == str(big))

    async with gateway.get(f"{ARTIFACTS}/big", params={"archive": "tar"}) as response:
        await response.content.readexactly(1 << 20)
        assert await asyncio.to_thread(open_on_big) == 1
        response.connection.transport.abort()  # type: ignore[union-attr]
    for _ in range(100):
        if await asyncio.to_thread(open_on_big) == 0:
            break
        await asyncio.sleep(0.05)
    assert await asyncio.to_thread(open_on_big) == 0
    response = await gateway.get(f"{ARTIFACTS}/big/a-small.txt")
    assert await response.read() == b"first"


def _target(fd: Path) -> str:
    try:
        return os.readlink(fd)
    except OSError:
        return ""


async def test_head_of_an_archive_has_its_headers_and_no_body(
    gateway: TestClient, store: StoreView
) -> None:
    await seed(store)
    response = await gateway.head(f"{ARTIFACTS}/0/r1/artifacts", params={"archive": "tar.gz"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/gzip"
    assert response.headers["Content-Disposition"] == "attachment; filename=artifacts.tar.gz"
    assert await response.read() == b""


async def test_a_mount_point_is_browsable_and_downloadable(
    make_gateway: GatewayFactory, store: StoreView, tmp_path: Path
) -> None:
    client = await make_gateway(mounts=(Mount.of("team/fast", str(tmp_path / "fast")),))
    await client.put(f"{ARTIFACTS}/team/fast/run/m.bin", data=b"model")
    html = {"Accept": "text/html"}
    root = await (await client.get(f"{ARTIFACTS}/", headers=html)).text()
    assert 'href="team/"' in root
    team = await (await client.get(f"{ARTIFACTS}/team/", headers=html)).text()
    assert 'href="fast/"' in team
    data = await fetch(client, "team/fast", "zip")
    assert members(data, "zip") == {"fast": None, "fast/run": None, "fast/run/m.bin": b"model"}


async def test_a_zip_cut_midway_is_closed_at_once(tmp_path: Path) -> None:
    """The zip of an archive that failed midway is closed when the failure happens, not left to
    the garbage collector: `ZipFile.__del__` raises if it runs while the member is still open."""
    (tmp_path / "folder").mkdir()
    data = tmp_path / "folder" / "data.bin"
    data.write_bytes(b"x" * (8 << 20))
    backend = open_destination(str(tmp_path))
    await backend.start()
    writer = ZipWriter()
    with pytest.raises(OSError, match="changed size"):
        async for count, _ in aenumerate(_produce(backend, "folder", "folder", writer)):
            if count == 3:  # the member's header and first data are out
                await asyncio.to_thread(os.truncate, data, 1 << 20)
    await backend.close()
    assert writer.member is None
    assert writer.zip.fp is None


async def aenumerate(pieces: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    count = 0
    async for piece in pieces:
        yield count, piece
        count += 1
