"""``Functional``: a model that is a graph of layer calls, built from symbolic tensors
(``Model(inputs, outputs)``). It runs the recorded nodes in topological order and replays them in
reverse, summing the gradients of a tensor that feeds several nodes; masks (per-sample lengths)
flow along the tensors as in Keras. A layer called twice is one layer with two nodes: its weights
are shared and their gradients add up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import streaming
from ..layers.base import Layer, Shape
from ..layers.core import InputLayer
from ..symbolic import KerasTensor, Node, flatten, substitute
from .model import Model


class Functional(Model):
    def __init__(self, inputs: Any = None, outputs: Any = None, name: str | None = None, trainable: bool = True,
                 **kwargs: Any):  # fmt: skip
        super().__init__(name=name, trainable=trainable, **kwargs)
        who = f"Model {self.name!r}"
        if inputs is None or outputs is None:
            raise ValueError(
                f"{who}: Model(inputs, outputs) needs both; received inputs={inputs!r}, outputs={outputs!r}."
            )
        self._inputs_struct = inputs
        self._outputs_struct = outputs
        self.inputs: list[KerasTensor] = _tensors(inputs, "inputs", who)
        self.outputs: list[KerasTensor] = _tensors(outputs, "outputs", who)
        for t in self.inputs:
            if t.node is None or not isinstance(t.node.layer, InputLayer):
                raise ValueError(
                    f"{who}: every input must come from seqcore.Input(...); {t.name} is the output of "
                    f"{t.node.layer.name if t.node else 'nothing'}."
                )
        self._nodes = _topological(self.inputs, self.outputs, who)
        self._all_layers = _keras_layer_order(self.outputs)
        # As Keras: ops on symbolic tensors are summary rows, not layers of the model.
        self._layer_list = [layer for layer in self._all_layers if type(layer).__name__ != "Op"]
        self.built = True
        # As Keras: one shape, or a list of them for several inputs.
        shapes: Any = self.inputs[0].shape if len(self.inputs) == 1 else [t.shape for t in self.inputs]
        self.input_shape = shapes

    # ----- structure ---------------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        return self._layer_list

    @property
    def output_names(self) -> list[str]:
        if isinstance(self._outputs_struct, Mapping):
            return list(self._outputs_struct)
        names = [t.node.layer.name if t.node is not None else t.name for t in self.outputs]
        return names if len(set(names)) == len(names) else [f"{n}_{i}" for i, n in enumerate(names)]

    def _input_names(self) -> list[str]:
        if isinstance(self._inputs_struct, Mapping):
            return list(self._inputs_struct)
        return [t.node.layer.name for t in self.inputs]  # type: ignore[union-attr]

    def inputs_or_none(self) -> list[Any] | None:
        return self.inputs

    def _structure_outputs(self, outs: list[np.ndarray]) -> Any:
        if isinstance(self._outputs_struct, Mapping):
            return dict(zip(self._outputs_struct, outs, strict=True))
        if isinstance(self._outputs_struct, (list, tuple)):
            return list(outs)
        return outs[0]

    def _check_inputs(self, xs: list[np.ndarray], where: str) -> list[np.ndarray]:
        for t, name, x in zip(self.inputs, self._input_names(), xs, strict=True):
            want = t.shape[1:]
            got = x.shape[1:]
            if len(want) != len(got) or any(a is not None and a != b for a, b in zip(want, got, strict=True)):
                raise ValueError(
                    f"{self.name}.{where}: input {name!r} expects shape {(None, *want)}; received an array of shape "
                    f"{x.shape}."
                )
        return xs

    def compute_output_shape(self, input_shape: Shape) -> Any:
        shapes = [tuple(t.shape[1:]) for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def symbolic_output(self, inputs: Any, **kwargs: Any) -> Any:
        ins = flatten(inputs)
        if len(ins) != len(self.inputs):
            raise ValueError(f"Model {self.name!r}: expects {len(self.inputs)} input(s); received {len(ins)}.")
        shapes = [(ins[0].shape[0], *t.shape[1:]) for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def _maybe_build(self, input_shape: Shape) -> None:
        pass

    def summary(self, print_fn: Any = None) -> str:
        """Keras's Functional summary: one row per layer with its output shape, parameter count and
        "Connected to" (``layer[node][tensor]`` of every input of every call of the layer)."""
        from ..layers.base import shape_str
        from .model import render_summary

        nodes_of: dict[int, list[Node]] = {}
        for t in self.inputs:
            assert t.node is not None
            nodes_of.setdefault(id(t.node.layer), []).append(t.node)
        for node in self._nodes:
            nodes_of.setdefault(id(node.layer), []).append(node)
        index: dict[int, int] = {}  # node -> its index among its layer's calls
        for nodes in nodes_of.values():
            for i, node in enumerate(nodes):
                index[id(node)] = i
        rows = []
        for layer in self._all_layers:
            nodes = nodes_of[id(layer)]
            outs = nodes[0].outputs
            shape = (
                shape_str(outs[0].shape) if len(outs) == 1 else "[" + ", ".join(shape_str(t.shape) for t in outs) + "]"
            )
            links = []
            for node in nodes:
                for t in node.inputs:
                    if t.node is not None:
                        links.append(f"{t.node.layer.name}[{index.get(id(t.node), 0)}][{t.index}]")
            connected = ", ".join(links) if links else "-"
            kind = getattr(layer, "keras_class", type(layer).__name__)  # an op shows its Keras class, as in Keras
            rows.append((f"{layer.name} ({kind})", shape, f"{layer.count_params():,}", connected))
        trainable = sum(int(np.prod(w.shape)) for w in self.trainable_weights)
        header = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
        text = render_summary(self.name, header, rows, self.count_params(), trainable)
        (print_fn or print)(text)
        return text

    # ----- config ------------------------------------------------------------------------------
    def _calls(self) -> tuple[dict[int, list[Node]], dict[int, int]]:
        """Every layer's calls in this model, in order (``id(layer) -> nodes``), and each node's index
        among its layer's calls (``id(node) -> i``): the ``[layer, node, tensor]`` references of a
        config."""
        node_index: dict[int, int] = {}
        calls: dict[int, list[Node]] = {}
        for node in [t.node for t in self.inputs] + list(self._nodes):
            assert node is not None
            calls.setdefault(id(node.layer), []).append(node)
            node_index[id(node)] = len(calls[id(node.layer)]) - 1
        return calls, node_index

    def get_config_ends(self) -> dict[str, Any]:
        """``input_layers``/``output_layers`` of the config: ``[layer, node, tensor]`` references, in
        the structure the model takes and gives (one, a list, or a dict)."""
        _, node_index = self._calls()

        def ref(t: KerasTensor) -> list[Any]:
            assert t.node is not None
            return [t.node.layer.name, node_index[id(t.node)], t.index]

        def ends(struct: Any, flat: list[KerasTensor]) -> Any:
            if isinstance(struct, Mapping):
                return {k: ref(v) for k, v in struct.items()}
            return [ref(t) for t in flat] if isinstance(struct, (list, tuple)) else ref(flat[0])

        return {
            "input_layers": ends(self._inputs_struct, self.inputs),
            "output_layers": ends(self._outputs_struct, self.outputs),
        }

    def get_config(self) -> dict[str, Any]:
        """Keras's Functional config: every layer with its ``inbound_nodes`` (the arguments of each
        call, a tensor written as ``{"__tensor__": [layer, node, index]}``), and the model's
        ``input_layers``/``output_layers`` (dicts of them when the model takes or gives a dict)."""
        from ..layers import serialize

        calls, node_index = self._calls()

        def encode(s: Any) -> Any:
            if isinstance(s, KerasTensor):
                assert s.node is not None
                return {"__tensor__": [s.node.layer.name, node_index[id(s.node)], s.index]}
            if isinstance(s, (list, tuple)):
                return [encode(v) for v in s]
            if isinstance(s, dict):
                return {k: encode(v) for k, v in s.items()}
            return s

        names = [layer.name for layer in self._all_layers]
        if len(set(names)) != len(names):
            raise ValueError(f"Model {self.name!r}: layer names must be unique to save a graph; received {names}.")
        layer_cfgs = []
        for layer in self._all_layers:
            entry = serialize(layer)
            entry["name"] = layer.name
            entry["inbound_nodes"] = [
                {"args": encode(list(n.args)), "kwargs": encode(n.kwargs)}
                for n in calls[id(layer)]
                if not isinstance(layer, InputLayer)
            ]
            layer_cfgs.append(entry)
        return {"name": self.name, "trainable": self.trainable, "layers": layer_cfgs, **self.get_config_ends()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Functional:
        """Rebuilds the graph by calling each layer again on the tensors its config names."""
        from ..layers import deserialize

        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise ValueError(f"a Functional config must be a dict with a 'layers' list; received {str(config)[:200]}")
        if "input_layers" not in config or "output_layers" not in config:
            raise ValueError("a Functional config needs 'input_layers' and 'output_layers' (a graph's two ends)")
        made: dict[str, list[list[Any]]] = {}
        pending: list[tuple[str, Any, Any, Any]] = []
        for entry in config["layers"]:
            layer = deserialize({"class_name": entry["class_name"], "config": entry["config"]})
            name = entry.get("name", layer.name)
            if isinstance(layer, InputLayer):
                made[name] = [[layer.output]]
            pending.extend((name, layer, call["args"], call["kwargs"]) for call in entry.get("inbound_nodes", []))

        def decode(s: Any) -> Any:
            if isinstance(s, dict) and "__tensor__" in s:
                lname, ni, ti = s["__tensor__"]
                return made[lname][ni][ti]
            if isinstance(s, list):
                return [decode(v) for v in s]
            if isinstance(s, dict):
                return {k: decode(v) for k, v in s.items()}
            return s

        replay_calls(pending, made, decode, "Functional config")
        return cls(resolve_end(config["input_layers"], made), resolve_end(config["output_layers"], made),
                   name=config.get("name"), trainable=bool(config.get("trainable", True)))  # fmt: skip

    # ----- running -----------------------------------------------------------------------------
    def forward(self, x: Any, training: bool = False, batch: int | None = None, lengths: Any = None) -> tuple[Any, Any]:
        xs = x if isinstance(x, (list, tuple)) else [x]
        outs, masks, ctx = self._execute(list(xs), training, batch, lengths)
        return (outs[0] if len(outs) == 1 else outs), ctx

    def _execute(self, xs: list[np.ndarray], training: bool, batch: int | None, lengths: Any = None) -> Any:
        values: dict[int, Any] = {}
        masks: dict[int, Any] = {}
        for t, v in zip(self.inputs, xs, strict=True):
            values[id(t)] = np.ascontiguousarray(v, dtype=np.float32) if v.dtype != np.float32 else v
            masks[id(t)] = lengths if len(self.inputs) == 1 else None
        calls = []
        for node in self._nodes:
            layer = node.layer
            x = substitute(node.args[0], values)
            named = node.named_args()
            kwargs = substitute(named, values)
            first = flatten(node.args[0])
            in_masks = [masks.get(id(t)) for t in first]
            in_mask = layer.merge_input_masks(in_masks)
            if layer.uses_mask and "lengths" not in kwargs:
                kwargs["lengths"] = in_mask
            if layer.arg_masks:  # the masks of tensor arguments but the first (MHA's value, key)
                kwargs["arg_masks"] = {k: masks.get(id(v)) for k, v in named.items() if isinstance(v, KerasTensor)}
            if "mask" in kwargs:
                m = kwargs.pop("mask")
                if layer.uses_mask and m is not None:
                    kwargs.update(layer.mask_argument(m))
            y, call = layer.apply(x, training=training, batch=batch, **kwargs)
            out_mask = layer.output_mask(in_mask, x, call.ctx)
            ys = y if node.multi_output else [y]
            om = out_mask if node.multi_output and isinstance(out_mask, list) else [out_mask] * len(ys)
            for t, v, m in zip(node.outputs, ys, om, strict=True):
                values[id(t)] = v
                masks[id(t)] = m
            calls.append(call)
        outs = [values[id(t)] for t in self.outputs]
        out_masks = [masks.get(id(t)) if values[id(t)].ndim >= 3 else None for t in self.outputs]
        return outs, out_masks, _GraphContext(calls, out_masks)

    def _run(self, xs: list[np.ndarray], training: bool) -> tuple[list[np.ndarray], list[Any], Any]:
        return self._execute(xs, training, None)

    def backward(self, ctx: Any, dy: Any, need_dx: bool = True) -> Any:
        grads = self._replay(ctx, list(dy) if isinstance(dy, (list, tuple)) else [dy], need_dx)
        dxs = [grads.get(id(t)) for t in self.inputs]
        return dxs[0] if len(dxs) == 1 else dxs

    def _run_backward(self, ctx: Any, grads: list[Any]) -> None:
        self._replay(ctx, grads, need_dx=False)

    def _replay(self, ctx: Any, douts: list[Any], need_dx: bool) -> dict[int, Any]:
        grads: dict[int, Any] = {}

        def add(t: KerasTensor, g: Any) -> None:
            if g is None:
                return
            k = id(t)
            grads[k] = g if k not in grads else grads[k] + g

        for t, g in zip(self.outputs, douts, strict=True):
            add(t, g)
        needs = self._needs_grad(need_dx)
        for node, call in zip(reversed(self._nodes), reversed(ctx.calls), strict=True):
            gs = [grads.pop(id(t), None) for t in node.outputs]
            if all(g is None for g in gs):
                continue
            layer = node.layer
            want_dx = any(id(t) in needs for t in node.inputs)
            # (an op holding a layer's weight, from add_weight, needs its backward for that weight)
            if not want_dx and not layer.trainable_weights and not getattr(layer, "_params", None):
                continue
            if node.multi_output:
                dy = gs
            else:
                dy = gs[0]
            dx = layer.unapply(call, dy, need_dx=want_dx)
            if not want_dx:
                continue
            first = flatten(node.args[0])
            dxs = dx if isinstance(node.args[0], (list, tuple)) else [dx]
            for t, g in zip(first, dxs, strict=True):
                if id(t) in needs:
                    add(t, g)
            extra = getattr(call.ctx, "kwarg_grads", None)
            if extra:
                named = node.named_args()
                for key, g in extra.items():
                    for t, gi in zip(flatten(named.get(key)), g if isinstance(g, list) else [g], strict=False):
                        if id(t) in needs:
                            add(t, gi)
        return grads

    def _needs_grad(self, need_dx: bool) -> set[int]:
        """The tensors whose gradient someone uses: every node output, and the inputs if ``need_dx``
        (fixed by the graph, so computed once for each answer)."""
        cache = self.__dict__.setdefault("_needs_cache", {})
        if need_dx not in cache:
            needs = {id(t) for node in self._nodes for t in node.outputs}
            cache[need_dx] = needs | {id(t) for t in self.inputs} if need_dx else needs
        return cache[need_dx]

    #: the streaming plan for one-step calls of a chain-shaped graph (``seqcore.streaming``)
    _stream: Any = None

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs and streaming.fast_input(self._stream, x):
            y = self._stream.plan.run(x, self._weights_lock)
            if y is not None:
                return y
        from ..symbolic import any_symbolic, symbolic_call

        if any_symbolic(x, args, kwargs):
            return symbolic_call(self, x, args, kwargs)
        training = bool(kwargs.pop("training", args[0] if args else False))
        who = f"{self.name}.__call__"
        xs = self._check_inputs(self._input_list(x, who), "__call__")
        outs, _, ctx = self._execute(xs, training, None)
        self._activity_loss = ctx.activity_loss
        y = self._structure_outputs(outs)
        if not training:
            streaming.after_general_call(self, x, y)
        return y

    def predict_on_batch(self, x: Any) -> Any:
        if streaming.fast_input(self._stream, x):
            y = self._stream.plan.run(x, self._weights_lock)
            if y is not None:
                return y
        y = super().predict_on_batch(x)
        streaming.after_general_call(self, x, y)
        return y


def replay_calls(pending: list[tuple[str, Any, Any, Any]], made: dict[str, list[list[Any]]], decode: Any,
                 who: str) -> None:  # fmt: skip
    """Makes the recorded calls ``(layer name, callable, args, kwargs)`` of a config again, each once
    the tensors its arguments name exist (``decode`` raises KeyError/IndexError until then), and
    appends each call's outputs to ``made[layer name]`` (a node's outputs, by node index)."""
    todo = list(pending)
    progress = True
    while todo and progress:
        progress = False
        for item in list(todo):
            name, layer, args, kwargs = item
            try:
                a, kw = decode(args), decode(kwargs)
            except (KeyError, IndexError):
                continue
            out = layer(*a, **kw)
            made.setdefault(name, []).append(out if isinstance(out, list) else [out])
            todo.remove(item)
            progress = True
    if todo:
        raise ValueError(
            f"{who}: cannot connect the calls of {sorted({n for n, *_ in todo})}: they read tensors no call makes."
        )


def resolve_end(s: Any, made: dict[str, list[list[Any]]]) -> Any:
    """A model end of a config (``[layer, node, tensor]``, a list of them, or a dict) as tensors."""
    try:
        if isinstance(s, dict):
            return {k: made[v[0]][v[1]][v[2]] for k, v in s.items()}
        if s and isinstance(s[0], list):
            return [made[v[0]][v[1]][v[2]] for v in s]
        return made[s[0]][s[1]][s[2]]
    except (KeyError, IndexError, TypeError):
        raise ValueError(f"a model input or output {s!r} names a tensor that no layer of the config makes.") from None


class _GraphContext:
    __slots__ = ("calls", "out_masks", "activity_loss")

    def __init__(self, calls: list[Any], out_masks: list[Any]):
        self.calls = calls
        self.out_masks = out_masks
        self.activity_loss = float(sum(c.activity_loss for c in calls))


def _tensors(structure: Any, arg: str, who: str) -> list[KerasTensor]:
    items = list(structure.values()) if isinstance(structure, Mapping) else (
        list(structure) if isinstance(structure, (list, tuple)) else [structure])  # fmt: skip
    for t in items:
        if not isinstance(t, KerasTensor):
            raise TypeError(
                f"{who}: {arg} must be symbolic tensors (from seqcore.Input and layer calls); received "
                f"{type(t).__name__}."
            )
    if not items:
        raise ValueError(f"{who}: {arg} is empty.")
    return items


def _topological(inputs: list[KerasTensor], outputs: list[KerasTensor], who: str) -> list[Node]:
    """The nodes between ``inputs`` and ``outputs``, each after the nodes it consumes; a tensor that
    leads back to an Input the model was not given is Keras's "Graph disconnected" error."""
    input_ids = {id(t) for t in inputs}
    order: list[Node] = []
    state: dict[int, int] = {}  # 1 visiting, 2 done

    def visit(t: KerasTensor) -> None:
        if id(t) in input_ids:
            return
        node = t.node
        if node is None or isinstance(node.layer, InputLayer):
            raise ValueError(
                f"{who}: Graph disconnected: the outputs depend on {t.name} (input "
                f"{node.layer.name if node else t.name!r}), which is not among the model's inputs "
                f"{[i.name for i in inputs]}. Pass it in Model(inputs=[...]) too."
            )
        if state.get(id(node)) == 2:
            return
        state[id(node)] = 1
        for p in node.inputs:
            visit(p)
        state[id(node)] = 2
        order.append(node)

    for t in outputs:
        visit(t)
    return order


def _keras_layer_order(outputs: list[KerasTensor]) -> list[Layer]:
    """``model.layers`` in Keras's order (``keras/src/ops/function.py``'s map_graph): by depth from
    the outputs, deepest first; within a depth, in the order a walk back from the outputs (through
    each call's arguments in order) first meets the layers. ``get_weights()`` follows it."""
    index: dict[int, int] = {}
    by_id: dict[int, Layer] = {}
    finished: set[int] = set()
    order: list[Node] = []  # nodes, each after the nodes it consumes

    def walk(t: KerasTensor) -> None:
        node = t.node
        if node is None:
            return
        layer = node.layer
        if id(layer) not in index:
            index[id(layer)] = len(index)
            by_id[id(layer)] = layer
        if id(node) in finished:
            return
        for p in node.inputs:
            walk(p)
        finished.add(id(node))
        order.append(node)

    for t in outputs:
        walk(t)
    node_depth: dict[int, int] = {}
    layer_depth: dict[int, int] = {}
    for node in reversed(order):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = depth
        node_depth[id(node)] = depth
        for p in node.parents:
            node_depth[id(p)] = max(depth + 1, node_depth.get(id(p), 0))
    return sorted(by_id.values(), key=lambda layer: (-layer_depth[id(layer)], index[id(layer)]))
