"""Streaming inference (``seqcore.streaming``, the Rust ``StreamPlan``): a stateful model called one
step at a time gives, step by step, what one call over the whole sequence gives, through the fast
path, and everything around it (reset, set_weights, training, get/set_states, other shapes) keeps
Keras's meaning."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import seqcore as keras
from seqcore import _seqcore
from seqcore.layers import GRU, LSTM, Dense, Dropout, SimpleRNN

L = keras.layers


def _pair(make: Any, b: int, f: int, head: bool = True) -> tuple[Any, Any]:
    """A stateful one-step model and the same layers, not stateful, over whole sequences."""
    keras.utils.set_random_seed(3)
    step = keras.Sequential(
        [keras.Input((1, f), batch_size=b), make(stateful=True), Dropout(0.3)]
        + ([Dense(3, activation="tanh"), L.Activation("relu"), Dense(2)] if head else [])
    )
    whole = keras.Sequential(
        [keras.Input((None, f)), make(stateful=False, return_sequences=True)]
        + ([Dense(3, activation="tanh"), L.Activation("relu"), Dense(2)] if head else [])
    )
    whole.set_weights(step.get_weights())
    return step, whole


CELLS = {
    "lstm": lambda **kw: LSTM(6, **kw),
    "lstm_linear": lambda **kw: LSTM(5, activation="relu", recurrent_activation="hard_sigmoid", **kw),
    "gru": lambda **kw: GRU(4, **kw),
    "gru_before": lambda **kw: GRU(4, reset_after=False, **kw),
    "simple_rnn": lambda **kw: SimpleRNN(7, **kw),
    "no_bias": lambda **kw: LSTM(3, use_bias=False, **kw),
}


@pytest.mark.parametrize("call", ["call", "predict_on_batch"])
@pytest.mark.parametrize("b", [1, 3])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_streaming_equals_the_whole_sequence_step_by_step(cell: str, b: int, call: str) -> None:
    f, t = 4, 9
    step, whole = _pair(CELLS[cell], b, f)
    x = np.random.default_rng(1).normal(size=(b, t, f)).astype(np.float32)
    want = whole.predict(x, verbose=0)
    run = step if call == "call" else step.predict_on_batch
    got = [np.asarray(run(np.ascontiguousarray(x[:, i : i + 1]))) for i in range(t)]
    assert step._stream is not None and step._stream.plan is not None  # the steps after the first streamed
    for i in range(t):
        np.testing.assert_allclose(got[i].reshape(b, -1), want[:, i], rtol=2e-5, atol=2e-6, err_msg=f"step {i}")


def test_stacked_recurrent_layers_stream() -> None:
    keras.utils.set_random_seed(0)
    mk = lambda st, seq: [LSTM(5, stateful=st, return_sequences=True), GRU(3, stateful=st, return_sequences=seq)]  # noqa: E731
    step = keras.Sequential([keras.Input((1, 2), batch_size=2), *mk(True, False), Dense(1)])
    whole = keras.Sequential([keras.Input((None, 2)), *mk(False, True), Dense(1)])
    whole.set_weights(step.get_weights())
    x = np.random.default_rng(2).normal(size=(2, 6, 2)).astype(np.float32)
    want = whole.predict(x, verbose=0)[:, :, 0]
    got = np.concatenate([step(np.ascontiguousarray(x[:, i : i + 1])) for i in range(6)], axis=1)
    assert step._stream.plan is not None
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


def test_the_fast_path_sees_reset_weights_and_training() -> None:
    step, _ = _pair(CELLS["lstm"], 2, 3)
    x = np.random.default_rng(4).normal(size=(2, 1, 3)).astype(np.float32)
    first = step(x)
    second = step(x)  # streamed, from the carried state
    assert not np.allclose(first, second)
    step.reset_states()
    np.testing.assert_allclose(step(x), first, rtol=1e-6, atol=1e-7)  # zeros again
    step.reset_states()
    step.set_weights([w * 0.5 for w in step.get_weights()])
    halved = step(x)
    ref, _ = _pair(CELLS["lstm"], 2, 3)
    ref.set_weights(step.get_weights())
    ref._stream = None
    np.testing.assert_allclose(halved, ref.predict_on_batch(x), rtol=1e-6, atol=1e-7)
    # Training in between (the optimizer updates the weights in place): the next step uses them.
    step.compile("sgd", "mse")
    step.reset_states()
    step.fit(x, np.ones((2, 2), np.float32), batch_size=2, epochs=2, verbose=0, shuffle=False)
    step.reset_states()
    ref.set_weights(step.get_weights())
    ref.reset_states()
    ref._stream = None
    np.testing.assert_allclose(step(x), ref.predict_on_batch(x), rtol=1e-6, atol=1e-7)


def test_get_and_set_states_serve_several_streams() -> None:
    step, whole = _pair(CELLS["gru"], 1, 3)
    xs = np.random.default_rng(5).normal(size=(2, 5, 1, 3)).astype(np.float32)  # two streams, 5 steps
    saved = [step.get_states() for _ in range(2)]  # zeros for each stream
    assert [s.shape for s in saved[0]] == [(1, 4)] and not saved[0][0].any()
    outs: list[list[np.ndarray]] = [[], []]
    for i in range(5):
        for s in (0, 1):  # interleave the streams on one model
            step.set_states(saved[s])
            outs[s].append(step(xs[s, i : i + 1].reshape(1, 1, 3)))
            saved[s] = step.get_states()
    for s in (0, 1):
        want = whole.predict(xs[s].reshape(1, 5, 3), verbose=0)[0]
        np.testing.assert_allclose(np.concatenate(outs[s]), want, rtol=2e-5, atol=2e-6)
    with pytest.raises(ValueError, match=r"set_states: the model's stateful layers carry 1 state arrays .*received 2"):
        step.set_states([np.zeros((1, 4))] * 2)
    with pytest.raises(ValueError, match=r"each state must have shape \(batch, units=4\)"):
        step.set_states([np.zeros((1, 5))])
    step.set_states(None)
    assert step.layers[0].states is None


def test_other_inputs_take_the_general_path_with_its_checks() -> None:
    step, _ = _pair(CELLS["simple_rnn"], 2, 3)
    x = np.zeros((2, 1, 3), np.float32)
    step(x)
    step(x)
    assert step._stream.plan is not None
    y64 = step(x.astype(np.float64))  # not float32: the general path converts
    assert y64.shape == (2, 2)
    with pytest.raises(ValueError, match=r"stateful layer carries the state of a batch of 2"):
        step(np.zeros((3, 1, 3), np.float32))
    with pytest.raises(ValueError, match=r"expected .*3|features|shape"):
        step(np.zeros((2, 1, 4), np.float32))
    y = step(x, training=True)  # training: the general path (dropout active)
    assert y.shape == (2, 2)


def test_models_that_cannot_stream_fall_back() -> None:
    m = keras.Sequential([keras.Input((1, 2), batch_size=1), LSTM(3), Dense(1)])  # not stateful
    x = np.ones((1, 1, 2), np.float32)
    a, b = m(x), m(x)
    assert m._stream is not None and m._stream.plan is None
    np.testing.assert_array_equal(a, b)
    conv = keras.Sequential([keras.Input((1, 2), batch_size=1), L.Conv1D(2, 1), LSTM(3, stateful=True)])
    conv(x)
    conv(x)
    assert conv._stream.plan is None


def test_a_plan_steps_aside_for_an_active_writer() -> None:
    step, _ = _pair(CELLS["lstm"], 1, 2, head=False)
    x = np.ones((1, 1, 2), np.float32)
    step(x)
    lock = step._weights_lock
    lock._waiting = 1  # an optimizer update waiting for the weights
    try:
        before = [s.copy() for s in step.layers[0].states]
        assert step._stream.plan.run(x, lock) is None
        np.testing.assert_array_equal(step.layers[0].states[0], before[0])  # nothing done
    finally:
        lock._waiting = 0
    assert step._stream.plan.run(x, lock) is not None


def test_plan_validates_what_it_is_given() -> None:
    with pytest.raises(ValueError, match=r"unknown op kind"):
        _seqcore.StreamPlan([("conv", None, 1, "linear", "linear")], 1, 1, [1, 1])
    with pytest.raises(ValueError, match=r"out_shape"):
        _seqcore.StreamPlan([], 1, 2, [1, 3])
    step, _ = _pair(CELLS["lstm"], 1, 2, head=False)
    step(np.ones((1, 1, 2), np.float32))
    with pytest.raises(ValueError, match=r"x must have shape \[1, 1, 2\]"):
        step._stream.plan.run(np.ones((1, 2, 2), np.float32))


def test_a_functional_chain_streams_and_a_graph_does_not() -> None:
    keras.utils.set_random_seed(6)
    inp = keras.Input((1, 3), batch_size=2)
    h = LSTM(5, stateful=True)(inp)
    model = keras.Model(inp, Dense(2)(Dense(4, activation="relu")(h)))
    whole_in = keras.Input((None, 3))
    whole = keras.Model(whole_in, Dense(2)(Dense(4, activation="relu")(LSTM(5, return_sequences=True)(whole_in))))
    whole.set_weights(model.get_weights())
    x = np.random.default_rng(7).normal(size=(2, 6, 3)).astype(np.float32)
    got = [model(np.ascontiguousarray(x[:, i : i + 1])) for i in range(6)]
    assert model._stream.plan is not None
    want = whole.predict(x, verbose=0)
    for i in range(6):
        np.testing.assert_allclose(got[i], want[:, i], rtol=2e-5, atol=2e-6)
    # A residual is not a chain: the general path, every call.
    r_in = keras.Input((1, 3), batch_size=1)
    r = LSTM(3, stateful=True, return_sequences=True)(r_in)
    graph = keras.Model(r_in, keras.layers.Add()([r, r_in]))
    one = np.ones((1, 1, 3), np.float32)
    graph(one)
    graph(one)
    assert graph._stream.plan is None
