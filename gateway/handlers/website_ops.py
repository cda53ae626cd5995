"""Bucket website configuration: Get/Put/DeleteBucketWebsite. The website endpoint that
serves it is gateway.website_serve."""

from __future__ import annotations

from gateway import errors, website
from gateway.handlers.bucket_config import BucketConfig

WEBSITE = BucketConfig("website", None, website.parse, website.render,
                       errors.NoSuchWebsiteConfiguration)
