"""The fast paths keep the contract: streamed listings, one-write small GETs, unnamed-file PUTs.

Each fast path is compared with the general path it short-cuts (same JSON, same headers, same
files on disk), on the local destination where they apply.
"""

import json
import os
from pathlib import Path

from aiohttp.test_utils import TestClient

from backends.paths import UPLOAD_PREFIX
from gateway.artifacts import LISTING_PIECE

A = "/api/2.0/mlflow-artifacts/artifacts"


async def test_large_listing_streams_the_same_json(gateway: TestClient, destination: Path) -> None:
    folder = destination / "many"
    folder.mkdir()
    count = 2 * LISTING_PIECE + 7  # three pieces, the last one short
    for i in range(count):
        (folder / f"f-{i:05d}.txt").write_bytes(b"x" * (i % 5))
    (folder / "sub").mkdir()
    (folder / 'quote"and\\slash é.txt').write_bytes(b"12")
    (folder / f"{UPLOAD_PREFIX}123").write_bytes(b"in progress")
    response = await gateway.get(f"{A}?path=many")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers.get("Transfer-Encoding") == "chunked"
    files = json.loads(await response.read())["files"]
    names = sorted(os.listdir(folder))
    names.remove(f"{UPLOAD_PREFIX}123")
    assert [f["path"] for f in files] == names
    by_name = {f["path"]: f for f in files}
    assert by_name["sub"] == {"path": "sub", "is_dir": True}
    assert by_name["f-00003.txt"] == {"path": "f-00003.txt", "is_dir": False, "file_size": 3}
    assert by_name['quote"and\\slash é.txt']["file_size"] == 2


async def test_small_listing_keeps_content_length(gateway: TestClient, destination: Path) -> None:
    (destination / "few").mkdir()
    (destination / "few" / "a").write_bytes(b"a")
    response = await gateway.get(f"{A}?path=few")
    body = await response.read()
    assert json.loads(body) == {"files": [{"path": "a", "is_dir": False, "file_size": 1}]}
    assert int(response.headers["Content-Length"]) == len(body)


async def test_small_get_sends_the_headers_of_the_general_path(gateway: TestClient) -> None:
    for name in ("m.json", "plot.png", "MLmodel", "naïve name.txt"):
        put = await gateway.put(f"{A}/d/{name}", data=b'{"k": 1}')
        assert put.status == 200
        fast = await gateway.get(f"{A}/d/{name}")
        general = await gateway.get(f"{A}/d/{name}", headers={"If-None-Match": '"other"'})
        assert fast.status == general.status == 200
        assert await fast.read() == await general.read() == b'{"k": 1}'
        skip = {"Date", "X-Request-ID"}  # per response
        assert {k: v for k, v in fast.headers.items() if k not in skip} == {
            k: v for k, v in general.headers.items() if k not in skip
        }


async def test_put_new_replaced_and_onto_folder(gateway: TestClient, destination: Path) -> None:
    assert (await gateway.put(f"{A}/w/new.txt", data=b"one")).status == 200
    assert (destination / "w" / "new.txt").read_bytes() == b"one"
    assert (await gateway.put(f"{A}/w/new.txt", data=b"two!")).status == 200
    assert (destination / "w" / "new.txt").read_bytes() == b"two!"
    (destination / "w" / "dir").mkdir()
    refused = await gateway.put(f"{A}/w/dir", data=b"x")
    assert 400 <= refused.status < 500
    assert "error_code" in json.loads(await refused.read())
    assert sorted(os.listdir(destination / "w")) == ["dir", "new.txt"]  # no temp file left
    assert (destination / "w" / "new.txt").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
