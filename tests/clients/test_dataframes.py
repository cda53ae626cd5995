"""Data tools against a real cluster: pyarrow's S3FileSystem writes a hive-partitioned
Parquet dataset and reads it back equal; s3fs with dask reads the same dataset and computes
an aggregate equal to the one computed in memory."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

import pytest

from tests.clients import tools
from tests.cluster.harness import Cluster

pytestmark = pytest.mark.clients

MIB = 1024 * 1024
SEED = 23
BUCKET = "frames"
DATASET = f"{BUCKET}/sales"
ROWS = 20_000
YEARS = (2022, 2023, 2024)
CITIES = ("lyon", "nantes", "paris")
# Above pyarrow's multipart threshold (its S3 output stream uploads parts of 10 MiB and
# switches to multipart past the first part), so the stream goes up in two parts.
STREAM_BYTES = 12 * MIB


@dataclass(frozen=True)
class Written:
    fs: Any
    table: Any


def _table(rnd: random.Random) -> Any:
    import pyarrow as pa  # type: ignore[import-untyped]

    return pa.table({
        "year": [rnd.choice(YEARS) for _ in range(ROWS)],
        "city": [rnd.choice(CITIES) for _ in range(ROWS)],
        "amount": [rnd.randrange(1, 10_000) for _ in range(ROWS)],
        "label": [f"item-{rnd.randrange(1000)}" for _ in range(ROWS)],
    })


def _sorted(table: Any) -> Any:
    return table.sort_by([("year", "ascending"), ("city", "ascending"),
                          ("amount", "ascending"), ("label", "ascending")])


@pytest.fixture(scope="module")
def written(cluster: Cluster) -> Written:
    tools.require_module("pyarrow", "pyarrow")
    import pyarrow.dataset as ds  # type: ignore[import-untyped]
    from pyarrow import fs as pafs

    s3 = pafs.S3FileSystem(
        access_key=cluster.key.access_key, secret_key=cluster.key.secret_key,
        region=cluster.config.region, scheme="http",
        endpoint_override=cluster.endpoint.removeprefix("http://"),
        allow_bucket_creation=True, allow_bucket_deletion=True)
    s3.create_dir(BUCKET)
    print(f"seed={SEED}")
    table = _table(random.Random(SEED))
    ds.write_dataset(table, DATASET, filesystem=s3, format="parquet",
                     partitioning=["year", "city"], partitioning_flavor="hive",
                     max_rows_per_file=2_000, max_rows_per_group=2_000)
    # No clean-up: the module's cluster is thrown away whole.
    return Written(s3, table)


def test_pyarrow_dataset_round_trip(written: Written) -> None:
    import pyarrow.compute as pc  # type: ignore[import-untyped]
    import pyarrow.dataset as ds
    from pyarrow import fs as pafs

    files = written.fs.get_file_info(pafs.FileSelector(DATASET, recursive=True))
    parquet = [f.path for f in files if f.path.endswith(".parquet")]
    # One directory per (year, city) with data, each holding at least one file.
    assert {p.split("/")[2] for p in parquet} == {f"year={y}" for y in YEARS}
    assert len(parquet) >= len(YEARS) * len(CITIES)
    back = ds.dataset(DATASET, filesystem=written.fs, format="parquet",
                      partitioning="hive").to_table()
    # Partition columns come back typed by inference (int32 for years): cast to compare.
    back = back.select(["year", "city", "amount", "label"]).cast(written.table.schema)
    assert back.num_rows == ROWS
    assert _sorted(back).equals(_sorted(written.table))
    # A filtered read touches only its partitions and still agrees.
    only = ds.dataset(DATASET, filesystem=written.fs, format="parquet", partitioning="hive")
    paris = only.to_table(filter=(ds.field("city") == "paris") & (ds.field("year") == 2023))
    want = written.table.filter(pc.and_(pc.equal(written.table["city"], "paris"),
                                        pc.equal(written.table["year"], 2023)))
    assert paris.num_rows == want.num_rows
    assert sum(paris["amount"].to_pylist()) == sum(want["amount"].to_pylist())


def test_pyarrow_stream_multipart(written: Written) -> None:
    body = random.Random(SEED + 1).randbytes(STREAM_BYTES)
    with written.fs.open_output_stream(f"{BUCKET}/raw/stream.bin") as out:
        # Several writes, as a producer would: the stream cuts its own parts.
        for i in range(0, STREAM_BYTES, 3 * MIB):
            out.write(body[i:i + 3 * MIB])
    info = written.fs.get_file_info(f"{BUCKET}/raw/stream.bin")
    assert info.size == STREAM_BYTES
    with written.fs.open_input_file(f"{BUCKET}/raw/stream.bin") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(body).digest()
        # Random access reads a range, as Parquet readers do for footers.
        f.seek(STREAM_BYTES - 100)
        assert f.read(100) == body[-100:]


def _s3fs_options(cluster: Cluster) -> dict[str, Any]:
    return {
        "key": cluster.key.access_key, "secret": cluster.key.secret_key,
        "endpoint_url": cluster.endpoint,
        "client_kwargs": {"region_name": cluster.config.region},
        "config_kwargs": {"s3": {"addressing_style": "path"}},
    }


# dask's own parquet reader calls a pandas API that pandas 3 deprecates; not ours to fix.
@pytest.mark.filterwarnings("ignore:The inplace keyword:Warning")
def test_dask_reads_the_dataset(cluster: Cluster, written: Written) -> None:
    tools.require_module("s3fs", "s3fs")
    tools.require_module("dask.dataframe", "dask[dataframe]")
    import dask
    import dask.dataframe as dd

    options = _s3fs_options(cluster)
    frame = dd.read_parquet(f"s3://{DATASET}", storage_options=options)
    # The synchronous scheduler keeps this to one thread on a shared 2-core machine.
    with dask.config.set(scheduler="synchronous"):
        got = frame.groupby("city", observed=True)["amount"].sum().compute()
        rows = int(frame.shape[0].compute())
    expected: dict[str, int] = {}
    for city, amount in zip(written.table["city"].to_pylist(),
                            written.table["amount"].to_pylist(), strict=True):
        expected[city] = expected.get(city, 0) + amount
    assert rows == ROWS
    assert {str(k): int(v) for k, v in got.items()} == expected


@pytest.mark.filterwarnings("ignore:The inplace keyword:Warning")
def test_dask_writes_pyarrow_reads(cluster: Cluster, written: Written) -> None:
    tools.require_module("s3fs", "s3fs")
    tools.require_module("dask.dataframe", "dask[dataframe]")
    import dask
    import dask.dataframe as dd
    import pyarrow.dataset as ds

    make: Any = dd.from_pandas  # untyped in dask
    frame = make(written.table.to_pandas(), npartitions=4)
    with dask.config.set(scheduler="synchronous"):
        # Written through s3fs (aiobotocore, default checksum settings), hive style.
        frame.to_parquet(f"s3://{BUCKET}/by-dask", partition_on=["city"],
                         storage_options=_s3fs_options(cluster), write_index=False)
    back = ds.dataset(f"{BUCKET}/by-dask", filesystem=written.fs, format="parquet",
                      partitioning="hive").to_table()
    assert back.num_rows == ROWS
    cities = sorted(str(c) for c in set(back["city"].to_pylist()))
    assert cities == sorted(CITIES)
    assert sum(back["amount"].to_pylist()) == sum(written.table["amount"].to_pylist())
