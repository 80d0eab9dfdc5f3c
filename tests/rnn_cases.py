"""Shared helpers for the recurrent-kernel tests: random cases and golden-case loading."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

GOLDEN = Path(__file__).parent / "golden" / "rnn_goldens.npz"


@cache
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as z:
        return {k: z[k] for k in z.files}


def golden_cases(cell: str) -> list[str]:
    return sorted(
        k.split("__")[1]
        for k in golden()
        if k.startswith(f"{cell}__") and k.endswith("__config") and k.count("__") == 2
    )


def golden_case(cell: str, case: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, np.ndarray]]:
    """(inputs, upstream gradients, Keras results) of one golden case (see tests/golden/)."""
    g = golden()
    cfg = json.loads(str(g[f"{cell}__{case}__config"]))
    kw: dict[str, Any] = {
        "x": g[f"{cell}__x"],
        "kernel": g[f"{cell}__kernel"],
        "recurrent_kernel": g[f"{cell}__recurrent_kernel"],
        "bias": g[f"{cell}__bias"] if cfg["use_bias"] else None,
        "h0": g[f"{cell}__h0"] if cfg["initial_state"] else None,
        "lengths": g[f"{cell}__lengths"] if cfg["masked"] else None,
        "activation": cfg["activation"],
        "recurrent_activation": cfg["recurrent_activation"],
        "go_backwards": cfg["go_backwards"],
    }
    up = {"d_outputs": g[f"{cell}__G"], "d_h_last": g[f"{cell}__GH"]}
    if cell == "lstm":
        kw["c0"] = g[f"{cell}__c0"] if cfg["initial_state"] else None
        up["d_c_last"] = g[f"{cell}__GC"]
    else:
        kw["reset_after"] = cell == "gru_ra"
    prefix = f"{cell}__{case}__"
    return kw, up, {k[len(prefix) :]: v for k, v in g.items() if k.startswith(prefix)}


def assert_close(actual: Any, desired: Any, tol: float, what: str) -> None:
    """float32 kernel against a float64 oracle: error relative to the array's scale."""
    desired = np.asarray(desired, dtype=np.float64)
    assert actual is not None, what
    actual = np.asarray(actual, dtype=np.float64)
    assert actual.shape == desired.shape, f"{what}: shape {actual.shape} != {desired.shape}"
    scale = max(1.0, float(np.abs(desired).max())) if desired.size else 1.0
    np.testing.assert_allclose(actual, desired, rtol=0, atol=tol * scale, err_msg=what)


def random_lengths(rng: np.random.Generator, b: int, t: int) -> np.ndarray:
    lens = rng.integers(0, t + 1, size=b)
    if b >= 2:
        lens[0], lens[1] = t, 0  # always include a full and an empty sample
    return lens
