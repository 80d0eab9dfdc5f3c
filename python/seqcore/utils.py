"""Utilities: the global random generator (seeding) and small helpers shared by layers."""

from __future__ import annotations

import numpy as np

_rng = np.random.default_rng()


def set_random_seed(seed: int) -> None:
    """Makes weight initialization, shuffling and dropout repeatable (for the same thread count)."""
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"set_random_seed: seed must be an int; received {seed!r}.")
    _rng = np.random.default_rng(int(seed))


def rng() -> np.random.Generator:
    """The generator seqcore draws from (reseeded by :func:`set_random_seed`)."""
    return _rng
