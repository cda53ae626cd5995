"""Transfer Acceleration's state: Put/GetBucketAccelerateConfiguration, as AWS keeps it.

Pure. Coffre serves no accelerate endpoint; it keeps the state a client sets and answers
it back, as AWS does, so that tools which set it (Terraform's
aws_s3_bucket_accelerate_configuration, consoles) and read it back carry on. AWS's rules:
the Status is Enabled or Suspended (anything else, or none, is MalformedXML); a bucket
whose name holds a period cannot use acceleration (its name cannot be a DNS label under
the accelerate endpoint's certificate), so setting it there is InvalidRequest; a bucket
never set answers an empty configuration.
"""

from __future__ import annotations

from gateway import errors, s3xml

ENABLED = "Enabled"
SUSPENDED = "Suspended"
ROOT = "AccelerateConfiguration"


def check_bucket(name: str) -> None:
    """Refuse acceleration for a bucket whose name AWS's accelerate endpoint cannot carry."""
    if "." in name:
        raise errors.InvalidRequest("S3 Transfer Acceleration is not supported for buckets "
                                    "with periods (.) in their names")


def parse(body: bytes) -> str:
    """The Status of a PutBucketAccelerateConfiguration body."""
    status = s3xml.child_text(s3xml.parse(body, ROOT), "Status")
    if status not in (ENABLED, SUSPENDED):
        raise errors.MalformedXML()
    return status


def render(status: str) -> bytes:
    """GetBucketAccelerateConfiguration's answer; `status` "" (never set): no Status."""
    return s3xml.simple(ROOT, [("Status", status)] if status else [])
