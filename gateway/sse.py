"""Server-side encryption: with keys the cluster manages (SSE-S3, "AES256"), with keys
each request provides (SSE-C, gateway/sse_customer.py), or with a tenant's keys in Coffre's
key service (SSE-KMS, "aws:kms": gateway/kms.py keeps the keys, gateway/sse_kms.py the S3
rules).

Every encrypted object version (or multipart upload) gets a data key of its own: 32 random
bytes, stored in its manifest sealed with AES-256-GCM under a key-encryption key. For SSE-S3
that key is derived (HKDF-SHA256) from the gateways' master key (gateway/tenants.py's
master.key, which never reaches a storage node); for SSE-C it is derived from the customer's
key, salted with a secret derived from the master key, so that a wrong customer key fails
the seal's tag (which is how a wrong key is told: nothing of the customer key is stored, and
a stolen record cannot even be used to test a guess without the master key); for SSE-KMS
it is derived from the KMS key's material, and the record's encryption context is bound
into the seal's associated data (another context, or another key, does not open it). The
bytes are
encrypted with AES-256-CTR before they are erasure coded or stored inline, so nodes, their
disks and their repairs only ever hold ciphertext; CTR lets a range GET decrypt from any
offset. The counter block of an erasure-coded run starts from a hash of its data id (fresh
for every write, so a key is never used twice with one counter, even when a multipart part is
uploaded again); an inline body has a data key of its own and starts at zero. Integrity
stays with the fragments' checksums and the ETag, which is the MD5 of the plaintext for
SSE-S3 as on AWS (for SSE-C and SSE-KMS, see DataKey.etag).

Dual-layer KMS ("aws:kms:dsse") is not offered: requests that ask for it are refused (501),
never served without the encryption they asked for.
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

from gateway import errors, s3xml, sse_customer, sse_kms
from gateway.sse_customer import CustomerKey
from gateway.sse_kms import KmsUse

AES256 = "AES256"
HEADER = "x-amz-server-side-encryption"
KMS = sse_kms.ALGORITHM
KMS_KEY_ID = sse_kms.KEY_ID
_DSSE = "aws:kms:dsse"
_SEAL_AAD = b"coffre sse-s3 data key v1"
_CUSTOMER_AAD = b"coffre sse-c data key v1"
_KMS_AAD = b"coffre sse-kms data key v1"
_NONCE = 12


@dataclass(frozen=True)
class DataKey:
    """An object's (or upload's) encryption as one request holds it: the data key in the
    clear, the sealed form its record keeps, and the customer key that seals it (SSE-C) or
    the KMS key and context (SSE-KMS). PLAIN, the one without a key, stands for no
    encryption."""

    key: bytes | None = field(default=None, repr=False)
    sealed: bytes = b""
    customer: CustomerKey | None = None
    kms: KmsUse | None = None

    @property
    def by_customer(self) -> bool:
        return self.customer is not None

    def crypt(self, data_id: bytes, offset: int, data: bytes) -> bytes:
        return data if self.key is None else crypt(self.key, data_id, offset, data)

    def etag(self, md5_etag: str) -> str:
        """The ETag of bytes whose MD5 ETag is `md5_etag`. AWS's ETag of an SSE-C or SSE-KMS
        object is not the MD5 of its bytes, for a good reason: a listing shows ETags to
        whoever may list the bucket, key or no key, and an MD5 would let them confirm a
        guess of the content. This one is an HMAC of the MD5 under the data key (stable for
        the object, meaningless without its key), in the same 32-hex-digit form, so
        multipart ETags and conditional requests work on it unchanged."""
        if (self.customer is None and self.kms is None) or self.key is None:
            return md5_etag
        mac = hmac.new(self.key, b"coffre sse-c etag\0" + bytes.fromhex(md5_etag.strip('"')),
                       hashlib.sha256)
        return f'"{mac.hexdigest()[:32]}"'

    def response_headers(self) -> dict[str, str]:
        if self.customer is not None:
            return self.customer.response_headers()
        if self.kms is not None:
            return self.kms.response_headers()
        return {HEADER: AES256} if self.key is not None else {}

    def written_headers(self) -> dict[str, str]:
        """The answer of the write that made it (SSE-KMS: the context too)."""
        return self.kms.written_headers() if self.kms is not None else \
            self.response_headers()


PLAIN = DataKey()


def derive(secret: bytes, info: bytes, salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(secret)


class Keys:
    """Makes and opens data keys under the cluster's key-encryption key, or under a
    customer's key."""

    def __init__(self, master: bytes) -> None:
        self._aead = AESGCM(derive(master, b"coffre sse-s3 key-encryption key"))
        self._customer_salt = derive(master, b"coffre sse-c key salt")

    def _sealer(self, customer: CustomerKey | None) -> tuple[AESGCM, bytes]:
        if customer is None:
            return self._aead, _SEAL_AAD
        kek = derive(customer.key, b"coffre sse-c key-encryption key", self._customer_salt)
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


def _kms_sealer(material: bytes, use: KmsUse) -> tuple[AESGCM, bytes]:
    kek = derive(material, b"coffre sse-kms key-encryption key")
    return AESGCM(kek), b"\0".join([_KMS_AAD, use.key_id.encode(), use.context.encode()])


def seal_kms(material: bytes, use: KmsUse) -> DataKey:
    """A fresh data key, sealed under a KMS key's material and bound to `use`'s context."""
    key = secrets.token_bytes(32)
    nonce = secrets.token_bytes(_NONCE)
    aead, aad = _kms_sealer(material, use)
    return DataKey(key, nonce + aead.encrypt(nonce, key, aad), kms=use)


def open_kms(material: bytes, sealed: bytes, use: KmsUse) -> DataKey:
    """The data key of an SSE-KMS record; a seal that does not open (another key or
    context: a damaged record) is an error, never garbage served."""
    aead, aad = _kms_sealer(material, use)
    try:
        return DataKey(aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], aad), sealed, kms=use)
    except (InvalidTag, ValueError):
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


@dataclass(frozen=True)
class BucketDefault:
    """A bucket's default encryption (PutBucketEncryption), for writes that name none."""

    algorithm: str                  # AES256 or aws:kms
    kms_key: str = ""               # KMSMasterKeyID as put ("" the writer's default key)
    bucket_key: bool = False        # BucketKeyEnabled: kept, echoed, applied to KMS writes


@dataclass(frozen=True)
class Asked:
    """The encryption with server-managed keys a write asks for (SSE-C: sse_customer)."""

    algorithm: str                  # AES256 or aws:kms
    kms_key: str = ""               # the KMS key as named ("" the writer's default key)
    context: str = ""               # canonical JSON of the encryption context
    bucket_key: bool = False


def requested(h: Mapping[str, str], default: BucketDefault | None) -> Asked | None:
    """The encryption a write asks for: its headers, else the bucket's default (None: no
    server-managed encryption). Dual-layer KMS is refused, an unknown algorithm is
    InvalidArgument, and so are SSE-C beside the header and KMS headers without aws:kms
    (AWS: they would otherwise be dropped, the object stored without them)."""
    asked = h.get(HEADER)
    if asked is not None and sse_customer.named(h):
        raise errors.InvalidArgument(
            "Server Side Encryption with Customer provided key is incompatible with the "
            "encryption method specified", ArgumentName=HEADER, ArgumentValue=asked)
    if asked == _DSSE:
        raise errors.NotImplementedError_("Dual-layer server-side encryption with KMS is not "
                                          "supported")
    if asked is not None and asked not in (AES256, KMS):
        raise errors.InvalidArgument("The encryption method specified is not supported",
                                     ArgumentName=HEADER, ArgumentValue=asked)
    if asked != KMS and (KMS_KEY_ID in h or sse_kms.CONTEXT in h):
        raise errors.InvalidArgument(
            "Server Side Encryption with AWS KMS managed key requires HTTP header "
            "x-amz-server-side-encryption : aws:kms", ArgumentName=HEADER,
            ArgumentValue=asked or "null")
    if asked == AES256 or (asked is None and default is not None and
                           default.algorithm == AES256):
        return Asked(AES256)
    if asked is None and default is None:
        return None
    named = h.get(KMS_KEY_ID, "") if asked == KMS else default.kms_key if default else ""
    context = sse_kms.parse_context(h[sse_kms.CONTEXT]) if sse_kms.CONTEXT in h else ""
    flag = h.get(sse_kms.BUCKET_KEY)
    bucket_key = sse_kms.parse_bucket_key(flag) if flag is not None else \
        default is not None and default.bucket_key
    return Asked(KMS, named.strip(), context, bucket_key)


def refuse_on_read(h: Mapping[str, str]) -> None:
    """GET and HEAD name no SSE-S3 or KMS encryption: AWS answers 400 to either header (the
    encryption of a stored object cannot be chosen by its reader)."""
    for name in (HEADER, KMS_KEY_ID):
        if name in h:
            raise errors.InvalidArgument(f"{name} header is not supported for this operation.",
                                         ArgumentName=name, ArgumentValue=h[name])


# ---- the bucket's default encryption (Get/Put/DeleteBucketEncryption) ---------------------


def parse_configuration(body: bytes) -> BucketDefault:
    root = s3xml.parse(body, "ServerSideEncryptionConfiguration")
    rules = s3xml.children(root, "Rule")
    if len(rules) != 1:
        raise errors.MalformedXML()
    default = s3xml.children(rules[0], "ApplyServerSideEncryptionByDefault")
    if len(default) != 1:
        raise errors.MalformedXML()
    algorithm = s3xml.child_text(default[0], "SSEAlgorithm")
    if algorithm == _DSSE:
        raise errors.NotImplementedError_("Dual-layer server-side encryption with KMS is not "
                                          "supported")
    if algorithm not in (AES256, KMS):
        raise errors.MalformedXML()
    key = s3xml.child_text(default[0], "KMSMasterKeyID")
    if key is not None and algorithm != KMS:
        raise errors.InvalidArgument("a KMSMasterKeyID is not applicable if the default "
                                     "sse algorithm is not aws:kms or aws:kms:dsse")
    flag = (s3xml.child_text(rules[0], "BucketKeyEnabled") or "false").strip().lower()
    if flag not in ("true", "false"):
        raise errors.MalformedXML()
    return BucketDefault(algorithm, (key or "").strip(), flag == "true")


def render_configuration(default: BucketDefault) -> bytes:
    key = f"<KMSMasterKeyID>{s3xml.esc(default.kms_key)}</KMSMasterKeyID>" \
        if default.kms_key else ""
    return (f'{s3xml.HEAD}<ServerSideEncryptionConfiguration xmlns="{s3xml.NS}"><Rule>'
            f"<ApplyServerSideEncryptionByDefault><SSEAlgorithm>{default.algorithm}"
            f"</SSEAlgorithm>{key}</ApplyServerSideEncryptionByDefault>"
            f"<BucketKeyEnabled>{'true' if default.bucket_key else 'false'}</BucketKeyEnabled>"
            "</Rule></ServerSideEncryptionConfiguration>").encode()
