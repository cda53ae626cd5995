"""SSE-KMS's pure parts: how a request names a key (id, alias, ARN) and which it may use,
the encryption context and its canonical form, what a write asks for (as botocore sends
it), data keys sealed under a KMS key and bound to their context, the keyring's records
and sealing, the default key every gateway derives alike, and the records that carry a
KMS key (and the older ones that do not)."""

from __future__ import annotations

import base64
import dataclasses
import json
import os

import msgpack
import pytest
from multidict import CIMultiDict

from gateway import errors, kms, sse, sse_kms
from gateway.kms import KeyBox, KeyringCache, KeyState, KmsKeyRecord, OpenKey
from gateway.manifest import BucketRecord, Manifest
from gateway.sse_kms import KeyRef, KmsUse
from gateway.tenants import TenantError
from gateway.uploads import Upload
from tests.gateway.botocore_offline import offline_client

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
ARN = f"arn:aws:kms:us-east-1:alpha:key/{KEY_ID}"


def _b64(doc: object) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


# ---- naming a key ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, ref", [
    (KEY_ID, KeyRef(KEY_ID, False)),
    ("alias/backups", KeyRef("backups", True)),
    ("alias/aws/s3", KeyRef("aws/s3", True)),
    (ARN, KeyRef(KEY_ID, False, "us-east-1", "alpha")),
    ("arn:aws:kms:eu-west-3:111122223333:alias/x/y", KeyRef("x/y", True, "eu-west-3",
                                                           "111122223333")),
    ("arn:aws-cn:kms:cn-north-1:t:key/k", KeyRef("k", False, "cn-north-1", "t")),
    ("key-1", KeyRef("key-1", False)),                  # not a key id: will not be found
    ("arn:aws:s3:::bucket/key", KeyRef("arn:aws:s3:::bucket/key", False)),
])
def test_a_key_is_named_by_id_alias_or_arn(text: str, ref: KeyRef) -> None:
    assert sse_kms.parse_ref(text) == ref


def test_an_arn_must_be_of_this_region_and_the_requester() -> None:
    sse_kms.check_ref(sse_kms.parse_ref(ARN), "alpha", "us-east-1")
    sse_kms.check_ref(sse_kms.parse_ref(KEY_ID), "beta", "us-east-1")   # looked up in beta
    with pytest.raises(sse_kms.KmsNotFound) as exc:
        sse_kms.check_ref(sse_kms.parse_ref(ARN), "alpha", "eu-west-3")
    assert (exc.value.code, exc.value.status) == ("KMS.NotFoundException", 400)
    assert exc.value.message == "Invalid arn us-east-1"        # AWS's words
    with pytest.raises(errors.AccessDenied):
        sse_kms.check_ref(sse_kms.parse_ref(ARN), "beta", "us-east-1")
    assert sse_kms.key_arn("us-east-1", "alpha", KEY_ID) == ARN
    assert KmsUse(ARN).key_id == KEY_ID


# ---- the encryption context -----------------------------------------------------------------


def test_the_context_is_kept_canonical() -> None:
    one = sse_kms.parse_context(_b64({"b": "2", "a": "é"}))
    assert one == '{"a":"é","b":"2"}'
    spaced = base64.b64encode(b'{ "a" : "\\u00e9",  "b":"2"}').decode()
    assert sse_kms.parse_context(spaced) == one
    assert sse_kms.parse_context(_b64({})) == ""


@pytest.mark.parametrize("text", [
    "not base64!", base64.b64encode(b"not json").decode(), _b64(["a", "b"]),
    _b64({"a": 1}), _b64({"a": {"b": "c"}}), base64.b64encode(b"\xff\xfe").decode(),
    "A" * 9000,
])
def test_a_bad_context_is_invalid_argument(text: str) -> None:
    with pytest.raises(errors.InvalidArgument) as exc:
        sse_kms.parse_context(text)
    assert "string-string map" in exc.value.message


def test_bucket_key_flag() -> None:
    assert sse_kms.parse_bucket_key("true") and sse_kms.parse_bucket_key("TRUE")
    assert not sse_kms.parse_bucket_key("false")
    with pytest.raises(errors.InvalidArgument):
        sse_kms.parse_bucket_key("yes")


# ---- what a write asks for ------------------------------------------------------------------


def _sent(**params: object) -> CIMultiDict[str]:
    """The headers botocore sends for a PutObject with `params`."""
    headers: list[dict[str, str]] = []
    offline_client("PutObject", b"", [], headers).put_object(Bucket="b", Key="k", Body=b"x",
                                                            **params)
    return CIMultiDict(headers[0])


def test_what_botocore_sends_asks_for_kms() -> None:
    context = _b64({"project": "census"})
    h = _sent(ServerSideEncryption="aws:kms", SSEKMSKeyId="alias/backups",
              SSEKMSEncryptionContext=context, BucketKeyEnabled=True)
    assert sse.requested(h, None) == sse.Asked(sse.KMS, "alias/backups",
                                               '{"project":"census"}', True)
    assert sse.requested(_sent(ServerSideEncryption="aws:kms"), None) == sse.Asked(sse.KMS)


def test_the_bucket_default_applies_to_writes_that_name_none() -> None:
    default = sse.BucketDefault(sse.KMS, "alias/backups", bucket_key=True)
    assert sse.requested({}, default) == sse.Asked(sse.KMS, "alias/backups", "", True)
    assert sse.requested({sse_kms.BUCKET_KEY: "false"}, default) == \
        sse.Asked(sse.KMS, "alias/backups")
    # A write that names aws:kms without a key gets the default key (AWS: aws/s3).
    assert sse.requested({sse.HEADER: "aws:kms"}, default) == sse.Asked(sse.KMS, "", "", True)
    assert sse.requested({sse.HEADER: "AES256"}, default) == sse.Asked(sse.AES256)


@pytest.mark.parametrize("h", [
    {sse_kms.CONTEXT: _b64({"a": "b"})},                    # a context without aws:kms
    {sse.HEADER: "AES256", sse_kms.CONTEXT: _b64({"a": "b"})},
    {sse.HEADER: "aws:kms", sse_kms.CONTEXT: "%%%"},
    {sse.HEADER: "aws:kms", sse_kms.BUCKET_KEY: "maybe"},
])
def test_faulty_kms_headers_are_invalid_argument(h: dict[str, str]) -> None:
    with pytest.raises(errors.InvalidArgument):
        sse.requested(h, sse.BucketDefault(sse.KMS))


# ---- data keys under a KMS key --------------------------------------------------------------


def test_data_keys_open_only_under_their_key_and_context() -> None:
    material = os.urandom(32)
    use = KmsUse(ARN, '{"a":"b"}', bucket_key=True)
    dk = sse.seal_kms(material, use)
    assert dk.key is not None and dk.key not in dk.sealed and dk.kms == use
    assert sse.open_kms(material, dk.sealed, use) == dk
    for wrong_material, wrong_use in [
            (os.urandom(32), use),                                   # another key
            (material, dataclasses.replace(use, context='{"a":"c"}')),  # another context
            (material, dataclasses.replace(use, context="")),
            (material, dataclasses.replace(use, arn=ARN[:-1] + "0"))]:  # another key id
        with pytest.raises(errors.InternalError):                  # never garbage served
            sse.open_kms(wrong_material, dk.sealed, wrong_use)
    assert sse.seal_kms(material, use).key != dk.key


def test_kms_answers_and_etags() -> None:
    md5 = '"' + "ab" * 16 + '"'
    dk = sse.seal_kms(os.urandom(32), KmsUse(ARN, '{"a":"b"}', True))
    assert dk.response_headers() == {
        "x-amz-server-side-encryption": "aws:kms",
        "x-amz-server-side-encryption-aws-kms-key-id": ARN,
        "x-amz-server-side-encryption-bucket-key-enabled": "true"}
    written = dk.written_headers()
    assert json.loads(base64.b64decode(written[sse_kms.CONTEXT])) == {"a": "b"}
    plain = sse.seal_kms(os.urandom(32), KmsUse(ARN))
    assert sse_kms.BUCKET_KEY not in plain.response_headers()
    assert sse_kms.CONTEXT not in plain.written_headers()
    # AWS: an SSE-KMS object's ETag is not the MD5 of its bytes.
    assert dk.etag(md5) != md5 and len(dk.etag(md5)) == 34


# ---- the keyring's records ------------------------------------------------------------------


def test_key_material_opens_only_on_its_record_and_master() -> None:
    master = os.urandom(32)
    box = KeyBox(master)
    material = os.urandom(32)
    nonce, sealed = box.seal(KEY_ID, "alpha", material)
    rec = KmsKeyRecord(KEY_ID, "alpha", "backups", 5, KeyState.ENABLED, nonce, sealed)
    assert KmsKeyRecord.decode(rec.encode()) == rec and material not in rec.encode()
    assert box.open(rec) == material
    assert box.open(dataclasses.replace(rec, tenant="beta")) is None     # moved to another
    assert box.open(dataclasses.replace(rec, key_id=KEY_ID[:-1] + "0")) is None
    assert KeyBox(os.urandom(32)).open(rec) is None                      # another cluster
    disabled = dataclasses.replace(rec, state=KeyState.DISABLED)
    assert KmsKeyRecord.decode(disabled.encode()) == disabled and not disabled.enabled


def test_every_gateway_derives_the_same_default_key() -> None:
    master = os.urandom(32)
    one, two = KeyBox(master).default_record("alpha", 7), KeyBox(master).default_record(
        "alpha", 7)
    assert one == two and one.alias == sse_kms.DEFAULT_ALIAS and one.enabled
    assert one.encode() == two.encode()         # concurrent makers write the same record
    assert KeyBox(master).open(one) == KeyBox(master).open(two) is not None
    assert KeyBox(master).default_record("beta", 7).key_id != one.key_id
    assert KeyBox(master).default_record("alpha", 8).key_id != one.key_id  # made again
    assert KeyBox(os.urandom(32)).open(one) is None
    forged = dataclasses.replace(one, key_id=KEY_ID)    # unsealed, but not the derived id
    assert KeyBox(master).open(forged) is None


@pytest.mark.parametrize("alias, ok", [
    ("backups", True), ("alias/backups", True), ("team/a_b-1", True), ("aws/s3", False),
    ("alias/aws/mine", False), ("", False), ("a b", False), ("é", False), ("x" * 257, False),
])
def test_aliases(alias: str, ok: bool) -> None:
    if ok:
        assert kms.check_alias(alias) == alias.removeprefix("alias/")
    else:
        with pytest.raises(TenantError):
            kms.check_alias(alias)


# ---- which key a request may use ------------------------------------------------------------


class _Ring(kms.Keyring):
    """An in-memory keyring: what the store would answer."""

    def __init__(self, keys: list[KmsKeyRecord], box: KeyBox) -> None:
        self.records = {k.key_id: k for k in keys}
        self.box = box

    async def get(self, key_id: str) -> KmsKeyRecord | None:
        return self.records.get(key_id)

    async def list_keys(self, tenant: str | None = None) -> list[KmsKeyRecord]:
        return [k for k in self.records.values() if tenant in (None, k.tenant)]

    async def ensure_default(self, tenant: str) -> KmsKeyRecord:
        rec = self.box.default_record(tenant, 1)
        return self.records.setdefault(rec.key_id, rec)


async def _cache() -> tuple[KeyringCache, dict[str, KmsKeyRecord]]:
    box = KeyBox(os.urandom(32))

    def key(tenant: str, alias: str, state: KeyState = KeyState.ENABLED) -> KmsKeyRecord:
        key_id = str(os.urandom(4).hex())
        nonce, sealed = box.seal(key_id, tenant, os.urandom(32))
        return KmsKeyRecord(key_id, tenant, alias, 1, state, nonce, sealed)
    keys = {"a": key("alpha", "backups"), "off": key("alpha", "old", KeyState.DISABLED),
            "b": key("beta", "backups")}
    cache = KeyringCache(_Ring(list(keys.values()), box))
    assert await cache.refresh()
    return cache, keys


async def test_a_tenant_uses_only_its_own_enabled_keys() -> None:
    cache, keys = await _cache()
    a, b = keys["a"], keys["b"]

    async def write(tenant: str | None, text: str) -> OpenKey:
        return await cache.for_write(tenant, text, "us-east-1")
    assert (await write("alpha", a.key_id)).record == a
    assert (await write("alpha", "alias/backups")).record == a
    assert (await write("beta", "alias/backups")).record == b
    assert (await write("alpha", sse_kms.key_arn("us-east-1", "alpha", a.key_id))).record == a
    default = await write("alpha", "")
    assert default.record.alias == sse_kms.DEFAULT_ALIAS and default.record.tenant == "alpha"
    assert (await write("alpha", "alias/aws/s3")).record == default.record
    for tenant, text, err in [
            ("alpha", b.key_id, sse_kms.KmsNotFound),         # beta's id, looked up in alpha
            ("alpha", "alias/nothing", sse_kms.KmsNotFound),
            ("alpha", "key-1", sse_kms.KmsNotFound),
            ("alpha", sse_kms.key_arn("us-east-1", "beta", b.key_id), errors.AccessDenied),
            ("alpha", sse_kms.key_arn("eu-west-3", "alpha", a.key_id), sse_kms.KmsNotFound),
            ("alpha", keys["off"].key_id, sse_kms.KmsDisabled),
            ("alpha", "alias/old", sse_kms.KmsDisabled),
            (None, "", errors.AccessDenied)]:
        with pytest.raises(err):
            await write(tenant, text)
    use = KmsUse(sse_kms.key_arn("us-east-1", "alpha", a.key_id))
    assert (await cache.for_read("alpha", use, "us-east-1")).record == a
    for reader in ("beta", None):
        with pytest.raises(errors.AccessDenied):
            await cache.for_read(reader, use, "us-east-1")


async def test_a_disabled_key_is_refused_after_a_refresh() -> None:
    cache, keys = await _cache()
    a = keys["a"]
    use = KmsUse(sse_kms.key_arn("us-east-1", "alpha", a.key_id))
    await cache.for_read("alpha", use, "us-east-1")
    ring = cache.keyring
    assert isinstance(ring, _Ring)
    ring.records[a.key_id] = dataclasses.replace(a, state=KeyState.DISABLED)
    assert await cache.refresh()
    with pytest.raises(sse_kms.KmsDisabled) as exc:
        await cache.for_read("alpha", use, "us-east-1")
    assert exc.value.message == f"{use.arn} is disabled."
    # A key made after the last refresh is found by id at once.
    fresh = dataclasses.replace(a, key_id="fresh", alias="")
    nonce, sealed = ring.box.seal("fresh", "alpha", os.urandom(32))
    ring.records["fresh"] = dataclasses.replace(fresh, nonce=nonce, sealed=sealed)
    assert (await cache.for_write("alpha", "fresh", "us-east-1")).record.key_id == "fresh"


async def test_no_keyring_is_not_implemented() -> None:
    with pytest.raises(errors.NotImplementedError_):
        await KeyringCache(None).for_write("alpha", KEY_ID, "us-east-1")


# ---- records that carry a KMS key -----------------------------------------------------------


def test_records_keep_the_kms_key_and_old_ones_still_load() -> None:
    m = Manifest(3, '"e"', 5, inline=b"abc", sse=b"s" * 60, sse_kms=ARN,
                 sse_kms_context='{"a":"b"}', sse_bucket_key=True)
    assert Manifest.decode(m.encode()) == m and len(msgpack.unpackb(m.encode())) == 23
    s3 = dataclasses.replace(m, sse_kms="", sse_kms_context="", sse_bucket_key=False)
    assert len(msgpack.unpackb(s3.encode())) == 19      # SSE-S3's layout is as before
    up = Upload("k", "id", 1, sse=b"s" * 60, sse_kms=ARN, sse_kms_context="{}",
                sse_bucket_key=True)
    assert Upload.decode(up.encode()) == up
    old = msgpack.unpackb(up.encode())[:14]             # as written before KMS
    assert Upload.decode(msgpack.packb(old)) == dataclasses.replace(
        up, sse_kms="", sse_kms_context="", sse_bucket_key=False)


def test_bucket_records_keep_the_default_and_old_ones_still_load() -> None:
    b = BucketRecord("b", b"id", "alpha", 1, 4, 2, 8,
                     encryption=sse.BucketDefault(sse.KMS, "alias/backups", True))
    assert BucketRecord.decode(b.encode()) == b
    assert BucketRecord.decode(dataclasses.replace(b, encryption=None).encode()).encryption \
        is None
    old = [*msgpack.unpackb(b.encode())[:18], "AES256"]     # as written before KMS
    assert BucketRecord.decode(msgpack.packb(old)).encryption == sse.BucketDefault(sse.AES256)
    older = msgpack.unpackb(b.encode())[:18]                # before default encryption
    assert BucketRecord.decode(msgpack.packb(older)).encryption is None


def test_bucket_configuration_with_kms_as_botocore_writes_it() -> None:
    seen: list[bytes] = []
    offline_client("PutBucketEncryption", b"", seen).put_bucket_encryption(
        Bucket="b", ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                    "KMSMasterKeyID": ARN},
             "BucketKeyEnabled": True}]})
    default = sse.parse_configuration(seen[0])
    assert default == sse.BucketDefault(sse.KMS, ARN, True)
    got = offline_client("GetBucketEncryption", sse.render_configuration(default),
                         []).get_bucket_encryption(Bucket="b")
    rule = got["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule == {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                           "KMSMasterKeyID": ARN},
                    "BucketKeyEnabled": True}
    seen.clear()
    offline_client("PutBucketEncryption", b"", seen).put_bucket_encryption(
        Bucket="b", ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256",
                                                    "KMSMasterKeyID": ARN}}]})
    with pytest.raises(errors.InvalidArgument):
        sse.parse_configuration(seen[0])
