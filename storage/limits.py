"""Every size and count limit of the storage node, with its unit in its name.

Rules: other modules import limits from here and never hard-code them; the relations that the
code relies on are asserted at import so that a bad edit fails loudly at start-up.
"""

from __future__ import annotations

# Keys: S3 keys reach 1024 bytes; the gateway prefixes them (bucket shard, version), so the node
# accepts a little more.
key_size_bytes_max = 1100

# LMDB's compiled-in key limit (MDB_MAXKEYSIZE).
lmdb_key_size_bytes_max = 511
# Bytes of the user key kept verbatim in an LMDB key; longer keys get a hash suffix (keys.py).
lmdb_key_prefix_bytes = 480
# Partition number at the head of every LMDB key (big-endian, so partitions sort numerically).
partition_prefix_bytes = 4
# The hash suffix that disambiguates long keys sharing their first lmdb_key_prefix_bytes.
long_key_suffix_bytes = 8

# Metadata records: the value (a manifest, maybe with an inlined small object).
meta_value_size_bytes_max = 1024 * 1024
# Timestamps are hybrid-logical-clock values compared as unsigned integers.
meta_ts_bits = 128

# Fragments: one erasure-coded fragment of one object.
fragment_size_bytes_max = 5 * 1024 * 1024 * 1024
# Body checksum granularity: a range read verifies only the chunks it touches. 64 KiB keeps the
# checksum overhead at 8/65536 and the over-read of a small range at most 128 KiB.
chunk_size_bytes = 64 * 1024

# Segment files roll once they grow past this size (a record may end past it).
segment_size_bytes_max = 256 * 1024 * 1024
# Writes are batched into pwrites of about this size while a body streams in.
write_batch_bytes = 1024 * 1024
# A pwrite at least this big asks the kernel to start writing it out at once (writeback.py).
writeback_start_bytes = 256 * 1024
# Reads are verified and served in pieces of about this size.
read_batch_bytes = 1024 * 1024
# A fragment record at least this big leaves the page cache once it is durable
# (posix_fadvise DONTNEED after its fdatasync; Swift's object server does the same past its
# keep_cache_size). Why: a write into pages the kernel has to find anew cost 3.05 ms of CPU
# per MB on this 2-core VM, into pages just dropped 0.36 ms (1 GiB in 1 MiB pwrites, each
# 64 MiB fdatasync'ed): put-large 146 -> 168-171 MB/s. Reads keep what they read cached:
# dropping after reads too cost get-large ~15 % (450-478 vs 534-573 MB/s).
uncached_record_bytes_min = 4 * 1024 * 1024
# The largest range that read_range returns in one piece (the gateway asks a few MiB).
read_range_bytes_max = 64 * 1024 * 1024

# Group commit: the most operations folded into one fdatasync + LMDB transaction.
commit_batch_ops_max = 4096
# A group commit this small runs on the event loop instead of the commit thread: a few
# operations whose segments hold at most this many unsynced bytes (small records).
commit_inline_ops_max = 64
commit_inline_bytes_max = 256 * 1024

# Listings and paging.
list_limit_max = 10_000
# A listing page stops after examining this many records (deleted ones, skipped groups).
list_scan_records_max = 10_000
# Besides each partition's running digest (storage/meta_digest.py), one per group of records
# that share their first this-many key bytes: a gateway's object records start with a kind
# byte and an 8-byte bucket id, so a listing compares only its own bucket's records, and
# writes to other buckets or to usage records in the same partition do not count.
digest_group_bytes = 9
# Flat listing pages of at most this many rows run on the node's event loop (no thread hop):
# a ~160-row shard page is ~1 ms of work, delimiter pages hop through unknown ranges.
list_inline_rows_max = 256

# LMDB map size: address space only (the file grows as needed).
lmdb_map_size_bytes = 64 * 1024 * 1024 * 1024
lmdb_max_readers = 512

# Compaction rewrites a sealed segment whose live fraction fell below this.
compaction_live_fraction_min = 0.5
# Scrubber default rate.
scrub_rate_bytes_per_s = 32 * 1024 * 1024
# Metadata records scrubbed per second on an idle device (1,000,000 records: ~8 min, ~1 % of
# a core); client work seen within the busy window makes the scrubber this many times slower.
scrub_meta_records_per_s = 2_000.0
scrub_busy_window_s = 1.0
scrub_busy_slowdown = 10.0

# Ring files pushed to the admin API.
ring_file_size_bytes_max = 64 * 1024 * 1024
ring_name_chars_max = 64

# The framed RPC channel (raw TCP on the node's HTTP port, rpc.py) carries small calls;
# bodies above these sizes go over plain streamed HTTP instead.
rpc_put_body_bytes_max = 1024 * 1024
rpc_read_bytes_max = 4 * 1024 * 1024
rpc_message_bytes_max = 8 * 1024 * 1024
# Calls one RPC connection may have running on the node at once (backpressure beyond it).
rpc_inflight_per_connection_max = 256
# RPC connections a client keeps to each node (each carries many calls in flight).
rpc_connections_per_node = 2
shutdown_drain_s = 10.0                   # SIGTERM: in-flight calls finish within this
rpc_batch_bytes_max = 256 * 1024           # frames coalesced into one message at most

# Disk work runs in this many threads per node (reads and pwrites; commits have their own).
io_threads = 16


assert partition_prefix_bytes + lmdb_key_prefix_bytes + long_key_suffix_bytes <= (
    lmdb_key_size_bytes_max
)
assert lmdb_key_prefix_bytes < key_size_bytes_max
assert chunk_size_bytes <= write_batch_bytes
assert write_batch_bytes % chunk_size_bytes == 0
assert read_batch_bytes % chunk_size_bytes == 0
assert meta_value_size_bytes_max <= segment_size_bytes_max
assert 0.0 < compaction_live_fraction_min < 1.0
assert rpc_put_body_bytes_max + key_size_bytes_max + 1024 <= rpc_message_bytes_max
assert rpc_read_bytes_max + 1024 <= rpc_message_bytes_max
assert meta_value_size_bytes_max + key_size_bytes_max + 1024 <= rpc_message_bytes_max
