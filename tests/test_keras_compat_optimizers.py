"""Keras 3 optimizer arguments found unhandled by the compatibility sweep: an unknown keyword is a
clear error listing the accepted ones; Keras's common arguments (weight_decay, use_ema,
ema_momentum, ema_overwrite_frequency, loss_scale_factor, decay) and Adam's amsgrad are accepted
where seqcore does what Keras does and refused with what to use instead otherwise; the schedules
Keras has (InverseTimeDecay, PolynomialDecay, CosineDecayRestarts) with its formulas and configs."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
import seqcore as keras
from seqcore import optimizers, saving, schedules

ALL = [optimizers.SGD, optimizers.Adam, optimizers.AdamW, optimizers.RMSprop, optimizers.Adagrad]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_unknown_argument_names_the_class_and_lists_the_accepted_ones(cls: type) -> None:
    with pytest.raises(TypeError, match=rf"^{cls.__name__}: unexpected keyword argument\(s\) \['bogus'\]\. "
                       rf"{cls.__name__} accepts: learning_rate, .*clipnorm.*name, weight_decay|"
                       rf"{cls.__name__} accepts: learning_rate"):  # fmt: skip
        cls(bogus=1)
    with pytest.raises(ValueError, match=r"unexpected keyword argument"):  # what Keras raises, caught the same way
        cls(bogus=1)
    accepted = cls.accepted_arguments()
    assert accepted[0] == "learning_rate" and "gradient_accumulation_steps" in accepted and "use_ema" in accepted
    with pytest.raises(optimizers.OptimizerArgumentError, match=r"\['lr'\] \('lr' -> did you mean 'learning_rate'\?\)"):
        cls(lr=0.1)


def test_close_misspellings_are_suggested() -> None:
    with pytest.raises(TypeError, match=r"'beta1' -> did you mean 'beta_1'\?.*Adam accepts: learning_rate, beta_1, "
                       r"beta_2, epsilon, amsgrad, weight_decay, clipnorm"):  # fmt: skip
        optimizers.Adam(beta1=0.8)
    with pytest.raises(TypeError, match=r"\['momentom'\] \('momentom' -> did you mean 'momentum'\?\)"):
        optimizers.SGD(momentom=0.9)
    with pytest.raises(TypeError, match=r"RMSprop: unexpected keyword argument\(s\) \['a', 'zz'\]\. RMSprop accepts"):
        optimizers.RMSprop(zz=1, a=2)


def test_keras_common_arguments_with_their_keras_meaning() -> None:
    # Accepted: Keras ignores ema_momentum / ema_overwrite_frequency without use_ema.
    for cls in ALL:
        opt = cls(use_ema=False, ema_momentum=0.5, ema_overwrite_frequency=None, loss_scale_factor=None)
        assert opt.ema_momentum == 0.5
        assert cls(weight_decay=0.0).weight_decay == 0.0  # no decay: a no-op in Keras too
        if cls is not optimizers.AdamW:  # AdamW refuses None (as Keras's)
            assert cls(weight_decay=None).weight_decay == 0.0
    # A Keras 3 optimizer config (e.g. keras.optimizers.Adam().get_config()) loads.
    keras_cfg = {
        "name": "adam", "learning_rate": 0.001, "weight_decay": None, "clipnorm": None, "global_clipnorm": None,
        "clipvalue": None, "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
        "loss_scale_factor": None, "gradient_accumulation_steps": None, "beta_1": 0.9, "beta_2": 0.999,
        "epsilon": 1e-07, "amsgrad": False,
    }  # fmt: skip
    assert optimizers.Adam.from_config(keras_cfg).get_config()["beta_2"] == 0.999


# Keras 3.15.1 / TF 2.21, generated once with (CI needs neither):
#     import numpy as np, keras as K
#     x = (np.arange(12, dtype=np.float32).reshape(4, 3) % 5 - 2) / 2
#     y = np.array([[0.5, -1.0], [1.0, 0.0], [-0.5, 2.0], [0.0, 1.0]], np.float32)
#     for name, opt in [("sgd", K.optimizers.SGD(0.1, momentum=0.9, weight_decay=0.05)),
#                       ("rmsprop", K.optimizers.RMSprop(0.01, weight_decay=0.05)),
#                       ("adagrad", K.optimizers.Adagrad(0.1, weight_decay=0.05))]:
#         m = K.Sequential([K.Input((3,)), K.layers.Dense(2)])
#         m.set_weights([np.array([[0.3, -0.2], [0.1, 0.4], [-0.5, 0.25]], np.float32),
#                        np.array([0.1, -0.1], np.float32)])
#         m.compile(opt, "mse")
#         for _ in range(3):
#             m.train_on_batch(x, y)
#         print(name, [w.tolist() for w in m.get_weights()])
WEIGHT_DECAY_GOLDEN = {
    "sgd": ([[0.1473221331834793, 0.04252594709396362], [0.14221686124801636, 0.2221786081790924],
             [-0.4929647445678711, 0.2561178207397461]], [0.11863947659730911, 0.2640906870365143]),
    "rmsprop": ([[0.22817066311836243, -0.12725073099136353], [0.16903337836265564, 0.32738322019577026],
                 [-0.47628384828567505, 0.270089715719223]], [0.14749681949615479, -0.02751319296658039]),
    "adagrad": ([[0.14191466569900513, -0.01016664132475853], [0.1613062620162964, 0.22996661067008972],
                 [-0.5007028579711914, 0.2731242775917053]], [0.12701943516731262, 0.1015205979347229]),
}  # fmt: skip


@pytest.mark.parametrize("name", ["sgd", "rmsprop", "adagrad"])
def test_weight_decay_on_sgd_rmsprop_adagrad_matches_keras(name: str) -> None:
    # Keras's _apply_weight_decay: w <- w - w * weight_decay * lr, before each update.
    opt = {
        "sgd": lambda: optimizers.SGD(0.1, momentum=0.9, weight_decay=0.05),
        "rmsprop": lambda: optimizers.RMSprop(0.01, weight_decay=0.05),
        "adagrad": lambda: optimizers.Adagrad(0.1, weight_decay=0.05),
    }[name]()
    x = (np.arange(12, dtype=np.float32).reshape(4, 3) % 5 - 2) / 2
    y = np.array([[0.5, -1.0], [1.0, 0.0], [-0.5, 2.0], [0.0, 1.0]], np.float32)
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    m.set_weights([np.array([[0.3, -0.2], [0.1, 0.4], [-0.5, 0.25]], np.float32), np.array([0.1, -0.1], np.float32)])
    m.compile(opt, "mse")
    for _ in range(3):
        m.train_on_batch(x, y)
    kernel, bias = WEIGHT_DECAY_GOLDEN[name]
    np.testing.assert_allclose(m.get_weights()[0], kernel, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(m.get_weights()[1], bias, rtol=2e-6, atol=1e-7)
    assert type(opt).from_config(opt.get_config()).weight_decay == 0.05


def test_refused_keras_arguments_say_what_to_do() -> None:
    with pytest.raises(ValueError, match=r"SGD: use_ema=True .* not supported.*restore_best_weights=True"):
        optimizers.SGD(use_ema=True)
    with pytest.raises(ValueError, match=r"Adam: loss_scale_factor=128.0 is not supported.*float32.*Drop"):
        optimizers.Adam(loss_scale_factor=128.0)
    with pytest.raises(ValueError, match=r"AdamW: amsgrad=True is not supported.*no AMSGrad variant.*amsgrad=False"):
        optimizers.AdamW(amsgrad=True)
    with pytest.raises(ValueError, match=r"Adam: amsgrad=True"):
        optimizers.Adam(amsgrad=True)
    with pytest.raises(TypeError, match=r"weight_decay must be a float or None; received '0.1'"):
        optimizers.Adam(weight_decay="0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"weight_decay must be finite"):
        optimizers.AdamW(weight_decay=math.inf)
    with pytest.raises(
        ValueError, match=r"AdamW: Argument `weight_decay` must be a float. Received: weight_decay=None"
    ):
        optimizers.AdamW(weight_decay=None)  # type: ignore[arg-type]


def test_decay_is_ignored_with_a_warning_as_keras_3() -> None:
    with pytest.warns(UserWarning, match=r"Argument `decay` is no longer supported and will be ignored.*"
                      r"InverseTimeDecay\(lr, decay_steps=1, decay_rate=decay\)") as rec:  # fmt: skip
        opt = optimizers.AdamW(0.01, decay=1e-4)
    assert rec[0].filename == __file__  # points at the caller, through AdamW -> Adam -> Optimizer
    assert opt.learning_rate == 0.01 and opt.schedule is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optimizers.SGD(decay=None)  # None: nothing to ignore, no warning (as Keras)


def _train(opt: optimizers.Optimizer) -> list[np.ndarray]:
    keras.utils.set_random_seed(0)
    r = np.random.default_rng(0)
    x = r.normal(size=(16, 5, 2)).astype(np.float32)
    y = r.normal(size=(16, 1)).astype(np.float32)
    m = keras.Sequential([keras.Input((5, 2)), keras.layers.LSTM(3), keras.layers.Dense(1)])
    m.compile(opt, "mse")
    m.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0)
    return m.get_weights()


def test_adam_weight_decay_is_adamw_and_survives_saving(tmp_path: Any) -> None:
    a = _train(optimizers.Adam(0.01, weight_decay=0.05))
    w = _train(optimizers.AdamW(0.01, weight_decay=0.05))
    plain = _train(optimizers.Adam(0.01))
    for x, y in zip(a, w, strict=True):
        np.testing.assert_array_equal(x, y)  # Keras 3's AdamW is Adam with weight_decay
    assert any(not np.array_equal(x, y) for x, y in zip(a, plain, strict=True))
    opt = optimizers.Adam(0.01, weight_decay=0.05)
    assert opt.get_config()["weight_decay"] == 0.05
    again = optimizers.deserialize(optimizers.serialize(opt))
    assert type(again) is optimizers.Adam and again.weight_decay == 0.05
    m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    m.compile(opt, "mse")
    m.save(tmp_path / "m.seqcore")
    assert saving.load_model(tmp_path / "m.seqcore").optimizer.weight_decay == 0.05


# ----- schedules ---------------------------------------------------------------------------------
def test_new_schedules_follow_keras_formulas() -> None:
    it = schedules.InverseTimeDecay(0.1, decay_steps=5, decay_rate=0.5)
    assert math.isclose(it(0), 0.1) and math.isclose(it(10), 0.1 / 2.0) and math.isclose(it(3), 0.1 / 1.3)
    assert math.isclose(schedules.InverseTimeDecay(0.1, 5, 0.5, staircase=True)(9), 0.1 / 1.5)
    p = schedules.PolynomialDecay(0.1, decay_steps=10, end_learning_rate=0.01, power=2.0)
    assert math.isclose(p(0), 0.1) and math.isclose(p(5), 0.09 * 0.25 + 0.01) and math.isclose(p(50), 0.01)
    pc = schedules.PolynomialDecay(0.1, decay_steps=10, cycle=True)
    assert math.isclose(pc(15), (0.1 - 0.0001) * (1 - 15 / 20) + 0.0001) and math.isclose(pc(0), 0.1)
    r = schedules.CosineDecayRestarts(1.0, first_decay_steps=10)
    assert math.isclose(r(0), 1.0) and math.isclose(r(5), 0.5) and math.isclose(r(10), 1.0)  # restart
    assert math.isclose(r(20), 0.5, abs_tol=1e-12)  # the second period is twice as long
    r2 = schedules.CosineDecayRestarts(1.0, 10, t_mul=1.0, m_mul=0.5, alpha=0.1)
    assert math.isclose(r2(10), 0.5 * 0.9 + 0.1) and math.isclose(r2(25), 0.9 * 0.25 * 0.5 + 0.1)
    # CosineDecay: without warmup_target Keras ignores warmup_steps.
    assert schedules.CosineDecay(1.0, 100, warmup_steps=10)(0) == 1.0
    w = schedules.CosineDecay(0.0, 100, warmup_target=1.0, warmup_steps=10)
    assert math.isclose(w(5), 0.5) and math.isclose(w(10), 1.0) and math.isclose(w(60), 0.5)
    for cls, arg in [(schedules.InverseTimeDecay, "decay_steps"), (schedules.PolynomialDecay, "decay_steps"),
                     (schedules.CosineDecayRestarts, "first_decay_steps")]:  # fmt: skip
        with pytest.raises(ValueError, match=rf"Argument `{arg}` must be > 0. Received: {arg}=0"):
            cls(0.1, 0, *([0.5] if cls is schedules.InverseTimeDecay else []))


def test_schedule_configs_round_trip_and_drive_optimizers() -> None:
    made = [
        schedules.ExponentialDecay(0.1, 10, 0.5),
        schedules.InverseTimeDecay(0.1, 10, 0.5, staircase=True),
        schedules.PolynomialDecay(0.1, 10, power=0.5, cycle=True),
        schedules.CosineDecay(0.1, 10, 0.1, "cd", 0.2, 3),  # Keras's positional order: name before warmup
        schedules.CosineDecayRestarts(0.1, 10, t_mul=1.5),
        schedules.PiecewiseConstantDecay([3], [0.1, 0.01]),
    ]
    for s in made:
        cfg = s.get_config()
        assert "name" in cfg
        again = schedules.deserialize(schedules.serialize(s))
        assert type(again) is type(s) and again.get_config() == cfg and again(7) == s(7)
        opt = optimizers.SGD(s)
        back = optimizers.deserialize(optimizers.serialize(opt))
        assert type(back.schedule) is type(s) and back.schedule.get_config() == cfg
    with pytest.raises(ValueError, match=r"Unknown learning-rate schedule 'Nope'"):
        schedules.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(TypeError, match=r"expected a LearningRateSchedule"):
        schedules.serialize(0.1)  # type: ignore[arg-type]

    class Mine(schedules.LearningRateSchedule):
        def __call__(self, step: int) -> float:
            return 0.5

    assert schedules.deserialize({"class_name": "Mine", "config": {}}, custom_objects={"Mine": Mine})(3) == 0.5


# ----- with Keras ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def K() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("keras")


@pytest.mark.parametrize(
    ("name", "args", "kwargs"),
    [
        ("ExponentialDecay", (0.1, 10, 0.5), {"staircase": True}),
        ("InverseTimeDecay", (0.1, 7, 0.5), {}),
        ("PolynomialDecay", (0.1, 20), {"power": 2.0, "cycle": True, "end_learning_rate": 0.01}),
        ("CosineDecay", (0.1, 30), {"alpha": 0.1, "warmup_target": 0.5, "warmup_steps": 10}),
        ("CosineDecay", (0.1, 30), {"warmup_steps": 10}),
        ("CosineDecayRestarts", (0.1, 7), {"t_mul": 1.5, "m_mul": 0.8, "alpha": 0.05}),
        ("PiecewiseConstantDecay", ([10, 20], [1.0, 0.5, 0.1]), {}),
    ],
)
def test_schedules_equal_keras(K: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ks = getattr(K.optimizers.schedules, name)(*args, **kwargs)
        want = np.array([float(K.ops.convert_to_numpy(ks(s))) for s in range(80)])
    ss = getattr(keras.optimizers.schedules, name)(*args, **kwargs)
    got = np.array([ss(s) for s in range(80)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)  # Keras computes in float32
    assert ss.get_config() == ks.get_config()


def test_keras_refuses_unknown_optimizer_arguments_with_a_value_error(K: Any) -> None:
    with pytest.raises(ValueError, match=r"Argument\(s\) not recognized"):
        K.optimizers.Adam(lr=0.1)
    with pytest.raises(ValueError):  # seqcore's error is caught by the same except clause
        optimizers.Adam(lr=0.1)
