"""Limits of the S3 front, each with its unit in the name.

AWS's published limits where S3 has one; our own otherwise. Relations between them are
asserted at import so that a change that breaks one fails at start, not under load.
"""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

key_bytes_max = 1024                      # S3: object keys are at most 1024 bytes of UTF-8
bucket_name_chars_min = 3
bucket_name_chars_max = 63
user_metadata_bytes_max = 2 * KIB         # S3: x-amz-meta-* names + values
object_bytes_max = 5 * 1024 * GIB         # S3: 5 TiB
put_object_bytes_max = 5 * GIB            # S3: a single PUT is at most 5 GiB
part_bytes_min = 5 * MIB                  # S3: every part but the last
part_number_max = 10_000
list_keys_max = 1000                      # max-keys is capped at 1000
list_buckets_max = 10_000                 # S3: max-buckets is 1..10000, and the default page
delete_objects_keys_max = 1000
xml_body_bytes_max = 2 * MIB              # request bodies we parse as XML
tags_per_object_max = 10
# How long a CompleteMultipartUpload's claim on its upload keeps an Abort out (it does only
# metadata work: seconds); an older claim is a Complete that stopped, or two claims that
# both lost, and an Abort then drops the records without freeing data (gateway/uploads.py),
# which is safe whatever the Complete did.
upload_claim_ms_max = 60 * 1000
signature_echo_chars_max = 128           # a SignatureDoesNotMatch shows this much of the given one
# SSE-KMS (gateway/sse_kms.py, gateway/kms.py): AWS caps aliases at 256 characters; the
# context header and the keys a tenant holds are our own bounds (every gateway reloads
# every key every few seconds).
encryption_context_chars_max = 8 * KIB    # x-amz-server-side-encryption-context, base64
kms_alias_chars_max = 256
kms_keys_per_tenant_max = 100

# Data path.
# One fragment block per stripe (a 4+2 stripe is 4 MiB of data). Per-stripe work (six block
# sends, two worker-thread jobs, futures, the nodes' per-write calls) was a large share of
# put-large at 256 KiB: 188-205 -> 262-297 MB/s, gateway 4.5-4.7 -> 3.3-3.5 and nodes
# 3.7-4.0 -> 2.7-2.9 ms CPU per object MB. Each object keeps the block it was written with.
stripe_block_bytes = 1024 * KIB
# Bytes of each fragment fetched per round trip on GET: 2 MiB for the first batch (the first
# byte waits for it), 4 MiB for the ones after (as stripes: these over the object's block
# size). Under 64 MiB GETs nodes spent 1.75-1.88 ms CPU per object MB at 1 MiB, 1.33-1.47
# at 2; on the raw RPC channel 1.17-1.52 at 2 and 0.96-1.03 at 4 (get-large 528-617 ->
# 627-697 MB/s).
read_batch_fragment_bytes = 2 * MIB
read_batch_fragment_bytes_later = 4 * MIB
# Listings: rows asked of one index shard per call at most (the node caps it too), extra rows
# beyond a shard's expected share and the floor of a later ask; records per replica per call
# when replicas disagree and are merged in full.
shard_page_rows_max = 1001                # a page of 1000 + 1 to tell it is truncated
shard_slack_rows = 8
shard_refill_rows_min = 64
list_fallback_page_records = 256
# Listing read-ahead (gateway.list_ahead): pages listed ahead per gateway process, and how
# long one waits for its request (a paging client asks within milliseconds).
list_ahead_pages_max = 16
list_ahead_keep_s = 10.0
# A first page (no start-after) is read ahead only when this many keys were asked:
# paging clients ask for 1000; a max-keys=1 probe never wants the next page.
list_ahead_first_keys_min = 1000
# Object bytes all uploads and downloads of one gateway process may hold at once (stripes
# being hashed, encoded, sent, fetched or decoded): beyond it requests wait (gateway.budget).
inflight_object_bytes_max = 256 * MIB
fragment_queue_blocks = 4                 # blocks buffered per fragment stream on PUT
read_hedge_after_s = 0.5                  # a fragment read this slow gets a parity twin
meta_hedge_after_s = 0.2                  # a metadata read this slow asks spare replicas
meta_put_attempts_max = 3                 # a write finding newer records re-stamps
write_straggler_s = 2.0                   # a node this slow to take a block is dropped
retire_after_s = 300.0                    # replaced data outlives its manifest this long
retire_pending_max = 100_000              # retired objects waiting per gateway process

# A node whose last call failed is pinged before a write counts it; slower than this = down.
suspect_probe_timeout_s = 0.5
# A refused request's unread body is read and dropped up to this much, within this time, so
# that a client that sends its whole body before reading (most do) gets the answer; past
# either bound the connection is closed after the answer.
refused_body_drain_bytes_max = 8 * 1024 * 1024
refused_body_drain_s = 10.0
# Server access logging (gateway.access_log): the lines one gateway process holds for
# delivery, all target buckets together (beyond it new lines are dropped, as AWS's delivery
# is best effort too), a batch's size at which it is delivered without waiting for the next
# flush, and how many times a failed delivery is tried again before its lines are dropped.
access_log_buffer_bytes_max = 64 * MIB
access_log_object_bytes_max = 4 * MIB
access_log_retries_max = 3

assert stripe_block_bytes % 4096 == 0
assert read_batch_fragment_bytes <= read_batch_fragment_bytes_later
assert put_object_bytes_max <= object_bytes_max
assert part_bytes_min < put_object_bytes_max
assert access_log_object_bytes_max <= min(access_log_buffer_bytes_max, put_object_bytes_max)
