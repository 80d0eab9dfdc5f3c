"""ONNX export (``seqcore.interop.to_onnx`` and ``model.export(path, format="onnx")``).

Every model gets random non-trivial weights, is exported, run with onnxruntime and compared with
seqcore's own ``predict_on_batch`` (the reference) on the shape it was built with, on new batch
sizes (1 included) and on new sequence lengths. A model built with a fixed time length is compared
at another length against a twin built for that length with the same weights: the exported graph
has symbolic batch and time axes, so it must run there while seqcore's model (which checks its
input shape) needs the twin.
"""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import seqcore as keras  # noqa: E402
from seqcore import layers as L  # noqa: E402

F32 = np.float32
ATOL = RTOL = 1e-5
T0 = 5  # the time length every model is built with
# (batch, time): the built shape, a batch of 1, a new batch and a new length, both at once
CASES = [(2, T0), (1, T0), (3, 7), (1, 6)]
BATCH_ONLY = [(2, T0), (1, T0), (3, T0)]  # for models whose sizes pin the time axis (Flatten, ...)


# ----- helpers ------------------------------------------------------------------------------------
def to_onnx(model, filepath=None, **kwargs):
    return keras.interop.to_onnx(model, filepath, **kwargs)


def randomize(model, seed=0):
    """Random weights, N(0, 0.5²); a variance (BatchNormalization's moving variance) in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    values = []
    for w in model.weights:
        if "variance" in w.name:
            values.append(rng.uniform(0.5, 1.5, size=w.shape).astype(F32))
        else:
            values.append((rng.normal(size=w.shape) * 0.5).astype(F32))
    model.set_weights(values)
    return model


def session(proto):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def run_onnx(sess, xs):
    names = [i.name for i in sess.get_inputs()]
    assert len(names) == len(xs), f"the ONNX graph has inputs {names}; the model takes {len(xs)}"
    return sess.run(None, dict(zip(names, xs, strict=True)))


def as_list(y):
    return list(y) if isinstance(y, (list, tuple)) else [y]


def predict(model, xs):
    return [np.asarray(v) for v in as_list(model.predict_on_batch(xs if len(xs) > 1 else xs[0]))]


def seq(features):
    """Inputs: one float sequence (batch, time, features)."""
    return lambda rng, b, t: [rng.normal(size=(b, t, features)).astype(F32)]


def assert_close(got, want, atol=ATOL, rtol=RTOL, where=""):
    assert len(got) == len(want), f"{where}: {len(got)} ONNX outputs, {len(want)} model outputs"
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g.shape == w.shape, f"{where} output {k}: ONNX shape {g.shape}, model shape {w.shape}"
        np.testing.assert_allclose(g, w, atol=atol, rtol=rtol, err_msg=f"{where} output {k}")


def check_export(build, make_x, cases=CASES, atol=ATOL, rtol=RTOL, seed=0):
    """Builds ``build(T0)``, randomizes it, exports it and compares ONNX with seqcore on every
    (batch, time) case; returns the model and its proto."""
    model = randomize(build(T0), seed)
    proto = to_onnx(model)
    assert isinstance(proto, onnx.ModelProto)
    onnx.checker.check_model(proto)
    sess = session(proto)
    rng = np.random.default_rng(seed + 1)
    twins = {T0: model}
    for b, t in cases:
        if t not in twins:
            twin = build(t)
            twin.set_weights(model.get_weights())
            twins[t] = twin
        xs = make_x(rng, b, t)
        want = predict(twins[t], xs)
        assert all(np.all(np.isfinite(w)) for w in want)
        assert_close(run_onnx(sess, xs), want, atol, rtol, where=f"batch={b} time={t}")
    return model, proto


def seq_model(t, features, *layers):
    return keras.Sequential([keras.Input((t, features)), *layers])


# ----- Dense, TimeDistributed, activations -----------------------------------------------------------
def test_dense_rank2():
    def build(t):
        return keras.Sequential([keras.Input((4,)), L.Dense(5, activation="tanh"), L.Dense(3)])

    check_export(build, lambda rng, b, t: [rng.normal(size=(b, 4)).astype(F32)], cases=[(2, T0), (1, T0), (3, T0)])


@pytest.mark.parametrize("wrap", ["dense", "time_distributed"])
@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_rank3(wrap, use_bias):
    def build(t):
        d = L.Dense(4, use_bias=use_bias)
        return seq_model(t, 3, d if wrap == "dense" else L.TimeDistributed(d), L.Dense(2, activation="sigmoid"))

    check_export(build, seq(3))


ACTIVATIONS = [
    "relu", "sigmoid", "tanh", "softmax", "linear", "elu", "selu", "softplus", "softsign", "swish", "silu", "gelu",
    "hard_sigmoid", "exponential", "relu6", "leaky_relu",
]  # fmt: skip


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activations(activation):
    # Both forms: the Dense argument and the Activation layer; the inputs are scaled by 3 so that
    # relu6, hard_sigmoid's and selu's corners and softmax's spread are all reached.
    def build(t):
        return seq_model(t, 3, L.Dense(4, activation=activation), L.Dense(4), L.Activation(activation))

    scale = 0.5 if activation == "exponential" else 3.0  # exp(exp(3x)) would overflow float32

    def make_x(rng, b, t):
        return [(rng.normal(size=(b, t, 3)) * scale).astype(F32)]

    check_export(build, make_x)


@pytest.mark.parametrize("activation", ["relu", "softmax", "gelu"])
def test_activation_rank2(activation):
    def build(t):
        return keras.Sequential(
            [keras.Input((3,)), L.Dense(5), L.Activation(activation), L.Dense(2, activation=activation)]
        )

    check_export(build, lambda rng, b, t: [(rng.normal(size=(b, 3)) * 2).astype(F32)], cases=BATCH_ONLY)


# ----- recurrent layers -------------------------------------------------------------------------------
RNN_KINDS = {
    "lstm": (L.LSTM, {}),
    "gru": (L.GRU, {}),
    "gru_reset_before": (L.GRU, {"reset_after": False}),
    "simple_rnn": (L.SimpleRNN, {}),
    "simple_rnn_relu": (L.SimpleRNN, {"activation": "relu"}),
}
RNN_OPTIONS = {
    "last": {},
    "sequences": {"return_sequences": True},
    "backwards": {"go_backwards": True},
    "backwards_sequences": {"go_backwards": True, "return_sequences": True},
    "no_bias": {"use_bias": False},
    "no_bias_sequences": {"use_bias": False, "return_sequences": True},
}


def rnn(kind, units=4, **kwargs):
    cls, base = RNN_KINDS[kind]
    return cls(units, **{**base, **kwargs})


def n_states(kind):
    return 2 if kind == "lstm" else 1


@pytest.mark.parametrize("option", list(RNN_OPTIONS))
@pytest.mark.parametrize("kind", list(RNN_KINDS))
def test_recurrent(kind, option):
    def build(t):
        return seq_model(t, 3, rnn(kind, **RNN_OPTIONS[option]))

    check_export(build, seq(3))


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("kind", list(RNN_KINDS))
def test_recurrent_return_state(kind, return_sequences, go_backwards):
    def build(t):
        i = keras.Input((t, 3), name="x")
        outs = rnn(kind, return_sequences=return_sequences, return_state=True, go_backwards=go_backwards)(i)
        assert len(outs) == 1 + n_states(kind)
        # the states are also used downstream, so the graph must keep them apart from the output
        head = L.Dense(2)(outs[1])
        return keras.Model(i, [*outs, head])

    check_export(build, seq(3))


@pytest.mark.parametrize("kind", list(RNN_KINDS))
def test_recurrent_initial_state_from_inputs(kind):
    def build(t):
        x = keras.Input((t, 3), name="x")
        states = [keras.Input((4,), name=f"s{k}") for k in range(n_states(kind))]
        y = rnn(kind, return_sequences=True)(x, initial_state=states)
        return keras.Model([x, *states], y)

    def make_x(rng, b, t):
        return [rng.normal(size=(b, t, 3)).astype(F32)] + [
            rng.normal(size=(b, 4)).astype(F32) for _ in range(n_states(kind))
        ]

    model, _ = check_export(build, make_x)
    # the states matter: zero states give other numbers (else this test could not fail)
    rng = np.random.default_rng(5)
    xs = make_x(rng, 2, T0)
    zero = [xs[0]] + [np.zeros_like(s) for s in xs[1:]]
    assert not np.allclose(predict(model, xs)[0], predict(model, zero)[0], atol=1e-3)


@pytest.mark.parametrize("kind", ["lstm", "gru", "gru_reset_before", "simple_rnn"])
def test_encoder_decoder_initial_state_from_encoder(kind):
    """Seq2seq: the decoder starts from the encoder's final states (tensors of the graph)."""

    def build(t):
        enc_in = keras.Input((t, 3), name="encoder_in")
        dec_in = keras.Input((t + 1, 2), name="decoder_in")
        _, *states = rnn(kind, return_state=True)(enc_in)
        states = [L.Dense(4, activation="tanh")(s) for s in states]  # the states go through other layers first
        y = rnn(kind, return_sequences=True, go_backwards=kind == "gru")(dec_in, initial_state=states)
        return keras.Model([enc_in, dec_in], L.TimeDistributed(L.Dense(2))(y))

    def make_x(rng, b, t):
        return [rng.normal(size=(b, t, 3)).astype(F32), rng.normal(size=(b, t + 1, 2)).astype(F32)]

    check_export(build, make_x)


def test_stacked_recurrent():
    # Three recurrent layers and a head: float32 rounding differences between the two runtimes'
    # gate arithmetic compound through the stack, so the tolerance is 2e-5 here.
    def build(t):
        return seq_model(
            t, 3,
            L.LSTM(5, return_sequences=True),
            L.GRU(4, return_sequences=True, reset_after=False),
            L.GRU(4, return_sequences=True),
            L.SimpleRNN(4, go_backwards=True),
            L.Dense(2),
        )  # fmt: skip

    check_export(build, seq(3), atol=2e-5, rtol=2e-5)


MERGE_MODES = ["concat", "sum", "mul", "ave", None]


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("merge_mode", MERGE_MODES)
@pytest.mark.parametrize("kind", ["lstm", "gru", "gru_reset_before", "simple_rnn"])
def test_bidirectional(kind, merge_mode, return_sequences):
    def build(t):
        i = keras.Input((t, 3), name="x")
        y = L.Bidirectional(rnn(kind, return_sequences=return_sequences), merge_mode=merge_mode)(i)
        return keras.Model(i, y)

    model, proto = check_export(build, seq(3))
    assert len(proto.graph.output) == (2 if merge_mode is None else 1)


def test_bidirectional_stack_then_dense():
    def build(t):
        return seq_model(
            t, 3,
            L.Bidirectional(L.LSTM(4, return_sequences=True)),
            L.Bidirectional(L.GRU(3), merge_mode="sum"),
            L.Dense(2),
        )  # fmt: skip

    check_export(build, seq(3))


# ----- convolutions and pooling --------------------------------------------------------------------------
CONV_CASES = {
    "valid": dict(kernel_size=3, padding="valid"),
    "same": dict(kernel_size=3, padding="same"),
    "causal": dict(kernel_size=3, padding="causal"),
    "same_even_kernel": dict(kernel_size=2, padding="same"),
    "valid_stride2": dict(kernel_size=3, strides=2, padding="valid"),
    "same_stride2": dict(kernel_size=3, strides=2, padding="same"),
    "same_stride2_even_kernel": dict(kernel_size=2, strides=2, padding="same"),
    "causal_stride2": dict(kernel_size=2, strides=2, padding="causal"),
    "valid_dilation2": dict(kernel_size=2, dilation_rate=2, padding="valid"),
    "same_dilation2": dict(kernel_size=2, dilation_rate=2, padding="same"),
    "causal_dilation2": dict(kernel_size=3, dilation_rate=2, padding="causal"),
    "same_dilation3_odd_kernel": dict(kernel_size=3, dilation_rate=3, padding="same"),
    "same_dilation2_even_kernel4": dict(kernel_size=4, dilation_rate=2, padding="same"),
    # seqcore (unlike Keras) allows strides and dilation together: the "same" pads depend on the length
    "same_stride2_dilation2": dict(kernel_size=3, strides=2, dilation_rate=2, padding="same"),
    "same_stride3_dilation2_even": dict(kernel_size=2, strides=3, dilation_rate=2, padding="same"),
    "causal_stride2_dilation2": dict(kernel_size=2, strides=2, dilation_rate=2, padding="causal"),
    "valid_stride2_dilation2": dict(kernel_size=2, strides=2, dilation_rate=2, padding="valid"),
    "groups2": dict(kernel_size=3, groups=2, padding="same"),
    "groups4_causal": dict(kernel_size=2, groups=4, padding="causal"),
    "relu": dict(kernel_size=3, activation="relu"),
    "tanh_no_bias": dict(kernel_size=3, activation="tanh", use_bias=False, padding="same"),
    "kernel1": dict(kernel_size=1),
}


@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv1d(case):
    def build(t):
        return seq_model(t, 4, L.Conv1D(4, **CONV_CASES[case]))

    check_export(build, seq(4), cases=[(2, T0), (1, T0), (3, 7), (1, 6), (2, 8)])


def test_conv_stack_into_lstm():
    def build(t):
        return seq_model(
            t, 3, L.Conv1D(4, 2, padding="causal", activation="relu"), L.MaxPooling1D(2, padding="same"),
            L.LSTM(4), L.Dense(1),
        )  # fmt: skip

    check_export(build, seq(3))


POOL_CASES = {
    "valid_2": dict(pool_size=2),
    "same_2": dict(pool_size=2, padding="same"),
    "valid_3_stride2": dict(pool_size=3, strides=2),
    "same_3_stride2": dict(pool_size=3, strides=2, padding="same"),
    "valid_2_stride1": dict(pool_size=2, strides=1),
    "same_3_stride1": dict(pool_size=3, strides=1, padding="same"),
}


@pytest.mark.parametrize("case", list(POOL_CASES))
@pytest.mark.parametrize("pool", ["max", "average"])
def test_pooling1d(pool, case):
    cls = L.MaxPooling1D if pool == "max" else L.AveragePooling1D

    def build(t):
        return seq_model(t, 3, cls(**POOL_CASES[case]))

    # inputs shifted off zero, so a padded max or an average that counts the padding is wrong
    def make_x(rng, b, t):
        return [(rng.normal(size=(b, t, 3)) - 2.0).astype(F32)]

    check_export(build, make_x, cases=[(2, T0), (1, T0), (3, 7), (1, 6), (2, 8)])


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("cls", [L.GlobalAveragePooling1D, L.GlobalMaxPooling1D], ids=["average", "max"])
def test_global_pooling1d(cls, keepdims):
    def build(t):
        return seq_model(t, 3, L.Dense(4), cls(keepdims=keepdims))

    check_export(build, seq(3))


# ----- Embedding, regularization layers ----------------------------------------------------------------
def test_embedding_int32_input():
    def build(t):
        i = keras.Input((t,), dtype="int32", name="tokens")
        return keras.Model(i, L.Dense(2)(L.LSTM(4)(L.Embedding(11, 4)(i))))

    def make_x(rng, b, t):
        return [rng.integers(0, 11, size=(b, t)).astype(np.int32)]

    model, proto = check_export(build, make_x)
    (inp,) = proto.graph.input
    assert inp.name == "tokens"
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.INT32


def test_embedding_sequential_sequence_output():
    def build(t):
        return keras.Sequential([keras.Input((t,), dtype="int32"), L.Embedding(7, 3), L.Conv1D(2, 2, padding="same")])

    check_export(build, lambda rng, b, t: [rng.integers(0, 7, size=(b, t)).astype(np.int32)])


def test_inference_identity_layers():
    def build(t):
        return seq_model(
            t, 3, L.Dense(4), L.Dropout(0.5), L.SpatialDropout1D(0.4), L.GaussianNoise(0.7), L.LSTM(4),
            L.Dropout(0.3), L.Dense(2),
        )  # fmt: skip

    check_export(build, seq(3))


# ----- merging --------------------------------------------------------------------------------------------
MERGE_LAYERS = {
    "add": L.Add, "subtract": L.Subtract, "multiply": L.Multiply, "average": L.Average, "maximum": L.Maximum,
    "minimum": L.Minimum,
}  # fmt: skip


@pytest.mark.parametrize("n_inputs", [2, 3])
@pytest.mark.parametrize("merge", list(MERGE_LAYERS))
def test_merge_layers(merge, n_inputs):
    if merge == "subtract" and n_inputs != 2:
        pytest.skip("Subtract takes exactly two inputs")

    def build(t):
        ins = [keras.Input((t, 3), name=f"in{k}") for k in range(n_inputs)]
        branches = [L.Dense(4)(x) for x in ins]
        return keras.Model(ins, MERGE_LAYERS[merge]()(branches))

    def make_x(rng, b, t):
        return [rng.normal(size=(b, t, 3)).astype(F32) for _ in range(n_inputs)]

    check_export(build, make_x)


@pytest.mark.parametrize("axis", [-1, 2, 1])
def test_concatenate(axis):
    def build(t):
        a = keras.Input((t, 3), name="a")
        b = keras.Input((t, 3), name="b")
        return keras.Model([a, b], L.Concatenate(axis=axis)([L.Dense(2)(a), L.Dense(2 if axis == 1 else 4)(b)]))

    def make_x(rng, b, t):
        return [rng.normal(size=(b, t, 3)).astype(F32), rng.normal(size=(b, t, 3)).astype(F32)]

    check_export(build, make_x)


def test_concatenate_rank2_three_inputs():
    def build(t):
        i = keras.Input((t, 3), name="x")
        parts = [L.LSTM(3)(i), L.GRU(2)(i), L.GlobalMaxPooling1D()(i)]
        return keras.Model(i, L.Dense(2)(L.Concatenate()(parts)))

    check_export(build, seq(3))


# ----- reshaping ------------------------------------------------------------------------------------------
def test_flatten():
    def build(t):
        return seq_model(t, 3, L.Conv1D(2, 2), L.Flatten(), L.Dense(3))

    check_export(build, seq(3), cases=BATCH_ONLY)


@pytest.mark.parametrize("target", [(3, 10), (-1, 6), (30,), (2, 5, 3)])
def test_reshape(target):
    # built at T0 = 5 with 6 features: 30 values per sample
    def build(t):
        return seq_model(t, 6, L.Dense(6), L.Reshape(target))

    check_export(build, seq(6), cases=BATCH_ONLY)


def test_reshape_then_recurrent():
    def build(t):
        return seq_model(t, 4, L.Reshape((10, 2)), L.GRU(3), L.Dense(2))

    check_export(build, seq(4), cases=BATCH_ONLY)


def test_permute():
    def build(t):
        return seq_model(t, 3, L.Dense(4), L.Permute((2, 1)))

    check_export(build, seq(3))


def test_permute_twice_into_lstm():
    def build(t):
        return seq_model(t, 3, L.Permute((2, 1)), L.Dense(t), L.Permute((2, 1)), L.LSTM(3))

    # the Dense acts on the time axis, so its size pins the length: batch sizes only
    check_export(build, seq(3), cases=BATCH_ONLY)


def test_repeat_vector_seq2seq():
    def build(t):
        return seq_model(t, 3, L.LSTM(4), L.RepeatVector(3), L.LSTM(4, return_sequences=True),
                         L.TimeDistributed(L.Dense(2)))  # fmt: skip

    check_export(build, seq(3))


# ----- normalization --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"epsilon": 1e-1}, {"center": False}, {"scale": False}, {"center": False, "scale": False}],
    ids=["default", "eps", "no_center", "no_scale", "neither"],
)
def test_layer_normalization(kwargs):
    def build(t):
        return seq_model(t, 3, L.Dense(5), L.LayerNormalization(**kwargs), L.Dense(2))

    check_export(build, seq(3))


@pytest.mark.parametrize("epsilon", [1e-3, 0.3])
@pytest.mark.parametrize("rank", [2, 3])
def test_batch_normalization_moving_statistics(rank, epsilon):
    def build(t):
        shape = (t, 3) if rank == 3 else (3,)
        return keras.Sequential([keras.Input(shape), L.Dense(4), L.BatchNormalization(epsilon=epsilon), L.Dense(2)])

    def make_x(rng, b, t):
        return [rng.normal(size=(b, t, 3) if rank == 3 else (b, 3)).astype(F32)]

    model, _ = check_export(build, make_x, cases=CASES if rank == 3 else BATCH_ONLY)
    bn = next(layer for layer in model.layers if isinstance(layer, L.BatchNormalization))
    mean, var = bn.get_weights()[2:4]
    assert np.abs(mean).max() > 0.1 and np.abs(var - 1).max() > 0.1  # the statistics are not the defaults


# ----- Functional graphs ----------------------------------------------------------------------------------
def test_functional_several_inputs_and_outputs_names_and_order():
    def build(t):
        aux = keras.Input((2,), name="aux_features")
        a = keras.Input((t, 3), name="seq_a")
        b = keras.Input((t + 2, 4), name="seq_b")
        ha = L.LSTM(4, name="enc_a")(a)
        hb = L.GRU(4, name="enc_b")(b)
        merged = L.Concatenate()([ha, hb, L.Dense(3)(aux)])
        out1 = L.Dense(3, name="head_one")(merged)
        out2 = L.Dense(1, activation="sigmoid", name="head_two")(merged)
        out3 = L.Dense(3, name="head_three")(L.Add()([ha, hb]))  # same shape as out1, other values
        return keras.Model([aux, a, b], [out3, out1, out2])

    def make_x(rng, b, t):
        return [rng.normal(size=(b, 2)).astype(F32), rng.normal(size=(b, t, 3)).astype(F32),
                rng.normal(size=(b, t + 2, 4)).astype(F32)]  # fmt: skip

    model, proto = check_export(build, make_x)
    assert [i.name for i in proto.graph.input] == ["aux_features", "seq_a", "seq_b"]
    assert len(proto.graph.output) == 3
    sess = session(proto)
    assert [i.name for i in sess.get_inputs()] == ["aux_features", "seq_a", "seq_b"]


def test_input_order_is_the_models_not_alphabetical():
    def build(t):
        z = keras.Input((t, 3), name="zeta")
        a = keras.Input((t, 2), name="alpha")
        return keras.Model([z, a], L.Dense(2)(L.Concatenate()([L.Dense(2)(z), a])))

    def make_x(rng, b, t):
        return [rng.normal(size=(b, t, 3)).astype(F32), rng.normal(size=(b, t, 2)).astype(F32)]

    _, proto = check_export(build, make_x)
    assert [i.name for i in proto.graph.input] == ["zeta", "alpha"]


def test_symbolic_batch_and_time_axes():
    model = randomize(seq_model(T0, 3, L.LSTM(4, return_sequences=True)))
    proto = to_onnx(model)
    (inp,) = proto.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert len(dims) == 3
    assert not dims[0].HasField("dim_value") and not dims[1].HasField("dim_value")
    assert dims[2].dim_value == 3


def test_shared_layer_called_twice():
    def build(t):
        a = keras.Input((t, 3), name="a")
        b = keras.Input((t, 3), name="b")
        shared = L.LSTM(4, return_sequences=True)
        shared_dense = L.Dense(2)
        ya = shared(a)
        yb = shared(L.Dense(3)(b))
        return keras.Model([a, b], [shared_dense(ya), shared_dense(yb), L.Subtract()([ya, yb])])

    def make_x(rng, b, t):
        return [rng.normal(size=(b, t, 3)).astype(F32), rng.normal(size=(b, t, 3)).astype(F32)]

    model, _ = check_export(build, make_x)
    assert len([layer for layer in model.layers if isinstance(layer, L.LSTM)]) == 1  # one layer, two calls


@pytest.mark.parametrize("op", ["add", "radd_array", "chain"])
def test_residual_via_operators(op):
    def build(t):
        i = keras.Input((t, 4), name="x")
        y = L.Dense(4, activation="tanh")(i)
        if op == "add":
            out = i + y
        elif op == "radd_array":
            out = y + L.Dense(4)(y)
        else:
            z = i + y
            out = z + L.LSTM(4, return_sequences=True)(z)
        return keras.Model(i, L.Dense(2)(out))

    check_export(build, seq(4))


def test_sequential_nested_in_functional():
    def build(t):
        # (no Input in the inner Sequential: seqcore itself refuses to call one built with an Input
        # inside a Functional graph, "built for input shape (None, None, None, 4)")
        inner = keras.Sequential([L.Conv1D(4, 2, padding="causal"), L.GRU(4, return_sequences=True), L.Dense(3)])
        i = keras.Input((t, 3), name="x")
        y = inner(L.Dense(4)(i))
        return keras.Model(i, [L.GlobalAveragePooling1D()(y), L.Dense(2)(y)])

    check_export(build, seq(3))


def test_sequential_inside_sequential():
    def build(t):
        inner = keras.Sequential([keras.Input((t, 4)), L.LSTM(3, return_sequences=True), L.Dense(2)])
        return seq_model(t, 3, L.Dense(4), inner, L.GlobalMaxPooling1D())

    check_export(build, seq(3))


# ----- API: files, export(), errors -----------------------------------------------------------------------
def small_model():
    return randomize(seq_model(T0, 3, L.GRU(4), L.Dense(2)), seed=3)


def run_file(path, x):
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded)
    return run_onnx(session(loaded), [x])[0]


def test_to_onnx_returns_checked_proto_with_default_opset():
    proto = to_onnx(small_model())
    assert isinstance(proto, onnx.ModelProto)
    onnx.checker.check_model(proto, full_check=True)
    assert {o.domain: o.version for o in proto.opset_import}.get("", None) == 17


def test_to_onnx_writes_file(tmp_path):
    model = small_model()
    path = tmp_path / "model.onnx"
    proto = to_onnx(model, str(path))
    assert path.is_file()
    x = np.random.default_rng(0).normal(size=(3, 6, 3)).astype(F32)
    twin = randomize(seq_model(6, 3, L.GRU(4), L.Dense(2)))
    twin.set_weights(model.get_weights())
    want = predict(twin, [x])[0]
    np.testing.assert_allclose(run_file(path, x), want, atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(run_onnx(session(proto), [x])[0], want, atol=ATOL, rtol=RTOL)
    assert sorted(os.listdir(tmp_path)) == ["model.onnx"]  # no temporary file left behind


def test_to_onnx_accepts_pathlike_and_replaces_existing_file(tmp_path):
    model = small_model()
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not an onnx file")
    to_onnx(model, path)
    x = np.random.default_rng(1).normal(size=(2, T0, 3)).astype(F32)
    np.testing.assert_allclose(run_file(path, x), predict(model, [x])[0], atol=ATOL, rtol=RTOL)
    assert sorted(os.listdir(tmp_path)) == ["model.onnx"]


def test_model_export_onnx(tmp_path):
    model = small_model()
    path = tmp_path / "exported.onnx"
    model.export(str(path), format="onnx")
    assert path.is_file()
    x = np.random.default_rng(2).normal(size=(1, T0, 3)).astype(F32)
    np.testing.assert_allclose(run_file(path, x), predict(model, [x])[0], atol=ATOL, rtol=RTOL)
    assert sorted(os.listdir(tmp_path)) == ["exported.onnx"]


def test_functional_model_export_onnx(tmp_path):
    i = keras.Input((T0, 3), name="x")
    h = keras.Input((4,), name="h")
    model = randomize(keras.Model([i, h], L.GRU(4)(i, initial_state=[h])), seed=4)
    path = tmp_path / "f.onnx"
    model.export(path, format="onnx")
    loaded = onnx.load(str(path))
    rng = np.random.default_rng(3)
    xs = [rng.normal(size=(2, T0, 3)).astype(F32), rng.normal(size=(2, 4)).astype(F32)]
    assert [v.name for v in loaded.graph.input] == ["x", "h"]
    assert_close(run_onnx(session(loaded), xs), predict(model, xs))


def test_export_unknown_format_raises(tmp_path):
    model = small_model()
    path = tmp_path / "m.bogus"
    with pytest.raises(ValueError):
        model.export(str(path), format="bogus")
    assert not path.exists()


class TimesThree(L.Layer):
    """A custom layer computing in forward() with NumPy: nothing ONNX can hold."""

    def forward(self, x, training=False):
        return x * np.float32(3.0), None


def numpy_layer_model(name="my_numpy_layer"):
    return randomize(seq_model(T0, 3, L.Dense(4), TimesThree(name=name), L.Dense(2)))


def test_unsupported_layer_is_refused_by_name():
    model = numpy_layer_model()
    with pytest.raises(ValueError, match=r"'my_numpy_layer' \(TimesThree\).*forward\(\) with NumPy.*Write call\(\)"):
        to_onnx(model)
    predict(model, [np.ones((1, T0, 3), F32)])  # (seqcore runs it)


def test_unsupported_layer_in_functional_is_refused_by_name():
    i = keras.Input((T0, 3), name="x")
    y = TimesThree(name="odd_one_out")(L.Dense(3)(i))
    model = keras.Model(i, [L.Dense(2)(i), y])
    with pytest.raises(ValueError, match="odd_one_out"):
        to_onnx(model)


def test_failed_export_writes_no_file(tmp_path):
    path = tmp_path / "never.onnx"
    with pytest.raises(ValueError, match="my_numpy_layer"):
        to_onnx(numpy_layer_model(), str(path))
    assert not path.exists()
    with pytest.raises(ValueError, match="my_numpy_layer"):
        numpy_layer_model().export(str(path), format="onnx")
    assert os.listdir(tmp_path) == []


def test_failed_export_keeps_existing_file(tmp_path):
    path = tmp_path / "keep.onnx"
    to_onnx(small_model(), path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="my_numpy_layer"):
        to_onnx(numpy_layer_model(), str(path))
    assert path.read_bytes() == before
    with pytest.raises(ValueError, match="my_numpy_layer"):
        numpy_layer_model().export(str(path), format="onnx")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.onnx"]


# ----- masks (post-padded batches) -------------------------------------------------------------------------
def post_padded(rng, b, t, features, pad=0.0):
    """A float batch whose samples have lengths t, 0, 1 and random ones, zero(``pad``)-filled after them."""
    x = rng.normal(size=(b, t, features)).astype(F32)
    lengths = rng.integers(1, t + 1, size=b)
    lengths[: min(b, 3)] = [t, 0, 1][: min(b, 3)]
    for i, n in enumerate(lengths):
        x[i, n:] = pad
    return x


def padded_ids(rng, b, t, vocab):
    ids = rng.integers(1, vocab, size=(b, t)).astype(np.int32)
    lengths = rng.integers(1, t + 1, size=b)
    lengths[: min(b, 3)] = [t, 0, 2][: min(b, 3)]
    for i, n in enumerate(lengths):
        ids[i, n:] = 0
    return ids


MASK_CASES = [(4, T0), (3, T0), (5, 7), (4, 6)]  # every batch holds a full, an empty and a length-1 sample


def assert_mask_matters(model, xs, unmasked):
    """The same weights without the mask give other numbers on these padded inputs (so a mask that the
    graph ignored would fail the comparison)."""
    unmasked.set_weights(model.get_weights())
    got, ref = predict(model, xs), predict(unmasked, xs)
    assert any(not np.allclose(a, b, atol=1e-3) for a, b in zip(got, ref, strict=True))


MASKED_RNN_OPTIONS = {
    "last": {},
    "sequences": {"return_sequences": True},
    "backwards": {"go_backwards": True},
    "backwards_sequences": {"go_backwards": True, "return_sequences": True},
    "zero_output_sequences": {"return_sequences": True, "zero_output_for_mask": True},
}


@pytest.mark.parametrize("option", list(MASKED_RNN_OPTIONS))
@pytest.mark.parametrize("kind", ["lstm", "gru", "gru_reset_before", "simple_rnn"])
def test_masking_recurrent(kind, option):
    def build(t, masked=True):
        head = [L.Masking(0.0)] if masked else []
        return seq_model(t, 3, *head, rnn(kind, **MASKED_RNN_OPTIONS[option]))

    model, _ = check_export(build, lambda rng, b, t: [post_padded(rng, b, t, 3)], cases=MASK_CASES)
    assert_mask_matters(model, [post_padded(np.random.default_rng(9), 4, T0, 3)], build(T0, masked=False))


@pytest.mark.parametrize("option", ["last", "sequences", "backwards_sequences"])
@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
def test_embedding_mask_zero_recurrent(kind, option):
    def build(t):
        i = keras.Input((t,), dtype="int32", name="ids")
        y = rnn(kind, **MASKED_RNN_OPTIONS[option])(L.Embedding(9, 3, mask_zero=True)(i))
        return keras.Model(i, y)

    model, proto = check_export(build, lambda rng, b, t: [padded_ids(rng, b, t, 9)], cases=MASK_CASES)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT32


def test_masking_with_another_mask_value_and_a_stack():
    """The mask travels through Dense, TimeDistributed, LayerNormalization and return_sequences
    layers to the next recurrent layer, as in seqcore."""

    def build(t):
        return seq_model(
            t, 3, L.Masking(-1.0), L.LSTM(4, return_sequences=True), L.Dense(4, activation="tanh"),
            L.TimeDistributed(L.Dense(3)), L.LayerNormalization(), L.GRU(3, return_sequences=True),
            L.SimpleRNN(2, go_backwards=True),
        )  # fmt: skip

    check_export(build, lambda rng, b, t: [post_padded(rng, b, t, 3, pad=-1.0)], cases=MASK_CASES, atol=2e-5,
                 rtol=2e-5)  # fmt: skip


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("merge_mode", MERGE_MODES)
@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
def test_masked_bidirectional(kind, merge_mode, return_sequences):
    def build(t):
        i = keras.Input((t, 3), name="x")
        y = L.Bidirectional(rnn(kind, return_sequences=return_sequences), merge_mode=merge_mode)(L.Masking()(i))
        return keras.Model(i, y)

    check_export(build, lambda rng, b, t: [post_padded(rng, b, t, 3)], cases=MASK_CASES)


def test_masked_bidirectional_of_embedding_then_average_pooling():
    def build(t):
        ids = keras.Input((t,), dtype="int32", name="ids")
        e = L.Embedding(10, 3, mask_zero=True)(ids)
        h = L.Bidirectional(L.LSTM(2, return_sequences=True))(e)
        return keras.Model(ids, L.Dense(1)(L.GlobalAveragePooling1D()(h)))

    check_export(build, lambda rng, b, t: [padded_ids(rng, b, t, 10)], cases=MASK_CASES)


@pytest.mark.parametrize("keepdims", [False, True])
def test_masked_global_average_pooling(keepdims):
    def build(t, masked=True):
        head = [L.Masking()] if masked else []
        return seq_model(t, 3, *head, L.Dense(4), L.GlobalAveragePooling1D(keepdims=keepdims))

    model, _ = check_export(build, lambda rng, b, t: [post_padded(rng, b, t, 3)], cases=MASK_CASES)
    assert_mask_matters(model, [post_padded(np.random.default_rng(3), 4, T0, 3)], build(T0, masked=False))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_masked_initial_state_and_return_state(kind):
    """States of a sample with no valid step stay the initial ones (ONNX alone would give zeros)."""

    def build(t):
        x = keras.Input((t, 3), name="x")
        states = [keras.Input((4,), name=f"s{k}") for k in range(n_states(kind))]
        outs = rnn(kind, return_sequences=True, return_state=True)(L.Masking()(x), initial_state=states)
        return keras.Model([x, *states], outs)

    def make_x(rng, b, t):
        return [post_padded(rng, b, t, 3)] + [rng.normal(size=(b, 4)).astype(F32) for _ in range(n_states(kind))]

    model, _ = check_export(build, make_x, cases=MASK_CASES)
    xs = make_x(np.random.default_rng(4), 4, T0)
    for s, s0 in zip(predict(model, xs)[1:], xs[1:], strict=True):
        np.testing.assert_allclose(s[1], s0[1])  # sample 1 is all padding


@pytest.mark.parametrize("merge", ["add", "concatenate", "maximum"])
def test_masks_of_two_branches_merged(merge):
    """Add and Maximum keep a step any input keeps (the longer length), Concatenate the shorter."""

    def build(t):
        a = keras.Input((t, 3), name="a")
        b = keras.Input((t, 3), name="b")
        ha = L.Dense(4)(L.Masking()(a))
        hb = L.Dense(4)(L.Masking()(b))
        layer = {"add": L.Add(), "concatenate": L.Concatenate(), "maximum": L.Maximum()}[merge]
        return keras.Model([a, b], L.LSTM(3, return_sequences=True)(layer([ha, hb])))

    def make_x(rng, b, t):
        return [post_padded(rng, b, t, 3), post_padded(rng, b, t, 3)]

    check_export(build, make_x, cases=MASK_CASES)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_masked_rnn_of_stacked_cells(go_backwards, return_sequences):
    def build(t):
        cells = L.StackedRNNCells([L.LSTMCell(4), L.GRUCell(3), L.SimpleRNNCell(2)])
        return seq_model(t, 3, L.Masking(), L.RNN(cells, return_sequences=return_sequences, go_backwards=go_backwards))

    check_export(build, lambda rng, b, t: [post_padded(rng, b, t, 3)], cases=MASK_CASES)


def test_explicit_mask_argument():
    def build(t):
        x = keras.Input((t, 3), name="x")
        m = keras.Input((t,), name="steps")  # 1 for a valid step
        return keras.Model([x, m], L.GRU(4, return_sequences=True)(x, mask=m))

    def make_x(rng, b, t):
        x = rng.normal(size=(b, t, 3)).astype(F32)
        lengths = rng.integers(0, t + 1, size=b)
        return [x, (np.arange(t)[None, :] < lengths[:, None]).astype(F32)]

    check_export(build, make_x, cases=MASK_CASES)


def test_pre_padded_batch_is_not_seqcores_the_documented_assumption():
    """The graph counts valid steps and takes them to come first: a pre-padded batch gives other
    numbers than seqcore (which follows the exact mask). The package docs say so."""
    model = randomize(seq_model(6, 3, L.Masking(), L.LSTM(4)))
    x = np.random.default_rng(0).normal(size=(2, 6, 3)).astype(F32)
    x[:, :3] = 0.0  # pre-padding
    got = run_onnx(session(to_onnx(model)), [x])[0]
    assert not np.allclose(got, predict(model, [x])[0], atol=1e-3)
    assert "post-padding" in keras.interop.onnx.__doc__


# ----- stateful layers: states as graph inputs and outputs --------------------------------------------------
def run_stateful(model, proto, make_x, steps=20, seed=0):
    """Steps ``model`` (seqcore, carrying its states) and the ONNX graph (states fed back) ``steps``
    times on the same batches; returns the graph's final states."""
    sess = session(proto)
    n_in = len(model.inputs) if hasattr(model, "inputs") and not isinstance(model, keras.Sequential) else 1
    state_inputs = [i for i in proto.graph.input][n_in:]
    states = [np.zeros([d.dim_value for d in i.type.tensor_type.shape.dim], F32) for i in state_inputs]
    assert states and all(s.size for s in states)
    model.reset_states()
    rng = np.random.default_rng(seed)
    for step in range(steps):
        xs = make_x(rng)
        want = predict(model, xs)
        feed = dict(zip([i.name for i in sess.get_inputs()], [*xs, *states], strict=True))
        got = sess.run(None, feed)
        assert_close(got[: len(want)], want, where=f"step {step}")
        states = got[len(want) :]
        assert len(states) == len(state_inputs)
    return states


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
def test_stateful_stepped_20_times(kind):
    model = randomize(
        keras.Sequential(
            [
                keras.Input((3, 2), batch_size=2, name="x"),
                rnn(kind, stateful=True, return_sequences=True, name="carrier"),
                L.Dense(2),
            ]
        )
    )
    proto = to_onnx(model)
    suffixes = ["h", "c"][: n_states(kind)]
    assert [i.name for i in proto.graph.input] == ["x", *[f"carrier/{s}_in" for s in suffixes]]
    assert [o.name for o in proto.graph.output][1:] == [f"carrier/{s}_out" for s in suffixes]
    final = run_stateful(model, proto, lambda rng: [rng.normal(size=(2, 3, 2)).astype(F32)])
    carrier = model.get_layer("carrier")
    for got, want in zip(final, carrier.states, strict=True):
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=RTOL)
    # the carried state matters: a fresh state gives other numbers for the same batch
    x = np.random.default_rng(1).normal(size=(2, 3, 2)).astype(F32)
    carried = predict(model, [x])[0]
    model.reset_states()
    assert not np.allclose(carried, predict(model, [x])[0], atol=1e-3)


def test_stateful_bidirectional_stacked_cells_and_masks_in_one_graph():
    """Several stateful layers (a Bidirectional, stacked cells) with a post-padded masked input:
    each direction and cell has its own named state inputs and outputs."""
    x = keras.Input((4, 3), batch_size=3, name="x")
    m = L.Masking()(x)
    h = L.Bidirectional(L.LSTM(3, stateful=True, return_sequences=True), name="bi")(m)
    cells = L.StackedRNNCells([L.GRUCell(3), L.LSTMCell(2)])
    y = L.RNN(cells, stateful=True, name="stack")(h)
    model = randomize(keras.Model(x, L.Dense(2)(y)))
    proto = to_onnx(model)
    assert [i.name for i in proto.graph.input] == [
        "x", "bi/forward/h_in", "bi/forward/c_in", "bi/backward/h_in", "bi/backward/c_in", "stack/cell0/h_in",
        "stack/cell1/h_in", "stack/cell1/c_in",
    ]  # fmt: skip
    run_stateful(model, proto, lambda rng: [post_padded(rng, 3, 4, 3)])


def test_stateful_layer_with_initial_state_uses_it():
    """As in seqcore, an explicit initial_state wins over the carried state: no state inputs."""
    x = keras.Input((4, 3), batch_size=2, name="x")
    s = keras.Input((3,), batch_size=2, name="s")
    model = randomize(keras.Model([x, s], L.GRU(3, stateful=True, name="g")(x, initial_state=[s])))
    proto = to_onnx(model)
    assert [i.name for i in proto.graph.input] == ["x", "s"]
    assert [o.name for o in proto.graph.output][1:] == ["g/h_out"]
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(2, 4, 3)).astype(F32), rng.normal(size=(2, 3)).astype(F32)]
    got = run_onnx(session(proto), xs)
    model.reset_states()
    assert_close(got[:1], predict(model, xs))
    np.testing.assert_allclose(got[1], model.get_layer("g").states[0], atol=ATOL, rtol=RTOL)


def test_stateful_layer_called_twice_is_refused():
    x = keras.Input((4, 3), batch_size=2, name="x")
    shared = L.LSTM(3, stateful=True, return_sequences=True, name="twice")
    model = keras.Model(x, shared(L.Dense(3)(shared(x))))
    with pytest.raises(ValueError, match=r"'twice'.*stateful layer called twice.*Use two layers"):
        to_onnx(model)


# ----- TimeDistributed over sub-sequences (CNN-LSTM) -------------------------------------------------------
CNN_LSTM_CASES = [(2, 3), (1, 3), (3, 5), (1, 2)]  # (batch, number of sub-sequences)


def subsequences(steps, features):
    return lambda rng, b, n: [rng.normal(size=(b, n, steps, features)).astype(F32)]


def test_cnn_lstm_time_distributed_layers():
    def build(n):
        return keras.Sequential([
            keras.Input((n, 6, 2)),
            L.TimeDistributed(L.Conv1D(4, 3, activation="relu")),
            L.TimeDistributed(L.MaxPooling1D(2)),
            L.TimeDistributed(L.Flatten()),
            L.LSTM(5),
            L.Dense(1),
        ])  # fmt: skip

    check_export(build, subsequences(6, 2), cases=CNN_LSTM_CASES)


def test_cnn_lstm_time_distributed_sequential_and_global_pooling():
    def build(n):
        cnn = keras.Sequential([L.Conv1D(3, 2, padding="same"), L.AveragePooling1D(2), L.GlobalMaxPooling1D()])
        i = keras.Input((n, 8, 3), name="windows")
        h = L.TimeDistributed(cnn)(i)
        return keras.Model(i, L.Dense(2)(L.Bidirectional(L.GRU(3, return_sequences=True))(h)))

    check_export(build, subsequences(8, 3), cases=CNN_LSTM_CASES)


def test_time_distributed_keeps_the_mask():
    def build(t):
        return seq_model(t, 3, L.Masking(), L.TimeDistributed(L.Dense(4)), L.TimeDistributed(L.Activation("tanh")),
                         L.LSTM(3))  # fmt: skip

    check_export(build, lambda rng, b, t: [post_padded(rng, b, t, 3)], cases=MASK_CASES)


# ----- the other layers -------------------------------------------------------------------------------------
def test_prelu_and_softmax_layers():
    def build(t):
        return seq_model(t, 3, L.Dense(4), L.PReLU(shared_axes=[1]), L.Dense(4), L.Softmax(axis=-1))

    check_export(build, lambda rng, b, t: [(rng.normal(size=(b, t, 3)) * 2).astype(F32)])


def test_prelu_per_step_and_softmax_over_two_axes():
    def build(t):
        return seq_model(t, 3, L.Dense(4), L.PReLU(), L.Softmax(axis=(1, 2)))

    check_export(build, lambda rng, b, t: [(rng.normal(size=(b, t, 3)) * 2).astype(F32)], cases=BATCH_ONLY)


@pytest.mark.parametrize("case", ["trailing2", "time_axis", "rms_scaling", "no_center"])
def test_layer_normalization_other_axes(case):
    kwargs = {"trailing2": {"axis": [1, 2]}, "time_axis": {"axis": 1}, "rms_scaling": {"rms_scaling": True},
              "no_center": {"axis": [1, 2], "center": False}}[case]  # fmt: skip

    def build(t):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # rms_scaling's deprecation warning
            return seq_model(t, 3, L.Dense(4), L.LayerNormalization(**kwargs), L.Dense(2))

    check_export(build, seq(3), cases=BATCH_ONLY if case != "rms_scaling" else CASES)


@pytest.mark.parametrize("opset", [13, 16])
def test_layer_normalization_before_opset_17_is_its_formula(opset):
    def build(t):
        return seq_model(t, 3, L.Dense(5), L.LayerNormalization(epsilon=0.1), L.Dense(2))

    model = randomize(build(T0))
    proto = to_onnx(model, opset=opset)
    assert "LayerNormalization" not in {n.op_type for n in proto.graph.node}
    x = np.random.default_rng(0).normal(size=(3, T0, 3)).astype(F32)
    assert_close(run_onnx(session(proto), [x]), predict(model, [x]))


@pytest.mark.parametrize("axis", [-1, [1, 2]])
def test_rms_normalization(axis):
    def build(t):
        return seq_model(t, 3, L.Dense(4), L.RMSNormalization(axis=axis, epsilon=1e-3), L.Dense(2))

    check_export(build, seq(3), cases=CASES if axis == -1 else BATCH_ONLY)


@pytest.mark.parametrize("groups", [1, 2, 4, -1])
@pytest.mark.parametrize("rank", [2, 3])
def test_group_normalization(groups, rank):
    def build(t):
        shape = (t, 3) if rank == 3 else (3,)
        return keras.Sequential([keras.Input(shape), L.Dense(4), L.GroupNormalization(groups=groups, epsilon=0.01),
                                 L.Dense(2)])  # fmt: skip

    def make_x(rng, b, t):
        return [rng.normal(size=(b, t, 3) if rank == 3 else (b, 3)).astype(F32)]

    check_export(build, make_x, cases=CASES if rank == 3 else BATCH_ONLY)


def test_group_normalization_channel_axis_first():
    def build(t):
        return seq_model(t, 3, L.Dense(4), L.Permute((2, 1)), L.GroupNormalization(groups=2, axis=1), L.Permute((2, 1)))

    check_export(build, seq(3))


@pytest.mark.parametrize("axis", [-1, 1, [1, 2]])
def test_unit_normalization(axis):
    def build(t):
        return seq_model(t, 3, L.Dense(4), L.UnitNormalization(axis=axis))

    def make_x(rng, b, t):
        x = rng.normal(size=(b, t, 3)).astype(F32)
        x[0, 0] = 0.0  # a zero row: Keras's clamp 1e12, no NaN
        return [x]

    check_export(build, make_x)


DEPTHWISE_CASES = {
    "valid": dict(kernel_size=3), "same": dict(kernel_size=3, padding="same"),
    "multiplier2": dict(kernel_size=2, depth_multiplier=2, padding="same"),
    "stride2": dict(kernel_size=3, strides=2, padding="same"), "dilation2": dict(kernel_size=2, dilation_rate=2),
    "relu": dict(kernel_size=3, activation="relu", use_bias=False),
}  # fmt: skip


@pytest.mark.parametrize("case", list(DEPTHWISE_CASES))
@pytest.mark.parametrize("cls", [L.DepthwiseConv1D, L.SeparableConv1D], ids=["depthwise", "separable"])
def test_depthwise_and_separable_conv(cls, case):
    def build(t):
        args = (4,) if cls is L.SeparableConv1D else ()
        return seq_model(t, 3, cls(*args, **DEPTHWISE_CASES[case]))

    check_export(build, seq(3), cases=[(2, T0), (1, T0), (3, 7), (1, 6), (2, 8)])


TRANSPOSE_CASES = {
    "valid": dict(kernel_size=3), "same": dict(kernel_size=3, padding="same"),
    "valid_stride2": dict(kernel_size=3, strides=2), "same_stride2": dict(kernel_size=3, strides=2, padding="same"),
    "same_stride2_even": dict(kernel_size=4, strides=2, padding="same"),
    "valid_stride3_kernel2": dict(kernel_size=2, strides=3),
    "same_stride3_kernel2": dict(kernel_size=2, strides=3, padding="same"),
    "output_padding": dict(kernel_size=3, strides=2, output_padding=1),
    "same_output_padding": dict(kernel_size=4, strides=3, padding="same", output_padding=2),
    "dilation2": dict(kernel_size=3, dilation_rate=2), "same_dilation2": dict(kernel_size=3, dilation_rate=2,
                                                                              padding="same"),
    "tanh_no_bias": dict(kernel_size=3, activation="tanh", use_bias=False, output_padding=0, padding="same"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(TRANSPOSE_CASES))
def test_conv1d_transpose(case):
    def build(t):
        return seq_model(t, 3, L.Conv1DTranspose(4, **TRANSPOSE_CASES[case]))

    check_export(build, seq(3))


DOT_CASES = {
    "vectors": (2, -1, False),
    "cosine": (2, -1, True),
    "luong_scores": (3, 2, False),
    "time_axis": (3, 1, False),
    "cosine_scores": (3, (2, 2), True),
    "mixed_ranks": (None, (2, 1), False),
}


@pytest.mark.parametrize("case", list(DOT_CASES))
def test_dot(case):
    rank, axes, normalize = DOT_CASES[case]

    def build(t):
        if rank == 2:
            a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
        elif rank == 3:
            a, b = keras.Input((t, 4), name="a"), keras.Input((t, 4), name="b")
        else:
            a, b = keras.Input((t, 4), name="a"), keras.Input((4,), name="b")
        return keras.Model([a, b], L.Dot(axes=axes, normalize=normalize)([L.Dense(4)(a), L.Dense(4)(b)]))

    def make_x(rng, b, t):
        if rank == 2:
            return [rng.normal(size=(b, 4)).astype(F32), rng.normal(size=(b, 4)).astype(F32)]
        if rank == 3:
            return [rng.normal(size=(b, t, 4)).astype(F32), rng.normal(size=(b, t, 4)).astype(F32)]
        return [rng.normal(size=(b, t, 4)).astype(F32), rng.normal(size=(b, 4)).astype(F32)]

    check_export(build, make_x, cases=BATCH_ONLY if rank == 2 else CASES)


def test_reshaping_layers_on_other_ranks():
    def build(t):
        return seq_model(
            t, 3, L.UpSampling1D(3), L.ZeroPadding1D((1, 2)), L.Cropping1D((2, 1)), L.Permute((2, 1)),
            L.ZeroPadding1D(2, data_format="channels_first"), L.Permute((2, 1)),
            L.GlobalAveragePooling1D(data_format="channels_first", keepdims=True),
        )  # fmt: skip

    check_export(build, seq(3))


def test_upsampling_and_cropping_of_subsequences():
    def build(n):
        return keras.Sequential([keras.Input((n, 4, 2)), L.TimeDistributed(L.UpSampling1D(2)),
                                 L.TimeDistributed(L.Cropping1D((1, 0))), L.TimeDistributed(L.ZeroPadding1D(1)),
                                 L.TimeDistributed(L.Flatten()), L.GRU(3)])  # fmt: skip

    check_export(build, subsequences(4, 2), cases=CNN_LSTM_CASES)


@pytest.mark.parametrize("kind", ["lstm_cell", "gru_cell", "simple_rnn_cell"])
@pytest.mark.parametrize("options", ["last", "sequences_backwards", "state"])
def test_rnn_of_one_cell(kind, options):
    cell = {"lstm_cell": L.LSTMCell, "gru_cell": L.GRUCell, "simple_rnn_cell": L.SimpleRNNCell}[kind]
    kw = {"last": {}, "sequences_backwards": {"return_sequences": True, "go_backwards": True},
          "state": {"return_state": True}}[options]  # fmt: skip

    def build(t):
        i = keras.Input((t, 3), name="x")
        out = L.RNN(cell(4), **kw)(i)
        return keras.Model(i, out)

    check_export(build, seq(3))


def test_rnn_of_stacked_cells_with_initial_state():
    # (with return_state too, seqcore itself fails at predict: its forward returns the states nested
    # per cell while the graph has them flat)
    def build(t):
        x = keras.Input((t, 3), name="x")
        states = [keras.Input((4,), name="h0"), keras.Input((4,), name="c0"), keras.Input((3,), name="g0")]
        cells = L.StackedRNNCells([L.LSTMCell(4), L.GRUCell(3)])
        return keras.Model([x, *states], L.RNN(cells, return_sequences=True)(x, initial_state=states))

    def make_x(rng, b, t):
        return [rng.normal(size=(b, t, 3)).astype(F32)] + [rng.normal(size=(b, d)).astype(F32) for d in (4, 4, 3)]

    check_export(build, make_x)


# ----- attention ------------------------------------------------------------------------------------------
MHA_CASES = {
    "self": ({}, {}), "causal": ({}, {"use_causal_mask": True}), "window": ({"sliding_window": 2}, {}),
    "causal_window": ({"sliding_window": 2}, {"use_causal_mask": True}), "gate": ({"use_gate": True}, {}),
    "no_bias_value_dim": ({"use_bias": False, "value_dim": 3}, {}), "output_shape": ({"output_shape": (2, 3)}, {}),
    "scores": ({}, {"return_attention_scores": True}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(MHA_CASES))
def test_multi_head_attention_self(case):
    layer_kw, call_kw = MHA_CASES[case]

    def build(t):
        x = keras.Input((t, 4), name="x")
        h = L.Dense(4)(x)
        out = L.MultiHeadAttention(2, 3, **layer_kw)(h, h, **call_kw)
        return keras.Model(x, out)

    check_export(build, seq(4))


@pytest.mark.parametrize("with_key", [False, True])
def test_multi_head_attention_cross_with_other_lengths(with_key):
    def build(t):
        q = keras.Input((t, 4), name="q")
        v = keras.Input((t + 2, 3), name="v")
        args = [L.Dense(4)(q), v] + ([L.Dense(5)(v)] if with_key else [])
        return keras.Model([q, v], L.MultiHeadAttention(3, 2)(*args))

    def make_x(rng, b, t):
        return [rng.normal(size=(b, t, 4)).astype(F32), rng.normal(size=(b, t + 2, 3)).astype(F32)]

    check_export(build, make_x)


@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_attention_masked_by_embedding(causal):
    """Query and value masks from Embedding(mask_zero=True): padded keys are not attended; the
    padded queries' rows are Keras's zeros (then the output projection's bias)."""

    def build(t):
        ids = keras.Input((t,), dtype="int32", name="ids")
        e = L.Embedding(9, 4, mask_zero=True)(ids)
        y = L.MultiHeadAttention(2, 3)(e, e, use_causal_mask=causal, return_attention_scores=True)
        return keras.Model(ids, y)

    check_export(build, lambda rng, b, t: [padded_ids(rng, b, t, 9)], cases=MASK_CASES)


@pytest.mark.parametrize("rank", [3, 2])
def test_multi_head_attention_mask_input(rank):
    def build(t):
        x = keras.Input((t, 4), name="x")
        m = keras.Input((t, t) if rank == 3 else (t,), name="allowed")
        mask = m if rank == 3 else L.Dot(axes=-1)([L.Reshape((t, 1))(m), L.Reshape((t, 1))(m)])
        return keras.Model([x, m], L.MultiHeadAttention(2, 2)(x, x, attention_mask=mask))

    def make_x(rng, b, t):
        x = rng.normal(size=(b, t, 4)).astype(F32)
        if rank == 3:
            return [x, (rng.random((b, t, t)) < 0.7).astype(F32)]
        return [x, (rng.random((b, t)) < 0.7).astype(F32)]

    check_export(build, make_x, cases=BATCH_ONLY)


ATTENTION_CASES = {
    "dot": (L.Attention, {}, {}), "dot_scale": (L.Attention, {"use_scale": True}, {}),
    "concat": (L.Attention, {"score_mode": "concat"}, {}),
    "concat_scale": (L.Attention, {"score_mode": "concat", "use_scale": True}, {}),
    "causal": (L.Attention, {}, {"use_causal_mask": True}),
    "scores": (L.Attention, {}, {"return_attention_scores": True}),
    "additive": (L.AdditiveAttention, {}, {}), "additive_no_scale": (L.AdditiveAttention, {"use_scale": False}, {}),
    "additive_causal_scores": (L.AdditiveAttention, {}, {"use_causal_mask": True, "return_attention_scores": True}),
}  # fmt: skip


@pytest.mark.parametrize("with_key", [False, True])
@pytest.mark.parametrize("case", list(ATTENTION_CASES))
def test_luong_and_bahdanau_attention(case, with_key):
    cls, layer_kw, call_kw = ATTENTION_CASES[case]

    def build(t):
        q = keras.Input((t, 3), name="q")
        v = keras.Input((t + 1, 4), name="v")
        ins = [L.Dense(4)(q), v] + ([L.Dense(4)(v)] if with_key else [])
        return keras.Model([q, v], cls(**layer_kw)(ins, **call_kw))

    def make_x(rng, b, t):
        return [rng.normal(size=(b, t, 3)).astype(F32), rng.normal(size=(b, t + 1, 4)).astype(F32)]

    model, _ = check_export(build, make_x)


@pytest.mark.parametrize("cls", [L.Attention, L.AdditiveAttention])
def test_attention_masked_query_and_value(cls):
    def build(t):
        q = keras.Input((t, 3), name="q")
        v = keras.Input((t, 3), name="v")
        return keras.Model([q, v], cls()([L.Masking()(q), L.Masking()(v)]))

    check_export(build, lambda rng, b, t: [post_padded(rng, b, t, 3), post_padded(rng, b, t, 3)], cases=MASK_CASES)


# ----- seqcore.ops ------------------------------------------------------------------------------------------
OPS_CASES = {
    "last_step": lambda y: y[:, -1],
    "slices": lambda y: y[:, 1:, ::2],
    "reverse_and_new_axis": lambda y: y[:, ::-1, None, 0],
    "ellipsis": lambda y: y[..., 1],
    "stack": lambda y: keras.ops.stack([y, y * 2.0], axis=1),
    "stack_last": lambda y: keras.ops.stack([y, y + 1.0], axis=-1),
    "reshape": lambda y: keras.ops.reshape(y, (-1, 2, 2)),
    "squeeze_all": lambda y: keras.ops.squeeze(keras.ops.expand_dims(y, 2)),
    "sum_all": lambda y: keras.ops.sum(y),
    "mean_all_keepdims": lambda y: keras.ops.mean(y, keepdims=True),
    "max_axes": lambda y: keras.ops.max(y, axis=(1, 2)),
    "softmax_two_axes": lambda y: keras.ops.softmax(y, axis=(1, 2)),
    "matmul_transpose": lambda y: keras.ops.matmul(y, keras.ops.transpose(y, (0, 2, 1))),
}


@pytest.mark.parametrize("case", list(OPS_CASES))
def test_seqcore_ops(case):
    def build(t):
        i = keras.Input((t, 3), name="x")
        return keras.Model(i, OPS_CASES[case](L.Dense(4)(i)))

    check_export(build, seq(3), cases=BATCH_ONLY if case in ("reshape", "sum_all", "mean_all_keepdims") else CASES)


# ----- traced call(): Lambda, subclassed layers and models ------------------------------------------------
def halve_and_shift(t):
    return t * 0.5 + 1.0


def test_lambda_of_ops_is_its_traced_graph():
    def build(t):
        return seq_model(t, 3, L.Dense(4), L.Lambda(halve_and_shift), L.Lambda(lambda v: keras.ops.tanh(v) * v),
                         L.LSTM(3))  # fmt: skip

    check_export(build, seq(3))


class GatedResidual(L.Layer):
    """A subclassed layer: call() of layers and ops, which seqcore traces into a graph."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.proj = L.Dense(units)
        self.gate = L.Dense(units, activation="sigmoid")

    def call(self, x):
        return x + self.proj(x) * self.gate(x)


class Encoder(keras.Model):
    """A subclassed model."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.embed = L.Dense(4)
        self.block = GatedResidual(4)
        self.rnn = L.GRU(3, return_sequences=True)
        self.head = L.Dense(2)

    def call(self, x):
        return self.head(self.rnn(self.block(self.embed(x))))


def test_subclassed_layer_in_functional():
    def build(t):
        i = keras.Input((t, 3), name="x")
        return keras.Model(i, L.LSTM(2)(GatedResidual(4)(L.Dense(4)(GatedResidual(3)(i)))))

    check_export(build, seq(3))


def test_subclassed_layer_in_sequential():
    # (seqcore traces it, and so creates its weights, at the first call: run it once first)
    model = keras.Sequential([keras.Input((T0, 3)), L.Dense(4), GatedResidual(4), L.GRU(2)])
    rng = np.random.default_rng(0)
    predict(model, [rng.normal(size=(1, T0, 3)).astype(F32)])
    randomize(model)
    sess = session(to_onnx(model))
    for b in (1, 3):
        x = rng.normal(size=(b, T0, 3)).astype(F32)
        assert_close(run_onnx(sess, [x]), predict(model, [x]), where=f"batch={b}")


def test_subclassed_model_is_its_traced_graph():
    model = Encoder(name="encoder")
    model.build((None, T0, 3))
    randomize(model)
    proto = to_onnx(model)
    rng = np.random.default_rng(0)
    for b, t in [(2, T0), (1, T0)]:
        x = rng.normal(size=(b, t, 3)).astype(F32)
        assert_close(run_onnx(session(proto), [x]), predict(model, [x]), where=f"batch={b}")


def test_subclassed_model_not_run_yet_is_refused():
    with pytest.raises(ValueError, match=r"'fresh' \(Encoder\) is a subclassed model that has not run yet.*"
                                         r"model\.build\(\(None, steps, features\)\)"):  # fmt: skip
        to_onnx(Encoder(name="fresh"))


# ----- every layer class: exported (and tested here) or refused ----------------------------------------------
def seqcore_layer_classes():
    import inspect

    from seqcore.layers.base import Layer

    return {c for _, c in inspect.getmembers(keras.layers, inspect.isclass) if issubclass(c, Layer)}


def layer_classes(model):
    """The class names of every layer in ``model``, nested and wrapped ones included (and Op nodes)."""
    seen = set()

    def walk(layer):
        seen.add(type(layer).__name__)
        for attr in ("layer", "forward_layer", "backward_layer", "cell"):
            sub = getattr(layer, attr, None)
            if isinstance(sub, L.Layer):
                walk(sub)
        for sub in getattr(layer, "cells", []) or []:
            walk(sub)
        for node in getattr(layer, "_nodes", []) or []:
            walk(node.layer)
        for sub in getattr(layer, "layers", []) or []:
            walk(sub)

    walk(model)
    return seen


def _fn(t, make):
    """A Functional model of one input (t, 3) whose body is ``make(tensor)``."""
    i = keras.Input((t, 3), name="x")
    return keras.Model(i, make(i))


def _two(t, make):
    a, b = keras.Input((t, 3), name="a"), keras.Input((t, 3), name="b")
    return keras.Model([a, b], make(a, b))


TWO = lambda rng, b, t: [rng.normal(size=(b, t, 3)).astype(F32), rng.normal(size=(b, t, 3)).astype(F32)]  # noqa: E731
IDS = lambda rng, b, t: [padded_ids(rng, b, t, 7)]  # noqa: E731
MASKED = lambda rng, b, t: [post_padded(rng, b, t, 3)]  # noqa: E731

ONE_OF_EACH = {
    "Activation": (lambda t: seq_model(t, 3, L.Activation("gelu")), seq(3)),
    "ActivityRegularization": (lambda t: seq_model(t, 3, L.ActivityRegularization(l1=0.1), L.Dense(2)), seq(3)),
    "Add": (lambda t: _two(t, lambda a, b: L.Add()([a, b])), TWO),
    "AdditiveAttention": (lambda t: _two(t, lambda a, b: L.AdditiveAttention()([a, b])), TWO),
    "AlphaDropout": (lambda t: seq_model(t, 3, L.AlphaDropout(0.5), L.Dense(2)), seq(3)),
    "Attention": (lambda t: _two(t, lambda a, b: L.Attention(use_scale=True)([a, b])), TWO),
    "Average": (lambda t: _two(t, lambda a, b: L.Average()([a, b])), TWO),
    "AveragePooling1D": (lambda t: seq_model(t, 3, L.AveragePooling1D(2, padding="same")), seq(3)),
    "BatchNormalization": (lambda t: seq_model(t, 3, L.BatchNormalization()), seq(3)),
    "Bidirectional": (lambda t: seq_model(t, 3, L.Masking(), L.Bidirectional(L.GRU(2))), MASKED),
    "Concatenate": (lambda t: _two(t, lambda a, b: L.Concatenate()([a, b])), TWO),
    "Conv1D": (lambda t: seq_model(t, 3, L.Conv1D(2, 3, padding="same", dilation_rate=2)), seq(3)),
    "Conv1DTranspose": (lambda t: seq_model(t, 3, L.Conv1DTranspose(2, 3, strides=2)), seq(3)),
    "Cropping1D": (lambda t: seq_model(t, 3, L.Cropping1D((1, 1))), seq(3)),
    "Dense": (lambda t: seq_model(t, 3, L.Dense(2)), seq(3)),
    "DepthwiseConv1D": (lambda t: seq_model(t, 3, L.DepthwiseConv1D(2, depth_multiplier=2)), seq(3)),
    "Dot": (lambda t: _two(t, lambda a, b: L.Dot(axes=2)([a, b])), TWO),
    "Dropout": (lambda t: seq_model(t, 3, L.Dropout(0.5), L.Dense(2)), seq(3)),
    "ELU": (lambda t: seq_model(t, 3, L.ELU(0.5)), seq(3)),
    "Embedding": (lambda t: keras.Sequential([keras.Input((t,), dtype="int32"), L.Embedding(7, 2, mask_zero=True),
                                              L.LSTM(2)]), IDS),  # fmt: skip
    "Flatten": (lambda t: seq_model(t, 3, L.Flatten()), seq(3)),
    "GRU": (lambda t: seq_model(t, 3, L.GRU(2, return_sequences=True)), seq(3)),
    "GaussianDropout": (lambda t: seq_model(t, 3, L.GaussianDropout(0.5), L.Dense(2)), seq(3)),
    "GaussianNoise": (lambda t: seq_model(t, 3, L.GaussianNoise(0.5), L.Dense(2)), seq(3)),
    "GlobalAveragePooling1D": (lambda t: seq_model(t, 3, L.Masking(), L.GlobalAveragePooling1D()), MASKED),
    "GlobalMaxPooling1D": (lambda t: seq_model(t, 3, L.GlobalMaxPooling1D()), seq(3)),
    "GroupNormalization": (lambda t: seq_model(t, 3, L.Dense(4), L.GroupNormalization(2)), seq(3)),
    "InputLayer": (lambda t: _fn(t, lambda i: L.Dense(2)(i)), seq(3)),
    "LSTM": (lambda t: seq_model(t, 3, L.LSTM(2, go_backwards=True)), seq(3)),
    "Lambda": (lambda t: seq_model(t, 3, L.Lambda(halve_and_shift)), seq(3)),
    "LayerNormalization": (lambda t: seq_model(t, 3, L.LayerNormalization()), seq(3)),
    "LeakyReLU": (lambda t: seq_model(t, 3, L.LeakyReLU(0.1)), seq(3)),
    "Masking": (lambda t: seq_model(t, 3, L.Masking(), L.SimpleRNN(2)), MASKED),
    "MaxPooling1D": (lambda t: seq_model(t, 3, L.MaxPooling1D(2)), seq(3)),
    "Maximum": (lambda t: _two(t, lambda a, b: L.Maximum()([a, b])), TWO),
    "Minimum": (lambda t: _two(t, lambda a, b: L.Minimum()([a, b])), TWO),
    "MultiHeadAttention": (lambda t: _fn(t, lambda i: L.MultiHeadAttention(2, 2)(i, i)), seq(3)),
    "Multiply": (lambda t: _two(t, lambda a, b: L.Multiply()([a, b])), TWO),
    "Op": (lambda t: _fn(t, lambda i: keras.ops.exp(i[:, :, :1]) - i), seq(3)),
    "PReLU": (lambda t: seq_model(t, 3, L.PReLU(shared_axes=[1])), seq(3)),
    "Permute": (lambda t: seq_model(t, 3, L.Permute((2, 1))), seq(3)),
    "RMSNormalization": (lambda t: seq_model(t, 3, L.RMSNormalization()), seq(3)),
    "RNN": (lambda t: seq_model(t, 3, L.RNN([L.LSTMCell(2), L.SimpleRNNCell(2)])), seq(3)),
    "ReLU": (lambda t: seq_model(t, 3, L.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.2)), seq(3)),
    "RepeatVector": (lambda t: seq_model(t, 3, L.GRU(2), L.RepeatVector(3)), seq(3)),
    "Reshape": (lambda t: seq_model(t, 3, L.Reshape((-1, 1))), seq(3)),
    "SeparableConv1D": (lambda t: seq_model(t, 3, L.SeparableConv1D(2, 2, padding="same")), seq(3)),
    "SimpleRNN": (lambda t: seq_model(t, 3, L.SimpleRNN(2, return_sequences=True)), seq(3)),
    "Softmax": (lambda t: seq_model(t, 3, L.Softmax()), seq(3)),
    "SpatialDropout1D": (lambda t: seq_model(t, 3, L.SpatialDropout1D(0.5), L.Dense(2)), seq(3)),
    "Subtract": (lambda t: _two(t, lambda a, b: L.Subtract()([a, b])), TWO),
    "TimeDistributed": (lambda t: seq_model(t, 3, L.TimeDistributed(L.Reshape((3, 1)))), seq(3)),
    "UnitNormalization": (lambda t: seq_model(t, 3, L.UnitNormalization()), seq(3)),
    "UpSampling1D": (lambda t: seq_model(t, 3, L.UpSampling1D(2)), seq(3)),
    "ZeroPadding1D": (lambda t: seq_model(t, 3, L.ZeroPadding1D(1)), seq(3)),
}  # fmt: skip


def test_every_layer_class_is_exported_or_refused():
    """A new layer class in seqcore.layers fails here until the exporter converts it (and a case is
    added to ONE_OF_EACH) or refuses it with a reason."""
    exported, refused = set(keras.interop.onnx.EXPORTED_LAYERS), set(keras.interop.onnx.REFUSED_LAYERS)
    assert not exported & refused
    names = {c.__name__ for c in seqcore_layer_classes()}
    assert names - exported - refused == set(), "layer classes neither exported nor refused"
    assert set(ONE_OF_EACH) == exported, "every exported layer class needs a case in ONE_OF_EACH"
    assert refused == {"GRUCell", "LSTMCell", "Layer", "SimpleRNNCell", "StackedRNNCells"}
    for why in keras.interop.onnx.REFUSED_LAYERS.values():
        assert len(why) > 40


@pytest.mark.parametrize("name", sorted(ONE_OF_EACH))
def test_one_of_each_exported_layer(name):
    build, make_x = ONE_OF_EACH[name]
    cases = BATCH_ONLY if name in ("Flatten", "Reshape") else MASK_CASES if make_x in (MASKED, IDS) else CASES
    model, _ = check_export(build, make_x, cases=cases)
    assert name in layer_classes(model)


@pytest.mark.parametrize("cell", [L.LSTMCell, L.GRUCell, L.SimpleRNNCell])
def test_bare_cell_is_refused(cell):
    model = keras.Sequential([keras.Input((T0, 3)), cell(4, name="lonely_cell")])
    with pytest.raises(ValueError, match=r"'lonely_cell'.*one step.*keras\.layers\.RNN\(cell\)"):
        to_onnx(model)


# ----- opsets -----------------------------------------------------------------------------------------------
def kitchen_sink(t):
    """A model touching every op family whose form changed across opsets (reductions, LayerNorm,
    Squeeze/Unsqueeze, recurrent ops, masks, Pad, Einsum)."""
    i = keras.Input((t, 3), name="x")
    m = L.Masking()(i)
    h = L.LayerNormalization()(L.Dense(4)(m))
    h = L.Bidirectional(L.LSTM(3, return_sequences=True))(h)
    h = L.GRU(4, return_sequences=True)(h)
    c = L.Conv1D(4, 2, strides=2, dilation_rate=2, padding="same")(h)
    pooled = L.GlobalAveragePooling1D()(h)
    s = L.Dot(axes=1)([pooled, L.GlobalMaxPooling1D()(c)])
    return keras.Model(i, [L.Dense(2)(pooled), keras.ops.mean(c, axis=1), s])


@pytest.mark.parametrize("opset", list(range(13, keras.interop.onnx.max_opset() + 1)))
def test_every_opset(opset):
    model = randomize(kitchen_sink(T0))
    proto = to_onnx(model, opset=opset)
    assert {o.domain: o.version for o in proto.opset_import}[""] == opset
    rng = np.random.default_rng(opset)
    xs = [post_padded(rng, 4, T0, 3)]
    assert_close(run_onnx(session(proto), xs), predict(model, xs), where=f"opset {opset}")


# ----- refusals and argument errors ---------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [12, 0, -1, 10_000, "17", 17.0, True, None])
def test_bad_opset(opset):
    top = keras.interop.onnx.max_opset()
    want = rf"opset must be an int from 13 to {top}.*received {re.escape(repr(opset))}\..*opset=17"
    with pytest.raises(ValueError, match=want):
        to_onnx(small_model(), opset=opset)
    with pytest.raises(ValueError, match=want):
        small_model().export("unused.onnx", format="onnx", opset=opset)


@pytest.mark.parametrize("fmt", ["bogus", "ONNX", None, 3])
def test_export_bad_format(fmt, tmp_path):
    with pytest.raises(ValueError, match=rf"unknown format {re.escape(repr(fmt))}; expected format='onnx'"):
        small_model().export(tmp_path / "m.onnx", format=fmt)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("fmt", ["tf_saved_model", "litert"])
def test_export_keras_formats_point_to_onnx(fmt, tmp_path):
    with pytest.raises(ValueError, match=rf"does not write format='{fmt}'.*model\.export\(.*format='onnx'\)"):
        small_model().export(tmp_path / "m", format=fmt)
    with pytest.raises(ValueError, match="does not write format='tf_saved_model'"):
        small_model().export(tmp_path / "m")  # Keras's default format


@pytest.mark.parametrize("path", [123, b"model.onnx", ["model.onnx"], 1.5])
def test_bad_filepath_types(path):
    with pytest.raises(TypeError, match=rf"filepath must be a str or os\.PathLike.*received {type(path).__name__}\."):
        to_onnx(small_model(), path)
    with pytest.raises(TypeError, match="filepath must be a str or os.PathLike"):
        small_model().export(path, format="onnx")


def test_bad_filepaths(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        to_onnx(small_model(), tmp_path / "missing" / "m.onnx")
    with pytest.raises(ValueError, match="filepath is empty"):
        to_onnx(small_model(), "")
    with pytest.raises(IsADirectoryError):
        to_onnx(small_model(), tmp_path)
    with pytest.raises(TypeError, match="filepath is required"):
        small_model().export(None, format="onnx")
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['dynamic_axes'\].*opset="):
        small_model().export(tmp_path / "m.onnx", format="onnx", dynamic_axes={})
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("thing", [L.Dense(2), "model.keras", None])
def test_not_a_model(thing):
    with pytest.raises(TypeError, match=rf"expected a seqcore model.*received {type(thing).__name__}.*from_keras"):
        to_onnx(thing)


def test_unbuilt_and_empty_sequential():
    with pytest.raises(ValueError, match=r"'unbuilt' is not built.*seqcore\.Input"):
        to_onnx(keras.Sequential([L.Dense(2)], name="unbuilt"))
    with pytest.raises(ValueError, match=r"'empty' has no layers; add layers"):
        to_onnx(keras.Sequential(name="empty"))


def test_refusals_name_the_layer_what_and_the_fix():
    x = keras.Input((T0, 3), name="x")
    s = L.Reshape((T0, 1, 3))(x)
    model = keras.Model(x, L.MultiHeadAttention(2, 2, name="mha4d")(s, s))
    with pytest.raises(ValueError, match=r"'mha4d' \(MultiHeadAttention\).*rank 4.*reshape to \(batch, steps"):
        to_onnx(model)
    const = keras.Model(x, L.GRU(3, name="const_state")(x, initial_state=[np.zeros((2, 3), F32)]))
    with pytest.raises(ValueError, match=r"'const_state' \(GRU\).*initial_state must be graph tensors.*Input"):
        to_onnx(const)


def test_keras_model_is_refused_with_the_fix():
    keras3 = pytest.importorskip("keras")
    km = keras3.Sequential([keras3.Input((T0, 3)), keras3.layers.Dense(2)])
    with pytest.raises(TypeError, match=r"received Sequential.*seqcore\.interop\.from_keras\(model\)"):
        to_onnx(km)


# ----- a Keras model, converted, then exported -----------------------------------------------------------------
@pytest.fixture(scope="module")
def keras3():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("keras")


def test_keras_model_from_keras_then_onnx_gives_keras_numbers(keras3):
    K = keras3.layers
    ids = keras3.Input((None,), dtype="int32", name="tokens")
    h = K.Embedding(12, 4, mask_zero=True)(ids)
    h = K.Bidirectional(K.LSTM(3, return_sequences=True))(h)
    h = K.GRU(4)(h)
    km = keras3.Model(ids, K.Dense(2, activation="softmax")(K.Dense(5, activation="relu")(h)))
    rng = np.random.default_rng(0)
    km.set_weights([rng.normal(0, 0.5, size=w.shape).astype(F32) for w in km.get_weights()])
    model = keras.interop.from_keras(km)
    assert model.inputs[0].dtype == "int32"  # Keras's Input dtype is kept, and types the graph input
    proto = to_onnx(model)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT32
    sess = session(proto)
    for b, t in [(3, 6), (1, 4), (4, 9)]:
        x = padded_ids(rng, b, t, 12)
        want = keras3.ops.convert_to_numpy(km(x))
        assert_close(run_onnx(sess, [x]), [want], where=f"batch={b} time={t}")


# ----- graph input types: the Input's dtype ---------------------------------------------------------------
ELEM = {"int32": onnx.TensorProto.INT32, "int64": onnx.TensorProto.INT64, "float32": onnx.TensorProto.FLOAT}


@pytest.mark.parametrize("dtype", ["int32", "int64", None])
def test_graph_input_type_is_the_inputs_dtype(dtype):
    def build(t):
        i = keras.Input((t,), dtype=dtype, name="tokens")
        return keras.Model(i, L.GRU(3)(L.Embedding(8, 3, mask_zero=True)(i)))

    np_dtype = np.dtype(dtype or "float32")
    model, proto = check_export(build, lambda rng, b, t: [padded_ids(rng, b, t, 8).astype(np_dtype)], cases=MASK_CASES)
    assert model.inputs[0].dtype == np_dtype.name
    assert proto.graph.input[0].type.tensor_type.elem_type == ELEM[np_dtype.name]
    # the time axis of ids is symbolic whatever their type
    assert not proto.graph.input[0].type.tensor_type.shape.dim[1].HasField("dim_value")


def test_integer_input_into_dense_is_cast_and_bool_mask_input():
    def build(t):
        counts = keras.Input((4,), dtype="int64", name="counts")
        x = keras.Input((t, 3), name="x")
        m = keras.Input((t,), dtype="bool", name="valid")
        h = L.LSTM(4)(x, mask=m)
        return keras.Model([counts, x, m], L.Add()([L.Dense(4)(counts), h]))

    def make_x(rng, b, t):
        lengths = rng.integers(0, t + 1, size=b)
        return [rng.integers(0, 5, size=(b, 4)), rng.normal(size=(b, t, 3)).astype(F32),
                np.arange(t)[None, :] < lengths[:, None]]  # fmt: skip

    _, proto = check_export(build, make_x, cases=MASK_CASES)
    types = [i.type.tensor_type.elem_type for i in proto.graph.input]
    assert types == [onnx.TensorProto.INT64, onnx.TensorProto.FLOAT, onnx.TensorProto.BOOL]
