"""``seqcore.RematScope``: Keras 3's rematerialization scope, for the layers where it matters.

Keras code that wraps layer creation in ``keras.RematScope(mode=...)`` keeps working. In seqcore
the layers whose saved activations grow with the sequence are the recurrent ones (LSTM, GRU,
SimpleRNN, and their ``Bidirectional`` / ``RNN(cell)`` forms); a recurrent layer created inside a
scope that selects it trains with checkpointed backpropagation through time (``seqcore._bptt``):
the same gradients, bit for bit, with a tape of one window instead of the whole sequence. Every
other layer keeps one activation per call, which recomputing would not shrink with T, so the scope
leaves them as they are.

Modes (Keras's names and meanings): ``"full"`` and ``"activations"`` select every recurrent layer;
``"larger_than"`` those whose output (batch axis counted as 1 when unknown, as Keras does) has
more than ``output_size_threshold`` elements; ``"list_of_layers"`` those named in
``layer_names``; ``None`` none (it turns an outer scope off).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

__all__ = ["RematScope"]

_MODES = ("full", "activations", "larger_than", "list_of_layers", None)
_local = threading.local()


class RematMode(NamedTuple):
    mode: str | None
    output_size_threshold: int
    layer_names: tuple[str, ...]

    def selects(self, name: str, output_shape: Sequence[int | None]) -> bool:
        if self.mode in ("full", "activations"):
            return True
        if self.mode == "larger_than":
            return math.prod(d or 1 for d in output_shape) > self.output_size_threshold
        if self.mode == "list_of_layers":
            return name in self.layer_names
        return False


class RematScope:
    """``with seqcore.RematScope(mode="full"): lstm = layers.LSTM(128)`` checkpoints that layer's
    backpropagation through time. See the module docs for the modes."""

    def __init__(self, mode: str | None = "full", output_size_threshold: int = 1024, layer_names: Any = None):
        if mode not in _MODES:
            raise ValueError(
                f"RematScope: invalid mode {mode!r}. Supported modes are: 'full', 'activations', "
                f"'larger_than', 'list_of_layers', or None."
            )
        if isinstance(output_size_threshold, bool) or not isinstance(output_size_threshold, int):
            raise TypeError(f"RematScope: output_size_threshold must be an int; received {output_size_threshold!r}.")
        if isinstance(layer_names, str):
            raise TypeError(f"RematScope: layer_names must be a list of names; received the string {layer_names!r}.")
        self.mode = mode
        self.output_size_threshold = output_size_threshold
        self.layer_names = list(layer_names or [])

    def __enter__(self) -> RematScope:
        _stack().append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        stack = _stack()
        if stack and stack[-1] is self:
            stack.pop()


def _stack() -> list[RematScope]:
    s = getattr(_local, "stack", None)
    if s is None:
        s = _local.stack = []
    return s


def current_mode() -> RematMode | None:
    """The innermost scope's settings (what a layer created now records), or None."""
    stack = _stack()
    if not stack:
        return None
    top = stack[-1]
    return RematMode(top.mode, top.output_size_threshold, tuple(top.layer_names))
