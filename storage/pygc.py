"""CPython's cyclic garbage collector, set for the server processes.

Why: a request allocates hundreds of GC-tracked objects (coroutines, futures, dicts of
headers, tuples), so with CPython's default threshold (a young-generation collection every
700 net allocations) the gateway ran a collection every request or two, and every tenth of
those also rescanned the older generations, which hold every module, ring and config object
of the process: gc_collect_main and its visitors were 3-4 % of the gateway's CPU under small
GETs (perf). Objects alive once the server is set up live as long as the process, so they
are frozen out of the collector's view, and the young generation is collected less often.

The cost: cyclic garbage lives a little longer (up to YOUNG_THRESHOLD more allocations) before
it is freed; reference counting still frees everything else at once. COFFRE_GC_TUNE=0 keeps
CPython's defaults.
"""

from __future__ import annotations

import gc
import os

YOUNG_THRESHOLD = 20_000     # net allocations of tracked objects between young collections
OLDER_THRESHOLDS = (20, 20)  # young collections per middle one, middle per full


def tune() -> None:
    """Call once the process is set up, before it serves: what exists now is frozen."""
    if os.environ.get("COFFRE_GC_TUNE") == "0":
        return
    gc.collect()             # frozen objects are never freed: drop start-up garbage first
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
