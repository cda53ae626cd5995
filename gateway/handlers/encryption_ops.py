"""Bucket default encryption: Get/Put/DeleteBucketEncryption (SSE-S3 only; gateway.sse
encrypts the objects)."""

from __future__ import annotations

from gateway import errors, sse
from gateway.handlers.bucket_config import BucketConfig

ENCRYPTION = BucketConfig("encryption", "", sse.parse_configuration, sse.render_configuration,
                          errors.ServerSideEncryptionConfigurationNotFoundError)
