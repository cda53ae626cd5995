"""Bucket lifecycle: Get/Put/DeleteBucketLifecycle(Configuration). The rules act in
gateway.expiry, which also gives the headers that say when they will."""

from __future__ import annotations

import secrets

from gateway import errors, lifecycle
from gateway.handlers.bucket_config import BucketConfig

# Sent back as AWS does since transitions got a minimum object size; Coffre has no
# transitions (one storage class), so it only tells SDKs what they expect to read.
_MIN_SIZE = {"x-amz-transition-default-minimum-object-size": "all_storage_classes_128K"}


def _new_rule_id() -> str:
    # AWS names a rule put without an ID with a random string of its own.
    return secrets.token_urlsafe(24)


LIFECYCLE = BucketConfig("lifecycle", (), lambda body: lifecycle.parse(body, _new_rule_id),
                         lifecycle.render, errors.NoSuchLifecycleConfiguration, _MIN_SIZE)
