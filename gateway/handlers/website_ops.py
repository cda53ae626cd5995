"""Bucket website configuration: Get/Put/DeleteBucketWebsite. The website endpoint that
serves it is gateway.website_serve."""

from __future__ import annotations

from gateway import errors, website
from gateway.handlers.bucket_config import BucketConfig


class NoSuchWebsiteConfiguration(errors.S3Error):
    code = "NoSuchWebsiteConfiguration"
    status = 404
    default_message = "The specified bucket does not have a website configuration"


WEBSITE = BucketConfig("website", None, website.parse, website.render,
                       NoSuchWebsiteConfiguration)
