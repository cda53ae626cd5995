from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.cluster.harness import Cluster, started_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = started_cluster()
    yield c
    c.stop()
    shutil.rmtree(c.root, ignore_errors=True)
