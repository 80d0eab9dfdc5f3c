"""glibc malloc tuning for training loops (Linux only; opt out with ``SEQCORE_MALLOC_TUNING=0``).

A training step allocates and frees the same large arrays (activations, gradients) every step.
glibc returns freed large blocks to the OS (``mmap``/trim thresholds), so each step page-faults the
memory back in and zeroes it: measured on the CNN-LSTM workload, ~30% of the step went to page
faults. Raising the thresholds keeps that memory in the process for reuse, as jemalloc/tcmalloc do
for PyTorch users. The cost: the resident set stays at its peak instead of shrinking between steps.
"""

from __future__ import annotations

import ctypes
import os
import platform

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 30  # 1 GiB: allocations below stay in the heap; 1 GiB of free heap before trimming

tuned = False


def tune() -> bool:
    """Applies the tuning once; returns whether it is in effect."""
    global tuned
    if tuned:
        return True
    if os.environ.get("SEQCORE_MALLOC_TUNING", "1").strip() in ("0", "false", "no", "off"):
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
