"""Walking a model (Sequential, Functional, nested models) into the graph: each layer call becomes a
:class:`~._base.Call` for its converter, with the mask it sees, computed from its inputs' masks by
seqcore's own rules; then the graph inputs (the model's, then the stateful layers' states), the
outputs, the check and the file."""

from __future__ import annotations

import os
from functools import reduce
from typing import Any

import numpy as np

from ... import layers as L
from ...layers.merging import _Merge
from ...symbolic import KerasTensor, flatten, substitute
from ._base import HANDLERS, REFUSED, Builder, Call, Shape, Value, onnx_module, refuse, register

MIN_OPSET = 13
DEFAULT_OPSET = 17

_CELL = "a cell computes one step and is not a layer of a graph; wrap it: keras.layers.RNN(cell), which is exported."
REFUSED.update({
    L.LSTMCell: _CELL, L.GRUCell: _CELL, L.SimpleRNNCell: _CELL,
    L.StackedRNNCells: "stacked cells compute one step and are not a layer of a graph; wrap them: "
                       "keras.layers.RNN(StackedRNNCells([...])), which is exported.",
    L.Layer: "it computes in forward() with NumPy, which an ONNX graph cannot hold. Write call() instead, with "
             "seqcore layers and seqcore.ops: seqcore traces call() into a graph, which is exported.",
})  # fmt: skip


def max_opset() -> int:
    """The newest ONNX opset the installed ``onnx`` package knows."""
    return int(onnx_module().defs.onnx_opset_version())


# ----- one layer call --------------------------------------------------------------------------------
def emit(g: Builder, call: Call) -> list[str]:
    """The ONNX values of ``call``'s outputs."""
    from ...models.functional import Functional
    from ...models.sequential import Sequential

    layer = call.layer
    if isinstance(layer, (Sequential, Functional)):
        return _emit_model(g, layer, call.xs, call.in_shapes, call.hint + "/")
    handler = HANDLERS.get(type(layer))
    if handler is None and type(layer).call is not L.Layer.call:  # a subclassed layer or model with call()
        return _emit_traced(g, call)
    if handler is None:
        raise refuse(layer, REFUSED.get(type(layer)) or REFUSED[L.Layer])
    unknown = sorted(k for k, v in call.kwargs.items() if k not in handler.kwargs and v is not None and v is not False)
    if unknown:
        raise refuse(layer, f"the call argument(s) {unknown} are not exported (this layer's conversion reads "
                            f"{sorted(handler.kwargs) or 'none'}); call it without them.")  # fmt: skip
    return handler.fn(g, call)


def _traced(layer: Any, shapes: Any) -> Any:
    """The Functional graph seqcore traced from ``layer``'s call() (tracing it now on ``shapes``, as
    seqcore's first call would, when it has not run yet), or None."""
    graph = getattr(layer, "_graph", None)
    if graph is None and shapes is not None:
        try:
            graph = layer._trace(shapes)
        except (TypeError, ValueError) as e:
            raise refuse(layer, f"its call() could not be traced into a graph of seqcore layers and ops: {e}") from None
    return graph


def _subclassed_message(model: Any) -> str:
    return (
        f"to_onnx: model {model.name!r} ({type(model).__name__}) is a subclassed model that has not run yet, so "
        f"seqcore has not traced its call() into a graph (what it runs and what is exported); expected a built "
        f"model. Call model.build((None, steps, features)) or predict on one batch first, or use a Sequential / "
        f"Functional model."
    )


def _emit_traced(g: Builder, call: Call) -> list[str]:
    """A subclassed layer (or model) with call(), and Lambda: the graph seqcore traced from it and
    runs (Python control flow in call() was fixed when it was traced, for seqcore too)."""
    shapes: Any = call.in_shapes if len(call.xs) > 1 else call.in_shapes[0]
    graph = _traced(call.layer, shapes)
    return _emit_model(g, graph, call.xs, [tuple(t.shape) for t in graph.inputs], call.hint + "/")


register(L.Lambda)(_emit_traced)


def _merge_masks(g: Builder, layer: Any, masks: list[Any], hint: str) -> Any:
    """The mask a call sees from its inputs' masks, by the layer's own rule (``merge_input_masks``):
    the merge layers keep a step any input keeps (the longest length, no mask unless every input
    has one), the attention layers keep them apart, every other layer the shortest present."""
    rule = type(layer).merge_input_masks
    if rule is _Merge.merge_input_masks:
        if not masks or any(m is None for m in masks):
            return None
        return reduce(lambda a, b: g.op("Max", [a, b], hint + "/mask"), masks)
    if rule is L.Attention.merge_input_masks:
        return list(masks)
    present = [m for m in masks if m is not None]
    if not present:
        return None
    return reduce(lambda a, b: g.op("Min", [a, b], hint + "/mask"), present)


def _explicit_mask(g: Builder, layer: Any, m: Any, hint: str) -> Any:
    """A ``mask=`` call argument as the lengths the exported graph works with (post-padding)."""
    if m is None:
        return None
    if isinstance(m, (list, tuple)):
        return [_explicit_mask(g, layer, v, hint) for v in m]
    if not isinstance(m, Value):
        raise refuse(layer, f"mask= is a constant {type(m).__name__}; only graph tensors (a boolean (batch, steps) "
                            f"Input of the model) are exported as masks.")  # fmt: skip
    if len(g.shapes.get(m, (None, None))) == 1:  # already lengths
        return g.cast(m, "int32", hint)
    steps = g.cast(g.cast(m, "bool", hint), "int32", hint)
    return g.reduce("ReduceSum", steps, [1], False, hint)


def _out_masks(layer: Any, call: Call, in_mask: Any, n: int) -> list[Any]:
    """The masks of a call's outputs: what its converter set (layers that start or reshape masks),
    else the input's mask kept by ``propagates_mask`` layers, else none."""
    if call.out_masks is not None:
        return list(call.out_masks) + [None] * (n - len(call.out_masks))
    keep = in_mask if getattr(layer, "propagates_mask", False) and isinstance(in_mask, str) else None
    return [keep] * n


# ----- models ------------------------------------------------------------------------------------------
def _emit_model(g: Builder, model: Any, xs: list[str], in_shapes: list[Shape] | None, hint: str) -> list[str]:
    """The output values of ``model`` called on values ``xs`` (a nested model starts with no mask and
    passes none on, as in seqcore)."""
    from ...models.functional import Functional
    from ...models.sequential import Sequential

    if isinstance(model, Sequential):
        return [_emit_sequential(g, model, xs, in_shapes, hint)]
    assert isinstance(model, Functional), type(model)
    values: dict[int, str] = {}
    masks: dict[int, Any] = {}
    for t, v in zip(model.inputs, xs, strict=True):
        values[id(t)] = v
        masks[id(t)] = None
        g.shapes.setdefault(v, tuple(t.shape))
    for node in model._nodes:
        layer = node.layer
        if isinstance(layer, L.InputLayer):
            continue
        first = flatten(node.args[0]) if node.args else []
        named = node.named_args()
        call_hint = f"{hint}{layer.name}"
        in_mask = _merge_masks(g, layer, [masks.get(id(t)) for t in first], call_hint)
        kwargs = {k: v for k, v in substitute(named, values).items() if k != "mask"}
        call = Call(
            layer,
            [values[id(t)] for t in first],
            [tuple(t.shape) for t in first],
            [tuple(t.shape) for t in node.outputs],
            call_hint,
            kwargs=kwargs,
            mask=in_mask if layer.uses_mask else None,
            arg_masks={k: masks.get(id(v)) for k, v in named.items() if isinstance(v, KerasTensor)},
        )
        if named.get("mask") is not None and layer.uses_mask:  # as seqcore: an explicit mask= wins
            call.mask = _explicit_mask(g, layer, substitute(named["mask"], values), call_hint)
        outs = emit(g, call)
        if len(outs) != len(node.outputs):
            raise refuse(layer, f"produced {len(outs)} ONNX outputs for {len(node.outputs)} graph tensors.")
        for t, v, m in zip(node.outputs, outs, _out_masks(layer, call, in_mask, len(outs)), strict=True):
            values[id(t)] = v
            masks[id(t)] = m
            g.shapes.setdefault(v, tuple(t.shape))
    return [values[id(t)] for t in model.outputs]


def _emit_sequential(g: Builder, model: Any, xs: list[str], in_shapes: list[Shape] | None, hint: str) -> str:
    (x,) = xs
    shape: Shape = tuple(in_shapes[0]) if in_shapes else tuple(model.input_shape)
    mask: Any = None
    for layer in model.layers:
        out_shape = (shape[0], *layer.compute_output_shape(shape[1:]))
        call = Call(layer, [x], [shape], [out_shape], f"{hint}{layer.name}", mask=mask if layer.uses_mask else None)
        outs = emit(g, call)
        if len(outs) != 1:
            raise refuse(layer, f"produced {len(outs)} outputs inside a Sequential model, which passes one on; use "
                                f"a Functional model.")  # fmt: skip
        mask = _out_masks(layer, call, mask, 1)[0]
        x, shape = outs[0], out_shape
        g.shapes.setdefault(x, shape)
    return x


# ----- the graph's inputs and outputs ---------------------------------------------------------------
def _input_specs(model: Any) -> list[tuple[str, Shape, str, bool, bool]]:
    """(name, shape with batch, dtype, feeds only Embeddings, is a (batch, steps) mask) of each
    model input."""
    from ...models.sequential import Sequential

    if isinstance(model, Sequential):
        if not model.layers:
            raise ValueError(f"to_onnx: model {model.name!r} has no layers; add layers before exporting it.")
        spec = getattr(model, "_input_spec", None)
        if spec is None:
            raise ValueError(
                f"to_onnx: model {model.name!r} is not built, so its input shape is unknown; give it an input shape "
                f"(seqcore.Input(...) as its first entry) or call it on data first."
            )
        embeds = type(model.layers[0]) is L.Embedding
        return [(spec.name, tuple(model.input_shape), str(getattr(spec, "dtype", None) or "float32"), embeds, False)]
    names = model._input_names()
    consumers: dict[int, list[Any]] = {id(t): [] for t in model.inputs}
    masks: set[int] = set()
    for node in model._nodes:
        for t in node.inputs:
            if id(t) in consumers:
                consumers[id(t)].append(node.layer)
        masks.update(id(t) for t in flatten(node.kwargs.get("mask")))
    return [(n, tuple(t.shape), str(getattr(t, "dtype", None) or "float32"),
             bool(consumers[id(t)]) and all(type(c) is L.Embedding for c in consumers[id(t)]), id(t) in masks)
            for n, t in zip(names, model.inputs, strict=True)]  # fmt: skip


def _output_shapes(model: Any) -> list[Shape]:
    from ...models.sequential import Sequential

    if isinstance(model, Sequential):
        return [tuple(model.output_shape)]
    return [tuple(t.shape) for t in model.outputs]


def _elem_type(onnx: Any, dtype: str, name: str) -> int:
    try:
        return int(onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
    except (TypeError, ValueError, KeyError):
        raise ValueError(
            f"to_onnx: input {name!r} has dtype {dtype!r}, which has no ONNX tensor type; declare it as float32, "
            f"int32 or int64 (seqcore.Input(shape, dtype=...))."
        ) from None


def check_opset(opset: Any) -> int:
    top = max_opset()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= top:
        raise ValueError(
            f"to_onnx: opset must be an int from {MIN_OPSET} to {top} (the newest the installed onnx package "
            f"knows); received {opset!r}. Use opset={DEFAULT_OPSET} (the default), which current ONNX Runtime, "
            f"OpenVINO and TensorRT all read."
        )
    return int(opset)


def build_onnx(model: Any, opset: int = DEFAULT_OPSET) -> Any:
    """The ``onnx.ModelProto`` of ``model`` (checked by ``onnx.checker``)."""
    from ... import __version__
    from ...models.functional import Functional
    from ...models.model import Model
    from ...models.sequential import Sequential

    if not isinstance(model, Model):
        raise TypeError(
            f"to_onnx: expected a seqcore model (Sequential or Model(inputs, outputs)); received "
            f"{type(model).__name__}. A Keras model: convert it first, seqcore.interop.from_keras(model)."
        )
    onnx = onnx_module()
    opset = check_opset(opset)
    name = model.name or "seqcore_model"
    if not isinstance(model, (Sequential, Functional)):  # a subclassed model: the graph seqcore traced
        traced = _traced(model, None)
        if traced is None:
            raise ValueError(_subclassed_message(model))
        model = traced
    helper = onnx.helper
    g = Builder(onnx, opset)
    g.emit = emit
    graph_inputs, xs, batch_dims = [], [], []
    for name, shape, dtype, ids, steps_mask in _input_specs(model):
        name = g.reserve(name, "input")
        batch = "batch" if shape[0] is None else int(shape[0])
        batch_dims.append(batch)
        dims: list[Any] = [batch]
        integer = np.dtype(dtype).kind in "iub"
        for i, d in enumerate(shape[1:], start=1):
            dynamic_time = i == 1 and (len(shape) >= 3 or ids or integer or steps_mask)
            dims.append(f"{name}_time" if dynamic_time else d if d is not None else f"{name}_dim{i}")
        graph_inputs.append(helper.make_tensor_value_info(name, _elem_type(onnx, dtype, name), dims))
        x: str = name
        if dtype != "float32" and not ids:  # seqcore computes in float32 (an Embedding reads ids as they are)
            x = g.cast(name, "float", f"{name}/as_float32")
        g.shapes[x] = shape
        xs.append(x)
    outs = _emit_model(g, model, xs, None, "")
    batch = batch_dims[0] if len(set(batch_dims)) == 1 else "batch"
    for sname, units in g.state_inputs:
        graph_inputs.append(helper.make_tensor_value_info(sname, onnx.TensorProto.FLOAT, [batch, units]))
    out_names = list(getattr(model, "output_names", None) or [])
    if len(out_names) != len(outs):
        out_names = ["output_0"] if len(outs) == 1 else [f"output_{i}" for i in range(len(outs))]
    graph_outputs = []
    pairs: list[tuple[str, str, Shape]] = [(n, v, s) for n, v, s in zip(out_names, outs, _output_shapes(model),
                                                                          strict=True)]  # fmt: skip
    pairs += [(sname, v, (None, None)) for sname, v in g.state_outputs]
    for name, v, shape in pairs:
        oname = g.reserve(name, "output") if name not in g._names else g.fresh(f"{name}_output")
        g.nodes.append(helper.make_node("Identity", [v], [oname], name=g.fresh(f"{oname}/Identity")))
        # Every axis but the features is symbolic: the batch and time axes follow the inputs'.
        if not shape:
            dims = []
        else:
            dims = [batch] + [f"{oname}_dim{i}" for i in range(1, len(shape) - 1)]
            if len(shape) > 1:
                last = shape[-1]
                dims.append(int(last) if last is not None else f"{oname}_dim{len(shape) - 1}")
        graph_outputs.append(helper.make_tensor_value_info(oname, onnx.TensorProto.FLOAT, dims))
    graph = helper.make_graph(g.nodes, name, graph_inputs, graph_outputs, g.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="seqcore",
                              producer_version=str(__version__))  # fmt: skip
    # the oldest IR version that holds this opset: what ONNX Runtime releases read
    proto.ir_version = int(helper.find_min_ir_version_for([helper.make_opsetid("", opset)]))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def to_onnx(model: Any, filepath: Any = None, opset: int = DEFAULT_OPSET) -> Any:
    """Exports ``model`` to ONNX; returns the ``onnx.ModelProto`` and, given ``filepath``, writes it
    there atomically (a failed export leaves no file and an existing file untouched). See
    :mod:`seqcore.interop.onnx` for what is exported, the post-padding assumption of masks and the
    state inputs/outputs of stateful layers."""
    from ...saving import _atomic_write

    if filepath is not None and not isinstance(filepath, (str, os.PathLike)):
        raise TypeError(
            f"to_onnx: filepath must be a str or os.PathLike (e.g. 'model.onnx'), or None to only return the "
            f"ModelProto; received {type(filepath).__name__}."
        )
    path = None if filepath is None else os.fsdecode(os.fspath(filepath))
    if path is not None:
        if not path:
            raise ValueError("to_onnx: filepath is empty; give a file name, e.g. 'model.onnx'.")
        if os.path.dirname(path) and not os.path.isdir(os.path.dirname(path)):
            raise FileNotFoundError(
                f"to_onnx: the folder of {path!r} does not exist; create it first (os.makedirs) or write elsewhere."
            )
    proto = build_onnx(model, opset)
    if path is not None:
        with _atomic_write(path, "to_onnx") as f:
            f.write(proto.SerializeToString())
    return proto


def export_model(model: Any, filepath: Any, fmt: Any, **kwargs: Any) -> Any:
    """``Model.export``: Keras 3's method, for the formats seqcore writes."""
    if fmt == "onnx":
        opset = kwargs.pop("opset", DEFAULT_OPSET)
        kwargs.pop("verbose", None)
        if kwargs:
            raise TypeError(
                f"export: unexpected keyword argument(s) {sorted(kwargs)} for format='onnx'; it takes opset= "
                f"(and Keras's verbose=)."
            )
        if filepath is None:
            raise TypeError("export: filepath is required, e.g. model.export('model.onnx', format='onnx').")
        return to_onnx(model, filepath, opset=opset)
    if fmt in ("tf_saved_model", "openvino", "litert"):
        where = repr(os.fspath(filepath)) if isinstance(filepath, (str, os.PathLike)) else "'model.onnx'"
        raise ValueError(
            f"export: seqcore does not write format={fmt!r} (that needs TensorFlow / its own toolchain); it exports "
            f"ONNX: model.export({where}, format='onnx'), which ONNX Runtime, OpenVINO and TensorRT read."
        )
    raise ValueError(f"export: unknown format {fmt!r}; expected format='onnx' (the format seqcore exports).")
