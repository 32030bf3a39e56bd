"""Keep freed heap memory between training steps instead of handing it back to the system.

A training step allocates its caches (a MADE at batch 200 x 50 units: 80 KB per activation,
a few MB per step) and frees them all at the end of the backward pass. glibc's malloc returns
the top of the heap to the system once more than its trim threshold (128 KB at start) is free
there, so the next step faults every page back in: on the MAF NPE of issue 12 that cost 1.4x per
epoch (10 epochs 1.28 s against 0.90 s CPU). glibc raises its thresholds by itself whenever a
block that was served by mmap is freed (mallopt(3), "dynamic mmap threshold": the mmap
threshold becomes the block's size, the trim threshold twice that, for blocks up to 32 MB on
64-bit systems), which is why the same loop ran at full speed in a process that had imported
torch or freed a large array before.

:func:`keep_freed_heap` does that once per process, on purpose: it allocates one 16 MB array
(never touched, so no page is faulted in) and frees it. Afterwards up to 32 MB of freed heap
stay with the process. No numbers change; other allocators (and ``MALLOC_*`` settings, which
switch the dynamic thresholds off) are unaffected.
"""
from __future__ import annotations

import numpy as np

_BLOCK_BYTES = 16 << 20           # below glibc's 32 MB ceiling of the dynamic threshold
_done = False


def keep_freed_heap() -> bool:
    """Raise glibc's dynamic mmap/trim thresholds (see the module docstring), once per process.
    Returns True the first time (the block was allocated and freed), False after."""
    global _done
    if _done:
        return False
    block = np.empty(_BLOCK_BYTES // 8)   # served by mmap (above the starting threshold)
    del block                             # freed: glibc raises its thresholds to its size
    _done = True
    return True
