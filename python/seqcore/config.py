"""Process-wide settings a user may change (``seqcore.config``, as ``keras.config``).

Owns the training-memory limit that decides when a recurrent layer's backpropagation through time
is checkpointed instead of keeping its whole tape (see ``seqcore._bptt``).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["get_training_memory_limit", "set_training_memory_limit"]

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20}
_UNITS |= {"g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}

_limit: int | None = None  # None: half the memory available (read when first needed, and at fit start)
_default: int | None = None


def parse_bytes(value: Any, who: str) -> int:
    """``2**30``, ``"2GiB"``, ``"512 MB"``, ``"1.5g"`` -> a number of bytes (> 0)."""
    if isinstance(value, bool):
        raise TypeError(f"{who}: expected a number of bytes or a size such as '2GiB'; received {value!r}.")
    if isinstance(value, (int, float)):
        n = float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", value)
        unit = m.group(2).lower() if m else ""
        if not m or unit not in _UNITS:
            raise ValueError(
                f"{who}: cannot read {value!r} as a size; write a number of bytes or a size such as "
                f"'512MiB', '2GiB' or '1.5GB'."
            )
        n = float(m.group(1)) * _UNITS[unit]
    else:
        raise TypeError(f"{who}: expected a number of bytes or a size such as '2GiB'; received {type(value).__name__}.")
    if not n > 0 or n != n or n == float("inf"):
        raise ValueError(f"{who}: the size must be a positive, finite number of bytes; received {value!r}.")
    return int(n)


def available_memory() -> int:
    """Bytes the system can still give this process (Linux ``MemAvailable``; elsewhere 8 GiB)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 8 * 2**30


def set_training_memory_limit(limit: Any) -> None:
    """Memory one recurrent layer's training tape may take before its backpropagation through time
    is checkpointed (exact gradients, recomputing the forward in windows). ``limit``: bytes or a
    size string (``"2GiB"``); ``None`` restores the default, half the memory available when ``fit``
    starts."""
    global _limit
    _limit = None if limit is None else parse_bytes(limit, "set_training_memory_limit")


def get_training_memory_limit() -> int:
    """The limit in bytes (the user's, else half the memory available when it was last read)."""
    global _default
    if _limit is not None:
        return _limit
    if _default is None:
        _default = available_memory() // 2
    return _default


def refresh_default_limit() -> None:
    """Called when ``fit`` starts: the default limit follows the memory available then."""
    global _default
    _default = None
