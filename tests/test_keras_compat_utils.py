"""Keras 3 utilities and namespaces found missing or different by the compatibility sweep:
``utils.pad_sequences`` (one array, Keras's defaults and errors), ``utils.to_categorical``,
``backend.clear_session``, ``models.load_model``/``models.Sequential`` and
``optimizers.schedules``. Expected values are spelled out so the tests run without Keras; with
Keras installed the same calls are compared with Keras's own."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import seqcore as keras
from seqcore import utils

SEQS = [[1], [2, 3], [4, 5, 6]]


# ----- pad_sequences ----------------------------------------------------------------------------
def test_pad_sequences_defaults_are_keras_pre_padding_int32() -> None:
    out = utils.pad_sequences(SEQS)
    assert isinstance(out, np.ndarray) and out.dtype == np.int32  # one array, not a tuple
    np.testing.assert_array_equal(out, [[0, 0, 1], [0, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(utils.pad_sequences(SEQS, value=-1), [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(utils.pad_sequences(SEQS, padding="post"), [[1, 0, 0], [2, 3, 0], [4, 5, 6]])
    np.testing.assert_array_equal(utils.pad_sequences(SEQS, maxlen=2), [[0, 1], [2, 3], [5, 6]])  # pre-truncation
    np.testing.assert_array_equal(
        utils.pad_sequences(SEQS, maxlen=2, truncating="post", padding="post"), [[1, 0], [2, 3], [4, 5]]
    )
    np.testing.assert_array_equal(utils.pad_sequences(SEQS, maxlen=4), [[0, 0, 0, 1], [0, 0, 2, 3], [0, 4, 5, 6]])


def test_pad_sequences_dtype_value_and_trailing_sample_shape() -> None:
    f = utils.pad_sequences(SEQS, dtype="float32", value=0.5)
    assert f.dtype == np.float32 and f[0].tolist() == [0.5, 0.5, 1.0]
    assert utils.pad_sequences(SEQS, dtype=np.float64).dtype == np.float64
    seqs = [np.ones((3, 2)), np.full((1, 2), 2.0), np.zeros((0, 2)), []]
    out = utils.pad_sequences(seqs, dtype="float32", padding="post")
    assert out.shape == (4, 3, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out[1], [[2, 2], [0, 0], [0, 0]])
    assert (out[2] == 0).all() and (out[3] == 0).all()  # empty sequences stay all padding
    pre = utils.pad_sequences(seqs, dtype="float32")
    np.testing.assert_array_equal(pre[1], [[0, 0], [0, 0], [2, 2]])
    # Arrays of (steps, h, w) samples; a 2-D array of sequences; tuples; maxlen 0; no sequences.
    assert utils.pad_sequences([np.ones((2, 3, 4))], maxlen=3, dtype="float32").shape == (1, 3, 3, 4)
    np.testing.assert_array_equal(utils.pad_sequences(np.arange(6).reshape(2, 3), maxlen=2), [[1, 2], [4, 5]])
    np.testing.assert_array_equal(utils.pad_sequences(((1, 2), (3,))), [[1, 2], [0, 3]])
    assert utils.pad_sequences(SEQS, maxlen=0).shape == (3, 0)
    assert utils.pad_sequences(SEQS, maxlen=np.int64(1)).tolist() == [[1], [3], [6]]
    assert utils.pad_sequences([], maxlen=3).shape == (0, 3)
    strings = utils.pad_sequences([["a", "b"], ["c"]], dtype=object, value="")
    assert strings.tolist() == [["a", "b"], ["", "c"]]


def test_pad_sequences_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r'Padding type "mid" not understood; use "pre" or "post"'):
        utils.pad_sequences(SEQS, padding="mid")
    with pytest.raises(ValueError, match=r'Truncating type "end" not understood'):
        utils.pad_sequences(SEQS, truncating="end")
    with pytest.raises(ValueError, match=r'Padding type "x"'):  # checked first, even for empty sequences
        utils.pad_sequences([[]], maxlen=2, padding="x")
    with pytest.raises(ValueError, match=r"Shape of sample \(3,\) of sequence at position 1 is different from "
                       r"expected shape \(2,\)"):  # fmt: skip
        utils.pad_sequences([np.ones((3, 2)), np.ones((1, 3))], dtype="float32")
    with pytest.raises(ValueError, match=r"steps of the sequence at position 0 have different shapes"):
        utils.pad_sequences([[[1, 2], [3]]])
    with pytest.raises(ValueError, match=r"must be a list of iterables. Found non-iterable: 5 \(at position 2\)"):
        utils.pad_sequences([[1], [2], 5])
    with pytest.raises(ValueError, match=r"`sequences` must be iterable.*generator"):
        utils.pad_sequences(s for s in SEQS)
    with pytest.raises(ValueError, match=r"received no sequences.*pass maxlen"):
        utils.pad_sequences([])
    with pytest.raises(ValueError, match=r"not compatible with `value`'s type.*dtype=object"):
        utils.pad_sequences(SEQS, value="x")
    with pytest.raises(TypeError, match=r"maxlen must be an int or None; received 2.5"):
        utils.pad_sequences(SEQS, maxlen=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"maxlen must be >= 0. Received: maxlen=-1"):
        utils.pad_sequences(SEQS, maxlen=-1)


def test_pad_sequences_warns_when_int32_truncates_feature_values() -> None:
    # Keras's int32 default silently turns feature values into integers; the result is the same as
    # Keras's, with a warning saying how to keep them.
    with pytest.warns(UserWarning, match=r"non-integer values, which dtype='int32' truncates.*dtype='float32'"):
        out = utils.pad_sequences([[0.5, 1.7], [2.0]])
    np.testing.assert_array_equal(out, [[0, 1], [0, 2]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        utils.pad_sequences([[1.0, 2.0], np.array([3.0])])  # whole numbers: no warning
        utils.pad_sequences([[0.5]], dtype="float32")


def test_pre_and_post_padding_with_masking_agree() -> None:
    seqs = [np.ones((2, 1)), np.arange(1, 5, dtype=np.float32).reshape(4, 1)]
    m = keras.Sequential([keras.Input((4, 1)), keras.layers.Masking(), keras.layers.LSTM(2)])
    pre = m.predict(utils.pad_sequences(seqs, dtype="float32"), verbose=0)
    post = m.predict(utils.pad_sequences(seqs, dtype="float32", padding="post"), verbose=0)
    np.testing.assert_allclose(pre, post, rtol=1e-6, atol=1e-7)


# ----- to_categorical ---------------------------------------------------------------------------
def test_to_categorical_shapes_and_dtype_as_keras() -> None:
    a = utils.to_categorical([0, 1, 2, 3], num_classes=4)
    assert a.dtype == np.float64  # Keras returns float64 for arrays and lists
    np.testing.assert_array_equal(a, np.eye(4))
    assert utils.to_categorical([[0], [2]]).shape == (2, 3)  # a trailing 1 axis is replaced
    np.testing.assert_array_equal(utils.to_categorical([[0], [2]]), [[1, 0, 0], [0, 0, 1]])
    assert utils.to_categorical([[0, 1], [2, 1]]).shape == (2, 2, 3)  # class axis last
    assert utils.to_categorical(np.zeros((2, 5, 1), np.int32), 3).shape == (2, 5, 3)
    assert utils.to_categorical([1]).shape == (1, 2)  # (1,) keeps its axis
    np.testing.assert_array_equal(utils.to_categorical(2), [0, 0, 1])
    np.testing.assert_array_equal(utils.to_categorical(2, 4), [0, 0, 1, 0])
    np.testing.assert_array_equal(utils.to_categorical([0.0, 2.0]), [[1, 0, 0], [0, 0, 1]])  # float labels
    np.testing.assert_array_equal(utils.to_categorical([True, False]), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(utils.to_categorical(np.array([1, 0], np.uint8), 0), [[0, 1], [1, 0]])  # 0 infers
    assert utils.to_categorical([], num_classes=3).shape == (0, 3)


def test_to_categorical_feeds_categorical_crossentropy() -> None:
    r = np.random.default_rng(0)
    x = r.normal(size=(16, 5, 2)).astype(np.float32)
    y = utils.to_categorical(r.integers(0, 3, size=16), num_classes=3)
    m = keras.Sequential([keras.Input((5, 2)), keras.layers.GRU(4), keras.layers.Dense(3, activation="softmax")])
    m.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    assert np.isfinite(m.fit(x, y, epochs=1, verbose=0).history["loss"][0])


def test_to_categorical_refuses_bad_labels() -> None:
    with pytest.raises(ValueError, match=r"label 5 is out of range for num_classes=4 \(labels must be in \[0, 3\]\)"):
        utils.to_categorical([0, 5], num_classes=4)
    with pytest.raises(ValueError, match=r"class labels must be >= 0; received -1"):
        utils.to_categorical([0, -1], num_classes=4)  # Keras would wrap it around to the last class
    with pytest.raises(ValueError, match=r"class labels must be >= 0"):
        utils.to_categorical([-2, 1])
    with pytest.raises(ValueError, match=r"integer class labels; received the non-integer value 0.5"):
        utils.to_categorical([0.5, 1.0])
    with pytest.raises(ValueError, match=r"non-integer value nan"):
        utils.to_categorical([np.nan])
    with pytest.raises(ValueError, match=r"integer class labels; received dtype <U3"):
        utils.to_categorical(["cat", "dog"])
    with pytest.raises(ValueError, match=r"x is empty.*pass num_classes"):
        utils.to_categorical([])
    with pytest.raises(ValueError, match=r"x is ragged"):
        utils.to_categorical([[0, 1], [2]])
    with pytest.raises(TypeError, match=r"num_classes must be an int or None; received 3.0"):
        utils.to_categorical([0, 1], num_classes=3.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"num_classes must be >= 1"):
        utils.to_categorical([0, 1], num_classes=-2)


# ----- backend, models, optimizers.schedules ------------------------------------------------------
def test_backend_clear_session_restarts_names_and_keeps_models_working() -> None:
    m = keras.Sequential([keras.Input((3, 2)), keras.layers.LSTM(2), keras.layers.Dense(1)])
    x = np.ones((2, 3, 2), np.float32)
    before = m.predict(x, verbose=0)
    keras.layers.Dense(1)
    assert keras.backend.clear_session() is None
    assert keras.layers.Dense(1).name == "dense" and keras.layers.LSTM(2).name == "lstm"
    assert keras.Sequential().name == "sequential"
    assert keras.layers.Dense(1).name == "dense_1"
    keras.backend.clear_session(free_memory=False)
    assert keras.layers.Dense(1).name == "dense"
    np.testing.assert_array_equal(m.predict(x, verbose=0), before)
    gc.collect()
    assert keras.backend.floatx() == "float32" and keras.backend.epsilon() == 1e-7


def test_models_namespace_as_keras_models(tmp_path: Path) -> None:
    from seqcore.models import Sequential, load_model, save_model

    assert Sequential is keras.Sequential and callable(load_model) and callable(save_model)
    m = Sequential([keras.Input((4, 1)), keras.layers.GRU(2)])
    m.compile("adam", "mse")
    keras.models.save_model(m, tmp_path / "m.seqcore")
    loaded = keras.models.load_model(tmp_path / "m.seqcore")
    x = np.ones((1, 4, 1), np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), m.predict(x, verbose=0))


def test_optimizers_schedules_namespace_as_keras() -> None:
    import seqcore.optimizers.schedules as sched_mod
    from seqcore.optimizers.schedules import CosineDecay, ExponentialDecay, PiecewiseConstantDecay

    assert keras.optimizers.schedules is keras.schedules is sched_mod
    assert ExponentialDecay is keras.schedules.ExponentialDecay
    for name in (
        "LearningRateSchedule",
        "ExponentialDecay",
        "InverseTimeDecay",
        "PolynomialDecay",
        "CosineDecay",
        "CosineDecayRestarts",
        "PiecewiseConstantDecay",
        "serialize",
        "deserialize",
    ):
        assert hasattr(keras.optimizers.schedules, name), name
    opt = keras.optimizers.SGD(CosineDecay(0.1, decay_steps=10))
    assert opt.learning_rate == pytest.approx(0.1)
    sched = PiecewiseConstantDecay([1], [0.1, 0.01])
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(sched))
    assert isinstance(again, PiecewiseConstantDecay) and again.get_config() == sched.get_config()


# ----- with Keras -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def K() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("keras")


def _outcome(fn: Any, *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn(*args, **kwargs)
    return out.dtype, out.shape, out.tolist()


PAD_CASES: list[tuple[Any, dict[str, Any]]] = [
    (SEQS, {}),
    (SEQS, {"padding": "post"}),
    (SEQS, {"maxlen": 2}),
    (SEQS, {"maxlen": 2, "truncating": "post", "padding": "post", "value": -1}),
    (SEQS, {"dtype": "float32", "value": 0.5}),
    ([[1.5, 2.7], [3.2]], {}),
    ([[], [1]], {}),
    ([], {"maxlen": 3}),
    ([np.ones((3, 2)), np.full((1, 2), 2.0), []], {"dtype": "float32"}),
    ([np.ones((3, 2)), np.full((1, 2), 2.0)], {"dtype": "float32", "padding": "post", "maxlen": 2}),
    ([["a", "b"], ["c"]], {"dtype": object, "value": ""}),
    (np.arange(6).reshape(2, 3), {"maxlen": 2}),
]


@pytest.mark.parametrize(("seqs", "kwargs"), PAD_CASES)
def test_pad_sequences_equals_keras(K: Any, seqs: Any, kwargs: dict[str, Any]) -> None:
    assert _outcome(utils.pad_sequences, seqs, **kwargs) == _outcome(K.utils.pad_sequences, seqs, **kwargs)


@pytest.mark.parametrize(
    ("x", "num_classes"),
    [([0, 1, 2, 3], 4), ([[0], [2]], None), ([[0, 1], [2, 1]], None), (np.array([[[1], [0]]]), None),
     ([1], None), (2, None), (2, 4), ([0.0, 2.0], None), ([True, False], None), ([0, 1], 0), ([], 3),
     (np.arange(3, dtype=np.uint8), 5)],
)  # fmt: skip
def test_to_categorical_equals_keras(K: Any, x: Any, num_classes: Any) -> None:
    assert _outcome(utils.to_categorical, x, num_classes) == _outcome(K.utils.to_categorical, x, num_classes)


def test_keras_raises_the_same_error_types(K: Any) -> None:
    for kwargs in ({"padding": "mid"}, {"truncating": "mid"}):
        with pytest.raises(ValueError):
            K.utils.pad_sequences(SEQS, **kwargs)
        with pytest.raises(ValueError):
            utils.pad_sequences(SEQS, **kwargs)
    ragged = [np.ones((3, 2)), np.ones((1, 3))]
    with pytest.raises(ValueError, match=r"Shape of sample \(3,\) of sequence at position 1"):
        K.utils.pad_sequences(ragged, dtype="float32")
    with pytest.raises(ValueError, match=r"Shape of sample \(3,\) of sequence at position 1"):
        utils.pad_sequences(ragged, dtype="float32")


def test_keras_clear_session_restarts_names_the_same_way(K: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        K.backend.clear_session()
        assert K.layers.Dense(1).name == "dense"
    keras.backend.clear_session()
    assert keras.layers.Dense(1).name == "dense"
