"""Keras Functional graphs for ``interop.keras``: reading a Keras ``Model(inputs, outputs)`` config
into a seqcore ``Functional`` model, and writing a seqcore ``Functional`` as Keras's config.

A Keras Functional config lists every layer (and every ``keras.ops`` call made on symbolic
tensors, such as ``x + res``) with its ``inbound_nodes``: the arguments of each call, a tensor
written as ``{"class_name": "__keras_tensor__", "config": {"shape", "dtype", "keras_history":
[layer, node, index]}}``. The model's ends are ``input_layers``/``output_layers`` (lists, or
dicts of them). Ops are not layers to Keras: they are absent from ``model.layers`` and hold no
weights, so the weight paths of a ``.keras`` file (``layers/<snake class name>``, InputLayers
counted) skip them. Layer entries themselves are mapped by ``interop.keras``'s importers and
exporters; this module owns the wiring.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .. import ops as sc_ops
from ..layers import Input, Layer
from ..layers.core import InputLayer
from ..models.functional import Functional, replay_calls, resolve_end
from ..ops import Op
from ..symbolic import KerasTensor, Node

# Keras op classes (keras.src.ops.numpy, or .nn where noted) and the seqcore.ops function with the
# same formula, with the options each takes (what Keras keeps in the op's config).
_KERAS_OPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Add": ("add", ()),
    "Subtract": ("subtract", ()),
    "Multiply": ("multiply", ()),
    "TrueDivide": ("divide", ()),
    "Divide": ("divide", ()),
    "Negative": ("negative", ()),
    "Absolute": ("abs", ()),
    "Square": ("square", ()),
    "Sqrt": ("sqrt", ()),
    "Exp": ("exp", ()),
    "Log": ("log", ()),
    "Tanh": ("tanh", ()),
    "Relu": ("relu", ()),
    "Sigmoid": ("sigmoid", ()),
    "Gelu": ("gelu", ("approximate",)),
    "LeakyRelu": ("leaky_relu", ("negative_slope",)),
    "Softmax": ("softmax", ("axis",)),
    "Matmul": ("matmul", ()),
    "Mean": ("mean", ("axis", "keepdims")),
    "Sum": ("sum", ("axis", "keepdims")),
    "Max": ("max", ("axis", "keepdims")),
    "Min": ("min", ("axis", "keepdims")),
    "Transpose": ("transpose", ("axes",)),
}
_NN_OPS = ("Relu", "Sigmoid", "Softmax", "Gelu", "LeakyRelu")
_EXPORT_OPS = {sc: k for sc, k in sc_ops.KERAS_CLASSES.items() if k in _KERAS_OPS}
# Call arguments a Keras config may record that change nothing here (Keras writes training=False and
# mask=None for some calls).
_NEUTRAL_KWARGS = {"training": (None, False), "mask": (None,)}


def is_op(entry: dict[str, Any]) -> bool:
    """Whether a config entry is a ``keras.ops`` call rather than a layer."""
    return str(entry.get("module") or "").startswith("keras.src.ops")


def _entry_name(entry: dict[str, Any]) -> str:
    c = entry.get("config")
    return str(entry.get("name") or (c.get("name") if isinstance(c, dict) else None))


def weight_paths(layer_entries: list[dict[str, Any]], snake: Any, unique: Any) -> Iterator[tuple[dict[str, Any], str]]:
    """(entry, path below ``layers/``) of each layer of a Functional config, InputLayers included
    (they hold no variables, but Keras writes their empty groups), named as Keras's saving_lib
    names them: the snake-cased class, made unique over the model's layers (ops are not layers)."""
    used: dict[str, int] = {}
    for e in layer_entries:
        if not is_op(e):
            yield e, unique(snake(str(e.get("class_name"))), used)


# ================================================================================================
# Keras config -> seqcore Functional
# ================================================================================================
class _KerasOpCall:
    """A Keras op entry, called like a layer on the tensors of its node: records the seqcore op."""

    def __init__(self, entry: dict[str, Any], fn: str):
        self.name = _entry_name(entry)
        cls = str(entry.get("class_name"))
        if cls not in _KERAS_OPS:
            raise ValueError(
                f"{fn}: op {self.name!r} (keras.ops {cls}) is not supported: seqcore maps the keras.ops calls "
                f"{', '.join(sorted(_KERAS_OPS))}. Write it with a layer, or rebuild the model in seqcore."
            )
        self.op, allowed = _KERAS_OPS[cls]
        c = dict(entry.get("config") or {})
        c.pop("name", None)
        extra = sorted(set(c) - set(allowed))
        if extra:
            raise ValueError(f"{fn}: op {self.name!r} ({cls}) has options {extra} that seqcore's ops.{self.op} lacks.")
        self.options = {k: tuple(v) if isinstance(v, list) else v for k, v in c.items()}
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            raise ValueError(f"{self.fn}: op {self.name!r}: unexpected call arguments {sorted(kwargs)}.")
        operands = [np.asarray(a, np.float32) if isinstance(a, (int, float, list)) else a for a in args]
        out = getattr(sc_ops, self.op)(*operands, **self.options)
        if not isinstance(out, KerasTensor):
            raise ValueError(f"{self.fn}: op {self.name!r} is called on no tensor of the model.")
        out.node.layer.name = self.name  # type: ignore[union-attr]
        return out


def _history(t: Any) -> str | None:
    """The layer a serialized tensor comes from."""
    if isinstance(t, dict) and t.get("class_name") == "__keras_tensor__":
        return str(t["config"]["keras_history"][0])
    return None


def _refs(s: Any) -> Iterator[str]:
    """The layers every tensor in a node argument comes from."""
    if isinstance(s, dict) and s.get("class_name") == "__keras_tensor__":
        yield str(s["config"]["keras_history"][0])
    elif isinstance(s, (list, tuple)):
        for v in s:
            yield from _refs(v)
    elif isinstance(s, dict):
        for v in s.values():
            yield from _refs(v)


def _mask_ops(entries: list[dict[str, Any]], fn: str) -> set[str]:
    """The ops that only compute masks: Keras 3 records the mask of a masked tensor (Embedding's
    ``ids != 0``, a merge's ``logical_or`` of its inputs' masks, ...) as op calls feeding ``mask=``
    arguments. seqcore derives the same masks from the same tensors, so these ops are skipped; an
    op that feeds both a mask and data, or a ``mask=`` taken from a layer's output, is refused."""
    by_name = {_entry_name(e): e for e in entries}
    mask_ops: set[str] = set()
    data_refs: set[str] = set()
    todo: list[str] = []
    for e in entries:
        for node in e.get("inbound_nodes") or []:
            if not isinstance(node, dict):
                continue
            kwargs = node.get("kwargs") or {}
            mask = kwargs.get("mask")
            if mask is not None:
                src = _history(mask)
                if src is None or src not in by_name or not is_op(by_name[src]):
                    raise ValueError(
                        f"{fn}: layer {_entry_name(e)!r} is called with an explicit mask= from {src!r}; seqcore "
                        f"carries masks along the tensors (Masking, Embedding(mask_zero=True)) rather than as "
                        f"arguments."
                    )
                todo.append(src)
            if not is_op(e):
                data_refs.update(_refs([node.get("args"), {k: v for k, v in kwargs.items() if k != "mask"}]))
    while todo:
        n = todo.pop()
        if n in mask_ops:
            continue
        mask_ops.add(n)
        for node in by_name[n].get("inbound_nodes") or []:
            todo.extend(r for r in _refs(node.get("args")) if r in by_name and is_op(by_name[r]))
    both = sorted(mask_ops & data_refs)
    if both:
        raise ValueError(f"{fn}: op(s) {both} compute both a mask and data, which seqcore cannot take apart.")
    return mask_ops


#: call arguments (besides the inputs and initial_state) a layer of this Keras class takes in a graph
_CALL_KWARGS: dict[str, set[str]] = {
    "MultiHeadAttention": {"key", "attention_mask", "return_attention_scores", "use_causal_mask"},
    "Attention": {"mask", "return_attention_scores", "use_causal_mask"},
    "AdditiveAttention": {"mask", "return_attention_scores", "use_causal_mask"},
}


def graph_from_entry(entry: dict[str, Any], fn: str, make_layer: Any) -> Functional:
    """The seqcore Functional model a Keras Functional config describes; ``make_layer(entry)`` maps one
    layer entry (interop.keras's importers)."""
    c = entry.get("config") or {}
    name = c.get("name")
    made: dict[str, list[list[Any]]] = {}
    pending: list[tuple[str, Any, Any, Any]] = []
    entries = list(c.get("layers") or [])
    mask_ops = _mask_ops(entries, fn)
    for e in entries:
        lname = _entry_name(e)
        if lname in mask_ops:
            continue  # seqcore carries masks along the tensors itself, by Keras's rules
        if e.get("class_name") == "InputLayer":
            ic = e.get("config") or {}
            bs = ic.get("batch_shape", ic.get("batch_input_shape"))
            if bs is None:
                bs = [ic.get("batch_size"), *(ic.get("shape") or ())]
            dtype = ic.get("dtype")
            dtype = dtype if isinstance(dtype, str) else None
            made[lname] = [[Input(shape=tuple(bs[1:]), batch_size=bs[0], name=lname, dtype=dtype)]]
            continue
        call = _KerasOpCall(e, fn) if is_op(e) else make_layer(e)
        for node in e.get("inbound_nodes") or []:
            if not isinstance(node, dict) or "args" not in node:
                raise ValueError(
                    f"{fn}: layer {lname!r}: inbound node {str(node)[:120]} is not in Keras 3's format (a dict with "
                    f"'args' and 'kwargs'); re-save the model with Keras 3."
                )
            kwargs = dict(node.get("kwargs") or {})
            for k in ("mask", "query_mask", "value_mask", "key_mask"):
                m = kwargs.get(k)
                if isinstance(m, dict) and _history(m) in mask_ops:
                    del kwargs[k]  # the mask Keras computed from the tensors, which seqcore computes too
                elif isinstance(m, list) and all(v is None or (isinstance(v, dict) and _history(v) in mask_ops)
                                                 for v in m):  # fmt: skip
                    del kwargs[k]  # Attention's [query_mask, value_mask], computed from the tensors too
                elif k in kwargs and m is None:
                    del kwargs[k]
            for k, neutral in _NEUTRAL_KWARGS.items():
                if k in kwargs:
                    if kwargs[k] not in neutral:
                        raise ValueError(
                            f"{fn}: layer {lname!r} is called with {k}={kwargs[k]!r}, which seqcore's graphs do not "
                            f"take (the trainer sets training; masks flow along the tensors)."
                        )
                    del kwargs[k]
            bad = sorted(set(kwargs) - {"initial_state"} - _CALL_KWARGS.get(str(e.get("class_name")), set()))
            if bad:
                raise ValueError(f"{fn}: layer {lname!r} is called with {bad}, which seqcore does not take.")
            pending.append((lname, call, node["args"], kwargs))

    def decode(s: Any) -> Any:
        """A node argument with its tensors looked up (KeyError/IndexError while they do not exist yet)."""
        if isinstance(s, dict) and s.get("class_name") == "__keras_tensor__":
            layer, node, index = s["config"]["keras_history"]
            return made[layer][node][index]
        if isinstance(s, (list, tuple)):  # a live model's get_config() has tuples where JSON has lists
            return [decode(v) for v in s]
        if isinstance(s, dict):
            return {k: decode(v) for k, v in s.items()}
        return s

    replay_calls(pending, made, decode, f"{fn}: Functional model {name!r}")
    ins = resolve_end(c.get("input_layers"), made)
    outs = resolve_end(c.get("output_layers"), made)
    model = Functional(ins, outs, name=name, trainable=bool(c.get("trainable", True)))
    used = {layer.name for layer in model._all_layers}
    dangling = [n for n in made if n not in used]
    if dangling:
        raise ValueError(
            f"{fn}: Functional model {name!r}: layer(s) {dangling} do not lead to the model's outputs; Keras writes "
            f"only the layers between a model's inputs and outputs, so the config was edited or is not Keras's."
        )
    return model


# ================================================================================================
# seqcore Functional -> Keras config
# ================================================================================================
def _tensor(t: KerasTensor, node_index: dict[int, int]) -> dict[str, Any]:
    assert t.node is not None
    return {
        "class_name": "__keras_tensor__",
        "config": {
            "shape": list(t.shape),
            "dtype": "float32",
            "keras_history": [t.node.layer.name, node_index[id(t.node)], t.index],
        },
    }


def _encode(s: Any, node_index: dict[int, int]) -> Any:
    if isinstance(s, KerasTensor):
        return _tensor(s, node_index)
    if isinstance(s, (list, tuple)):
        return [_encode(v, node_index) for v in s]
    if isinstance(s, dict):
        return {k: _encode(v, node_index) for k, v in s.items()}
    return s


def _op_entry(layer: Op, nodes: list[Node], node_index: dict[int, int], fn: str) -> dict[str, Any]:
    cls = _EXPORT_OPS.get(layer.op)
    if cls is None:
        raise ValueError(
            f"{fn}: ops.{layer.op} ({layer.name!r}) has no keras.ops counterpart seqcore's converter writes "
            f"(it writes {', '.join(sorted(_EXPORT_OPS))}); use a layer instead."
        )
    if layer._params:
        raise ValueError(f"{fn}: ops.{layer.op} ({layer.name!r}) computes with a weight, which Keras cannot refer to.")
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in layer.options.items()}
    (node,) = nodes
    tensors = iter(node.inputs)
    args = [
        _tensor(next(tensors), node_index) if v is None else (float(v) if np.ndim(v) == 0 else np.asarray(v).tolist())
        for v in layer.operands
    ]
    module = "keras.src.ops.nn" if cls in _NN_OPS else "keras.src.ops.numpy"
    return {
        "module": module,
        "class_name": cls,
        "config": {"name": layer.name, **options},
        "registered_name": cls,
        "name": layer.name,
        "inbound_nodes": [{"args": args, "kwargs": {}}],
    }


def graph_config(model: Functional, fn: str, export_layer: Any) -> dict[str, Any]:
    """Keras's serialized Functional (what config.json holds) for a seqcore Functional model;
    ``export_layer(layer)`` writes one layer's Keras entry (interop.keras's exporters)."""
    calls, node_index = model._calls()
    names = [layer.name for layer in model._all_layers]
    if len(set(names)) != len(names):
        raise ValueError(f"{fn}: model {model.name!r}: layer names must be unique for Keras; received {names}.")
    entries: list[dict[str, Any]] = []
    for layer in model._all_layers:
        nodes = calls[id(layer)]
        if isinstance(layer, InputLayer):
            spec = layer.spec
            entries.append(
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "config": {
                        "batch_shape": [spec.batch_size, *spec.shape],
                        "dtype": spec.dtype,
                        "sparse": False,
                        "name": layer.name,
                    },
                    "registered_name": None,
                    "name": layer.name,
                    "inbound_nodes": [],
                }
            )
        elif isinstance(layer, Op):
            entries.append(_op_entry(layer, nodes, node_index, fn))
        else:
            e = export_layer(layer)
            e["name"] = layer.name
            e["inbound_nodes"] = [
                {"args": _encode(list(n.args), node_index), "kwargs": _encode(n.kwargs, node_index)} for n in nodes
            ]
            entries.append(e)
    cfg = model.get_config_ends()
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {"name": model.name, "trainable": model.trainable, "layers": entries, **cfg},
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
    }


def layer_nodes(model: Functional) -> list[tuple[Layer, int, list[KerasTensor]]]:
    """(layer, node index, outputs) of every call in the model, in the order they run."""
    calls, node_index = model._calls()
    return [(n.layer, node_index[id(n)], n.outputs) for n in model._nodes]
