"""PyTorch interop: seqcore layers from ``nn.Linear``, ``nn.LSTM``, ``nn.GRU``, ``nn.Conv1d`` (and an
``nn.Sequential`` of such modules), and back.

One description drives every direction: :func:`_plan` maps a built seqcore layer to the torch
modules that compute the same function (class, constructor arguments, ``state_dict`` entries as NumPy
arrays, and how to load such entries back). Hence ``torch_state_dict(layer)`` is exactly
``to_torch(layer).state_dict()``, computed without torch; ``load_torch_state_dict`` reads the same
keys; and ``from_torch`` only chooses the seqcore layers and loads ``module.state_dict()``.

Layout facts the conversions rely on (checked by the tests against torch 2.15):

* ``nn.Linear.weight`` is ``(out, in)``: the transpose of a Keras kernel.
* ``nn.LSTM`` gates are i, f, g, o like Keras's i, f, c, o; ``nn.GRU`` orders r, z, n where Keras
  has z, r, h, and its cell is Keras's ``reset_after=True`` GRU. Each layer ``k`` has
  ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` (+ ``_reverse`` for the
  backward direction); the LSTM biases only ever appear summed, so they load as their sum and export
  as (sum, zeros). ``dropout`` acts between stacked layers, as seqcore ``Dropout`` layers do.
* ``nn.Conv1d`` works on channels-first ``(batch, channels, steps)`` data with weight
  ``(filters, in/groups, K)``; seqcore (like Keras) on channels-last ``(batch, steps, channels)``
  with kernel ``(K, in/groups, filters)``. A converted conv layer therefore expects the input
  transposed: ``x.transpose(0, 2, 1)``. ``padding='same'`` (stride 1) pads ``d*(K-1)//2`` on the left
  and the rest on the right in both frameworks; an int ``padding=p`` pads ``p`` on both sides, which
  is Keras's 'same' only when ``2p == d*(K-1)``.
* ``nn.Flatten`` after channels-first layers orders features channel-major ``c*L + l``; seqcore's
  Flatten step-major ``l*C + c``; the next ``nn.Linear``'s columns are permuted accordingly.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import convert
from ..layers import (
    GRU,
    LSTM,
    Activation,
    AveragePooling1D,
    Bidirectional,
    Conv1D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling1D,
    GlobalMaxPooling1D,
    Input,
    MaxPooling1D,
    TimeDistributed,
)
from ..layers.base import Shape
from ..layers.recurrent import _RNN
from ..models import Sequential
from ._common import DEFAULT_TOLERANCE, PROBE_STEPS, attach, check_close, fresh_states, probe_batch, unverified

__all__ = ["from_torch", "load_torch_state_dict", "to_torch", "torch_state_dict"]

# Length of a probe sequence for conv/pool stacks whose input length is not fixed: long enough for
# a few pools and kernels, small enough to be instant.
_CONV_PROBE_STEPS = 64


# ================================================================================================
# The plan: seqcore layer -> torch modules
# ================================================================================================
@dataclass
class _Mod:
    """One torch module equivalent to (part of) a seqcore layer."""

    cls: str  # torch.nn class name
    kwargs: dict[str, Any]
    params: dict[str, np.ndarray] = field(default_factory=dict)  # state_dict entries, torch layout
    load: Callable[[dict[str, np.ndarray]], None] | None = None  # torch-layout entries -> seqcore weights


@dataclass
class _Plan:
    mods: list[_Mod]
    channels_first_in: bool = False  # torch takes (batch, channels, steps) where seqcore takes (batch, steps, ch)
    channels_first_out: bool = False
    rnn: _Mod | None = None  # the module is one nn.LSTM / nn.GRU (returns a tuple)
    return_sequences: bool = True
    bidirectional: bool = False
    container: bool = False  # always an nn.Sequential (a seqcore Sequential), even of one module

    @property
    def wrapped(self) -> bool:
        return self.container or len(self.mods) > 1

    def prefix(self, i: int) -> str:
        return f"{i}." if self.wrapped else ""

    def state_dict(self) -> dict[str, np.ndarray]:
        return {f"{self.prefix(i)}{k}": v.copy() for i, m in enumerate(self.mods) for k, v in m.params.items()}


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _who(fn: str, layer: Any) -> str:
    return f"{fn}: layer {getattr(layer, 'name', '?')!r} ({type(layer).__name__})"


# seqcore activation -> (torch.nn module, its arguments) computing the same function.
_ACT_MODULES: dict[str, tuple[str, dict[str, Any]]] = {
    "relu": ("ReLU", {}),
    "tanh": ("Tanh", {}),
    "sigmoid": ("Sigmoid", {}),
    "hard_sigmoid": ("Hardsigmoid", {}),
    "elu": ("ELU", {}),
    "selu": ("SELU", {}),
    "softplus": ("Softplus", {}),  # beta=1; threshold=20 returns x where float32 softplus already is x
    "softsign": ("Softsign", {}),
    "leaky_relu": ("LeakyReLU", {"negative_slope": 0.2}),  # Keras's default, not torch's 0.01
    "relu6": ("ReLU6", {}),
    "gelu": ("GELU", {}),  # approximate="none", Keras's default
    "silu": ("SiLU", {}),
    "mish": ("Mish", {}),
    "hard_silu": ("Hardswish", {}),
}


def _act_mods(activation: str, channels_first: bool, keep_identity: bool, who: str = "to_torch") -> list[_Mod]:
    if activation == "linear":
        return [_Mod("Identity", {})] if keep_identity else []
    if activation == "softmax":  # over seqcore's last axis = torch's channel axis (dim 1) when channels-first
        return [_Mod("Softmax", {"dim": 1 if channels_first else -1})]
    if activation not in _ACT_MODULES:
        raise ValueError(
            f"{who}: activation {activation!r} has no torch.nn module (torch.exp is a function, not a module)."
        )
    cls, kwargs = _ACT_MODULES[activation]
    return [_Mod(cls, dict(kwargs))]


def _act_from_torch(nn: Any, m: Any, who: str) -> str | None:
    """The seqcore activation a torch activation module computes, None if `m` is not one, or a
    ValueError for one whose arguments seqcore's function does not have."""
    plain = {
        nn.ReLU: "relu",
        nn.Tanh: "tanh",
        nn.Sigmoid: "sigmoid",
        nn.Hardsigmoid: "hard_sigmoid",
        nn.Identity: "linear",
        nn.SELU: "selu",
        nn.Softsign: "softsign",
        nn.ReLU6: "relu6",
        nn.SiLU: "silu",
        nn.Mish: "mish",
        nn.Hardswish: "hard_silu",
    }
    if type(m) in plain:
        return plain[type(m)]
    checks = {
        nn.ELU: ("elu", "alpha=1.0", lambda: m.alpha == 1.0),
        nn.LeakyReLU: ("leaky_relu", "negative_slope=0.2 (Keras's leaky_relu)", lambda: m.negative_slope == 0.2),
        nn.GELU: ("gelu", "approximate='none'", lambda: m.approximate == "none"),
        # float32 softplus(x) is x from x ~ 17 on, so any threshold >= 20 gives the same numbers
        nn.Softplus: ("softplus", "beta=1 and threshold >= 20", lambda: m.beta == 1 and m.threshold >= 20),
    }
    if type(m) in checks:
        name, need, ok = checks[type(m)]
        if not ok():
            raise ValueError(f"{who}({m.extra_repr()}): seqcore's {name} needs {need}.")
        return name
    return None


def _require_built(layer: Any, fn: str) -> None:
    if not getattr(layer, "built", False):
        raise ValueError(
            f"{_who(fn, layer)}: the layer is not built, so its weight shapes are unknown; call it on data or put it "
            f"in a model with an Input first."
        )


def _dense_mods(layer: Dense, fn: str, flat_order: tuple[int, int] | None) -> list[_Mod]:
    """nn.Linear (+ activation). ``flat_order=(L, C)``: the input is a seqcore Flatten of (L, C)
    whose torch counterpart flattened (C, L), so the weight columns are permuted."""
    _require_built(layer, fn)
    k = layer.kernel.value
    f_in, units = k.shape
    if flat_order is not None and flat_order[0] * flat_order[1] != f_in:
        raise ValueError(f"{_who(fn, layer)}: expects {f_in} features; the Flatten before it gives {flat_order}.")

    def to_torch_cols(w: np.ndarray) -> np.ndarray:  # w: (out, in) in seqcore's feature order
        if flat_order is None:
            return w
        steps, ch = flat_order
        return w.reshape(units, steps, ch).transpose(0, 2, 1).reshape(units, f_in)

    def from_torch_cols(w: np.ndarray) -> np.ndarray:
        if flat_order is None:
            return w
        steps, ch = flat_order
        return w.reshape(units, ch, steps).transpose(0, 2, 1).reshape(units, f_in)

    weight, bias = convert.dense_to_torch(k, None if layer.bias is None else layer.bias.value)
    params = {"weight": _f32(to_torch_cols(weight))}
    if bias is not None:
        params["bias"] = _f32(bias)

    def load(p: dict[str, np.ndarray]) -> None:
        kernel, b = convert.dense_from_torch(from_torch_cols(p["weight"]), p.get("bias"))
        layer.set_weights([kernel] if b is None else [kernel, b])

    lin = _Mod("Linear", {"in_features": f_in, "out_features": units, "bias": layer.use_bias}, params, load)
    return [lin, *_act_mods(layer.activation, False, keep_identity=False, who=_who(fn, layer))]


def _conv_mods(layer: Conv1D, fn: str) -> list[_Mod]:
    _require_built(layer, fn)
    k = layer.kernel.value
    size, c_in_g, filters = k.shape
    pad: Any = 0
    pre: list[_Mod] = []
    reach = layer.dilation_rate * (size - 1)
    if layer.padding == "same":
        if layer.strides != 1:
            raise ValueError(
                f"{_who(fn, layer)}: padding='same' with strides={layer.strides} pads according to the input length "
                f"(Keras's rule); nn.Conv1d's padding='same' requires stride 1 and an int padding is fixed. Pad the "
                f"input yourself or use padding='valid'."
            )
        pad = "same"
    elif layer.padding == "causal":  # d*(K-1) zeros on the left only
        pre = [_Mod("ConstantPad1d", {"padding": (reach, 0), "value": 0.0})]
    weight, bias = convert.conv1d_to_torch(k, None if layer.bias is None else layer.bias.value)
    params = {"weight": _f32(weight)}
    if bias is not None:
        params["bias"] = _f32(bias)

    def load(p: dict[str, np.ndarray]) -> None:
        kernel, b = convert.conv1d_from_torch(p["weight"], p.get("bias"))
        layer.set_weights([kernel] if b is None else [kernel, b])

    conv = _Mod(
        "Conv1d",
        {
            "in_channels": c_in_g * layer.groups,
            "out_channels": filters,
            "kernel_size": size,
            "stride": layer.strides,
            "padding": pad,
            "dilation": layer.dilation_rate,
            "groups": layer.groups,
            "bias": layer.use_bias,
        },
        params,
        load,
    )
    return [*pre, conv, *_act_mods(layer.activation, True, keep_identity=False, who=_who(fn, layer))]


def _cell(layer: Any) -> _RNN:
    return layer.forward_layer if isinstance(layer, Bidirectional) else layer  # type: ignore[no-any-return]


def _check_rnn(layer: Any, fn: str) -> None:
    who = _who(fn, layer)
    cells = [layer.forward_layer, layer.backward_layer] if isinstance(layer, Bidirectional) else [layer]
    if isinstance(layer, Bidirectional):
        if layer.merge_mode != "concat":
            raise ValueError(
                f"{who}: merge_mode={layer.merge_mode!r}; a bidirectional nn.LSTM/nn.GRU concatenates the two "
                f"directions (merge_mode='concat')."
            )
        f, b = layer.forward_layer, layer.backward_layer
        if f.go_backwards or not b.go_backwards:
            raise ValueError(f"{who}: its forward layer must read forwards and its backward layer backwards.")
    for cell in cells:
        if cell.activation != "tanh" or cell.recurrent_activation != "sigmoid":
            raise ValueError(
                f"{who}: activation={cell.activation!r}, recurrent_activation={cell.recurrent_activation!r}; "
                f"torch's cells are fixed to tanh and sigmoid."
            )
        if isinstance(cell, GRU) and not cell.reset_after:
            raise ValueError(
                f"{who}: reset_after=False applies the reset gate before the recurrent kernel; torch's nn.GRU is "
                f"Keras's reset_after=True cell, so there is no torch equivalent."
            )
        if cell.go_backwards and not isinstance(layer, Bidirectional):
            raise ValueError(
                f"{who}: go_backwards=True has no nn.LSTM/nn.GRU option (flip the input in time with "
                f"x.flip(1) and the output back instead)."
            )
        if cell.dropout:
            raise ValueError(
                f"{who}: dropout={cell.dropout} drops the layer's inputs, which nn.LSTM/nn.GRU cannot (their dropout "
                f"acts between stacked layers); set dropout=0 and put nn.Dropout before the module."
            )
        if cell.return_state:
            raise ValueError(f"{who}: return_state=True: use the (h, c) the torch module returns instead.")


def _rnn_mod(layers: list[Any], dropout: float, fn: str) -> _Mod:
    """One nn.LSTM / nn.GRU for a stack of same-kind RNN (or Bidirectional) layers."""
    first = _cell(layers[0])
    kind = "LSTM" if isinstance(first, LSTM) else "GRU"
    bi = isinstance(layers[0], Bidirectional)
    for i, layer in enumerate(layers):
        _require_built(layer, fn)
        _check_rnn(layer, fn)
        cell = _cell(layer)
        if type(cell) is not type(first) or isinstance(layer, Bidirectional) != bi:
            raise ValueError(
                f"{_who(fn, layer)}: a torch RNN stack needs layers of one kind ({kind}, bidirectional={bi})."
            )
        if cell.units != first.units or cell.use_bias != first.use_bias:
            raise ValueError(
                f"{_who(fn, layer)}: a torch RNN stack has one hidden_size and one bias setting; layer 0 has "
                f"units={first.units}, use_bias={first.use_bias}; this one units={cell.units}, "
                f"use_bias={cell.use_bias}."
            )
        if i < len(layers) - 1 and not cell.return_sequences:
            raise ValueError(
                f"{_who(fn, layer)}: return_sequences=False inside a stack; the next layer needs sequences."
            )
    to_t = convert.lstm_to_torch if kind == "LSTM" else convert.gru_to_torch
    frm_t = convert.lstm_from_torch if kind == "LSTM" else convert.gru_from_torch
    params: dict[str, np.ndarray] = {}
    for k, layer in enumerate(layers):
        dirs = [("", layer.forward_layer), ("_reverse", layer.backward_layer)] if bi else [("", layer)]
        for suffix, cell in dirs:
            ws = cell.get_weights()
            w_ih, w_hh, b_ih, b_hh = to_t(ws[0], ws[1], ws[2] if cell.use_bias else None)
            params[f"weight_ih_l{k}{suffix}"] = _f32(w_ih)
            params[f"weight_hh_l{k}{suffix}"] = _f32(w_hh)
            if b_ih is not None and b_hh is not None:
                params[f"bias_ih_l{k}{suffix}"] = _f32(b_ih)
                params[f"bias_hh_l{k}{suffix}"] = _f32(b_hh)

    def load(p: dict[str, np.ndarray]) -> None:
        new = []
        for k in range(len(layers)):
            ws: list[np.ndarray] = []
            for suffix in ("", "_reverse") if bi else ("",):
                kernel, rk, b = frm_t(
                    p[f"weight_ih_l{k}{suffix}"],
                    p[f"weight_hh_l{k}{suffix}"],
                    p.get(f"bias_ih_l{k}{suffix}"),
                    p.get(f"bias_hh_l{k}{suffix}"),
                )
                ws += [kernel, rk] if b is None else [kernel, rk, b]
            new.append(ws)
        for layer, ws in zip(layers, new, strict=True):  # converted every layer first: all or nothing
            layer.set_weights(ws)

    kwargs = {
        "input_size": int(first.kernel.value.shape[0]),
        "hidden_size": first.units,
        "num_layers": len(layers),
        "bias": first.use_bias,
        "batch_first": True,
        "dropout": dropout,
        "bidirectional": bi,
    }
    return _Mod(kind, kwargs, params, load)


def _is_rnn(layer: Any) -> bool:
    return isinstance(layer, _RNN) or (isinstance(layer, Bidirectional) and isinstance(layer.forward_layer, _RNN))


def _rnn_stack(layers: list[Any]) -> tuple[list[Any], float] | None:
    """A Sequential that is RNN [Dropout(p) RNN]... (one torch RNN module), or None."""
    rnns = layers[::2]
    drops = layers[1::2]
    if all(_is_rnn(x) for x in layers):
        return layers, 0.0
    if (
        not all(_is_rnn(x) for x in rnns)
        or not all(isinstance(d, Dropout) for d in drops)
        or len(rnns) != len(drops) + 1
    ):
        return None
    rates = {d.rate for d in drops}
    if len(rates) != 1 or any(d.noise_shape is not None for d in drops):
        return None
    return rnns, rates.pop()


def _shapes(model: Sequential) -> list[Shape | None]:
    """The input shape of each layer of a model (None where unknown)."""
    if model._input_spec is None:
        return [layer.input_shape for layer in model.layers]
    out: list[Shape | None] = []
    shape: Shape | None = model._input_spec.shape
    for layer in model.layers:
        out.append(shape)
        shape = None if shape is None else tuple(layer.compute_output_shape(shape))
    return out


def _sequential_plan(model: Sequential, fn: str) -> _Plan:
    layers = list(model.layers)
    if not layers:
        raise ValueError(f"{fn}: model {model.name!r} has no layers.")
    stack = _rnn_stack(layers)
    if stack is not None:
        rnns, p = stack
        mod = _rnn_mod(rnns, p, fn)
        return _Plan(
            [mod], rnn=mod, return_sequences=_cell(rnns[-1]).return_sequences, bidirectional=mod.kwargs["bidirectional"]
        )
    shapes = _shapes(model)
    # Channels-first stage: torch holds (batch, channels, steps) while seqcore holds (batch, steps,
    # channels). It starts at a leading conv/pool layer and ends at a Flatten or a global pool.
    channels_first = isinstance(_first_shaping(layers), (Conv1D, MaxPooling1D, AveragePooling1D, _GLOBAL_POOLS))
    starts_cf = channels_first
    flat_order: tuple[int, int] | None = None  # pending column permutation for the next Dense
    mods: list[_Mod] = []
    for layer, shape in zip(layers, shapes, strict=True):
        who = _who(fn, layer)
        layer = _unwrap_td_dense(layer)
        if isinstance(layer, (Activation, Dropout)):
            if isinstance(layer, Dropout):
                if layer.noise_shape is not None:
                    raise ValueError(f"{who}: noise_shape has no nn.Dropout equivalent.")
                mods.append(_Mod("Dropout", {"p": layer.rate}))
            else:
                mods += _act_mods(layer.activation, channels_first, keep_identity=True, who=who)
            continue
        if flat_order is not None and not isinstance(layer, Dense):
            raise ValueError(
                f"{who} follows a Flatten of channels-first data: torch flattens (channels, steps), seqcore (steps, "
                f"channels), so only a Dense right after it (whose weights are reordered) is convertible."
            )
        if isinstance(layer, Dense):
            if channels_first:
                raise ValueError(
                    f"{who}: a Dense on a (batch, steps, channels) sequence after conv layers acts on channels, but "
                    f"nn.Linear on torch's channels-first tensor would act on steps; flatten or pool first."
                )
            mods += _dense_mods(layer, fn, flat_order)
            flat_order = None
        elif isinstance(layer, Conv1D):
            if not channels_first:
                raise ValueError(
                    f"{who}: Conv1D after channels-last layers would need a transpose in torch, which nn.Sequential "
                    f"lacks; build that torch module by hand."
                )
            mods += _conv_mods(layer, fn)
        elif isinstance(layer, (MaxPooling1D, AveragePooling1D)):
            if not channels_first or layer.padding != "valid":
                why = "padding='same'" if layer.padding != "valid" else "it follows channels-last layers"
                raise ValueError(
                    f"{who}: {why} has no nn.{'Max' if isinstance(layer, MaxPooling1D) else 'Avg'}Pool1d form."
                )
            cls = "MaxPool1d" if isinstance(layer, MaxPooling1D) else "AvgPool1d"
            mods.append(_Mod(cls, {"kernel_size": layer.pool_size, "stride": layer.strides}))
        elif isinstance(layer, _GLOBAL_POOLS):
            if not channels_first:
                raise ValueError(f"{who}: global pooling after channels-last layers has no nn.Sequential form.")
            cls = "AdaptiveMaxPool1d" if isinstance(layer, GlobalMaxPooling1D) else "AdaptiveAvgPool1d"
            mods.append(_Mod(cls, {"output_size": 1}))
            if not layer.keepdims:
                mods.append(_Mod("Flatten", {}))
                channels_first = False
        elif isinstance(layer, Flatten):
            if channels_first:
                if shape is None or len(shape) != 2 or shape[0] is None or shape[1] is None:
                    raise ValueError(
                        f"{who}: torch flattens channels-first data as (channels, steps) and seqcore as (steps, "
                        f"channels), so the next Dense's weights are reordered, which needs the number of steps; it "
                        f"is unknown here (input shape {shape}). Give the model a fixed input length (from_torch: pass "
                        f"input_length=<steps of the input>)."
                    )
                if shape[0] != 1:
                    flat_order = (int(shape[0]), int(shape[1]))
                channels_first = False
            mods.append(_Mod("Flatten", {}))
        else:
            hint = ""
            if _is_rnn(layer):
                hint = (
                    " nn.LSTM/nn.GRU return (output, state) tuples, so they cannot sit inside nn.Sequential next to "
                    "other modules; convert the recurrent layers on their own."
                )
            raise ValueError(f"{who}: no nn.Sequential equivalent is known to seqcore's converter.{hint}")
    if flat_order is not None:
        raise ValueError(
            f"{fn}: model {model.name!r} ends with a Flatten of channels-first data, whose feature order differs "
            f"between torch and seqcore; add the Dense that follows it."
        )
    return _Plan(mods, channels_first_in=starts_cf, channels_first_out=channels_first, container=True)


_GLOBAL_POOLS = (GlobalMaxPooling1D, GlobalAveragePooling1D)


def _first_shaping(layers: list[Any]) -> Any:
    """The first layer that is not elementwise (which decides torch's input layout)."""
    return next((x for x in layers if not isinstance(x, (Activation, Dropout))), None)


def _unwrap_td_dense(layer: Any) -> Any:
    """TimeDistributed(Dense) is Dense on the last axis (seqcore's Dense already works per step),
    so both map to nn.Linear, which also acts on the last axis."""
    if isinstance(layer, TimeDistributed) and isinstance(layer.layer, Dense):
        return layer.layer
    return layer


def _plan(layer: Any, fn: str) -> _Plan:
    if isinstance(layer, Sequential):
        return _sequential_plan(layer, fn)
    layer = _unwrap_td_dense(layer)
    _require_built(layer, fn)
    if isinstance(layer, Dense):
        return _Plan(_dense_mods(layer, fn, None))
    if isinstance(layer, Conv1D):
        return _Plan(_conv_mods(layer, fn), channels_first_in=True, channels_first_out=True)
    if _is_rnn(layer):
        mod = _rnn_mod([layer], 0.0, fn)
        return _Plan(
            [mod], rnn=mod, return_sequences=_cell(layer).return_sequences, bidirectional=mod.kwargs["bidirectional"]
        )
    raise ValueError(
        f"{_who(fn, layer)}: no torch equivalent is known to seqcore's converter (Dense, LSTM, GRU, Bidirectional, "
        f"Conv1D, or a Sequential of them)."
    )


# ================================================================================================
# Public API
# ================================================================================================
def torch_state_dict(layer: Any) -> dict[str, np.ndarray]:
    """The ``state_dict`` of ``to_torch(layer)`` as float32 NumPy arrays, computed without torch: keys
    ``weight``/``bias`` (Dense, Conv1D), ``weight_ih_l0``... (LSTM, GRU, Bidirectional with
    ``_reverse``, a Sequential of stacked RNNs with ``_l1``...), ``<index>.weight`` for an
    ``nn.Sequential`` (a Dense/Conv1D with a fused activation becomes one: Linear then the
    activation)."""
    return _plan(layer, "torch_state_dict").state_dict()


def load_torch_state_dict(layer: Any, state_dict: Mapping[str, Any]) -> None:
    """Loads PyTorch-layout weights (tensors or arrays, e.g. ``module.state_dict()``) into an existing
    seqcore layer or Sequential; the keys are those of :func:`torch_state_dict`. An unbuilt Dense,
    Conv1D, LSTM, GRU or Bidirectional is built from the weight shapes. Missing, unexpected or
    misshaped entries raise a ValueError listing them, and then no weight has changed."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"load_torch_state_dict: expected a mapping of names to arrays (module.state_dict()); received "
            f"{type(state_dict).__name__}."
        )
    _load(layer, state_dict, "load_torch_state_dict")


def _load(layer: Any, state_dict: Mapping[str, Any], fn: str) -> None:
    sd = {str(k): convert._array(v) for k, v in state_dict.items()}
    if not isinstance(layer, Sequential) and not getattr(layer, "built", True):
        _build_from_state(layer, sd, fn)
    plan = _plan(layer, fn)
    expected = plan.state_dict()
    holders = [i for i, m in enumerate(plan.mods) if m.params]
    if set(sd) != set(expected) and len(holders) == 1 and set(sd) == set(plan.mods[holders[0]].params):
        # Bare nn.Linear / nn.Conv1d keys for a layer whose fused activation makes it an nn.Sequential.
        sd = {plan.prefix(holders[0]) + k: v for k, v in sd.items()}
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    what = f"{type(layer).__name__} {getattr(layer, 'name', '')!r}"
    if missing or unexpected:
        raise ValueError(
            f"{fn}: {what} expects the keys {sorted(expected)}; missing {missing}, unexpected {unexpected}. (The keys "
            f"are those of seqcore.interop.torch_state_dict(layer).)"
        )
    bad = [
        f"{k}: expected {expected[k].shape}, received {sd[k].shape}"
        for k in expected
        if sd[k].shape != expected[k].shape
    ]
    if bad:
        raise ValueError(f"{fn}: {what}: shape mismatch: {'; '.join(bad)}.")
    old = _snapshot(layer)
    try:
        for i, mod in enumerate(plan.mods):
            if mod.load is not None:
                mod.load({k: sd[plan.prefix(i) + k] for k in mod.params})
    except Exception:
        _restore(layer, old)
        raise


def _snapshot(layer: Any) -> list[np.ndarray]:
    return [w.value.copy() for w in layer.weights]


def _restore(layer: Any, old: list[np.ndarray]) -> None:
    for w, v in zip(layer.weights, old, strict=True):
        w.value[...] = v


def _build_from_state(layer: Any, sd: dict[str, np.ndarray], fn: str) -> None:
    def need(key: str) -> np.ndarray:
        if key not in sd:
            raise ValueError(f"{_who(fn, layer)}: cannot build it from the state dict: no {key!r} among {sorted(sd)}.")
        return sd[key]

    if isinstance(layer, Dense):
        layer._maybe_build((int(need("weight").shape[1]),))
        layer.input_shape = None  # like nn.Linear: any leading axes, only the last one is fixed
    elif isinstance(layer, Conv1D):
        layer._maybe_build((None, int(need("weight").shape[1]) * layer.groups))
    elif _is_rnn(layer):
        layer._maybe_build((None, int(need("weight_ih_l0").shape[1])))
    else:
        raise ValueError(f"{_who(fn, layer)}: build the layer first (call it on data), then load the weights.")


def to_torch(layer: Any, *, verify: bool = True, tolerance: float = DEFAULT_TOLERANCE) -> Any:
    """A torch module computing what a built seqcore layer computes, with its weights:

    * ``Dense`` (or ``TimeDistributed(Dense)``) -> ``nn.Linear`` (followed by the activation in an
      ``nn.Sequential`` unless linear);
    * ``LSTM`` / ``GRU`` (``reset_after=True``, tanh/sigmoid) -> ``nn.LSTM`` / ``nn.GRU`` with
      ``batch_first=True``; ``Bidirectional(..., merge_mode='concat')`` -> ``bidirectional=True``; a
      Sequential of such layers (optionally with equal ``Dropout`` between them) -> ``num_layers=n``.
      The module returns the whole sequence: for ``return_sequences=False`` seqcore's output is the
      last step, i.e. ``h_n[-1]`` (``cat(h_n[-2], h_n[-1])`` when bidirectional);
    * ``Conv1D`` -> ``nn.Conv1d`` (``causal`` -> ``nn.ConstantPad1d`` + conv), channels-first input;
    * a Sequential of Dense/Conv1D/pooling/Flatten/Activation/Dropout -> ``nn.Sequential``. A model
      mixing recurrent and other layers has no ``nn.Sequential`` form (torch RNNs return tuples):
      convert its layers one by one.

    With ``verify=True`` both run a probe batch; the module gets a ``conversion_report`` attribute
    and a difference above ``tolerance`` raises a ValueError."""
    fn = "to_torch"
    torch = _torch(fn)
    plan = _plan(layer, fn)
    mods = [getattr(torch.nn, m.cls)(**m.kwargs) for m in plan.mods]
    module = torch.nn.Sequential(*mods) if plan.wrapped else mods[0]
    module.load_state_dict({k: torch.from_numpy(v) for k, v in plan.state_dict().items()}, strict=True)
    module.eval()
    if not verify:
        return attach(module, unverified("seqcore", "torch", "verify=False"))
    x = probe_batch(_probe_shape(layer, None))
    with fresh_states(layer):  # torch modules start from zero states; so does the check
        ref = _seqcore_forward(layer, x)
    out = _torch_forward(torch, module, x, plan, batch_first=True)
    return attach(module, check_close(fn, ref, out, tolerance, source="seqcore", target="torch", probe_shape=x.shape))


def from_torch(
    module: Any,
    *,
    verify: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
    return_sequences: bool = True,
    assume_batch_first: bool = False,
    input_length: int | None = None,
) -> Any:
    """The seqcore layer (or Sequential) matching a torch module, with its weights:

    * ``nn.Linear`` -> ``Dense`` (any number of leading axes, like nn.Linear);
    * ``nn.LSTM`` / ``nn.GRU`` -> ``LSTM`` / ``GRU(reset_after=True)`` returning sequences like torch
      (``return_sequences=False``: only the last step, i.e. torch's ``h_n`` of the last layer);
      ``bidirectional=True`` -> ``Bidirectional(..., merge_mode='concat')``; ``num_layers > 1`` -> a
      ``Sequential`` of layers (with ``Dropout(dropout)`` between them, as torch applies it). seqcore
      takes ``(batch, time, features)``: a ``batch_first=False`` module is refused unless
      ``assume_batch_first=True`` says you will feed batch-first data; ``proj_size > 0`` is refused;
    * ``nn.Conv1d`` -> ``Conv1D``. torch is channels-first: the seqcore layer takes
      ``(batch, steps, channels)``, i.e. ``x.transpose(0, 2, 1)`` of the torch input. ``padding``
      0/'valid' -> 'valid'; 'same' or an int equal to ``dilation*(kernel_size-1)/2`` (stride 1) ->
      'same'; other paddings and ``padding_mode`` other than 'zeros' are refused;
    * ``nn.Sequential`` of Linear, Conv1d, MaxPool1d/AvgPool1d (no padding), AdaptiveMax/AvgPool1d(1),
      Flatten, Dropout, the activations (ReLU, ReLU6, LeakyReLU(0.2), ELU(alpha=1), SELU, Softplus, Softsign,
      Tanh, Sigmoid, Hardsigmoid, GELU, SiLU, Mish, Hardswish, Softmax) and Identity -> ``Sequential``; after
      channels-first layers a Flatten + Linear needs ``input_length`` (the steps of the input) to
      reorder the Linear's weights.

    The module is never modified. With ``verify=True`` a copy of it (eval mode, float32, CPU) and the
    result run a probe batch; the result gets ``conversion_report`` and a difference above
    ``tolerance`` raises a ValueError."""
    fn = "from_torch"
    torch = _torch(fn)
    nn = torch.nn
    if not isinstance(module, nn.Module):
        raise TypeError(f"{fn}: expected a torch.nn.Module; received {type(module).__name__}.")
    if isinstance(module, nn.Sequential):
        result: Any = _sequential_from_torch(torch, module, fn, input_length)
    else:
        result = _layer_from_torch(torch, module, fn, return_sequences, assume_batch_first)
    _load(result, module.state_dict(), fn)
    if not verify:
        return attach(result, unverified("torch", "seqcore", "verify=False"))
    plan = _plan(result, fn)
    x = probe_batch(_probe_shape(result, input_length))
    batch_first = bool(getattr(module, "batch_first", True))
    ref_module = copy.deepcopy(module).float().cpu().eval()
    ref = _torch_forward(torch, ref_module, x, plan, batch_first=batch_first)
    with fresh_states(result):
        out = _seqcore_forward(result, x)
    return attach(result, check_close(fn, ref, out, tolerance, source="torch", target="seqcore", probe_shape=x.shape))


# ----- torch modules -> seqcore layers ---------------------------------------------------------------
def _torch(fn: str) -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"{fn} needs torch (pip install torch); torch_state_dict and load_torch_state_dict work without it."
        ) from None
    return torch


def _single(value: Any, fn: str, who: str, arg: str) -> Any:
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{fn}: {who}: {arg}={value!r}; expected one value for a 1-D layer.")
        return value[0]
    return value


def _layer_from_torch(torch: Any, m: Any, fn: str, return_sequences: bool, assume_batch_first: bool) -> Any:
    nn = torch.nn
    who = f"{type(m).__name__}"
    if isinstance(m, nn.Linear):
        dense = Dense(m.out_features, use_bias=m.bias is not None)
        dense._maybe_build((m.in_features,))
        dense.input_shape = None  # like nn.Linear: any leading axes, only the last one is fixed
        return dense
    if isinstance(m, (nn.LSTM, nn.GRU)):
        if getattr(m, "proj_size", 0):
            raise ValueError(
                f"{fn}: {who}(proj_size={m.proj_size}) projects the hidden state, which seqcore's LSTM does not; "
                f"use proj_size=0."
            )
        if not m.batch_first and not assume_batch_first:
            raise ValueError(
                f"{fn}: {who} has batch_first=False (input (time, batch, features)); seqcore's layers take "
                f"(batch, time, features). Build the module with batch_first=True, or pass assume_batch_first=True "
                f"and feed seqcore x.transpose(1, 0, 2)."
            )
        if getattr(m, "mode", "") not in ("LSTM", "GRU") or not isinstance(m, (nn.LSTM, nn.GRU)):
            raise ValueError(f"{fn}: {who} (mode {getattr(m, 'mode', '?')!r}) is not supported.")
        cls = LSTM if isinstance(m, nn.LSTM) else GRU
        layers: list[Any] = []
        for k in range(m.num_layers):
            last = k == m.num_layers - 1
            kw: dict[str, Any] = {"return_sequences": (not last) or return_sequences, "use_bias": bool(m.bias)}
            if cls is GRU:
                kw["reset_after"] = True
            cell = cls(m.hidden_size, **kw)
            layer = Bidirectional(cell, merge_mode="concat") if m.bidirectional else cell
            in_dim = m.input_size if k == 0 else m.hidden_size * (2 if m.bidirectional else 1)
            layer._maybe_build((None, in_dim))
            layers.append(layer)
            if m.dropout and not last:
                layers.append(Dropout(float(m.dropout)))
        return layers[0] if len(layers) == 1 else Sequential([Input((None, m.input_size)), *layers])
    if isinstance(m, nn.Conv1d):
        return _conv_from_torch(m, fn)
    raise ValueError(
        f"{fn}: {who} is not supported; seqcore converts nn.Linear, nn.LSTM, nn.GRU, nn.Conv1d and nn.Sequential "
        f"(of Linear, Conv1d, pooling, Flatten, Dropout and activation modules)."
    )


def _conv_from_torch(m: Any, fn: str) -> Conv1D:
    who = "Conv1d"
    if m.padding_mode != "zeros":
        raise ValueError(
            f"{fn}: {who}(padding_mode={m.padding_mode!r}); seqcore pads with zeros only (padding_mode='zeros')."
        )
    k = int(_single(m.kernel_size, fn, who, "kernel_size"))
    s = int(_single(m.stride, fn, who, "stride"))
    d = int(_single(m.dilation, fn, who, "dilation"))
    pad = m.padding if isinstance(m.padding, str) else int(_single(m.padding, fn, who, "padding"))
    reach = d * (k - 1)
    if pad in ("valid", 0):
        padding = "valid"
    elif pad == "same" or (s == 1 and 2 * pad == reach):
        padding = "same"
    else:
        raise ValueError(
            f"{fn}: {who}(kernel_size={k}, stride={s}, dilation={d}, padding={pad}) pads {pad} zero(s) on both sides, "
            f"which none of seqcore's paddings does ('valid': none; 'same' with stride 1: {reach // 2} left and "
            f"{reach - reach // 2} right; 'causal': {reach} left). Pad the input yourself "
            f"(np.pad(x, ((0, 0), ({pad}, {pad}), (0, 0)))) and convert a padding=0 module."
        )
    layer = Conv1D(
        m.out_channels, k, strides=s, padding=padding, dilation_rate=d, groups=m.groups, use_bias=m.bias is not None
    )
    layer._maybe_build((None, m.in_channels))
    return layer


def _sequential_from_torch(torch: Any, seq: Any, fn: str, input_length: int | None) -> Sequential:
    nn = torch.nn
    children = list(seq)
    cf = False  # channels-first stage (after a leading conv/pool)
    act_types = (
        *(nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Hardsigmoid, nn.Identity, nn.ELU, nn.SELU, nn.Softplus),
        *(nn.Softsign, nn.LeakyReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish),
    )
    first = next((m for m in children if not isinstance(m, (nn.Dropout, *act_types, nn.Softmax))), None)
    cf = isinstance(first, (nn.Conv1d, nn.MaxPool1d, nn.AvgPool1d, nn.AdaptiveMaxPool1d, nn.AdaptiveAvgPool1d))
    starts_cf = cf
    in_channels = next((m.in_channels for m in children if isinstance(m, nn.Conv1d)), None)
    layers: list[Any] = []
    for i, m in enumerate(children):
        who = f"{fn}: nn.Sequential[{i}] {type(m).__name__}"
        act = _act_from_torch(nn, m, who)
        if act is not None:
            layers.append(Activation(act))
        elif isinstance(m, nn.Softmax):
            ok = m.dim in ((1, -2) if cf else (-1,))
            if not ok:
                axis = "1 (channels)" if cf else "-1"
                raise ValueError(f"{who}(dim={m.dim}): seqcore's softmax runs over the features, i.e. dim={axis} here.")
            layers.append(Activation("softmax"))
        elif isinstance(m, nn.Dropout):
            layers.append(Dropout(float(m.p)))
        elif isinstance(m, nn.Linear):
            if cf:
                raise ValueError(
                    f"{who}: nn.Linear on a channels-first (batch, channels, steps) tensor acts on the steps axis, "
                    f"which seqcore's Dense (acting on features) cannot express."
                )
            layers.append(_layer_from_torch(torch, m, fn, True, False))
        elif isinstance(m, nn.Conv1d):
            if not cf:
                raise ValueError(f"{who}: a Conv1d after channels-last modules has no seqcore equivalent.")
            layers.append(_conv_from_torch(m, fn))
        elif isinstance(m, (nn.MaxPool1d, nn.AvgPool1d)):
            kind = "MaxPool1d" if isinstance(m, nn.MaxPool1d) else "AvgPool1d"
            size = int(_single(m.kernel_size, fn, kind, "kernel_size"))
            stride = int(_single(m.stride if m.stride is not None else size, fn, kind, "stride"))
            pad = int(_single(m.padding, fn, kind, "padding"))
            dil = int(_single(getattr(m, "dilation", 1), fn, kind, "dilation"))
            if not cf or pad or dil != 1 or m.ceil_mode or getattr(m, "return_indices", False):
                raise ValueError(
                    f"{who}: seqcore converts {kind} with padding=0, dilation=1, ceil_mode=False and no indices, "
                    f"after channels-first modules; received padding={pad}, dilation={dil}, ceil_mode={m.ceil_mode}."
                )
            layers.append((MaxPooling1D if kind == "MaxPool1d" else AveragePooling1D)(size, strides=stride))
        elif isinstance(m, (nn.AdaptiveMaxPool1d, nn.AdaptiveAvgPool1d)):
            size = _single(m.output_size, fn, type(m).__name__, "output_size")
            if size != 1 or not cf or getattr(m, "return_indices", False):
                raise ValueError(f"{who}: only output_size=1 (global pooling) over channels-first data converts.")
            cls = GlobalMaxPooling1D if isinstance(m, nn.AdaptiveMaxPool1d) else GlobalAveragePooling1D
            layers.append(cls(keepdims=True))  # (batch, 1, channels): still a sequence, like torch's (batch, ch, 1)
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise ValueError(f"{who}(start_dim={m.start_dim}, end_dim={m.end_dim}): only start_dim=1, end_dim=-1.")
            layers.append(Flatten())
            cf = False
        elif isinstance(m, (nn.LSTM, nn.GRU)):
            raise ValueError(
                f"{who}: nn.LSTM/nn.GRU return (output, state) tuples, so inside nn.Sequential they only work as the "
                f"last module; convert the recurrent module on its own with from_torch(module)."
            )
        else:
            raise ValueError(f"{who} is not supported by seqcore's converter.")
    entries: list[Any] = []
    if starts_cf:
        if in_channels is None:
            raise ValueError(f"{fn}: nn.Sequential has pooling but no Conv1d, so its number of channels is unknown.")
        entries.append(Input((input_length, in_channels)))
    try:
        return Sequential([*entries, *layers])
    except ValueError as e:
        raise ValueError(f"{fn}: nn.Sequential: {e}") from None


# ----- running both sides ----------------------------------------------------------------------------
def _probe_shape(layer: Any, input_length: int | None) -> tuple[int, ...]:
    if isinstance(layer, Sequential):
        if layer._input_spec is not None:
            cf = _plan(layer, "verify").channels_first_in
            steps = input_length or (_CONV_PROBE_STEPS if cf else PROBE_STEPS)
            return (2, *(steps if d is None else int(d) for d in layer._input_spec.shape))
        first = next(x for x in layer.layers if x.built)  # from_torch builds every weighted layer
        return _probe_shape(first, input_length)
    layer = _unwrap_td_dense(layer)
    if isinstance(layer, Dense):
        return (2, int(layer.kernel.value.shape[0]))
    if isinstance(layer, Conv1D):
        size, c_in_g, _ = layer.kernel.value.shape
        steps = max(PROBE_STEPS, layer.dilation_rate * (size - 1) + 1 + 3 * layer.strides)
        return (2, steps, c_in_g * layer.groups)
    return (2, 5, int(_cell(layer).kernel.value.shape[0]))


def _seqcore_forward(layer: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(layer(x))


def _torch_forward(torch: Any, module: Any, x: np.ndarray, plan: _Plan, batch_first: bool) -> np.ndarray:
    """Runs a torch module on the seqcore-layout probe ``x`` and returns its output in seqcore's layout."""
    xt = np.ascontiguousarray(x.transpose(0, 2, 1)) if plan.channels_first_in else x
    if plan.rnn is not None and not batch_first:
        xt = np.ascontiguousarray(xt.transpose(1, 0, 2))
    # torch warns about some valid configurations (e.g. padding='same' with an even kernel copies the
    # input); the warning concerns torch's own speed, not the conversion, so it is not passed on.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = module(torch.from_numpy(xt))
    if plan.rnn is None:
        y = out.numpy()
        return np.ascontiguousarray(y.transpose(0, 2, 1)) if plan.channels_first_out else y
    seq, state = out
    if plan.return_sequences:
        y = seq.numpy()
        return y if batch_first else np.ascontiguousarray(y.transpose(1, 0, 2))
    h_n = (state[0] if isinstance(state, tuple) else state).numpy()  # (layers * directions, batch, hidden)
    return np.concatenate([h_n[-2], h_n[-1]], axis=-1) if plan.bidirectional else h_n[-1]
