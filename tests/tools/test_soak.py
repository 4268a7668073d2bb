"""The soak (benchmarks/soak.py) for one minute: 64 connections of mixed traffic on a local folder
and an S3 mount, `--workers 2`: no errors, every byte verified, RSS and open files flat."""

import pytest

from benchmarks.soak import MiB, soak

pytestmark = [pytest.mark.serial, pytest.mark.cloud]

SHORT_RUN_GROWTH_LIMIT = 0.25
"""Over the 30 steady seconds of a one-minute run, the lowest RSS sample of a server moving
64 MiB bodies on 64 connections moves by more than 10 % without a leak: one run of the same
code failed the 10 % limit ending at a low of 442 MiB, the next stayed at 353-358 MiB. The
ten-minute soak in benchmarks/ keeps the 10 % limit over eight steady minutes."""


def test_one_minute_soak_has_no_errors_and_flat_resources() -> None:
    report = soak(60, connections=64, workers=2, big=64 * MiB, window=10)
    print(report.markdown())
    assert report.requests > 500
    assert report.bytes_verified > 64 * MiB
    problems = report.problems_at(SHORT_RUN_GROWTH_LIMIT)
    assert not problems, problems
