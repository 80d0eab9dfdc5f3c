"""Checkpointed backpropagation through time (``seqcore._bptt``, ``RematScope``, the training
memory limit).

The central property: for every recurrent layer and option, a checkpointed tape gives gradients
bit-identical to a kept tape (the same kernel calls on the same inputs), and both agree with one
whole-sequence kernel call to float32 rounding. Windows are made tiny (``WINDOW`` of a few steps)
so that small shapes cross many window boundaries, odd ones included.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import seqcore
import seqcore as keras
from hypothesis import given, settings
from hypothesis import strategies as st
from seqcore import _bptt, config, remat
from seqcore.layers import GRU, LSTM, Bidirectional, SimpleRNN

CELLS = {"lstm": LSTM, "gru": GRU, "simple_rnn": SimpleRNN}
FULL = remat.RematMode("full", 1024, ())


@contextlib.contextmanager
def window(w: int) -> Iterator[None]:
    old = _bptt.WINDOW
    _bptt.WINDOW = w
    try:
        yield
    finally:
        _bptt.WINDOW = old


@pytest.fixture(autouse=True)
def _restore_limit() -> Iterator[None]:
    yield
    config.set_training_memory_limit(None)


def _layer(cell: str, units: int, seed: int, **kw: Any) -> Any:
    layer = CELLS[cell](units, seed=seed, **kw)
    return layer


def _run(
    layer: Any,
    x: np.ndarray,
    *,
    mode: Any,
    lengths: Any = None,
    init: Any = None,
    seed: int = 0,
    d_states: bool = False,
) -> tuple[Any, ...]:
    """One training forward and backward with the given remat mode; returns the outputs, dx, the
    weight gradients, the initial-state gradients and the tape kind."""
    layer._remat_mode = mode
    layer._gen = np.random.default_rng(seed)  # the same dropout masks in every run
    for w in layer.weights:
        w.grad = None
    with contextlib.redirect_stderr(io.StringIO()):
        y, ctx = layer.forward(x, training=True, initial_state=init, lengths=lengths)
    kind = type(ctx.tape).__name__ if not isinstance(ctx.tape, _bptt.Windowed) else ctx.tape.mode
    outs = y if isinstance(y, list) else [y]
    rng = np.random.default_rng(99)
    dys = [rng.standard_normal(o.shape).astype(np.float32) for o in outs]
    if not d_states and len(dys) > 1:
        dys = [dys[0]] + [None] * (len(dys) - 1)
    dx = layer.backward(ctx, dys if isinstance(y, list) else dys[0])
    gi = (ctx.kwarg_grads or {}).get("initial_state")
    return outs, dx, [w.grad.copy() for w in layer.weights], gi, kind


def _assert_identical(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    for oa, ob in zip(a[0], b[0], strict=True):
        np.testing.assert_array_equal(oa, ob)
    np.testing.assert_array_equal(a[1], b[1])
    for ga, gb in zip(a[2], b[2], strict=True):
        np.testing.assert_array_equal(ga, gb)
    if a[3] is not None:
        for ga, gb in zip(a[3], b[3], strict=True):
            np.testing.assert_array_equal(ga, gb)


def _assert_close(a: tuple[Any, ...], b: tuple[Any, ...]) -> None:
    for oa, ob in zip(a[0], b[0], strict=True):
        np.testing.assert_allclose(oa, ob, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-4, atol=1e-5)
    # Window sums add the same float32 terms in another order, so the error scales with the
    # largest term, not with each (possibly cancelled) sum. With recurrent dropout scaling the
    # recurrent kernel by 1/(1-rate), backward through 29 steps can grow the terms to ~1e4; the
    # largest gradient entry of the layer (the bias gradient sums the same terms) bounds them.
    scale = max((float(np.abs(g).max()) for g in b[2] if g.size), default=0.0)
    for ga, gb in zip(a[2], b[2], strict=True):
        np.testing.assert_allclose(ga, gb, rtol=1e-4, atol=2e-5 + 2e-6 * scale)


@settings(max_examples=40, deadline=None)
@given(
    cell=st.sampled_from(sorted(CELLS)),
    b=st.integers(0, 4),
    t=st.integers(1, 29),
    f=st.sampled_from([1, 3]),
    units=st.sampled_from([1, 4, 5]),
    w=st.integers(1, 6),
    seq=st.booleans(),
    back=st.booleans(),
    state=st.booleans(),
    masked=st.booleans(),
    init=st.booleans(),
    drop=st.sampled_from([(0.0, 0.0), (0.3, 0.0), (0.2, 0.4)]),
    threads=st.sampled_from([1, 2]),
    data=st.data(),
)
def test_checkpointed_gradients_are_bit_identical_to_the_kept_tape(
    cell: str,
    b: int,
    t: int,
    f: int,
    units: int,
    w: int,
    seq: bool,
    back: bool,
    state: bool,
    masked: bool,
    init: bool,
    drop: tuple[float, float],
    threads: int,
    data: Any,
) -> None:
    seqcore.set_num_threads(threads)
    layer = _layer(
        cell, units, 5, return_sequences=seq, go_backwards=back, return_state=state, dropout=drop[0],
        recurrent_dropout=drop[1],
    )  # fmt: skip
    rng = np.random.default_rng(t * 31 + b)
    x = rng.standard_normal((b, t, f)).astype(np.float32)
    layer(x[:1] if b else np.zeros((1, t, f), np.float32))  # build
    lengths = None
    if masked:
        if data.draw(st.booleans()):
            lengths = np.array(data.draw(st.lists(st.integers(0, t), min_size=b, max_size=b)), dtype=np.int64)
        else:  # any pattern: pre-padding, gaps that cross window boundaries, empty rows
            bits = data.draw(st.lists(st.booleans(), min_size=b * t, max_size=b * t))
            lengths = np.array(bits, dtype=bool).reshape(b, t)
    h0 = None
    if init:
        n = 2 if cell == "lstm" else 1
        h0 = [rng.standard_normal((b, units)).astype(np.float32) for _ in range(n)]
    with window(w):
        kept = _run(layer, x, mode=None, lengths=lengths, init=h0, d_states=state)
        ckpt = _run(layer, x, mode=FULL, lengths=lengths, init=h0, d_states=state)
    with window(10**9):
        whole = _run(layer, x, mode=None, lengths=lengths, init=h0, d_states=state)
    windowed = t > w
    assert kept[4] == ("full" if windowed else "RecurrentTape")
    assert ckpt[4] == ("checkpoint" if windowed else "RecurrentTape")
    _assert_identical(ckpt, kept)
    _assert_close(kept, whole)
    if init:
        for ga, gb in zip(kept[3], whole[3], strict=True):
            np.testing.assert_allclose(ga, gb, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("limit_states", [10, 12, 20])
def test_multi_level_schedule_is_bit_identical_and_within_its_state_bound(limit_states: int) -> None:
    """A budget too small for a state at every window recurses (2 or 3 levels); gradients do not
    change, and no more states are ever held than the schedule promises."""
    b, t, f, units, w = 2, 61, 3, 4, 2  # 31 windows
    layer = _layer("lstm", units, 1, return_sequences=True)
    x = np.random.default_rng(0).standard_normal((b, t, f)).astype(np.float32)
    layer(x)
    per_step = layer._tape_units * units * 4
    state_bytes, window_bytes = 2 * b * units * 4, b * w * per_step
    config.set_training_memory_limit(window_bytes + limit_states * state_bytes)
    with window(w):
        sizes = _bptt.schedule(31, state_bytes, window_bytes, config.get_training_memory_limit(), "t")
        assert len(sizes) >= 2 and sizes[-1] == 1
        levels, fan = len(sizes), sizes[-2]
        assert levels * fan <= limit_states
        tapes: list[Any] = []
        original = _bptt.Driver.backward

        def spy(self: Any, tape: Any, *args: Any) -> Any:
            tapes.append(tape)
            return original(self, tape, *args)

        _bptt.Driver.backward = spy  # type: ignore[method-assign]
        try:
            ckpt = _run(layer, x, mode=None)  # over the limit: checkpointed automatically
        finally:
            _bptt.Driver.backward = original  # type: ignore[method-assign]
        config.set_training_memory_limit(None)
        kept = _run(layer, x, mode=None)
    assert ckpt[4] == "checkpoint" and kept[4] == "full"
    (tape,) = tapes
    assert tape.held == 0 and 0 < tape.peak_held <= levels * fan
    _assert_identical(ckpt, kept)


def test_schedule_levels_cover_the_windows() -> None:
    for n in (1, 2, 7, 31, 100, 1954):
        for room in (4, 6, 10, 40, 5000):
            try:
                sizes = _bptt.schedule(n, 10, 100, 100 + room * 10, "t")
            except ValueError:
                continue
            if sizes == [1]:
                assert n <= room
                continue
            fan = sizes[-2]
            assert sizes[0] * fan >= n, (n, room, sizes)  # the top level's segments cover the windows
            assert len(sizes) * fan <= room
    with pytest.raises(ValueError, match=r"training memory limit .*set_training_memory_limit"):
        _bptt.schedule(1000, 10, 100, 100 + 5 * 10, "LSTM 'x'")


def test_checkpointed_tape_holds_states_not_steps() -> None:
    b, t, f, units = 4, 2000, 3, 16
    layer = _layer("lstm", units, 0)
    x = np.random.default_rng(1).standard_normal((b, t, f)).astype(np.float32)
    layer(x[:1])
    with window(100):
        layer._remat_mode = None
        _, ctx_kept = layer.forward(x, training=True)
        layer._remat_mode = FULL
        _, ctx_ck = layer.forward(x, training=True)
    kept, ck = ctx_kept.tape.nbytes(), ctx_ck.tape.nbytes()
    assert kept == b * t * layer._tape_units * units * 4
    assert ck == 19 * 2 * b * units * 4  # 20 windows: (h, c) at each start but the first (zeros, not stored)
    assert ck < kept / 100


def test_memory_limit_checkpoints_automatically_and_says_so_once(capsys: Any) -> None:
    layer = LSTM(8, return_sequences=True)
    x = np.random.default_rng(0).standard_normal((2, 50, 3)).astype(np.float32)
    layer(x)
    config.set_training_memory_limit("5KiB")
    assert config.get_training_memory_limit() == 5120
    with window(10):
        for _ in range(2):
            _, ctx = layer.forward(x, training=True)
            assert ctx.tape.mode == "checkpoint"
            layer.backward(ctx, np.ones((2, 50, 8), np.float32))
    err = capsys.readouterr().err
    assert err.count("checkpointing backpropagation through time") == 1
    assert "LSTM" in err and "training memory limit (5.0 KiB)" in err and "every 10 steps" in err
    config.set_training_memory_limit(None)
    with window(10):
        _, ctx = layer.forward(x, training=True)
    assert ctx.tape.mode == "full"


@pytest.mark.parametrize(
    ("value", "want"), [(1000, 1000), ("2GiB", 2 * 2**30), ("1.5 GB", 1_500_000_000), ("512mib", 512 * 2**20)]
)
def test_memory_limit_parsing(value: Any, want: int) -> None:
    config.set_training_memory_limit(value)
    assert config.get_training_memory_limit() == want


@pytest.mark.parametrize("bad", ["lots", "2 parsecs", -1, 0, float("nan"), True, [1]])
def test_memory_limit_refuses_nonsense(bad: Any) -> None:
    with pytest.raises((ValueError, TypeError), match="set_training_memory_limit"):
        config.set_training_memory_limit(bad)


def test_default_limit_is_half_the_available_memory() -> None:
    config.set_training_memory_limit(None)
    config.refresh_default_limit()
    got = config.get_training_memory_limit()
    assert abs(got - config.available_memory() // 2) < 2**28  # free memory moves a little


def test_remat_scope_modes_select_layers_as_keras() -> None:
    with pytest.raises(ValueError, match="Invalid mode|invalid mode"):
        keras.RematScope("everything")
    with keras.RematScope("full"):
        a = LSTM(4)
        with keras.RematScope(None):
            off = LSTM(4)
        with keras.RematScope("list_of_layers", layer_names=["picked"]):
            picked, other = GRU(4, name="picked"), GRU(4, name="other")
        with keras.RematScope("larger_than", output_size_threshold=100):
            small, big = SimpleRNN(4, return_sequences=True), SimpleRNN(4, return_sequences=True)
    outside = LSTM(4)
    x = np.zeros((1, 30, 2), np.float32)
    assert a._remat_mode.mode == "full" and off._remat_mode.mode is None and outside._remat_mode is None
    with window(5):
        for layer, want in ((a, "checkpoint"), (off, "full"), (picked, "checkpoint"), (other, "full")):
            layer(x)
            assert layer.forward(x, training=True)[1].tape.mode == want, layer.name
        # output (1, T, 4): 4*T elements, over 100 from T = 26
        big(np.zeros((1, 30, 2), np.float32))
        small(np.zeros((1, 20, 2), np.float32))
        assert big.forward(np.zeros((1, 30, 2), np.float32), training=True)[1].tape.mode == "checkpoint"
        assert small.forward(np.zeros((1, 20, 2), np.float32), training=True)[1].tape.mode == "full"


def test_bidirectional_in_a_scope_checkpoints_both_directions() -> None:
    x = np.random.default_rng(2).standard_normal((3, 37, 2)).astype(np.float32)
    lengths = np.array([37, 12, 1])

    def grads(scope: bool) -> list[np.ndarray]:
        keras.utils.set_random_seed(4)
        with keras.RematScope("full") if scope else contextlib.nullcontext():
            layer = Bidirectional(LSTM(5, return_sequences=True))
        layer(x)
        for w in layer.weights:
            w.grad = None
        with window(4):
            y, ctx = layer.forward(x, training=True, lengths=lengths)
            for sub in (layer.forward_layer, layer.backward_layer):
                assert (sub._remat_mode is not None) == scope
            layer.backward(ctx, np.ones_like(y))
        return [y] + [w.grad.copy() for w in layer.weights]

    for a, b in zip(grads(True), grads(False), strict=True):
        np.testing.assert_array_equal(a, b)


def _fit_weights(scope: bool, **fit_kw: Any) -> list[np.ndarray]:
    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 45, 3)).astype(np.float32)
    y = rng.standard_normal((8, 45, 1)).astype(np.float32)
    with keras.RematScope("full") if scope else contextlib.nullcontext():
        rnn = LSTM(6, return_sequences=True, dropout=0.1, recurrent_dropout=0.1, seed=3)
    model = keras.Sequential([keras.Input((45, 3)), rnn, keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.01, gradient_accumulation_steps=2), "mse")
    modes: list[str] = []
    original = _bptt.Driver.backward

    def spy(self: Any, tape: Any, *args: Any) -> Any:
        modes.append(tape.mode)
        return original(self, tape, *args)

    _bptt.Driver.backward = spy  # type: ignore[method-assign]
    try:
        with window(4):
            model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, **fit_kw)
    finally:
        _bptt.Driver.backward = original  # type: ignore[method-assign]
    chunks = 3 if fit_kw else 1  # tbptt_steps=20 cuts 45 steps into 3 chunks
    assert modes == ["checkpoint" if scope else "full"] * (4 * chunks)  # 2 batches x 2 epochs
    return model.get_weights()


@pytest.mark.parametrize("fit_kw", [{}, {"tbptt_steps": 20}], ids=["whole", "tbptt"])
def test_fit_with_checkpointing_trains_bit_identically(fit_kw: dict[str, Any]) -> None:
    for a, b in zip(_fit_weights(True, **fit_kw), _fit_weights(False, **fit_kw), strict=True):
        np.testing.assert_array_equal(a, b)


def test_stateful_layer_carries_state_through_checkpointed_windows() -> None:
    x = np.random.default_rng(3).standard_normal((2, 23, 2)).astype(np.float32)

    def run(scope: bool) -> list[np.ndarray]:
        keras.utils.set_random_seed(1)
        with keras.RematScope("full") if scope else contextlib.nullcontext():
            rnn = GRU(4, stateful=True, return_sequences=True)
        model = keras.Sequential([keras.Input((23, 2), batch_size=2), rnn, keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(0.1), "mse")
        with window(5):
            for _ in range(3):
                model.train_on_batch(x, np.zeros((2, 23, 1), np.float32))
        return [*model.get_weights(), *rnn.states]

    for a, b in zip(run(True), run(False), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_consumed_windowed_tape_is_refused() -> None:
    layer = LSTM(3)
    x = np.ones((1, 12, 2), np.float32)
    layer(x)
    with window(4):
        layer._remat_mode = FULL
        _, ctx = layer.forward(x, training=True)
        tape = ctx.tape
        layer.backward(ctx, np.ones((1, 3), np.float32))
        with pytest.raises(ValueError, match="already used"):
            tape.driver.backward(tape, None, np.ones((1, 3), np.float32), None, True)


def test_bad_lengths_are_refused_before_any_window_runs() -> None:
    layer = LSTM(3)
    x = np.ones((2, 12, 2), np.float32)
    layer(x)
    with window(4), pytest.raises(ValueError, match=r"lengths must lie in \[0, 12\]"):
        layer.forward(x, training=True, lengths=np.array([3, 13]))
