from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.cluster.harness import Cluster, new_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = new_cluster()
    c.start()
    yield c
    c.stop()
    shutil.rmtree(c.root, ignore_errors=True)
