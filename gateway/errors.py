"""S3 errors: each one knows its code and HTTP status, and renders itself as AWS's XML.

Every client-visible failure in the gateway is raised as an `S3Error` subclass and turned
into the response in exactly one place (the server's error middleware), so that the code,
status and document shape cannot drift between handlers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from xml.sax.saxutils import escape as _escape

from gateway import limits, request_ids

# Characters XML 1.0 cannot carry at all, not even as references (a key may hold them), and
# lone surrogates (a header byte that is not UTF-8, echoed in a StringToSign): an error
# document naming them shows U+FFFD in their place, and stays parseable.
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape(text: str) -> str:
    return _escape(_NOT_XML.sub("\ufffd", text))


class S3Error(Exception):
    """Base of every error the gateway returns to a client."""

    code = "InternalError"
    status = 500
    default_message = "We encountered an internal error. Please try again."

    def __init__(self, message: str | None = None, **extra: str) -> None:
        self.message = message or self.default_message
        # Extra elements AWS adds to some errors (BucketName, Key, Condition, ...).
        self.extra: dict[str, str] = dict(extra)
        self.headers: dict[str, str] = {}
        super().__init__(self.message)

    def to_xml(self, request_id: str) -> bytes:
        # AWS's order: Code, Message, the error's own elements, RequestId, HostId. AWS sends
        # no Resource element (botocore would show one in every ClientError's Error).
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>',
            f"<Code>{self.code}</Code>",
            f"<Message>{escape(self.message)}</Message>",
        ]
        parts.extend(f"<{k}>{escape(v)}</{k}>" for k, v in self.extra.items())
        parts.append(f"<RequestId>{request_id}</RequestId>")
        parts.append(f"<HostId>{request_ids.host_id(request_id)}</HostId></Error>")
        return "".join(parts).encode()


def _error(name: str, status: int, message: str) -> type[S3Error]:
    return type(name, (S3Error,), {"code": name, "status": status, "default_message": message})


# 400
AccessControlListNotSupported = _error(
    "AccessControlListNotSupported", 400, "The bucket does not allow ACLs"
)
AuthorizationHeaderMalformed = _error(
    "AuthorizationHeaderMalformed", 400, "The authorization header is malformed."
)
AuthorizationQueryParametersError = _error(
    "AuthorizationQueryParametersError", 400, "Error parsing the X-Amz-Credential parameter."
)
BadDigest = _error(
    "BadDigest", 400, "The Content-MD5 or checksum you specified did not match what we received."
)
# AWS's wording (no "object", no full stop), whichever limit was crossed.
EntityTooSmall = _error(
    "EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed size"
)
EntityTooLarge = _error(
    "EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed size"
)
InvalidURI = _error("InvalidURI", 400, "Couldn't parse the specified URI.")
IncompleteBody = _error(
    "IncompleteBody", 400, "You did not provide the number of bytes specified by the header."
)
InvalidArgument = _error("InvalidArgument", 400, "Invalid Argument")
InvalidBucketName = _error("InvalidBucketName", 400, "The specified bucket is not valid.")
InvalidDigest = _error("InvalidDigest", 400, "The Content-MD5 you specified was invalid.")
InvalidPart = _error(
    "InvalidPart",
    400,
    # Two spaces after "found.", as AWS writes it.
    "One or more of the specified parts could not be found.  The part may not have been "
    "uploaded, or the specified entity tag may not match the part's entity tag.",
)
InvalidPartOrder = _error(
    "InvalidPartOrder",
    400,
    "The list of parts was not in ascending order. Parts must be ordered by part number.",
)
InvalidBucketAclWithObjectOwnership = _error(
    "InvalidBucketAclWithObjectOwnership", 400,
    "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
)
InvalidRequest = _error("InvalidRequest", 400, "Invalid Request")
InvalidRedirectLocation = _error(
    "InvalidRedirectLocation", 400,
    "The website redirect location must have a prefix of 'http://' or 'https://' or '/'."
)
InvalidStorageClass = _error(
    "InvalidStorageClass", 400, "The storage class you specified is not valid"
)
InvalidLocationConstraint = _error(
    "InvalidLocationConstraint", 400, "The specified location-constraint is not valid."
)
IllegalLocationConstraintException = _error(
    "IllegalLocationConstraintException",
    400,
    "The unspecified location constraint is incompatible for the region specific endpoint "
    "this request was sent to.",
)
KeyTooLongError = _error("KeyTooLongError", 400, "Your key is too long.")
InvalidTargetBucketForLogging = _error(
    "InvalidTargetBucketForLogging", 400, "The target bucket for logging does not exist"
)
MalformedXML = _error(
    "MalformedXML",
    400,
    "The XML you provided was not well-formed or did not validate against our published schema",
)
MetadataTooLarge = _error(
    "MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size."
)
RequestTimeout = _error(
    "RequestTimeout",
    400,
    "Your socket connection to the server was not read from or written to within the timeout "
    "period.",
)
TooManyParts = _error("InvalidArgument", 400, "Part number must be an integer between 1 and 10000")
UnexpectedContent = _error(
    "UnexpectedContent", 400, "This request does not support content."
)
UnresolvableGrantByEmailAddress = _error(
    "UnresolvableGrantByEmailAddress", 400,
    "The e-mail address you provided does not match any account on record."
)
XAmzContentSHA256Mismatch = _error(
    "XAmzContentSHA256Mismatch",
    400,
    "The provided 'x-amz-content-sha256' header does not match what was computed.",
)
InvalidTag = _error("InvalidTag", 400, "The tag provided was not a valid tag.")
# 403
AccessDenied = _error("AccessDenied", 403, "Access Denied")
InvalidAccessKeyId = _error(
    "InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records."
)
RequestTimeTooSkewed = _error(
    "RequestTimeTooSkewed",
    403,
    "The difference between the request time and the current time is too large.",
)
SignatureDoesNotMatch = _error(
    "SignatureDoesNotMatch",
    403,
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method.",
)


def signature_mismatch(access_key: str, string_to_sign: str, provided: str,
                       canonical_request: str | None = None) -> S3Error:
    """SignatureDoesNotMatch showing what AWS shows, in its order: what was signed, as text
    and as bytes (space-separated hex), so that a client author can diff it with their own;
    SigV4 adds its canonical request. Never the secret, nor the signature expected."""
    extra = {"AWSAccessKeyId": access_key, "StringToSign": string_to_sign,
             "SignatureProvided": provided[:limits.signature_echo_chars_max],
             "StringToSignBytes": _hex_bytes(string_to_sign)}
    if canonical_request is not None:
        extra["CanonicalRequest"] = canonical_request
        extra["CanonicalRequestBytes"] = _hex_bytes(canonical_request)
    return SignatureDoesNotMatch(**extra)


def too_small(size: int, minimum: int, **more: str) -> S3Error:
    """EntityTooSmall as AWS sends it: the size proposed and the least allowed, in that
    order, then what else the operation names (Complete: PartNumber, ETag)."""
    return EntityTooSmall(ProposedSize=str(size), MinSizeAllowed=str(minimum), **more)


def too_large(size: int, maximum: int) -> S3Error:
    """EntityTooLarge as AWS sends it: the size proposed and the most allowed."""
    return EntityTooLarge(ProposedSize=str(size), MaxSizeAllowed=str(maximum))


def _hex_bytes(text: str) -> str:
    # The bytes that were signed: a header byte that is not UTF-8 is back as it came.
    return text.encode("utf-8", "surrogateescape").hex(" ")


# 404
NoSuchBucket = _error("NoSuchBucket", 404, "The specified bucket does not exist")
NoSuchKey = _error("NoSuchKey", 404, "The specified key does not exist.")
NoSuchUpload = _error(
    "NoSuchUpload",
    404,
    "The specified upload does not exist. The upload ID may be invalid, or the upload may "
    "have been aborted or completed.",
)
NoSuchTagSet = _error("NoSuchTagSet", 404, "The TagSet does not exist")
NoSuchLifecycleConfiguration = _error(
    "NoSuchLifecycleConfiguration", 404, "The lifecycle configuration does not exist"
)
NoSuchWebsiteConfiguration = _error(
    "NoSuchWebsiteConfiguration", 404,
    "The specified bucket does not have a website configuration"
)
ServerSideEncryptionConfigurationNotFoundError = _error(
    "ServerSideEncryptionConfigurationNotFoundError", 404,
    "The server side encryption configuration was not found"
)
NoSuchObjectLockConfiguration = _error(
    "NoSuchObjectLockConfiguration", 404,
    "The specified object does not have a ObjectLock configuration"
)
ObjectLockConfigurationNotFoundError = _error(
    "ObjectLockConfigurationNotFoundError", 404,
    "Object Lock configuration does not exist for this bucket"
)
NoSuchVersion = _error(
    "NoSuchVersion", 404, "The specified version does not exist."
)
OwnershipControlsNotFoundError = _error(
    "OwnershipControlsNotFoundError", 404, "The bucket ownership controls were not found"
)
# 405, 409, 411, 412, 416
MethodNotAllowed = _error(
    "MethodNotAllowed", 405, "The specified method is not allowed against this resource."
)
BucketAlreadyExists = _error(
    "BucketAlreadyExists",
    409,
    "The requested bucket name is not available. The bucket namespace is shared by all users "
    "of the system. Please select a different name and try again.",
)
BucketAlreadyOwnedByYou = _error(
    "BucketAlreadyOwnedByYou",
    409,
    "Your previous request to create the named bucket succeeded and you already own it.",
)
InvalidBucketState = _error(
    "InvalidBucketState", 409, "The request is not valid with the current state of the bucket."
)
BucketNotEmpty = _error("BucketNotEmpty", 409, "The bucket you tried to delete is not empty")
ConditionalRequestConflict = _error(
    "ConditionalRequestConflict",
    409,
    "A conflicting conditional action is currently in progress against this resource.",
)
MissingContentLength = _error(
    "MissingContentLength", 411, "You must provide the Content-Length HTTP header."
)
PreconditionFailed = _error(
    "PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold"
)
InvalidRange = _error("InvalidRange", 416, "The requested range is not satisfiable")
InvalidPartNumber = _error("InvalidPartNumber", 416, "The requested partnumber is not satisfiable")
# 5xx
InternalError = _error(
    "InternalError", 500, "We encountered an internal error. Please try again."
)
NotImplementedError_ = _error(
    "NotImplemented", 501, "A header or operation you provided implies functionality that is not "
    "implemented."
)
ServiceUnavailable = _error(
    "ServiceUnavailable", 503, "Service is unable to handle request. Please retry."
)
SlowDown = _error("SlowDown", 503, "Please reduce your request rate.")


def with_headers(err: S3Error, headers: Mapping[str, str]) -> S3Error:
    """Attach response headers (e.g. Content-Range on 416) to an error before raising it."""
    err.headers.update(headers)
    return err
