"""keras.layers.RNN(cell) with LSTMCell, GRUCell, SimpleRNNCell and StackedRNNCells on the fused
kernels: the same numbers as the fused layers with the same weights, stacking as a chain, states
and initial_state gradients, one-step cell calls, saving, interop configs and the errors. Keras's
own numbers are checked in tests/test_layer_goldens.py (the rnn_* cases)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import seqcore as keras
from seqcore import interop
from seqcore import reference_rnn as R

L = keras.layers


def data(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize(
    "cell, layer",
    [
        (lambda: L.LSTMCell(4, unit_forget_bias=False), lambda: L.LSTM(4, unit_forget_bias=False)),
        (
            lambda: L.GRUCell(3, reset_after=False, activation="relu"),
            lambda: L.GRU(3, reset_after=False, activation="relu"),
        ),
        (lambda: L.SimpleRNNCell(5, use_bias=False), lambda: L.SimpleRNN(5, use_bias=False)),
    ],
    ids=["lstm", "gru", "simple"],
)
def test_rnn_of_a_cell_is_the_fused_layer(cell: Any, layer: Any) -> None:
    x = data(3, 6, 2)
    for opts in ({}, {"return_sequences": True, "go_backwards": True}):
        rnn, ref = L.RNN(cell(), **opts), layer()
        ref.return_sequences = opts.get("return_sequences", False)
        ref.go_backwards = opts.get("go_backwards", False)
        rnn(x)
        ref(x)
        ref.set_weights(rnn.get_weights())
        np.testing.assert_array_equal(rnn(x), ref(x))
        dy = data(*rnn(x).shape, seed=1)
        y1, c1 = rnn.apply(x, training=True)
        y2, c2 = ref.apply(x, training=True)
        np.testing.assert_array_equal(rnn.unapply(c1, dy), ref.unapply(c2, dy))
        for a, b in zip(rnn.weights, ref.weights, strict=True):
            np.testing.assert_array_equal(a.grad, b.grad)
            a.grad = b.grad = None


def test_stacked_cells_are_a_chain_and_return_nested_states() -> None:
    x = data(2, 5, 3)
    cells = [L.LSTMCell(4), L.GRUCell(3)]
    rnn = L.RNN(L.StackedRNNCells(cells), return_sequences=True, return_state=True)
    out, lstm_states, gru_states = rnn(x)
    a, b = L.LSTM(4, return_sequences=True, return_state=True), L.GRU(3, return_sequences=True, return_state=True)
    a(x)
    b(a(x)[0])
    a.set_weights(rnn.get_weights()[:3])
    b.set_weights(rnn.get_weights()[3:])
    seq_a, ha, ca = a(x)
    seq_b, hb = b(seq_a)
    np.testing.assert_array_equal(out, seq_b)
    np.testing.assert_array_equal(lstm_states[0], ha)
    np.testing.assert_array_equal(lstm_states[1], ca)
    np.testing.assert_array_equal(gru_states[0], hb)
    assert rnn.count_params() == a.count_params() + b.count_params()
    assert L.RNN([L.SimpleRNNCell(2), L.SimpleRNNCell(3)]).cell.output_size == 3  # a list means stacked


def test_encoder_decoder_with_cells_trains_through_the_states(tmp_path: Any) -> None:
    enc_in, dec_in = keras.Input((6, 2)), keras.Input((4, 3))
    _, h, c = L.RNN(L.LSTMCell(5), return_state=True, name="enc")(enc_in)
    dec = L.RNN(L.LSTMCell(5), return_sequences=True, name="dec")(dec_in, initial_state=[h, c])
    model = keras.Model([enc_in, dec_in], L.Dense(1)(dec))
    model.compile("adam", "mse")
    xs, y = [data(8, 6, 2), data(8, 4, 3, seed=1)], data(8, 4, 1, seed=2)
    enc_kernel = model.get_layer("enc").get_weights()[0].copy()
    model.fit(xs, y, epochs=3, verbose=0)
    assert not np.array_equal(enc_kernel, model.get_layer("enc").get_weights()[0])  # gradients reached the encoder
    model.save(tmp_path / "m.seqcore")
    again = keras.models.load_model(tmp_path / "m.seqcore")
    np.testing.assert_array_equal(again.predict(xs, verbose=0), model.predict(xs, verbose=0))
    cfg = interop.keras_config(model)["config"]["layers"]
    enc = next(e for e in cfg if e["name"] == "enc")
    assert enc["class_name"] == "RNN" and enc["config"]["cell"]["class_name"] == "LSTMCell"


def test_a_cell_called_alone_takes_one_step() -> None:
    cell = L.GRUCell(4)
    x = data(3, 2)
    h, states = cell(x, [np.zeros((3, 4), np.float32)])
    assert h.shape == (3, 4) and len(states) == 1
    np.testing.assert_array_equal(h, states[0])
    layer = L.GRU(4)
    layer(x[:, None])
    layer.set_weights(cell.weights and [w.value for w in cell.weights])
    np.testing.assert_allclose(layer(x[:, None]), h, rtol=1e-6, atol=1e-7)
    h2, _ = cell(x, states)  # the state carries into the next step
    assert not np.allclose(h2, h)


def test_errors() -> None:
    class MyCell(L.Layer):
        state_size = 3

    with pytest.raises(TypeError, match=r"RNN 'r': the cell is a MyCell; seqcore .* supports LSTMCell, GRUCell"):
        L.RNN(MyCell(), name="r")
    with pytest.raises(ValueError, match=r"units"):
        L.LSTMCell(0)
    with pytest.raises(TypeError, match=r"wrap it in keras.layers.RNN\(LSTMCell\(...\)\)"):
        L.LSTMCell(3)(keras.Input((4,)))
    rnn = L.RNN([L.LSTMCell(2), L.GRUCell(2)], go_backwards=True, name="s")
    x = data(2, 3, 2)
    rnn(x)
    with pytest.raises(ValueError, match=r"RNN 's': the mask must have shape \(batch, time\) = \(2, 3\)"):
        rnn.apply(x, lengths=np.ones((2, 4), dtype=bool))


def test_stacked_cells_backwards_with_a_mask_match_the_reference() -> None:
    """go_backwards with stacked cells and a mask: every cell sees step t of the reversed input
    together, so the second cell's mask is the input's reversed (float64 reference)."""
    rnn = L.RNN([L.LSTMCell(3), L.GRUCell(2)], go_backwards=True, return_sequences=True)
    x = data(3, 5, 2)
    rnn(x)
    mask = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 1], [1, 0, 1, 1, 0]], dtype=bool)
    got = rnn.apply(x, lengths=mask)[0]
    (k1, r1, b1), (k2, r2, b2) = [[w.value for w in lyr.weights] for lyr in rnn._layers]
    h1 = R.lstm_forward(x, k1, r1, b1, lengths=mask, go_backwards=True)[0]
    want = R.gru_forward(h1, k2, r2, b2, lengths=mask[:, ::-1].copy(), go_backwards=False)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_truncated_bptt_carries_every_cell_state() -> None:
    x = data(4, 12, 3)
    y = data(4, 12, 2, seed=1)

    def make() -> Any:
        keras.utils.set_random_seed(3)
        m = keras.Sequential([keras.Input((12, 3)), L.RNN([L.LSTMCell(4), L.GRUCell(2)], return_sequences=True)])
        m.compile("sgd", "mse")
        return m

    whole, chunked = make(), make()
    whole.fit(x, y, epochs=1, batch_size=4, verbose=0, shuffle=False)
    chunked.fit(x, y, epochs=1, batch_size=4, verbose=0, shuffle=False, tbptt_steps=12)  # one chunk: the same step
    for a, b in zip(whole.get_weights(), chunked.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    chunked.fit(x, y, epochs=1, batch_size=4, verbose=0, tbptt_steps=4)  # three chunks, states carried
    back = keras.Sequential([keras.Input((12, 3)), L.RNN(L.LSTMCell(2), go_backwards=True)])
    back.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"go_backwards=True"):
        back.fit(x, data(4, 2), tbptt_steps=4, verbose=0)
