"""Optional glibc malloc tuning (Linux): ``seqcore.tune_malloc()`` or ``SEQCORE_MALLOC_TUNING=1``.

A training step allocates and frees the same large arrays every step. glibc returns freed large
blocks to the OS, so each step page-faults the memory back in and zeroes it (measured: ~30% of a
CNN-LSTM step before seqcore pooled its own buffers). seqcore's kernels now reuse their buffers
(rust/src/pool.rs), so this is not needed for them; it remains available because it speeds up
everything else in the process too (NumPy temporaries, and PyTorch's CPU ops, which benefit as
much), the way jemalloc/tcmalloc are used with PyTorch. It is off by default because it changes the
whole process's allocator behaviour: the resident set then stays at its peak.
"""

from __future__ import annotations

import ctypes
import os
import platform

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 30  # 1 GiB: allocations below stay in the heap; 1 GiB of free heap before trimming

tuned = False


def tune(force: bool = False) -> bool:
    """Applies the tuning (once) when ``force`` or ``SEQCORE_MALLOC_TUNING=1``; returns whether it
    is in effect."""
    global tuned
    if tuned:
        return True
    if force:
        os.environ["SEQCORE_MALLOC_TUNING"] = "1"
    if os.environ.get("SEQCORE_MALLOC_TUNING", "0").strip() not in ("1", "true", "yes", "on"):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, _THRESHOLD) == 1
    except (OSError, AttributeError):
        return False
    tuned = bool(ok)
    return tuned
