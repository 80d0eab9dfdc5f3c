"""Truncated backpropagation through time: ``Sequential.fit(..., tbptt_steps=k)``.

Each batch is cut along time into chunks of k steps; the recurrent state is carried from chunk to
chunk without gradient. Checked against float64 NumPy references of the truncated gradient (per-step
targets: one update per chunk; one target per sequence: the prefix only advances the state), against
a stateful model trained chunk by chunk, and against plain fit (k >= T is bit-identical); the
recurrent tape is measured to hold one chunk.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import seqcore as keras
from seqcore import reference_rnn
from seqcore.layers import recurrent

L = keras.layers
F32 = np.float32


def data(b: int = 4, t: int = 7, f: int = 2, seed: int = 0, out: int = 1) -> tuple[np.ndarray, np.ndarray]:
    r = np.random.default_rng(seed)
    x = r.normal(size=(b, t, f)).astype(F32)
    return x, r.normal(size=(b, t, out)).astype(F32)


def lstm_model(t: int, f: int, h: int, seq: bool = True, seed: int = 3, **kw: Any) -> keras.Sequential:
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((t, f)), L.LSTM(h, return_sequences=seq, **kw), L.Dense(1)])


# ----- float64 references ----------------------------------------------------------------------
def _f64(ws: list[np.ndarray]) -> list[np.ndarray]:
    return [w.astype(np.float64) for w in ws]


def _dense_head(outputs: np.ndarray, dk: np.ndarray, db: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    """mse(outputs @ dk + db, y): (d outputs, d kernel, d bias)."""
    pred = outputs @ dk + db
    dpred = 2.0 * (pred - y) / pred.size
    flat = outputs.reshape(-1, outputs.shape[-1])
    return dpred @ dk.T, flat.T @ dpred.reshape(-1, dk.shape[1]), dpred.reshape(-1, dk.shape[1]).sum(0)


def reference_per_step(x: np.ndarray, y: np.ndarray, ws: list[np.ndarray], k: int, lr: float) -> list[np.ndarray]:
    """Truncated BPTT with per-step targets, SGD: per chunk, forward from the carried (constant)
    state, gradient of that chunk's mse, update; the next chunk starts from the state the forward
    reached (with the weights before the update)."""
    kern, rk, bias, dk, db = _f64(ws)
    b, t, _ = x.shape
    hid = rk.shape[0]
    h, c = np.zeros((b, hid)), np.zeros((b, hid))
    for a in range(0, t, k):
        xc, yc = x[:, a : a + k].astype(np.float64), y[:, a : a + k].astype(np.float64)
        outputs, h_next, c_next = reference_rnn.lstm_forward(xc, kern, rk, bias, h0=h, c0=c)
        d_out, g_dk, g_db = _dense_head(outputs, dk, db, yc)
        g = reference_rnn.lstm_backward(xc, kern, rk, bias, h, c, None, "tanh", "sigmoid", False, d_out)
        kern, rk, bias = kern - lr * g["dkernel"], rk - lr * g["drecurrent_kernel"], bias - lr * g["dbias"]
        dk, db = dk - lr * g_dk, db - lr * g_db
        h, c = h_next, c_next
    return [kern, rk, bias, dk, db]


def reference_seq_to_one(x: np.ndarray, y: np.ndarray, ws: list[np.ndarray], k: int, lr: float) -> list[np.ndarray]:
    """One target per sequence: the chunks before the last only advance the state; the last chunk
    is one SGD step whose gradient stops at its initial state."""
    kern, rk, bias, dk, db = _f64(ws)
    t = x.shape[1]
    last = ((t - 1) // k) * k
    _, h, c = reference_rnn.lstm_forward(x[:, :last].astype(np.float64), kern, rk, bias)
    xc = x[:, last:].astype(np.float64)
    outputs, _, _ = reference_rnn.lstm_forward(xc, kern, rk, bias, h0=h, c0=c)
    d_last, g_dk, g_db = _dense_head(outputs[:, -1], dk, db, y.astype(np.float64))
    d_out = np.zeros_like(outputs)
    d_out[:, -1] = d_last
    g = reference_rnn.lstm_backward(xc, kern, rk, bias, h, c, None, "tanh", "sigmoid", False, d_out)
    return [kern - lr * g["dkernel"], rk - lr * g["drecurrent_kernel"], bias - lr * g["dbias"],
            dk - lr * g_dk, db - lr * g_db]  # fmt: skip


def assert_weights_close(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6, err_msg=f"weight {i}")


# ----- the truncated gradient ----------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_per_step_targets_train_each_chunk_with_the_truncated_gradient(k: int) -> None:
    x, y = data(t=7)
    m = lstm_model(7, 2, 3)
    w0 = m.get_weights()
    m.compile(keras.optimizers.SGD(0.5), "mse")
    m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, tbptt_steps=k)
    assert m.optimizer.iterations == -(-7 // k)  # one update per chunk
    want = reference_per_step(x, y, w0, k, 0.5)
    assert_weights_close(m.get_weights(), want)
    # The reference is sensitive to what is tested: full BPTT (one chunk) lands elsewhere.
    full = reference_per_step(x, y, w0, 7, 0.5)
    assert not all(np.allclose(a, b, rtol=2e-4, atol=2e-6) for a, b in zip(want, full, strict=True))


@pytest.mark.parametrize("k", [2, 3, 4])
def test_one_target_per_sequence_trains_only_the_last_chunk(k: int) -> None:
    x, _ = data(t=8)
    y = np.random.default_rng(5).normal(size=(4, 1)).astype(F32)
    m = lstm_model(8, 2, 3, seq=False)
    w0 = m.get_weights()
    m.compile(keras.optimizers.SGD(0.5), "mse")
    m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, tbptt_steps=k)
    assert m.optimizer.iterations == 1
    assert_weights_close(m.get_weights(), reference_seq_to_one(x, y, w0, k, 0.5))


def test_equals_a_stateful_model_trained_chunk_by_chunk() -> None:
    # The recipe Keras users write by hand: stateful=True, consecutive chunks, reset per batch.
    x, y = data(b=4, t=9)
    m = lstm_model(9, 2, 3)
    chunked = keras.Sequential([L.LSTM(3, return_sequences=True, stateful=True, batch_input_shape=(4, 3, 2)),
                                L.Dense(1)])  # fmt: skip
    chunked.set_weights(m.get_weights())
    m.compile(keras.optimizers.Adam(0.05), "mse")
    chunked.compile(keras.optimizers.Adam(0.05), "mse")
    h = m.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, tbptt_steps=3)
    for _ in range(2):
        losses = [chunked.train_on_batch(x[:, a : a + 3], y[:, a : a + 3]) for a in (0, 3, 6)]
        chunked.reset_states()
    for a, b in zip(m.get_weights(), chunked.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert h.history["loss"][-1] == pytest.approx(np.mean(losses), rel=1e-12)


# ----- the carried state ----------------------------------------------------------------------
def test_k_at_least_t_is_bit_identical_to_plain_fit() -> None:
    x, y = data(b=12, t=6)

    def run(**kw: Any) -> tuple[list[np.ndarray], dict[str, list[float]]]:
        keras.utils.set_random_seed(11)
        m = keras.Sequential([keras.Input((6, 2)), L.Dropout(0.2), L.GRU(4, return_sequences=True, dropout=0.1),
                              L.LSTM(3, return_sequences=True), L.Dense(1)])  # fmt: skip
        m.compile("adam", "mse", metrics=["mae"])
        h = m.fit(x, y, batch_size=5, epochs=2, validation_split=0.25, verbose=0, **kw)
        return m.get_weights(), h.history

    w_plain, h_plain = run()
    for k in (6, 100):
        w, h = run(tbptt_steps=k)
        assert h == h_plain
        for a, b in zip(w, w_plain, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seq", [True, False])
def test_chunked_forward_carries_the_state_exactly(seq: bool) -> None:
    # With a zero learning rate nothing changes between chunks, so the chunks' losses and metrics
    # must be those of the whole sequences: any lost or wrong state would show. Masked samples end
    # inside, before and at chunk boundaries (lengths 9, 6, 4, 1, 0 with k=3).
    r = np.random.default_rng(2)
    lengths = np.array([9, 6, 4, 1, 0])
    x = r.normal(size=(5, 9, 2)).astype(F32)
    x[np.arange(9)[None, :] >= lengths[:, None]] = 0.0
    y = r.normal(size=(5, 9, 1) if seq else (5, 1)).astype(F32)
    keras.utils.set_random_seed(4)
    m = keras.Sequential([keras.Input((9, 2)), L.Masking(0.0), L.GRU(3, return_sequences=True),
                          L.LSTM(4, return_sequences=seq), L.Dense(1)])  # fmt: skip
    m.compile(keras.optimizers.SGD(0.0), "mse", metrics=["mae"])
    h = m.fit(x, y, batch_size=5, epochs=1, verbose=0, tbptt_steps=3)
    whole = m.evaluate(x, y, batch_size=5, return_dict=True, verbose=0)
    assert h.history["loss"][0] == pytest.approx(whole["loss"], rel=1e-6)
    assert h.history["mae"][0] == pytest.approx(whole["mae"], rel=1e-6)


def test_state_resets_per_batch_unless_stateful() -> None:
    x, y = data(b=8, t=6)
    plain = lstm_model(6, 2, 3)
    plain.compile(keras.optimizers.SGD(0.0), "mse")
    h = plain.fit(x, y, batch_size=4, shuffle=False, verbose=0, tbptt_steps=2)
    assert h.history["loss"][0] == pytest.approx(plain.evaluate(x, y, batch_size=4, verbose=0), rel=1e-6)
    # stateful: the second batch starts where the first one ended, with or without tbptt_steps
    stateful = keras.Sequential([L.LSTM(3, return_sequences=True, stateful=True, batch_input_shape=(4, 6, 2)),
                                 L.Dense(1)])  # fmt: skip
    stateful.set_weights(plain.get_weights())
    stateful.compile(keras.optimizers.SGD(0.0), "mse")
    with_tbptt = stateful.fit(x, y, batch_size=4, shuffle=False, verbose=0, tbptt_steps=2).history["loss"][0]
    states = [s.copy() for s in stateful.layers[0].states]
    stateful.reset_states()
    without = stateful.fit(x, y, batch_size=4, shuffle=False, verbose=0).history["loss"][0]
    assert with_tbptt == pytest.approx(without, rel=1e-6) and with_tbptt != pytest.approx(h.history["loss"][0])
    for a, b in zip(states, stateful.layers[0].states, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_generators_and_per_step_sample_weights() -> None:
    x, y = data(b=6, t=6)
    sw = np.random.default_rng(9).random((6, 6)).astype(F32)
    m = lstm_model(6, 2, 3)
    m.compile(keras.optimizers.SGD(0.0), "mse")

    class Batches(keras.utils.Sequence):
        def __len__(self) -> int:
            return 2

        def __getitem__(self, i: int) -> tuple[np.ndarray, ...]:
            return x[3 * i : 3 * i + 3], y[3 * i : 3 * i + 3], sw[3 * i : 3 * i + 3]

    h = m.fit(Batches(), shuffle=False, verbose=0, tbptt_steps=4)
    # Step-weighted chunk means of sum(loss * weight) / (batch * steps) add up to the whole mean.
    assert h.history["loss"][0] == pytest.approx(m.evaluate(x, y, sample_weight=sw, batch_size=3, verbose=0), 1e-6)


# ----- memory: the tape holds one chunk -------------------------------------------------------
def test_recurrent_tapes_hold_one_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[tuple[bool, int, int]] = []  # (training, steps, bytes saved for backward)
    original = recurrent.LSTM._run

    def spy(self: Any, x: np.ndarray, training: bool, init: Any, mask: Any, masks: Any, continued: Any) -> Any:
        res = original(self, x, training, init, mask, masks, continued)
        saved = sum(a.nbytes for a in res.tape.saved) + res.tape.outputs.nbytes if res.tape is not None else 0
        runs.append((training, x.shape[1], saved))
        return res

    monkeypatch.setattr(recurrent.LSTM, "_run", spy)
    x, y = data(b=4, t=24)

    def fit(seq: bool, **kw: Any) -> list[tuple[bool, int, int]]:
        runs.clear()
        m = lstm_model(24, 2, 8, seq=seq)
        m.compile("sgd", "mse")
        m.fit(x, y if seq else y[:, -1], batch_size=4, epochs=1, verbose=0, **kw)
        return list(runs)

    full = fit(True)
    assert [(tr, t) for tr, t, _ in full] == [(True, 24)]
    chunked = fit(True, tbptt_steps=4)
    assert [(tr, t) for tr, t, _ in chunked] == [(True, 4)] * 6
    assert max(s for _, _, s in chunked) * 6 == full[0][2]  # the tape scales with k: 4/24 of it
    seq_to_one = fit(False, tbptt_steps=5)
    assert [(tr, t) for tr, t, _ in seq_to_one] == [(False, 5)] * 4 + [(True, 4)]
    assert [s for tr, _, s in seq_to_one if not tr] == [0] * 4  # state-advancing chunks keep nothing


# ----- refusals -------------------------------------------------------------------------------
def compiled(*layers: Any) -> keras.Sequential:
    m = keras.Sequential([keras.Input((6, 2)), *layers], name="m")
    m.compile("sgd", "mse")
    return m


X6 = np.zeros((4, 6, 2), F32)
Y_STEP, Y_ONE = np.zeros((4, 6, 1), F32), np.zeros((4, 1), F32)
CASES = [
    pytest.param(lambda: compiled(L.LSTM(2, return_sequences=True), L.Dense(1)), 0, Y_STEP,
                 ["m.fit", "tbptt_steps must be an int >= 1", "tbptt_steps=0"], id="zero"),
    pytest.param(lambda: compiled(L.LSTM(2, return_sequences=True), L.Dense(1)), 2.0, Y_STEP,
                 ["tbptt_steps=2.0"], id="float"),
    pytest.param(lambda: compiled(L.LSTM(2, return_sequences=True), L.Dense(1)), True, Y_STEP,
                 ["tbptt_steps=True"], id="bool"),
    pytest.param(lambda: compiled(L.Dense(3), L.Dense(1)), 2, Y_STEP,
                 ["no LSTM or GRU", "no state to carry"], id="no-rnn"),
    pytest.param(lambda: compiled(L.Conv1D(3, 2, padding="causal", name="c"), L.LSTM(2), L.Dense(1)), 2, Y_ONE,
                 ["layer 0 'c' (Conv1D)", "previous chunk", "causal"], id="causal-conv-before"),
    pytest.param(lambda: compiled(L.MaxPooling1D(2, name="p"), L.LSTM(2), L.Dense(1)), 2, Y_ONE,
                 ["'p' (MaxPooling1D)", "pools neighbouring steps"], id="pooling-before"),
    pytest.param(lambda: compiled(L.LSTM(2, return_sequences=True), L.GlobalAveragePooling1D(name="g"), L.Dense(1)),
                 2, Y_ONE, ["'g' (GlobalAveragePooling1D)", "after", "all time steps"], id="global-pool-after"),
    pytest.param(lambda: compiled(L.LSTM(2, return_sequences=True), L.Flatten(name="f"), L.Dense(1)), 2, Y_ONE,
                 ["'f' (Flatten)", "time axis"], id="flatten-after-sequences"),
    pytest.param(lambda: compiled(L.Bidirectional(L.LSTM(2), name="bi"), L.Dense(1)), 2, Y_ONE,
                 ["'bi'", "Bidirectional", "end of the sequence"], id="bidirectional"),
    pytest.param(lambda: compiled(L.GRU(2, go_backwards=True, name="g"), L.Dense(1)), 2, Y_ONE,
                 ["'g' (GRU)", "go_backwards=True", "x[:, ::-1]"], id="go-backwards"),
    pytest.param(lambda: compiled(keras.Sequential([L.Dense(2), L.LSTM(2, return_sequences=True, name="inner")]),
                                  L.Dense(1)), 2, Y_STEP,
                 ["no LSTM or GRU at its top level"], id="rnn-only-nested"),
    pytest.param(lambda: compiled(keras.Sequential([L.Conv1D(2, 2, padding="same", name="cc")], name="stack"),
                                  L.LSTM(2), L.Dense(1)), 2, Y_ONE,
                 ["'stack' (Sequential)", "holds 'cc' (Conv1D)"], id="conv-in-nested-model"),
    pytest.param(lambda: compiled(L.LSTM(2, return_sequences=True), L.Dense(1)), 2, Y_ONE,
                 ["y is cut along time", "x has 6 steps", "(4, 1)"], id="per-step-output-without-time-axis-in-y"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "k", "y", "parts"), CASES)
def test_refusals(make: Any, k: Any, y: np.ndarray, parts: list[str]) -> None:
    m = make()
    before = m.get_weights()
    with pytest.raises(ValueError) as e:
        m.fit(X6, y, batch_size=4, verbose=0, tbptt_steps=k)
    missing = [p for p in parts if p not in str(e.value)]
    assert not missing, f"{missing} not in: {e.value}"
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights(), strict=True))


def test_accepted_layouts() -> None:
    # Time-local layers around the recurrent ones, anything after a return_sequences=False layer,
    # TimeDistributed over sub-sequences (CNN-LSTM), and nested per-step models.
    x4 = np.random.default_rng(0).normal(size=(4, 6, 5, 1)).astype(F32)
    models = [
        (compiled(L.Masking(), L.Dense(3), L.Dropout(0.1), L.GRU(2, return_sequences=True), L.Activation("tanh"),
                  keras.Sequential([L.Dense(2), L.Activation("relu")]), L.TimeDistributed(L.Dense(1))),
         X6, Y_STEP),
        (compiled(L.LSTM(2), L.Reshape((2, 1)), L.Flatten(), L.Dense(1)), X6, Y_ONE),
        (keras.Sequential([keras.Input((6, 5, 1)), L.TimeDistributed(L.Conv1D(2, 2)), L.TimeDistributed(L.Flatten()),
                           L.LSTM(3), L.Dense(1)]), x4, Y_ONE),
    ]  # fmt: skip
    for m, x, y in models:
        m.compile("sgd", "mse")
        h = m.fit(x, y, batch_size=2, epochs=1, verbose=0, tbptt_steps=4)
        assert np.isfinite(h.history["loss"][0])
