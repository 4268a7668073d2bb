"""The short version of benchmarks/archive.py: a 200 MiB folder of mixed files (sparse big ones)
downloaded plain and as zip, tar and tar.gz through `artgw serve`, every archive checked by
`unzip -t` / `tar -t` and member by member against its source, the gateway's memory bounded."""

import pytest

from benchmarks.archive import KINDS, run

pytestmark = pytest.mark.serial

RSS_BOUND_MIB = 32
"""A chunk or two in flight, zip's central directory, gzip's state: far below the folder's size."""


def test_archives_of_a_200_mib_folder_stream_in_bounded_memory() -> None:
    results = run(200 << 20, check=True, repeat=1)
    assert results["verified"] is True
    assert results["files"] > 100
    for kind in KINDS:
        measured = results[kind]
        assert isinstance(measured, dict)
        assert measured["rss_growth_mib"] < RSS_BOUND_MIB, (kind, measured)
    assert results["tar"]["bytes_sent"] > results["total_bytes"]  # type: ignore[index]
