"""Bucket default encryption: Get/Put/DeleteBucketEncryption (SSE-S3 or SSE-KMS;
gateway.sse encrypts the objects)."""

from __future__ import annotations

from gateway import errors, sse
from gateway.handlers.bucket_config import BucketConfig

ENCRYPTION = BucketConfig("encryption", None, sse.parse_configuration,
                          sse.render_configuration,
                          errors.ServerSideEncryptionConfigurationNotFoundError)
