"""Limits and default sizes of the load generator, with their units in their names.

The workload sizes are the ones issue 3 fixes (4 KiB small objects, 64 MiB large ones, 1 MiB
ranges of a 256 MiB object, 10,000 keys in 100 prefixes, 8 x 8 MiB multipart parts); every one
can be overridden on the command line. Relations between them are asserted at import.
"""

KIB = 1024
MIB = 1024 * KIB

SMALL_OBJECT_BYTES = 4 * KIB
LARGE_OBJECT_BYTES = 64 * MIB
RANGE_OBJECT_BYTES = 256 * MIB
RANGE_BYTES = 1 * MIB
PART_BYTES = 8 * MIB
PARTS_PER_UPLOAD = 8
LIST_KEYS = 10_000
LIST_PREFIXES = 100
# Objects in the listing bucket are empty: only their names matter and empty bodies make the
# 10,000-object setup cheap on a slow peer.
LIST_OBJECT_BYTES = 0
# Keys that get-small and mixed pick from.
SMALL_KEY_POOL = 256
LIST_PAGE_KEYS = 1000

# Bodies are served from a seeded block of this size; it is not a power of two so that object
# bytes do not line up with any stripe or block size of the store under test.
BODY_BLOCK_BYTES = 1 * MIB + 4093
# Largest slice handed to the HTTP client at once (PUT bodies) or compared at once (GET).
CHUNK_BYTES = 256 * KIB

DURATION_S_DEFAULT = 10.0
DURATION_S_MAX = 3600.0
MAX_OPS_DEFAULT = 1_000_000
# Latencies are kept one per op; this bounds the memory they take (8 bytes each).
LATENCY_SAMPLES_MAX = 2_000_000
CONCURRENCY_MAX = 1024
REQUEST_TIMEOUT_S = 300.0
# Setup (prepare) work runs with this many requests in flight.
PREPARE_CONCURRENCY = 32

# A run whose client used more than this fraction of one core measured the client, not the
# server: it is flagged in the report.
CLIENT_BOUND_CPU_FRACTION = 0.85

# Mixed workload shares, in percent.
MIXED_GET_PERCENT = 70
MIXED_PUT_PERCENT = 25
MIXED_DELETE_PERCENT = 5

assert MIXED_GET_PERCENT + MIXED_PUT_PERCENT + MIXED_DELETE_PERCENT == 100
assert CHUNK_BYTES <= BODY_BLOCK_BYTES
assert RANGE_BYTES <= RANGE_OBJECT_BYTES
assert LIST_KEYS % LIST_PREFIXES == 0
assert 0 < CLIENT_BOUND_CPU_FRACTION <= 1
assert MAX_OPS_DEFAULT <= LATENCY_SAMPLES_MAX
