"""The soak (benchmarks/soak.py) for one minute: 64 connections of mixed traffic on a local folder
and an S3 mount, `--workers 2`: no errors, every byte verified, RSS and open files flat."""

import pytest

from benchmarks.soak import MiB, soak

pytestmark = [pytest.mark.serial, pytest.mark.cloud]


def test_one_minute_soak_has_no_errors_and_flat_resources() -> None:
    report = soak(60, connections=64, workers=2, big=64 * MiB, window=10)
    print(report.markdown())
    assert report.requests > 500
    assert report.bytes_verified > 64 * MiB
    assert not report.problems, report.problems
