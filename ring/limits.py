"""Limits of the ring package, with their units in their names.

Every number that bounds an input (CLI argument, ring file field) lives here so that the
builder, the file reader and the CLI reject the same things. Relations between limits are
asserted at import.
"""

from __future__ import annotations

# 2^part_power partitions. 2^20 is a flat array of 1 M entries per slot: beyond that the
# pure-Python builder takes minutes, and the 2% balance goal is reached long before.
part_power_min = 0
part_power_max = 20

# Slots per partition: k+m of an EC policy or a replica count.
width_min = 1
width_max = 32

# Device ids are stored in an array('H'); 0xFFFF marks an empty slot while building.
device_id_max = 0xFFFE
empty_slot_id = 0xFFFF
devices_count_max = 4096

weight_min_exclusive = 0.0
weight_max = 1_000_000.0

addr_length_max_chars = 255
domain_length_max_chars = 1024
# region/zone/node/device
domain_levels_count = 4

min_part_hours_max = 24 * 366
# Hours are stored as epoch seconds in an array('I') (fits until 2106).
epoch_seconds_max = 0xFFFF_FFFF

ring_file_size_max_bytes = 256 * 1024 * 1024

# validate: a device whose slots differ from its weighted share by more than this is reported.
balance_tolerance_percent = 2.0

publish_timeout_seconds = 10.0

assert part_power_min >= 0
assert (1 << part_power_max) * width_max * 2 < ring_file_size_max_bytes
assert device_id_max < empty_slot_id <= 0xFFFF
assert devices_count_max <= device_id_max + 1
assert domain_levels_count == 4
