"""The seed's flow with the real mlflow client, on S3, Azure and GCS destinations.

Same flow as tests/test_client_flow.py, with `artgw serve --artifacts-destination <bucket URL>`
and `artgw gc` deleting through the same store.
"""

import os
import posixpath
import subprocess
from collections.abc import Callable
from pathlib import Path

import fsspec
import pytest
from mlflow import MlflowClient

from tests.artgw_process import ArtgwProcess, artgw_command
from tests.e2e.test_client_flow import (
    B_BYTES,
    check_listing_and_download,
    check_run_data,
    make_files,
    seed_example,
    use_server,  # noqa: F401 - a fixture
)
from tests.emulators import close_filesystem
from tests.stores import CLOUD_SERVERS, cloud_destination

pytestmark = pytest.mark.cloud


def option_flags(options: dict[str, object]) -> list[str]:
    return [
        flag for key, value in options.items() for flag in ("--storage-option", f"{key}={value}")
    ]


def stored_files(url: str, options: dict[str, object]) -> dict[str, bytes]:
    protocol, _, root = url.partition("://")
    fs = fsspec.filesystem(protocol, skip_instance_cache=True, **options)
    try:
        fs.invalidate_cache()
        return {posixpath.relpath(p, root): fs.cat_file(p) for p in fs.find(root)}
    finally:
        close_filesystem(fs)


@pytest.mark.parametrize("kind", sorted(CLOUD_SERVERS))
def test_seed_flow_on_a_cloud_destination(
    request: pytest.FixtureRequest,
    artgw: Callable[..., ArtgwProcess],
    tmp_path: Path,
    use_server: Callable[[str], None],  # noqa: F811
    kind: str,
) -> None:
    server, url, options = cloud_destination(request, kind)
    flags = ["--artifacts-destination", url, *option_flags(options)]
    cwd = tmp_path / "server"
    tracking = artgw("--backend-store-uri=mlruns", *flags, cwd=cwd, env=server.env)
    use_server(tracking.url)
    src = make_files(tmp_path / "src")
    run_id = seed_example(src)
    check_listing_and_download(run_id, src, tmp_path / "download")
    check_run_data(run_id)
    second = seed_example(src)
    stored = stored_files(url, options)
    assert stored[f"0/{run_id}/artifacts/dir/b.txt"] == B_BYTES
    assert stored[f"0/{second}/artifacts/a.txt"] == b"a\n"

    MlflowClient().delete_run(run_id)
    gc = [*artgw_command(), "gc", "--backend-store-uri=mlruns", "--run-ids", run_id, *flags]
    result = subprocess.run(
        gc, cwd=cwd, env={**os.environ, **server.env}, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "Freed 1 run(s), 2 file(s)" in result.stdout
    left = stored_files(url, options)
    assert not [name for name in left if f"/{run_id}/" in name]
    assert sorted(left) == sorted(name for name in stored if f"/{run_id}/" not in name)
