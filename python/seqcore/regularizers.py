"""Weight regularizers (Keras names and formulas). A regularizer is applied once per weight —
shared weights (TimeDistributed, every step of an RNN) are one weight, so they count once."""

from __future__ import annotations

from typing import Any

import numpy as np


class Regularizer:
    """``penalty(w) -> float`` and its gradient ``grad(w) -> array like w``."""

    def __call__(self, w: np.ndarray) -> float:
        raise NotImplementedError

    def grad(self, w: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {}


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w**2)``."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        for name, v in (("l1", l1), ("l2", l2)):
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"{type(self).__name__}: {name} must be a finite number >= 0. Received: {name}={v}")
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w: np.ndarray) -> float:
        out = 0.0
        if self.l1:
            out += self.l1 * float(np.abs(w).sum(dtype=np.float64))
        if self.l2:
            out += self.l2 * float(np.square(w, dtype=np.float64).sum())
        return out

    def grad(self, w: np.ndarray) -> np.ndarray:
        g = np.zeros_like(w)
        if self.l1:
            g += np.float32(self.l1) * np.sign(w)
        if self.l2:
            g += np.float32(2 * self.l2) * w
        return g

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    def __init__(self, l1: float = 0.01):
        super().__init__(l1=l1)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}


class L2(L1L2):
    def __init__(self, l2: float = 0.01):
        super().__init__(l2=l2)

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2}


def l1(l1: float = 0.01) -> L1:
    return L1(l1)


def l2(l2: float = 0.01) -> L2:
    return L2(l2)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> L1L2:
    """Keras's ``l1_l2`` helper (note its defaults: 0.01 each)."""
    return L1L2(l1, l2)


def get(identifier: Any) -> Regularizer | None:
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        table = {"l1": L1, "l2": L2, "l1_l2": lambda: L1L2(0.01, 0.01)}
        if identifier not in table:
            raise ValueError(f"Unknown regularizer {identifier!r}; expected one of {sorted(table)} or an instance.")
        return table[identifier]()  # type: ignore[no-any-return]
    raise TypeError(f"Could not interpret regularizer {identifier!r}: pass 'l1', 'l2', 'l1_l2' or an instance.")


def serialize(reg: Regularizer | None) -> dict[str, Any] | None:
    return None if reg is None else {"class_name": type(reg).__name__, "config": reg.get_config()}


def deserialize(config: Any) -> Regularizer | None:
    if isinstance(config, dict):
        cls = {"L1": L1, "L2": L2, "L1L2": L1L2}[config["class_name"]]
        return cls(**config.get("config", {}))  # type: ignore[arg-type]
    return get(config)
