"""Server-side encryption with keys the cluster manages (SSE-S3, "AES256").

Every encrypted object version (or multipart upload) gets a data key of its own: 32 random
bytes, stored in its manifest sealed with AES-256-GCM under a key-encryption key derived
(HKDF-SHA256) from the gateways' master key (gateway/tenants.py's master.key, which never
reaches a storage node). The bytes are encrypted with AES-256-CTR before they are erasure
coded or stored inline, so nodes, their disks and their repairs only ever hold ciphertext;
CTR lets a range GET decrypt from any offset. The counter block of an erasure-coded run
starts from a hash of its data id (fresh for every write, so a key is never used twice with
one counter, even when a multipart part is uploaded again); an inline body has a data key of
its own and starts at zero. Integrity stays with the fragments' checksums and the ETag,
which is the MD5 of the plaintext as on AWS.

Customer-provided keys (SSE-C) and KMS are not offered: requests that ask for them are
refused (501), never served without the encryption they asked for.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway import errors, s3xml

AES256 = "AES256"
HEADER = "x-amz-server-side-encryption"
KMS_KEY_ID = "x-amz-server-side-encryption-aws-kms-key-id"
_KMS = ("aws:kms", "aws:kms:dsse")
_CUSTOMER_ALGORITHM = "x-amz-server-side-encryption-customer-algorithm"
_CUSTOMER = (_CUSTOMER_ALGORITHM,
             "x-amz-server-side-encryption-customer-key",
             "x-amz-server-side-encryption-customer-key-md5")
_COPY_SOURCE_CUSTOMER = "x-amz-copy-source-server-side-encryption-customer-algorithm"
_SEAL_AAD = b"coffre sse-s3 data key v1"
_NONCE = 12


class Keys:
    """Makes and opens data keys under the cluster's key-encryption key."""

    def __init__(self, master: bytes) -> None:
        kek = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"coffre sse-s3 key-encryption key").derive(master)
        self._aead = AESGCM(kek)

    def new(self) -> tuple[bytes, bytes]:
        """A fresh data key and its sealed form (what a manifest keeps)."""
        key = secrets.token_bytes(32)
        nonce = secrets.token_bytes(_NONCE)
        return key, nonce + self._aead.encrypt(nonce, key, _SEAL_AAD)

    def open(self, sealed: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], _SEAL_AAD)
        except (InvalidTag, ValueError):
            # Another cluster's master key, or a damaged record: never serve garbage.
            raise errors.InternalError("the object's data key cannot be opened") from None


def crypt(key: bytes, data_id: bytes, offset: int, data: bytes | memoryview) -> bytes:
    """AES-256-CTR of `data`, which sits at byte `offset` of the run `data_id` names (b"":
    an inline body); the same call encrypts and decrypts."""
    base = int.from_bytes(hashlib.sha256(data_id).digest()[:8], "big") << 64 if data_id else 0
    counter = (base + offset // 16) % (1 << 128)
    enc = Cipher(algorithms.AES(key), modes.CTR(counter.to_bytes(16, "big"))).encryptor()
    skip = offset % 16
    if skip:
        enc.update(bytes(skip))
    return enc.update(data)


def requested(h: Mapping[str, str], bucket_default: str) -> bool:
    """Whether a write is to be encrypted: its header, else the bucket's default. KMS and
    customer keys are refused, an unknown algorithm is InvalidArgument, and so is a KMS key
    id without aws:kms (AWS: it would otherwise be dropped, the object stored without it)."""
    refuse_customer_keys(h)
    asked = h.get(HEADER)
    if asked in _KMS:
        raise errors.NotImplementedError_("Server-side encryption with KMS is not supported")
    if asked is not None and asked != AES256:
        raise errors.InvalidArgument("The encryption method specified is not supported",
                                     ArgumentName=HEADER, ArgumentValue=asked)
    if KMS_KEY_ID in h:
        raise errors.InvalidArgument(
            "Server Side Encryption with AWS KMS managed key requires HTTP header "
            "x-amz-server-side-encryption : aws:kms", ArgumentName=HEADER,
            ArgumentValue=asked or "null")
    return bucket_default == AES256 if asked is None else True


def refuse_customer_keys(h: Mapping[str, str]) -> None:
    """SSE-C headers: a partial or conflicting set is the client's error (400, as AWS
    answers it), a well-formed one asks for what Coffre does not offer (501)."""
    if not any(name in h for name in _CUSTOMER):
        if _COPY_SOURCE_CUSTOMER in h:
            raise errors.NotImplementedError_(
                "Server-side encryption with customer-provided keys is not supported")
        return
    if HEADER in h:
        raise errors.InvalidArgument(
            "Server Side Encryption with Customer provided key is incompatible with the "
            "encryption method specified", ArgumentName=HEADER, ArgumentValue=h[HEADER])
    if _CUSTOMER_ALGORITHM not in h:
        raise errors.InvalidArgument(
            "Requests specifying Server Side Encryption with Customer provided keys must "
            "provide a valid encryption algorithm.", ArgumentName=_CUSTOMER_ALGORITHM)
    raise errors.NotImplementedError_(
        "Server-side encryption with customer-provided keys is not supported")


def refuse_on_read(h: Mapping[str, str]) -> None:
    """GET and HEAD name no SSE-S3 or KMS encryption: AWS answers 400 to either header (the
    encryption of a stored object cannot be chosen by its reader)."""
    for name in (HEADER, KMS_KEY_ID):
        if name in h:
            raise errors.InvalidArgument(f"{name} header is not supported for this operation.",
                                         ArgumentName=name, ArgumentValue=h[name])


def response_headers(sealed: bytes) -> dict[str, str]:
    return {HEADER: AES256} if sealed else {}


# ---- the bucket's default encryption (Get/Put/DeleteBucketEncryption) ---------------------


def parse_configuration(body: bytes) -> str:
    root = s3xml.parse(body, "ServerSideEncryptionConfiguration")
    rules = s3xml.children(root, "Rule")
    if len(rules) != 1:
        raise errors.MalformedXML()
    default = s3xml.children(rules[0], "ApplyServerSideEncryptionByDefault")
    if len(default) != 1:
        raise errors.MalformedXML()
    algorithm = s3xml.child_text(default[0], "SSEAlgorithm")
    if algorithm in _KMS:
        raise errors.NotImplementedError_("Server-side encryption with KMS is not supported")
    if algorithm != AES256:
        raise errors.MalformedXML()
    if s3xml.child_text(default[0], "KMSMasterKeyID") is not None:
        raise errors.InvalidArgument("a KMSMasterKeyID is not applicable if the default "
                                     "sse algorithm is not aws:kms or aws:kms:dsse")
    return AES256


def render_configuration(algorithm: str) -> bytes:
    return (f'{s3xml.HEAD}<ServerSideEncryptionConfiguration xmlns="{s3xml.NS}"><Rule>'
            f"<ApplyServerSideEncryptionByDefault><SSEAlgorithm>{algorithm}</SSEAlgorithm>"
            "</ApplyServerSideEncryptionByDefault><BucketKeyEnabled>false</BucketKeyEnabled>"
            "</Rule></ServerSideEncryptionConfiguration>").encode()
