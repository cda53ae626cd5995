"""ListBuckets' pages: max-buckets, continuation-token, prefix and bucket-region.

Pure. A page holds, in name order, the requester's buckets whose names begin with the
prefix and that sit in the asked region (every Coffre bucket sits in the cluster's), after
the token's name, at most max-buckets of them; a token for the rest comes with a full page
that is not the last. As on AWS, a request naming none of these parameters gets every
bucket in one answer, and one naming any but max-buckets gets pages of 10,000.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway import errors, limits, list_tokens, regions

_PARAMS = ("max-buckets", "continuation-token", "prefix", "bucket-region")


@dataclass(frozen=True)
class BucketQuery:
    max_buckets: int | None         # None: every bucket at once (no paging parameter given)
    after: str                      # names up to this one were on earlier pages
    prefix: str | None              # echoed in the answer when it was sent
    region: str | None


@dataclass(frozen=True)
class BucketPage:
    buckets: list[tuple[str, int]]  # (name, created_ms)
    next_token: str | None


def _max_buckets(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise errors.InvalidArgument("Provided max-buckets not an integer or within integer "
                                     "range", ArgumentName="max-buckets",
                                     ArgumentValue=raw) from None
    if not 1 <= value <= limits.list_buckets_max:
        raise errors.InvalidArgument(
            f"Argument max-buckets must be an integer between 1 and {limits.list_buckets_max}.",
            ArgumentName="max-buckets", ArgumentValue=raw)
    return value


def _region(raw: str | None, own: str) -> str | None:
    """The bucket-region asked for: a name that is no region is 400 InvalidArgument, as
    AWS answers (LocalStack's AWS-validated TestS3ListBuckets); a real one holding no
    bucket of ours lists none."""
    if raw is not None and not regions.is_region(raw, own):
        raise errors.InvalidArgument(f"Argument value {raw} is not a valid AWS Region",
                                     ArgumentName="bucket-region")
    return raw


def parse(query: Mapping[str, str], own_region: str) -> BucketQuery:
    """The query of a ListBuckets sent to a cluster in `own_region`."""
    raw_max = query.get("max-buckets")
    token = query.get("continuation-token")
    paged = any(name in query for name in _PARAMS)
    size = _max_buckets(raw_max) if raw_max is not None else None
    return BucketQuery(
        size if size is not None or not paged else limits.list_buckets_max,
        # An empty token starts from the first bucket (AWS answers it as if absent).
        list_tokens.decode(token) if token else "",
        query.get("prefix"), _region(query.get("bucket-region"), own_region))


def page(buckets: Sequence[tuple[str, int]], query: BucketQuery, region: str) -> BucketPage:
    """One page of `buckets` (the requester's, any order) for `query` on a cluster whose
    buckets all sit in `region`."""
    if query.region is not None and query.region != region:
        return BucketPage([], None)
    prefix = query.prefix or ""
    chosen = sorted(b for b in buckets if b[0].startswith(prefix) and b[0] > query.after)
    if query.max_buckets is None or len(chosen) <= query.max_buckets:
        return BucketPage(chosen, None)
    shown = chosen[:query.max_buckets]
    return BucketPage(shown, list_tokens.encode(shown[-1][0]))
