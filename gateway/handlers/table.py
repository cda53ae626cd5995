"""The operation table: AWS operation name -> handler. Anything absent answers 501."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from gateway.handlers import (
    access_ops,
    attributes,
    batch,
    buckets,
    copy,
    lifecycle_ops,
    listing,
    multipart,
    objects,
    post_object,
    tagging,
    unconfigured,
    website_ops,
)
from gateway.state import Ctx

Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]

HANDLERS: Mapping[str, Handler] = {
    "ListBuckets": buckets.list_buckets,
    "CreateBucket": buckets.create_bucket,
    "HeadBucket": buckets.head_bucket,
    "DeleteBucket": buckets.delete_bucket,
    "GetBucketLocation": buckets.get_bucket_location,
    "GetBucketVersioning": buckets.get_bucket_versioning,
    "GetBucketTagging": buckets.get_bucket_tagging,
    "PutBucketTagging": buckets.put_bucket_tagging,
    "DeleteBucketTagging": buckets.delete_bucket_tagging,
    "ListObjects": listing.list_objects,
    "ListObjectsV2": listing.list_objects_v2,
    "PutObject": objects.put_object,
    "GetObject": objects.get_object,
    "HeadObject": objects.head_object,
    "DeleteObject": objects.delete_object,
    "DeleteObjects": batch.delete_objects,
    "GetObjectAttributes": attributes.get_object_attributes,
    "ListObjectVersions": unconfigured.list_object_versions,
    **{op: unconfigured.unconfigured for op in unconfigured.HANDLED},
    "CopyObject": copy.copy_object,
    "GetObjectTagging": tagging.get_object_tagging,
    "PutObjectTagging": tagging.put_object_tagging,
    "DeleteObjectTagging": tagging.delete_object_tagging,
    "CreateMultipartUpload": multipart.create_multipart_upload,
    "UploadPart": multipart.upload_part,
    "UploadPartCopy": multipart.upload_part_copy,
    "CompleteMultipartUpload": multipart.complete_multipart_upload,
    "AbortMultipartUpload": multipart.abort_multipart_upload,
    "ListParts": multipart.list_parts,
    "ListMultipartUploads": multipart.list_multipart_uploads,
    "GetBucketAcl": access_ops.get_bucket_acl,
    "PutBucketAcl": access_ops.put_bucket_acl,
    "GetObjectAcl": access_ops.get_object_acl,
    "PutObjectAcl": access_ops.put_object_acl,
    "GetBucketPolicy": access_ops.get_bucket_policy,
    "PutBucketPolicy": access_ops.put_bucket_policy,
    "DeleteBucketPolicy": access_ops.delete_bucket_policy,
    "GetBucketPolicyStatus": access_ops.get_bucket_policy_status,
    "GetPublicAccessBlock": access_ops.get_public_access_block,
    "PutPublicAccessBlock": access_ops.put_public_access_block,
    "DeletePublicAccessBlock": access_ops.delete_public_access_block,
    "GetBucketLifecycleConfiguration": lifecycle_ops.LIFECYCLE.get,
    "PutBucketLifecycleConfiguration": lifecycle_ops.LIFECYCLE.put,
    "DeleteBucketLifecycle": lifecycle_ops.LIFECYCLE.delete,
    "GetBucketWebsite": website_ops.WEBSITE.get,
    "PutBucketWebsite": website_ops.WEBSITE.put,
    "DeleteBucketWebsite": website_ops.WEBSITE.delete,
    "GetBucketOwnershipControls": access_ops.OWNERSHIP.get,
    "PutBucketOwnershipControls": access_ops.OWNERSHIP.put,
    "DeleteBucketOwnershipControls": access_ops.OWNERSHIP.delete,
    "GetBucketCors": access_ops.CORS.get,
    "PutBucketCors": access_ops.CORS.put,
    "DeleteBucketCors": access_ops.CORS.delete,
    access_ops.PREFLIGHT: access_ops.preflight,
    "PostObject": post_object.post_object,
}
