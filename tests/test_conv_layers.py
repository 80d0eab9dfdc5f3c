"""Conv1D / pooling layers and TimeDistributed over any layer: the CNN-LSTM path of seed 004."""

from __future__ import annotations

import numpy as np
import pytest
import seqcore as keras

L = keras.layers


@pytest.fixture(autouse=True)
def _seed() -> None:
    keras.utils.set_random_seed(0)


def cnn_lstm(n_seq: int | None = 4, n_steps: int = 16) -> keras.Sequential:
    return keras.Sequential(
        [
            keras.Input((n_seq, n_steps, 1)),
            L.TimeDistributed(L.Conv1D(8, 3, activation="relu")),
            L.TimeDistributed(L.MaxPooling1D(2)),
            L.TimeDistributed(L.Flatten()),
            L.LSTM(6),
            L.Dense(1),
        ]
    )


def test_time_distributed_conv_equals_a_loop_over_the_outer_axis() -> None:
    x = np.random.default_rng(0).normal(size=(3, 5, 10, 2)).astype(np.float32)
    td = L.TimeDistributed(L.Conv1D(4, 3, padding="same", activation="tanh"))
    y = td(x)
    inner = td.layer
    loop = np.stack([inner(x[:, i]) for i in range(x.shape[1])], axis=1)
    np.testing.assert_allclose(y, loop, rtol=1e-6, atol=1e-6)
    assert td.count_params() == inner.count_params() == 3 * 2 * 4 + 4  # one set of weights


def test_time_distributed_gradient_matches_loop_sum() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 7, 2)).astype(np.float32)
    dy = rng.normal(size=(2, 3, 5, 4)).astype(np.float32)
    td = L.TimeDistributed(L.Conv1D(4, 3))
    td(x)  # builds the weights
    _, ctx = td.forward(x, training=True)
    dx = td.backward(ctx, dy)
    dk_td = td.layer.kernel.grad.copy()
    dk_loop = np.zeros_like(dk_td)
    for i in range(3):
        td.layer.kernel.grad = None
        _, ci = td.layer.forward(x[:, i], training=True)
        dxi = td.layer.backward(ci, np.ascontiguousarray(dy[:, i]))
        np.testing.assert_allclose(dx[:, i], dxi, rtol=1e-5, atol=1e-6)
        dk_loop += td.layer.kernel.grad
    np.testing.assert_allclose(dk_td, dk_loop, rtol=1e-5, atol=1e-5)  # shared weights: gradients add up


def test_cnn_lstm_trains_and_outer_axis_may_vary() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 4, 16, 1)).astype(np.float32)
    y = x.mean(axis=(1, 2))
    m = cnn_lstm(n_seq=None)
    assert m.output_shape == (None, 1)
    m.compile("adam", "mse")
    before = m.evaluate(x, y, verbose=0)
    m.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert m.evaluate(x, y, verbose=0) < before
    assert m.predict(x[:, :2], verbose=0).shape == (64, 1)  # 2 sub-sequences instead of 4


def test_rank3_data_for_a_cnn_lstm_model_explains_the_reshape() -> None:
    m = cnn_lstm()
    with pytest.raises(
        ValueError,
        match=r"expects input of shape \(None, 4, 16, 1\); received x of shape \(8, 64, 1\).*split_sequences",
    ):
        m.predict(np.zeros((8, 64, 1), np.float32), verbose=0)
    x = keras.utils.split_sequences(np.zeros((8, 64, 1), np.float32), n_seq=4, n_steps=16)
    assert m.predict(x, verbose=0).shape == (8, 1)


def test_conv1d_on_subsequences_without_time_distributed_says_so() -> None:
    with pytest.raises(ValueError, match=r"received \(None, 4, 16, 1\).*wrap the layer in TimeDistributed"):
        keras.Sequential([keras.Input((4, 16, 1)), L.Conv1D(8, 3)])


def test_time_distributed_after_rnn_without_sequences() -> None:
    with pytest.raises(ValueError, match=r"received \(None, 6\).*return_sequences=True"):
        keras.Sequential([keras.Input((5, 3)), L.LSTM(6), L.TimeDistributed(L.Dense(1))])


@pytest.mark.parametrize(
    ("make", "shape", "pattern"),
    [
        (lambda: L.Conv1D(4, 5), (3, 2), r"3 steps, shorter than the dilated kernel.*padding=\"same\""),
        (lambda: L.Conv1D(6, 2, groups=3), (8, 4), r"input channels \(4\) must be divisible by groups \(3\)"),
        (lambda: L.Conv1D(0, 2), None, r"filters must be a positive integer. Received: filters=0"),
        (lambda: L.Conv1D(4, 2, padding="full"), None, r"padding must be 'valid', 'same' or 'causal'"),
        (lambda: L.MaxPooling1D(0), None, r"pool_size must be a positive integer"),
        (lambda: L.Conv1D(4, 3, data_format="channels_first"), None, r"channels_last"),
    ],
)
def test_conv_errors(make, shape, pattern) -> None:
    with pytest.raises((ValueError, TypeError), match=pattern):
        layer = make()
        keras.Sequential([keras.Input(shape), layer])


def test_pooling_layers_and_shapes() -> None:
    x = np.random.default_rng(3).normal(size=(2, 9, 3)).astype(np.float32)
    assert L.MaxPooling1D(2)(x).shape == (2, 4, 3)
    assert L.MaxPooling1D(2, padding="same")(x).shape == (2, 5, 3)
    assert L.AveragePooling1D(3, strides=2)(x).shape == (2, 4, 3)
    np.testing.assert_allclose(L.GlobalAveragePooling1D()(x), x.mean(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(L.GlobalMaxPooling1D()(x), x.max(axis=1))
    assert L.GlobalMaxPooling1D(keepdims=True)(x).shape == (2, 1, 3)


def test_flatten_and_reshape_are_views() -> None:
    x = np.zeros((4, 3, 5), np.float32)
    assert np.shares_memory(L.Flatten()(x), x)
    assert np.shares_memory(L.Reshape((5, 3))(x), x)
    with pytest.raises(ValueError, match=r"cannot reshape \(None, 3, 5\) \(15 values per sample\) to \(4, 4\)"):
        keras.Sequential([keras.Input((3, 5)), L.Reshape((4, 4))])


def test_keras_layer_names() -> None:
    assert L.Conv1D(2, 2).name.startswith("conv1d")
    assert L.MaxPooling1D().name.startswith("max_pooling1d")
    assert L.GlobalAveragePooling1D().name.startswith("global_average_pooling1d")


def test_time_distributed_over_a_nested_sequential() -> None:
    """seed 004's pattern: the same CNN stack (a Sequential) on every sub-sequence."""
    cnn = keras.Sequential([L.Conv1D(8, 3, activation="relu"), L.MaxPooling1D(2), L.Flatten()])
    m = keras.Sequential([keras.Input((4, 16, 1)), L.TimeDistributed(cnn), L.LSTM(6), L.Dense(1)])
    flat = keras.Sequential(
        [keras.Input((4, 16, 1)), L.TimeDistributed(L.Conv1D(8, 3, activation="relu")),
         L.TimeDistributed(L.MaxPooling1D(2)), L.TimeDistributed(L.Flatten()), L.LSTM(6), L.Dense(1)]
    )  # fmt: skip
    assert m.count_params() == flat.count_params() == (3 * 8 + 8) + 4 * (56 * 6 + 36 + 6) + 7
    flat.set_weights(m.get_weights())
    x = np.random.default_rng(4).normal(size=(10, 4, 16, 1)).astype(np.float32)
    np.testing.assert_allclose(m.predict(x, verbose=0), flat.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    m.compile("sgd", "mse")
    flat.compile("sgd", "mse")
    y = x.mean(axis=(1, 2))
    assert np.isclose(m.train_on_batch(x, y), flat.train_on_batch(x, y), rtol=1e-6)
    for a, b in zip(m.get_weights(), flat.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_time_distributed_lstm_over_subsequences() -> None:
    x = np.random.default_rng(5).normal(size=(3, 4, 6, 2)).astype(np.float32)
    td = L.TimeDistributed(L.LSTM(5))
    y = td(x)
    assert y.shape == (3, 4, 5)
    np.testing.assert_allclose(y[:, 2], td.layer(x[:, 2]), rtol=1e-6, atol=1e-6)
