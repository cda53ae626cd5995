"""Server-side encryption: with keys the cluster manages (SSE-S3, "AES256") or with keys
each request provides (SSE-C, gateway/sse_customer.py).

Every encrypted object version (or multipart upload) gets a data key of its own: 32 random
bytes, stored in its manifest sealed with AES-256-GCM under a key-encryption key. For SSE-S3
that key is derived (HKDF-SHA256) from the gateways' master key (gateway/tenants.py's
master.key, which never reaches a storage node); for SSE-C it is derived from the customer's
key, salted with a secret derived from the master key, so that a wrong customer key fails
the seal's tag (which is how a wrong key is told: nothing of the customer key is stored, and
a stolen record cannot even be used to test a guess without the master key). The bytes are
encrypted with AES-256-CTR before they are erasure coded or stored inline, so nodes, their
disks and their repairs only ever hold ciphertext; CTR lets a range GET decrypt from any
offset. The counter block of an erasure-coded run starts from a hash of its data id (fresh
for every write, so a key is never used twice with one counter, even when a multipart part is
uploaded again); an inline body has a data key of its own and starts at zero. Integrity
stays with the fragments' checksums and the ETag, which is the MD5 of the plaintext for
SSE-S3 as on AWS (for SSE-C, see DataKey.etag).

KMS is not offered: requests that ask for it are refused (501), never served without the
encryption they asked for.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway import errors, s3xml, sse_customer
from gateway.sse_customer import CustomerKey

AES256 = "AES256"
HEADER = "x-amz-server-side-encryption"
KMS_KEY_ID = "x-amz-server-side-encryption-aws-kms-key-id"
_KMS = ("aws:kms", "aws:kms:dsse")
_SEAL_AAD = b"coffre sse-s3 data key v1"
_CUSTOMER_AAD = b"coffre sse-c data key v1"
_NONCE = 12


@dataclass(frozen=True)
class DataKey:
    """An object's (or upload's) encryption as one request holds it: the data key in the
    clear, the sealed form its record keeps, and the customer key that seals it (SSE-C).
    PLAIN, the one without a key, stands for no encryption."""

    key: bytes | None = field(default=None, repr=False)
    sealed: bytes = b""
    customer: CustomerKey | None = None

    @property
    def by_customer(self) -> bool:
        return self.customer is not None

    def crypt(self, data_id: bytes, offset: int, data: bytes) -> bytes:
        return data if self.key is None else crypt(self.key, data_id, offset, data)

    def etag(self, md5_etag: str) -> str:
        """The ETag of bytes whose MD5 ETag is `md5_etag`. AWS's ETag of an SSE-C object is
        not the MD5 of its bytes, for a good reason: a listing shows ETags to whoever may
        list the bucket, key or no key, and an MD5 would let them confirm a guess of the
        content. This one is an HMAC of the MD5 under the data key (stable for the object,
        meaningless without the customer's key), in the same 32-hex-digit form, so multipart
        ETags and conditional requests work on it unchanged."""
        if self.customer is None or self.key is None:
            return md5_etag
        mac = hmac.new(self.key, b"coffre sse-c etag\0" + bytes.fromhex(md5_etag.strip('"')),
                       hashlib.sha256)
        return f'"{mac.hexdigest()[:32]}"'

    def response_headers(self) -> dict[str, str]:
        if self.customer is not None:
            return self.customer.response_headers()
        return {HEADER: AES256} if self.key is not None else {}


PLAIN = DataKey()


def _derive(secret: bytes, info: bytes, salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(secret)


class Keys:
    """Makes and opens data keys under the cluster's key-encryption key, or under a
    customer's key."""

    def __init__(self, master: bytes) -> None:
        self._aead = AESGCM(_derive(master, b"coffre sse-s3 key-encryption key"))
        self._customer_salt = _derive(master, b"coffre sse-c key salt")

    def _sealer(self, customer: CustomerKey | None) -> tuple[AESGCM, bytes]:
        if customer is None:
            return self._aead, _SEAL_AAD
        kek = _derive(customer.key, b"coffre sse-c key-encryption key", self._customer_salt)
        return AESGCM(kek), _CUSTOMER_AAD

    def new(self, customer: CustomerKey | None = None) -> DataKey:
        """A fresh data key, sealed under the cluster's key (or `customer`'s)."""
        key = secrets.token_bytes(32)
        nonce = secrets.token_bytes(_NONCE)
        aead, aad = self._sealer(customer)
        return DataKey(key, nonce + aead.encrypt(nonce, key, aad), customer)

    def open(self, sealed: bytes, customer: CustomerKey | None = None) -> DataKey | None:
        """The data key `sealed` holds, None when it does not open: another customer key,
        or (SSE-S3) another cluster's master key or a damaged record."""
        aead, aad = self._sealer(customer)
        try:
            return DataKey(aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], aad), sealed,
                           customer)
        except (InvalidTag, ValueError):
            return None

    def stored(self, sealed: bytes, given: CustomerKey | None,
               rules: sse_customer.Rules) -> DataKey:
        """The data key of a stored object, opened with the customer key `given` (already
        checked against the record: sse_customer.check)."""
        found = self.open(sealed, given)
        if found is not None:
            return found
        if given is not None:
            raise rules.wrong()
        # Never serve garbage.
        raise errors.InternalError("the object's data key cannot be opened")


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
    """Whether a write asks for SSE-S3: its header, else the bucket's default. KMS is
    refused, an unknown algorithm is InvalidArgument, and so are SSE-C beside the header
    and a KMS key id without aws:kms (AWS: it would otherwise be dropped, the object stored
    without it)."""
    asked = h.get(HEADER)
    if asked is not None and sse_customer.named(h):
        raise errors.InvalidArgument(
            "Server Side Encryption with Customer provided key is incompatible with the "
            "encryption method specified", ArgumentName=HEADER, ArgumentValue=asked)
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


def refuse_on_read(h: Mapping[str, str]) -> None:
    """GET and HEAD name no SSE-S3 or KMS encryption: AWS answers 400 to either header (the
    encryption of a stored object cannot be chosen by its reader)."""
    for name in (HEADER, KMS_KEY_ID):
        if name in h:
            raise errors.InvalidArgument(f"{name} header is not supported for this operation.",
                                         ArgumentName=name, ArgumentValue=h[name])


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
