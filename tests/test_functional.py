"""The Functional API: symbolic inputs, graphs of layer calls, shared layers, several inputs and
outputs, merge layers, operators and seqcore.ops on symbolic tensors, nested models, masks through
the graph, the errors Keras users meet, and inference from other threads during fit. Gradients are
checked against float64 central differences of the whole model's loss."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import seqcore as keras
from seqcore import layers as L
from seqcore import ops


@pytest.fixture(autouse=True)
def _seed() -> None:
    keras.utils.set_random_seed(0)


def data(*shapes: tuple[int, ...], seed: int = 0) -> list[np.ndarray]:
    r = np.random.default_rng(seed)
    return [r.normal(size=s).astype(np.float32) for s in shapes]


def grads_by_backprop(model: Any, xs: list[np.ndarray], ys: list[np.ndarray]) -> list[np.ndarray]:
    outs, masks, ctx = model._run(xs, training=True)
    # loss = sum over outputs of 0.5 * sum((out - y)^2): dL/dout = out - y
    for w in model.weights:
        w.grad = None
    model._run_backward(ctx, [o - y for o, y in zip(outs, ys, strict=True)])
    return [np.zeros_like(w.value) if w.grad is None else w.grad.copy() for w in model.trainable_weights]


def loss64(model: Any, xs: list[np.ndarray], ys: list[np.ndarray]) -> float:
    outs, _, _ = model._run(xs, training=False)
    return float(sum(0.5 * ((o.astype(np.float64) - y) ** 2).sum() for o, y in zip(outs, ys, strict=True)))


def check_gradients(model: Any, xs: list[np.ndarray], ys: list[np.ndarray], n: int = 6, tol: float = 2e-2) -> None:
    got = grads_by_backprop(model, xs, ys)
    r = np.random.default_rng(1)
    for w, g in zip(model.trainable_weights, got, strict=True):
        for _ in range(n):
            i = tuple(int(r.integers(0, d)) for d in w.shape)
            old = float(w.value[i])
            h = 1e-2
            w.value[i] = old + h
            up = loss64(model, xs, ys)
            w.value[i] = old - h
            down = loss64(model, xs, ys)
            w.value[i] = old
            num = (up - down) / (2 * h)
            assert abs(num - g[i]) <= tol * max(1.0, abs(num)), (w.name, i, num, g[i])


def test_input_is_a_symbolic_tensor_with_the_batch_axis() -> None:
    x = keras.Input((10, 3), name="seq")
    assert x.shape == (None, 10, 3) and x.dtype == "float32"
    y = L.LSTM(4, return_sequences=True)(x)
    assert y.shape == (None, 10, 4)
    assert keras.Input((5,), batch_size=8).shape == (8, 5)


def test_residual_conv_block_trains_and_its_gradients_are_right() -> None:
    inp = keras.Input((9, 3))
    h = L.Conv1D(5, 3, padding="same", activation="tanh")(inp)
    h = L.Conv1D(3, 3, padding="same")(h)
    h = L.Add()([h, inp])
    out = L.Dense(1)(L.GlobalAveragePooling1D()(h))
    m = keras.Model(inp, out)
    x, y = data((4, 9, 3), (4, 1))
    check_gradients(m, [x], [y])
    m.compile(keras.optimizers.SGD(0.05), "mse")
    first = m.evaluate(x, y, verbose=0)
    m.fit(x, y, epochs=20, verbose=0)
    assert m.evaluate(x, y, verbose=0) < first


def test_shared_layer_weights_are_shared_and_gradients_add_up() -> None:
    a, b = keras.Input((5, 2)), keras.Input((5, 2))
    shared = L.LSTM(3)
    out = L.Dense(1)(L.Subtract()([shared(a), shared(b)]))
    m = keras.Model([a, b], out)
    assert len(m.weights) == 5  # LSTM's 3 + Dense's 2: one set for both calls
    xa, xb, y = data((3, 5, 2), (3, 5, 2), (3, 1))
    check_gradients(m, [xa, xb], [y])


def test_operators_slicing_and_ops_have_gradients() -> None:
    keras.utils.set_random_seed(0)
    inp = keras.Input((6, 4))
    h = L.Dense(4, activation="tanh")(inp)
    h = h + inp  # residual by operator
    h = h * 0.5 - ops.mean(h, axis=1, keepdims=True) / 2.0
    last = h[:, -1]
    pooled = ops.max(h, axis=1) + ops.sum(ops.relu(h) * 0.0 + ops.square(h), axis=1)
    out = L.Dense(2)(ops.concatenate([last, pooled, ops.sigmoid(last) * ops.tanh(pooled)], axis=-1))
    m = keras.Model(inp, out)
    x, y = data((3, 6, 4), (3, 2))
    check_gradients(m, [x], [y])


def test_merge_layers_values_and_gradients() -> None:
    a, b = keras.Input((4,)), keras.Input((4,))
    da_, db_ = L.Dense(4)(a), L.Dense(4)(b)
    parts = [
        L.Average()([da_, db_]), L.Maximum()([da_, db_]), L.Minimum()([da_, db_]), L.Multiply()([da_, db_]),
        L.Dot(axes=1)([da_, db_]), L.Dot(axes=1, normalize=True)([da_, db_]),
    ]  # fmt: skip
    out = L.Dense(1)(L.concatenate(parts))
    m = keras.Model([a, b], out)
    xa, xb, y = data((5, 4), (5, 4), (5, 1))
    check_gradients(m, [xa, xb], [y])
    p, q = xa[:2], xb[:2]
    np.testing.assert_allclose(L.Average()([p, q]), (p + q) / 2, rtol=1e-6)
    np.testing.assert_allclose(L.Maximum()([p, q]), np.maximum(p, q))
    cos = (p * q).sum(1) / np.linalg.norm(p, axis=1) / np.linalg.norm(q, axis=1)
    np.testing.assert_allclose(L.Dot(axes=1, normalize=True)([p, q])[:, 0], cos, rtol=1e-5)


def test_encoder_decoder_from_return_state_passes_gradients_into_the_encoder() -> None:
    enc_in, dec_in = keras.Input((5, 2)), keras.Input((4, 3))
    _, h, c = L.LSTM(3, return_state=True)(enc_in)
    dec = L.LSTM(3, return_sequences=True)(dec_in, initial_state=[h, c])
    out = L.Dense(2)(dec)
    m = keras.Model([enc_in, dec_in], out)
    xe, xd, y = data((2, 5, 2), (2, 4, 3), (2, 4, 2))
    check_gradients(m, [xe, xd], [y])
    enc = m.layers[2]
    assert isinstance(enc, L.LSTM) and np.abs(grads_by_backprop(m, [xe, xd], [y])[0]).sum() > 0


def test_two_outputs_losses_weights_and_log_names() -> None:
    inp = keras.Input((6, 2))
    h = L.GRU(4)(inp)
    reg = L.Dense(1, name="reg")(h)
    cls = L.Dense(3, activation="softmax", name="cls")(h)
    m = keras.Model(inp, {"reg": reg, "cls": cls})
    m.compile(keras.optimizers.SGD(0.05), loss={"reg": "mse", "cls": "categorical_crossentropy"},
              loss_weights={"reg": 1.0, "cls": 0.5}, metrics={"reg": ["mae"]})  # fmt: skip
    x, yr = data((8, 6, 2), (8, 1))
    yc = np.eye(3, dtype=np.float32)[np.arange(8) % 3]
    logs = m.train_on_batch(x, {"reg": yr, "cls": yc}, return_dict=True)
    assert set(logs) == {"loss", "reg_loss", "cls_loss", "reg_mae"}
    assert logs["loss"] == pytest.approx(logs["reg_loss"] + 0.5 * logs["cls_loss"], rel=1e-5)  # unweighted per output
    pred = m.predict(x, verbose=0)
    assert set(pred) == {"reg", "cls"} and pred["cls"].shape == (8, 3)
    hist = m.fit(x, [yr, yc], epochs=2, verbose=0, validation_split=0.25)
    assert "val_cls_loss" in hist.history


def test_nested_models_as_layers() -> None:
    i = keras.Input((6,))
    inner = keras.Model(i, L.Dense(3)(L.Dense(5, activation="relu")(i)), name="inner")
    o = keras.Input((6,))
    outer = keras.Model(o, L.Dense(1)(inner(o)))
    seq = keras.Sequential([keras.Input((6,)), inner, L.Dense(1)])
    x, y = data((4, 6), (4, 1))
    check_gradients(outer, [x], [y])
    check_gradients(seq, [x], [y])
    assert outer.count_params() == inner.count_params() + 4


def test_mask_flows_from_embedding_through_bidirectional() -> None:
    ids = keras.Input((7,), dtype="int32")
    e = L.Embedding(10, 3, mask_zero=True)(ids)
    h = L.Bidirectional(L.LSTM(2, return_sequences=True))(e)
    out = L.Dense(1)(L.GlobalAveragePooling1D()(h))
    m = keras.Model(ids, out)
    x = np.array([[1, 2, 3, 0, 0, 0, 0], [4, 0, 0, 0, 0, 0, 0], [5, 6, 7, 8, 9, 1, 2]], np.float32)
    # padding after the valid steps changes nothing: the mask reached the LSTMs and the pooling
    full = m.predict(x, verbose=0)
    assert np.isfinite(full).all()
    x2 = x.copy()
    x2[:2, 4:] = 0
    np.testing.assert_allclose(m.predict(x2, verbose=0), full, rtol=1e-6)


def test_errors_name_the_problem() -> None:
    a, b = keras.Input((4,)), keras.Input((4,))
    out = L.Dense(1)(L.Add()([L.Dense(4)(a), b]))
    with pytest.raises(ValueError, match="Graph disconnected"):
        keras.Model(a, out)
    with pytest.raises(ValueError, match=r"same shape.*\(None, 4\).*\(None, 3\)"):
        L.Add()([a, L.Dense(3)(b)])
    m = keras.Model({"a": a, "b": b}, out)
    with pytest.raises(ValueError, match=r"missing \['b'\]"):
        m.predict({"a": np.ones((2, 4))}, verbose=0)
    with pytest.raises(ValueError, match=r"unexpected \['c'\]"):
        m.predict({"a": np.ones((2, 4)), "b": np.ones((2, 4)), "c": np.ones((2, 4))}, verbose=0)
    two = keras.Model(a, [L.Dense(1, name="p")(a), L.Dense(1, name="q")(a)])
    with pytest.raises(ValueError, match=r"output\(s\) \['r'\].*\['p', 'q'\]"):
        two.compile("sgd", loss={"p": "mse", "r": "mse"})
    with pytest.raises(TypeError, match="control flow"):
        if L.Dense(2)(a):
            pass
    with pytest.raises(TypeError, match="seqcore.ops"):
        np.exp(a)
    with pytest.raises(ValueError, match="return_sequences=True"):
        L.LSTM(2)(L.LSTM(2)(keras.Input((5, 3))))


def test_predict_from_other_threads_during_fit_does_not_disturb_training() -> None:
    inp = keras.Input((12, 3))
    out = L.Dense(1)(L.LSTM(8)(L.Conv1D(4, 3, padding="same")(inp)))
    m = keras.Model(inp, out)
    x, y = data((32, 12, 3), (32, 1))
    keras.utils.set_random_seed(0)
    m.compile(keras.optimizers.SGD(0.01), "mse")
    w0 = m.get_weights()
    errors: list[BaseException] = []
    stop = threading.Event()
    done = [0]

    def predictor() -> None:
        try:
            while not stop.is_set():
                assert m.predict(x[:8], verbose=0).shape == (8, 1)
                done[0] += 1
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=predictor) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        hist = m.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert done[0] > 0
    # the same training alone gives the same weights: the predictions never touched the steps
    alone = keras.Model(inp, out)
    alone.set_weights(w0)
    alone.compile(keras.optimizers.SGD(0.01), "mse")
    hist2 = alone.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_allclose(hist.history["loss"], hist2.history["loss"], rtol=1e-6)


def test_ops_compute_eagerly_on_arrays() -> None:
    a, b = data((2, 3), (2, 3))
    np.testing.assert_allclose(ops.add(a, b), a + b)
    np.testing.assert_allclose(ops.matmul(a, b.T), a @ b.T, rtol=1e-6)
    np.testing.assert_allclose(ops.softmax(a).sum(-1), 1, rtol=1e-6)
    assert ops.mean(a, axis=1).shape == (2,)


def test_config_and_saving_round_trip(tmp_path: Any) -> None:
    enc_in, dec_in, static = keras.Input((5, 2), name="enc"), keras.Input((4, 3), name="dec"), keras.Input((3,))
    _, h, c = L.LSTM(3, return_state=True, name="encoder")(enc_in)
    dec = L.LSTM(3, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    shared = L.Dense(2, name="shared")
    side = shared(L.Dense(3, name="lift")(static))
    seq_out = shared(L.GlobalAveragePooling1D(name="gap")(dec))
    out = L.Dense(1, name="head")(L.Concatenate(name="cat")([seq_out, side]))
    m = keras.Model([enc_in, dec_in, static], {"y": out, "seq": L.Dense(1, name="seq")(dec)}, name="ed")
    xe, xd, xs, y, ys = data((6, 5, 2), (6, 4, 3), (6, 3), (6, 1), (6, 4, 1))
    clone = keras.Model.from_config(m.get_config())
    assert [lyr.name for lyr in clone.layers] == [lyr.name for lyr in m.layers]
    assert clone.count_params() == m.count_params()
    clone.set_weights(m.get_weights())
    for k in ("y", "seq"):
        np.testing.assert_array_equal(clone.predict([xe, xd, xs], verbose=0)[k], m.predict([xe, xd, xs], verbose=0)[k])
    m.compile(keras.optimizers.Adam(0.01), loss={"y": "mse", "seq": "mae"}, loss_weights={"seq": 0.5},
              metrics={"y": ["mae"]})  # fmt: skip
    m.fit([xe, xd, xs], {"y": y, "seq": ys}, epochs=2, verbose=0)
    m.save(tmp_path / "ed.seqcore")
    back = keras.load_model(tmp_path / "ed.seqcore")
    np.testing.assert_array_equal(back.predict([xe, xd, xs], verbose=0)["y"], m.predict([xe, xd, xs], verbose=0)["y"])
    a = m.train_on_batch([xe, xd, xs], {"y": y, "seq": ys}, return_dict=True)
    b = back.train_on_batch([xe, xd, xs], {"y": y, "seq": ys}, return_dict=True)
    assert a.keys() == b.keys() and a["loss"] == pytest.approx(b["loss"], rel=1e-6)  # optimizer state restored


def test_clone_model_has_the_architecture_and_new_weights() -> None:
    inp = keras.Input((5, 2))
    m = keras.Model(inp, L.Dense(1, name="out")(L.LSTM(3, name="rnn")(inp)))
    c = keras.models.clone_model(m)
    assert [lyr.name for lyr in c.layers] == [lyr.name for lyr in m.layers]
    assert [w.shape for w in c.weights] == [w.shape for w in m.weights]
    assert not all(np.array_equal(a, b) for a, b in zip(c.get_weights(), m.get_weights(), strict=True))
    s = keras.Sequential([keras.Input((4,)), L.Dense(2, name="d")])
    cs = keras.models.clone_model(s)
    assert cs.layers[0] is not s.layers[0] and cs.layers[0].name == "d" and cs.count_params() == 10


def test_tbptt_on_graphs_needs_a_chain() -> None:
    inp = keras.Input((8, 2))
    chain = keras.Model(inp, L.Dense(1)(L.LSTM(3, return_sequences=True)(inp)))
    chain.compile("sgd", "mse")
    x, y = data((4, 8, 2), (4, 8, 1))
    assert np.isfinite(chain.fit(x, y, tbptt_steps=4, verbose=0).history["loss"]).all()
    h = L.LSTM(3, return_sequences=True)(inp)
    branchy = keras.Model(inp, L.Dense(1)(L.Add()([h, L.Dense(3)(inp)])))
    branchy.compile("sgd", "mse")
    with pytest.raises(ValueError, match="tbptt_steps needs a chain"):
        branchy.fit(x, y, tbptt_steps=4, verbose=0)


def test_graphs_with_ops_save_and_load(tmp_path: Any) -> None:
    a = keras.Input((5, 4), name="a")
    x = L.Dense(4, name="d")(a)
    y = ops.softmax(2.0 - (x + a), axis=1)
    last = y[:, -1]  # getitem with a slice and an index
    z = ops.concatenate([ops.mean(y, axis=1), last, ops.max(x, axis=1)], axis=-1)
    t = ops.expand_dims(ops.sum(ops.transpose(y, (0, 2, 1)), axis=-1, keepdims=False), 1)
    m = keras.Model(a, [z, t], name="with_ops")
    m.compile("sgd", "mse")
    (xa,) = data((3, 5, 4))
    before = m.predict(xa, verbose=0)
    path = str(tmp_path / "m.seqcore")
    m.save(path)
    again = keras.models.load_model(path)
    for p, q in zip(before, again.predict(xa, verbose=0), strict=True):
        np.testing.assert_array_equal(p, q)
    assert [layer.name for layer in again._all_layers] == [layer.name for layer in m._all_layers]
    # the rebuilt ops carry their gradients: both models take the same training step
    ys = [np.zeros_like(before[0]), np.zeros_like(before[1])]
    m.train_on_batch(xa, ys)
    again.train_on_batch(xa, ys)
    np.testing.assert_allclose(again.get_layer("d").get_weights()[0], m.get_layer("d").get_weights()[0], atol=1e-6)
    text = m.summary(print_fn=lambda s: None)
    assert "(Softmax)" in text and "(GetItem)" in text and "(Op)" not in text


def test_an_op_on_a_weight_cannot_be_saved() -> None:
    class Scale(L.Layer):
        def build(self, input_shape: Any) -> None:
            self.s = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="s")

        def call(self, x: Any) -> Any:
            return x

    a = keras.Input((3,))
    layer = Scale()
    h = layer(a)
    m = keras.Model(a, ops.multiply(h, layer.s))
    with pytest.raises(TypeError, match=r"ops.multiply .* computes with a weight of another layer"):
        m.get_config()
