"""ONNX export: a seqcore ``Sequential`` or Functional model as an ONNX graph that ONNX Runtime runs.

``to_onnx(model, filepath=None, opset=17)`` (and ``model.export(filepath, format="onnx")``, Keras 3's
method) builds the graph with the ``onnx`` package (``onnx.helper``; checked by ``onnx.checker``) and,
given a path, writes it atomically. The ``onnx`` package is the optional extra ``seqcore[onnx]``;
nothing here imports it until asked. Opsets 13 to the newest the installed ``onnx`` knows.

This package owns the conversion, by layer family:

* ``_base``: the graph builder, the record of one layer call, the registry of converters by exact
  layer class (:data:`EXPORTED_LAYERS`) and of refused classes with why (:data:`REFUSED_LAYERS`),
  activations;
* ``_core``: Dense, activation layers, Embedding, Masking, the inference-identity layers (Dropout,
  SpatialDropout1D, GaussianNoise, GaussianDropout, AlphaDropout, ActivityRegularization), reshaping,
  TimeDistributed (the time axis folded into the batch, any wrapped layer or model: CNN-LSTM
  stacks), the merge layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot)
  and ``seqcore.ops`` calls in Functional graphs;
* ``_conv``: Conv1D, DepthwiseConv1D, SeparableConv1D, Conv1DTranspose, pooling, global pooling;
* ``_norm``: LayerNormalization, RMSNormalization, BatchNormalization (moving statistics),
  GroupNormalization, UnitNormalization;
* ``_recurrent``: LSTM, GRU, SimpleRNN, ``RNN(cell)`` and Bidirectional as ONNX's LSTM/GRU/RNN ops;
* ``_attention``: MultiHeadAttention, Attention, AdditiveAttention as MatMul/Softmax graphs;
* ``_export``: walking Sequential, Functional and nested models, masks, the graph's inputs and
  outputs, ``to_onnx`` and ``Model.export``.

**Shapes.** The batch axis of every input is symbolic, and so is the time axis (axis 1) of every
sequence input (rank >= 3, or integer ids). A graph input has the dtype its ``seqcore.Input`` was
given (``int32`` ids for an Embedding; float32 by default).

**Masks assume post-padding.** Masking and Embedding(mask_zero=True) start a mask; in the graph it
is each sample's number of valid steps (``sum(any(x != mask_value, -1))``, ``sum(ids != 0)``), which
travels to the layers that use it exactly as in seqcore: the recurrent layers (ONNX's
``sequence_lens``, with seqcore's outputs over the padding), GlobalAveragePooling1D and the attention
layers. That count is the mask only when every sample's valid steps come first (post-padding, e.g.
``pad_sequences(..., padding="post")``). A pre-padded or holed batch cannot be known when the graph
is built: the graph then computes as if the first ``count`` steps were the valid ones, unlike
seqcore. Pad after the data for exported models.

**Stateful layers.** The carried states are extra graph inputs and outputs after the model's own:
inputs ``<layer>/h_in`` (and ``<layer>/c_in`` for an LSTM), outputs ``<layer>/h_out`` (``/c_out``),
``<layer>`` the recurrent layer's name, ``<bidirectional>/forward`` and ``/backward`` in a
Bidirectional, ``<rnn>/cell<i>`` for stacked cells. Feed zeros for a fresh (or reset) state and each
call's outputs to the next call, as a streaming server does.

**Traced code.** seqcore traces a subclassed layer's or model's ``call()``, and a Lambda's function,
into a graph of its layers and ``seqcore.ops`` calls, and runs that graph: the export is that graph
too (Python control flow in ``call()`` was fixed when it was traced, for seqcore as well).

**Refused** (``ValueError`` naming the layer, why, and the fix): custom layers that compute in
``forward()`` with NumPy, subclassed models that have not run yet (nothing traced), bare RNN cells,
MultiHeadAttention on inputs of rank > 3, masks or causal masks for Attention on inputs of rank > 3,
a stateful layer called twice in one graph, call arguments a converter does not read, and constants
where the graph needs tensors (``initial_state``, ``mask``, ``attention_mask``).
:data:`REFUSED_LAYERS` lists the refused layer classes with why. Bad arguments (opset, format, file
path, not a seqcore model) are ``ValueError``/``TypeError`` saying what was expected.
"""

from __future__ import annotations

from . import _attention, _conv, _core, _norm, _recurrent  # noqa: F401  (they register their converters)
from ._base import HANDLERS, REFUSED
from ._export import DEFAULT_OPSET, MIN_OPSET, build_onnx, export_model, max_opset, to_onnx

#: the layer classes exported (by class name), and the refused ones with why
EXPORTED_LAYERS: tuple[str, ...] = tuple(sorted(cls.__name__ for cls in HANDLERS))
REFUSED_LAYERS: dict[str, str] = {
    cls.__name__: why for cls, why in sorted(REFUSED.items(), key=lambda kv: kv[0].__name__)
}

__all__ = [
    "DEFAULT_OPSET",
    "EXPORTED_LAYERS",
    "MIN_OPSET",
    "REFUSED_LAYERS",
    "build_onnx",
    "export_model",
    "max_opset",
    "to_onnx",
]
