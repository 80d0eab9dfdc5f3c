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
        return keras.Sequential([keras.Input((3,)), L.Dense(5), L.Activation(activation), L.Dense(2, activation=activation)])

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
        return [rng.normal(size=(b, t, 3)).astype(F32)] + [rng.normal(size=(b, 4)).astype(F32) for _ in range(n_states(kind))]

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


def lambda_model(name="my_custom_lambda"):
    return randomize(seq_model(T0, 3, L.Dense(4), L.Lambda(lambda t: t * 2.0, name=name), L.Dense(2)))


def test_unsupported_layer_is_refused_by_name():
    with pytest.raises(ValueError, match="my_custom_lambda"):
        to_onnx(lambda_model())


def test_unsupported_layer_in_functional_is_refused_by_name():
    i = keras.Input((T0, 3), name="x")
    y = L.Lambda(lambda t: t + 1.0, name="odd_one_out")(L.Dense(3)(i))
    model = keras.Model(i, [L.Dense(2)(i), y])
    with pytest.raises(ValueError, match="odd_one_out"):
        to_onnx(model)


def test_failed_export_writes_no_file(tmp_path):
    path = tmp_path / "never.onnx"
    with pytest.raises(ValueError, match="my_custom_lambda"):
        to_onnx(lambda_model(), str(path))
    assert not path.exists()
    with pytest.raises(ValueError, match="my_custom_lambda"):
        lambda_model().export(str(path), format="onnx")
    assert os.listdir(tmp_path) == []


def test_failed_export_keeps_existing_file(tmp_path):
    path = tmp_path / "keep.onnx"
    to_onnx(small_model(), path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="my_custom_lambda"):
        to_onnx(lambda_model(), str(path))
    assert path.read_bytes() == before
    with pytest.raises(ValueError, match="my_custom_lambda"):
        lambda_model().export(str(path), format="onnx")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.onnx"]


# ----- masks and stateful layers: refused by name, or exported right ---------------------------------------
def _exported_or_refused(model, layer_name):
    """The proto, or None when the exporter refuses with a ValueError naming ``layer_name``."""
    try:
        return to_onnx(model)
    except ValueError as e:
        assert layer_name in str(e), f"the refusal does not name the layer {layer_name!r}: {e}"
        return None


def test_masking_refused_or_exact():
    model = randomize(seq_model(6, 3, L.Masking(0.0, name="the_mask"), L.LSTM(4), L.Dense(2)))
    proto = _exported_or_refused(model, "the_mask")
    if proto is None:
        return
    onnx.checker.check_model(proto)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 3)).astype(F32)
    x[0, 4:] = 0.0  # post-padded samples of lengths 4 and 2
    x[2, 2:] = 0.0
    np.testing.assert_allclose(run_onnx(session(proto), [x])[0], predict(model, [x])[0], atol=ATOL, rtol=RTOL)


def test_embedding_mask_zero_refused_or_exact():
    i = keras.Input((6,), dtype="int32", name="ids")
    y = L.GRU(4)(L.Embedding(9, 3, mask_zero=True, name="masked_embedding")(i))
    model = randomize(keras.Model(i, y))
    proto = _exported_or_refused(model, "masked_embedding")
    if proto is None:
        return
    ids = np.random.default_rng(1).integers(1, 9, size=(3, 6)).astype(np.int32)
    ids[1, 3:] = 0
    np.testing.assert_allclose(run_onnx(session(proto), [ids])[0], predict(model, [ids])[0], atol=ATOL, rtol=RTOL)


def test_stateful_refused_or_exact_first_call():
    model = randomize(keras.Sequential([keras.Input((T0, 3), batch_size=2), L.LSTM(4, stateful=True, name="carrier")]))
    proto = _exported_or_refused(model, "carrier")
    if proto is None:
        return
    x = np.random.default_rng(2).normal(size=(2, T0, 3)).astype(F32)
    sess = session(proto)
    # explicit state inputs (if any) start at zeros, as the layer's first call after reset_states
    feeds = [x] + [np.zeros([d.dim_value or 2 for d in i.type.tensor_type.shape.dim], F32)
                   for i in proto.graph.input[1:]]  # fmt: skip
    got = sess.run(None, dict(zip([i.name for i in sess.get_inputs()], feeds, strict=True)))
    model.reset_states()
    np.testing.assert_allclose(got[0], predict(model, [x])[0], atol=ATOL, rtol=RTOL)
