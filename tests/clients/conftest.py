"""Fixtures for the real-client suite: one fresh local cluster per test module."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.cluster.harness import Cluster, new_cluster


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "clients: drives a real S3 client (awscli, rclone, pyarrow, dask, boto3)")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = new_cluster()
    try:
        c.start()
    except BaseException:
        # Processes that did start must not outlive a cluster that failed to come up;
        # the data root stays for its logs.
        c.stop()
        raise
    yield c
    c.stop()
    shutil.rmtree(c.root, ignore_errors=True)
