"""Fixtures for the real-client suite: one fresh local cluster per test module."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.cluster.harness import Cluster, started_cluster


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "clients: drives a real S3 client (awscli, rclone, pyarrow, dask, boto3)")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = started_cluster()     # stops what it started and retries if a start fails
    yield c
    c.stop()
    shutil.rmtree(c.root, ignore_errors=True)
