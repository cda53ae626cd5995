"""The names of AWS's commercial, China and GovCloud regions, as S3 knows them.

Pure. A request that names a region (ListBuckets' bucket-region) is checked against these
and the cluster's own region: AWS refuses a name that is no region at all, and answers a
real region it holds nothing in with nothing. The list is AWS's BucketLocationConstraint
values without the legacy "EU" alias, plus us-east-1 (which has no constraint of its own).
"""

from __future__ import annotations

AWS_REGIONS = frozenset({
    "af-south-1",
    "ap-east-1", "ap-east-2",
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-south-1", "ap-south-2",
    "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
    "ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
    "ca-central-1", "ca-west-1",
    "cn-north-1", "cn-northwest-1",
    "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2",
    "eu-west-1", "eu-west-2", "eu-west-3",
    "il-central-1", "me-central-1", "me-south-1", "mx-central-1", "sa-east-1",
    "us-east-1", "us-east-2", "us-gov-east-1", "us-gov-west-1", "us-west-1", "us-west-2",
})


def is_region(name: str, own: str) -> bool:
    """Whether `name` is a region a client may ask about: one of AWS's, or the cluster's
    (which need not be one of AWS's)."""
    return name == own or name in AWS_REGIONS
