"""``Lambda``: a layer from a function of ``seqcore.ops`` (Keras 3's ``keras.layers.Lambda``).

The function is traced once on symbolic inputs, as a subclassed layer's ``call`` is, so its
gradient comes from the recorded ops; a function that leaves the ops (NumPy on a tensor, Python
control flow on its value) is refused then, with the fix, instead of silently giving no gradient.

A Lambda saves its function by reference (module and qualified name), and loading finds it only in
a module that is already imported: loading a model never runs code it brings along (Keras saves
the bytecode instead and needs ``safe_mode=False`` to load it). An anonymous or nested function
cannot be saved; the error says to define it at module level.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

from .base import Layer


class Lambda(Layer):
    """``Lambda(function, output_shape=None, mask=None, arguments=None)``: ``function(inputs,
    **arguments)`` (also given ``training=``/``mask=`` when it takes them, as in Keras)."""

    def __init__(self, function: Any, output_shape: Any = None, mask: Any = None,
                 arguments: dict[str, Any] | None = None, **kwargs: Any):  # fmt: skip
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda {self.name!r}: function must be callable; received {type(function).__name__}.")
        if mask is not None:
            raise ValueError(
                f"Lambda {self.name!r}: mask= is not supported by seqcore (masks travel as per-sample lengths). "
                f"Put a Masking layer after the Lambda instead."
            )
        if arguments is not None and not isinstance(arguments, dict):
            raise TypeError(f"Lambda {self.name!r}: arguments must be a dict; received {type(arguments).__name__}.")
        self.function = function
        self.output_shape_arg = None if output_shape is None else tuple(output_shape) if isinstance(
            output_shape, (list, tuple)) else output_shape  # fmt: skip
        self.arguments = dict(arguments or {})
        try:
            params = inspect.signature(function).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        self._takes = {k for k in ("training", "mask") if k in params}

    def call(self, inputs: Any, training: Any = None) -> Any:
        kw = dict(self.arguments)
        if "training" in self._takes:
            kw["training"] = training
        if "mask" in self._takes:
            kw["mask"] = None
        try:
            return self.function(inputs, **kw)
        except TypeError as e:
            if "symbolic tensor" in str(e) or "seqcore.ops" in str(e):
                raise TypeError(
                    f"Lambda {self.name!r}: its function must be built from seqcore.ops (keras.ops) so that it can "
                    f"be differentiated. {e}"
                ) from None
            raise

    def get_config(self) -> dict[str, Any]:
        fn = self.function
        name = getattr(fn, "__qualname__", "")
        module = getattr(fn, "__module__", None)
        if not module or not name or "<lambda>" in name or "<locals>" in name:
            raise ValueError(
                f"Lambda {self.name!r}: seqcore saves a Lambda's function by name, so it must be a function defined "
                f"at module level (received {name or type(fn).__name__!r}). Define it with `def` at the top of a "
                f"module, or write a Layer subclass."
            )
        return {
            **super().get_config(),
            "function": {"module": module, "name": name},
            "output_shape": self.output_shape_arg,
            "arguments": self.arguments,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Lambda:
        cfg = dict(config)
        ref = cfg.pop("function")
        if not (isinstance(ref, dict) and "module" in ref and "name" in ref):
            raise ValueError(
                f"Lambda {cfg.get('name')!r}: the saved function {str(ref)[:80]!r} is not a reference seqcore can "
                f"resolve (a Keras file holds Python bytecode, which seqcore does not load)."
            )
        module = sys.modules.get(ref["module"])
        if module is None:
            raise ValueError(
                f"Lambda {cfg.get('name')!r}: its function {ref['module']}.{ref['name']} lives in a module that is "
                f"not imported; import {ref['module']} before loading (loading never imports code itself)."
            )
        fn: Any = module
        for part in ref["name"].split("."):
            fn = getattr(fn, part, None)
            if fn is None:
                raise ValueError(f"Lambda {cfg.get('name')!r}: {ref['module']} has no {ref['name']}.")
        return cls(fn, **cfg)
