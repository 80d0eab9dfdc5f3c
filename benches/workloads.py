"""The benchmark workloads: a registry that ``benches/run.py`` times and other issues extend.

A :class:`Workload` is a name, a description, a shape dict, a FLOP count (with its formula spelled
out) and, per framework (``seqcore``, ``torch``, ``keras``), a ``setup(ctx)`` function. ``setup``
builds the model and the data *outside* the timed region and returns a :class:`Step`: a
zero-argument callable that runs one full step (for training: forward, loss, backward, parameter
update) and returns the loss as a Python float (so every framework has finished its work when the
call returns). A setup function that cannot run a workload returns ``None`` (skipped as "not
implemented") or raises :class:`Unavailable` with a reason that the report prints.

Adding a workload: write the per-framework setup functions (they import their framework lazily;
``run.py`` has already configured its threads), build a :class:`Workload` and pass it to
:func:`register`. The recurrent workloads are built by :func:`recurrent_workload`; their seqcore
side is a hook (:func:`_seqcore_recurrent`) to fill in once ``seqcore.kernels`` has the kernels.

Fairness rules every workload follows:
- same shapes, dtype (float32), loss (MSE, mean over every element) and optimizer (plain SGD,
  lr 0.01) everywhere;
- the input of the first layer needs no gradient in any framework (torch: no ``requires_grad``;
  Keras: it is a model input; seqcore: ``need_dx=False``);
- data lives in each framework's native container before timing (NumPy for seqcore, ``torch.Tensor``,
  ``tf.Tensor``) in each framework's native layout;
- Keras is run whichever way is fastest on this machine: :func:`_keras_pick` times the candidate
  execution modes (``train_on_batch`` with and without XLA, a ``tf.function`` custom train step with
  and without XLA) and keeps the fastest; the choice and every candidate's time go in the report.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

FRAMEWORKS = ("seqcore", "torch", "keras", "onnxruntime")  # onnxruntime: inference workloads only
LR = 0.01


class Unavailable(Exception):
    """Raised by a setup function that cannot run its workload; the message is the skip reason."""


class Step:
    """One timed step: call it. ``how`` says how the framework runs it (printed in the report)."""

    def __init__(self, fn: Callable[[], Any], how: str, details: Mapping[str, Any] | None = None):
        self.fn = fn
        self.how = how
        self.details = dict(details or {})

    def __call__(self) -> Any:
        return self.fn()


@dataclass
class Context:
    """What a setup function may need to know about the run."""

    threads: int
    quick: bool = False
    # Force a Keras execution mode (one of KERAS_TRAIN_MODES / KERAS_INFER_MODES) instead of timing
    # the candidates; the memory probe uses it so that its setup runs no step.
    keras_mode: str | None = None
    log: Callable[[str], None] = print


Setup = Callable[[Context], "Step | None"]


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    shape: Mapping[str, int]
    flops: int
    flops_formula: str
    setups: Mapping[str, Setup]
    kind: str = "train"  # "train" (forward + loss + backward + SGD) or "infer" (forward only)
    default: bool = True  # part of a plain `python benches/run.py`
    # Every framework starts from the same data and initial weights, so their first-step losses must
    # agree: run.py checks it (a cheap guard that all frameworks compute the same thing).
    shared_init: bool = False

    def setup(self, framework: str, ctx: Context) -> Step:
        fn = self.setups.get(framework)
        if fn is None:
            raise Unavailable(f"no {framework} implementation registered for {self.name}")
        step = fn(ctx)
        if step is None:
            raise Unavailable(f"{framework} cannot run {self.name} (not implemented)")
        return step


WORKLOADS: dict[str, Workload] = {}


def register(w: Workload) -> Workload:
    if w.name in WORKLOADS:
        raise ValueError(f"workload {w.name!r} registered twice")
    unknown = set(w.setups) - set(FRAMEWORKS)
    if unknown:
        raise ValueError(f"workload {w.name!r}: unknown frameworks {sorted(unknown)}")
    WORKLOADS[w.name] = w
    return w


# --------------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------------


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32)


def _glorot(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    lim = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-lim, lim, (fan_in, fan_out)).astype(np.float32)


def _time_calls(fn: Callable[[], Any], min_calls: int, min_seconds: float) -> float:
    """Median seconds per call over at least ``min_calls`` calls and ``min_seconds``."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.0f} ms" if ms >= 100 else f"{ms:.3g} ms"


def _seqcore_ops() -> Any:
    import seqcore

    return getattr(seqcore, "kernels", None) or seqcore.ops  # (named ops before the Functional API)


# --------------------------------------------------------------------------------------------------
# Keras: execution modes, and picking the fastest
# --------------------------------------------------------------------------------------------------

# In the order they are tried: the usual winners first, so that the rest can be dropped after one
# timed call when they are clearly slower (see _keras_pick).
KERAS_TRAIN_MODES = ("tf.function", "train_on_batch", "tf.function+xla", "train_on_batch+xla")
KERAS_INFER_MODES = ("tf.function+xla", "tf.function", "predict_on_batch")

_KERAS_HOW = {
    "train_on_batch": "model.train_on_batch (compiled SGD+mse, jit_compile=False)",
    "train_on_batch+xla": "model.train_on_batch (compiled SGD+mse, jit_compile=True)",
    "tf.function": "tf.function custom train step (GradientTape + optimizer.apply)",
    "tf.function+xla": "tf.function(jit_compile=True) custom train step (GradientTape + optimizer.apply)",
    "predict_on_batch": "model.predict_on_batch",
    "infer:tf.function": "tf.function(model(x, training=False))",
    "infer:tf.function+xla": "tf.function(jit_compile=True)(model(x, training=False))",
}


def _keras_train_candidate(mode: str, build: Callable[[], Any], x: Any, y: Any, loss: str = "mse",
                           optimizer: Callable[[], Any] | None = None) -> Callable[[], float]:  # fmt: skip
    """One train step in Keras ``mode``; ``optimizer()`` makes the optimizer (default SGD(LR)) and
    ``loss`` names the Keras loss (default MSE)."""
    import keras
    import tensorflow as tf

    make_opt = optimizer or (lambda: keras.optimizers.SGD(LR))
    model = build()
    if mode.startswith("train_on_batch"):
        model.compile(optimizer=make_opt(), loss=loss, jit_compile=mode.endswith("+xla"))

        def step() -> float:
            return float(model.train_on_batch(x, y))

        return step

    opt = make_opt()
    opt.build(model.trainable_variables)
    variables = model.trainable_variables
    loss_fn = keras.losses.get(loss)

    @tf.function(jit_compile=mode.endswith("+xla"))
    def train(xb: Any, yb: Any) -> Any:
        with tf.GradientTape() as tape:
            pred = model(xb, training=True)
            loss = tf.reduce_mean(loss_fn(yb, pred))
        grads = tape.gradient(loss, variables)
        opt.apply(grads, variables)
        return loss

    def step() -> float:
        return float(train(x, y))

    return step


def _keras_infer_candidate(mode: str, build: Callable[[], Any], x: Any) -> Callable[[], float]:
    import tensorflow as tf

    model = build()
    if mode == "predict_on_batch":

        def step() -> float:
            return float(np.asarray(model.predict_on_batch(x)).reshape(-1)[0])

        return step

    @tf.function(jit_compile=mode.endswith("+xla"))
    def infer(xb: Any) -> Any:
        return model(xb, training=False)

    def step() -> float:
        return float(infer(x).numpy().reshape(-1)[0])

    return step


def _keras_pick(ctx: Context, kind: str, build: Callable[[], Any], x: Any, y: Any = None, init: Any = None,
                **train_args: Any) -> Step:  # fmt: skip
    """Builds every Keras execution mode for this model, times each briefly and returns the fastest.

    ``build()`` returns a fresh, un-compiled model; ``init(model)`` (optional) sets its weights.
    """
    modes = KERAS_TRAIN_MODES if kind == "train" else KERAS_INFER_MODES
    if ctx.keras_mode is not None:
        if ctx.keras_mode not in modes:
            raise Unavailable(f"keras mode {ctx.keras_mode!r} is not one of {modes}")
        modes = (ctx.keras_mode,)

    def fresh() -> Any:
        m = build()
        if init is not None:
            init(m)
        return m

    best: str | None = None
    best_fn: Callable[[], float] | None = None
    secs: dict[str, float] = {}
    errors: dict[str, str] = {}
    first_loss: dict[str, float] = {}
    for mode in modes:
        try:
            if kind == "train":
                fn = _keras_train_candidate(mode, fresh, x, y, **train_args)
            else:
                fn = _keras_infer_candidate(mode, fresh, x)
            if len(modes) > 1:
                first_loss[mode] = fn()  # trace / compile; every candidate starts from fresh weights
                t0 = time.perf_counter()
                fn()
                once = time.perf_counter() - t0
                if best is not None and once > 1.5 * secs[best]:
                    secs[mode] = once  # clearly slower than the best so far: one timed call will do
                else:
                    secs[mode] = _time_calls(fn, min_calls=2 if ctx.quick else 3, min_seconds=0.3)
            if best is None or secs[mode] < secs[best]:
                best, best_fn = mode, fn  # the previous best's model is released here
        except Exception as e:  # an XLA failure on one mode must not sink the others
            errors[mode] = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        fn = None  # type: ignore[assignment]
    if best is None or best_fn is None:
        raise Unavailable(f"every Keras mode failed: {errors}")
    how_key = best if kind == "train" or best == "predict_on_batch" else f"infer:{best}"
    how = _KERAS_HOW[how_key]
    if len(secs) > 1:
        others = ", ".join(f"{m} {_ms(s)}" for m, s in sorted(secs.items(), key=lambda kv: kv[1]))
        how += f" [fastest of: {others}]"
    elif ctx.keras_mode is not None:
        how += " [mode forced]"
    details: dict[str, Any] = {
        "mode": best,
        "candidates_ms": {m: s * 1e3 for m, s in secs.items()},
        "errors": errors,
    }
    if best in first_loss:  # its step from the initial weights (the timing has moved them since)
        details["first_loss"] = first_loss[best]
        details["candidates_first_loss"] = first_loss
    return Step(best_fn, how, details)


def _torch_threads_note() -> str:
    import torch

    return f"torch {torch.__version__}, eager, {torch.get_num_threads()} threads"


# --------------------------------------------------------------------------------------------------
# td_dense: Dense(256) on a (64, 100, 128) sequence
# --------------------------------------------------------------------------------------------------


def _dense_data(B: int, T: int, F: int, U: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = _rng(seed)
    return {
        "x": _normal(rng, (B, T, F)),
        "target": _normal(rng, (B, T, U)),
        "kernel": _glorot(rng, F, U),
        "bias": (0.1 * _normal(rng, (U,))).astype(np.float32),
    }


def dense_workload(name: str, B: int, T: int, F: int, U: int, description: str, model: bool = False) -> Workload:
    """``model=True``: seqcore's side is ``Sequential([Input, Dense]).train_on_batch`` (the layer API
    and trainer around the same kernels), to measure what the model and trainer cost on top."""
    shape = {"B": B, "T": T, "F": F, "U": U}

    def seqcore_model_setup(ctx: Context) -> Step:
        import seqcore

        d = _dense_data(B, T, F, U)
        x, target = d["x"], d["target"]
        m = seqcore.Sequential([seqcore.Input((T, F)), seqcore.layers.Dense(U)])
        m.layers[-1].set_weights([d["kernel"], d["bias"]])
        m.compile(seqcore.optimizers.SGD(LR), "mse")
        return Step(lambda: m.train_on_batch(x, target), "seqcore.Sequential([Input, Dense]).train_on_batch")

    def seqcore_setup(ctx: Context) -> Step:
        if model:
            return seqcore_model_setup(ctx)
        kernels = _seqcore_ops()
        d = _dense_data(B, T, F, U)
        x, target = d["x"], d["target"]
        kernel, bias = d["kernel"].copy(), d["bias"].copy()

        def step() -> float:
            y = kernels.dense_forward(x, kernel, bias)
            loss, g = kernels.mse(y, target)
            grads = kernels.dense_backward(x, kernel, y, g, need_dx=False)
            kernels.sgd_update(kernel, grads.dkernel, LR)
            kernels.sgd_update(bias, grads.dbias, LR)
            return loss

        return Step(step, "seqcore.kernels: dense_forward, mse, dense_backward(need_dx=False), sgd_update x2")

    def torch_setup(ctx: Context) -> Step:
        import torch
        import torch.nn.functional as tF

        d = _dense_data(B, T, F, U)
        x = torch.from_numpy(d["x"])
        target = torch.from_numpy(d["target"])
        lin = torch.nn.Linear(F, U)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(d["kernel"].T.copy()))
            lin.bias.copy_(torch.from_numpy(d["bias"]))
        opt = torch.optim.SGD(lin.parameters(), lr=LR)

        def step() -> float:
            opt.zero_grad(set_to_none=True)
            loss = tF.mse_loss(lin(x), target)
            loss.backward()
            opt.step()
            return loss.item()

        return Step(step, f"nn.Linear + F.mse_loss + backward + optim.SGD ({_torch_threads_note()})")

    def keras_setup(ctx: Context) -> Step:
        import keras
        import tensorflow as tf

        d = _dense_data(B, T, F, U)
        x, target = tf.constant(d["x"]), tf.constant(d["target"])

        def build() -> Any:
            return keras.Sequential([keras.Input((T, F)), keras.layers.Dense(U)])

        def init(model: Any) -> None:
            model.layers[-1].set_weights([d["kernel"], d["bias"]])

        return _keras_pick(ctx, "train", build, x, target, init)

    flops = 4 * B * T * F * U
    return Workload(
        name=name,
        description=description,
        shape=shape,
        flops=flops,
        flops_formula="forward 2*B*T*F*U + backward dW 2*B*T*F*U (no dx: first layer) = 4*B*T*F*U",
        setups={"seqcore": seqcore_setup, "torch": torch_setup, "keras": keras_setup},
        shared_init=True,
        default=not model,
    )


register(
    dense_workload(
        "td_dense_model",
        B=64,
        T=100,
        F=128,
        U=256,
        description="td_dense through seqcore.Sequential.train_on_batch (the model and trainer around the kernel)",
        model=True,
    )
)
register(
    dense_workload(
        "td_dense",
        B=64,
        T=100,
        F=128,
        U=256,
        description="Dense(256, linear, bias) on a (64, 100, 128) sequence: fwd + MSE + bwd (no dx) + SGD",
    )
)


# --------------------------------------------------------------------------------------------------
# Recurrent: LSTM / GRU over a sequence, MSE on every step's output
# --------------------------------------------------------------------------------------------------

_GATES = {"lstm": 4, "gru": 3}


def recurrent_flops(cell: str, B: int, T: int, F: int, H: int, train: bool) -> int:
    """Forward: every step multiplies [x_t, h_{t-1}] (F+H) by the gate weights (F+H, G*H), G = 4 gates
    for LSTM and 3 for GRU: ``2*B*T*(F+H)*G*H``. Training adds the backward pass, about twice the
    forward (gradients by the weights and by h / x), so a train step is ``3 * forward``. Elementwise
    gate math is not counted."""
    fwd = 2 * B * T * (F + H) * _GATES[cell] * H
    return 3 * fwd if train else fwd


def _rnn_data(B: int, T: int, F: int, H: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = _rng(seed)
    return {"x": _normal(rng, (B, T, F)), "target": _normal(rng, (B, T, H))}


def _seqcore_recurrent(cell: str, B: int, T: int, F: int, H: int, train: bool, rdrop: float = 0.0) -> Setup:
    def setup(ctx: Context) -> Step | None:
        kernels = _seqcore_ops()
        fwd_name = f"{cell}_forward"
        if not hasattr(kernels, fwd_name):
            raise Unavailable(f"seqcore kernel not yet available (seqcore.kernels has no {fwd_name})")
        d = _rnn_data(B, T, F, H)
        x, target = d["x"], d["target"]
        rng = _rng(1)
        g = _GATES[cell]
        lim = float(np.sqrt(6.0 / (F + g * H)))
        kernel = rng.uniform(-lim, lim, (F, g * H)).astype(np.float32)
        recurrent = (rng.normal(size=(H, g * H)) / np.sqrt(H)).astype(np.float32)
        bias = np.zeros((g * H,) if cell == "lstm" else (2, g * H), np.float32)
        fwd, bwd = getattr(kernels, fwd_name), getattr(kernels, f"{cell}_backward")
        if not train:

            def infer() -> float:
                return float(fwd(x, kernel, recurrent, bias, training=False).outputs[0, -1, 0])

            return Step(infer, f"seqcore.kernels.{fwd_name}(training=False)")

        mask_rng = np.random.default_rng(2)

        def masks() -> dict[str, Any]:
            """Keras's recurrent_dropout cell: fresh per-gate input and recurrent masks every step
            (drawn here as the layer draws them, so their cost is in the timing)."""
            if not rdrop:
                return {}

            def keep(shape: tuple[int, ...]) -> np.ndarray:
                return ((mask_rng.random(shape, dtype=np.float32) >= rdrop) / np.float32(1 - rdrop)).astype(np.float32)

            return {"input_masks": keep((g, B, F)), "recurrent_masks": keep((g, B, H))}

        def step() -> float:
            res = fwd(x, kernel, recurrent, bias, training=True, **masks())
            loss, grad = kernels.mse(res.outputs, target)
            grads = bwd(res.tape, grad, need_dx=False)  # first layer: no input gradient
            kernels.sgd_update(kernel, grads.dkernel, LR)
            kernels.sgd_update(recurrent, grads.drecurrent_kernel, LR)
            kernels.sgd_update(bias, grads.dbias, LR)
            return loss

        how = f"seqcore.kernels.{fwd_name} + mse + {cell}_backward(need_dx=False) + sgd_update"
        if rdrop:
            how += f" with per-gate dropout masks (rate {rdrop}) drawn every step"
        return Step(step, how)

    return setup


def _torch_recurrent(cell: str, B: int, T: int, F: int, H: int, train: bool, rdrop: float = 0.0) -> Setup:
    def setup(ctx: Context) -> Step:
        if rdrop:
            raise Unavailable("PyTorch's nn.LSTM/nn.GRU have no recurrent dropout (only between stacked layers)")
        import torch
        import torch.nn.functional as tF

        d = _rnn_data(B, T, F, H)
        x, target = torch.from_numpy(d["x"]), torch.from_numpy(d["target"])
        layer_cls = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
        rnn = layer_cls(F, H, batch_first=True)
        name = layer_cls.__name__
        if not train:
            rnn.eval()

            def infer() -> float:
                with torch.inference_mode():
                    out, _ = rnn(x)
                return float(out[0, -1, 0])

            return Step(infer, f"nn.{name}(batch_first) under torch.inference_mode ({_torch_threads_note()})")

        opt = torch.optim.SGD(rnn.parameters(), lr=LR)

        def step() -> float:
            opt.zero_grad(set_to_none=True)
            out, _ = rnn(x)
            loss = tF.mse_loss(out, target)
            loss.backward()
            opt.step()
            return loss.item()

        how = f"nn.{name}(batch_first), MSE on all steps + backward + optim.SGD ({_torch_threads_note()})"
        return Step(step, how)

    return setup


def _ort_recurrent(cell: str, B: int, T: int, F: int, H: int, train: bool) -> Setup:
    """ONNX Runtime, the serving engine, on inference workloads: the seqcore layer with the same
    weights as seqcore's setup, exported by ``seqcore.interop.to_onnx`` (one ONNX LSTM/GRU node
    between two transposes) and run by one InferenceSession with ``ctx.threads`` intra-op threads."""

    def setup(ctx: Context) -> Step:
        if train:
            raise Unavailable("ONNX Runtime is an inference engine (timed on inference workloads only)")
        import onnxruntime as ort
        import seqcore

        d = _rnn_data(B, T, F, H)
        rng = _rng(1)  # the weights of _seqcore_recurrent, drawn the same way
        g = _GATES[cell]
        lim = float(np.sqrt(6.0 / (F + g * H)))
        kernel = rng.uniform(-lim, lim, (F, g * H)).astype(np.float32)
        recurrent = (rng.normal(size=(H, g * H)) / np.sqrt(H)).astype(np.float32)
        bias = np.zeros((g * H,) if cell == "lstm" else (2, g * H), np.float32)
        layer_cls = seqcore.layers.LSTM if cell == "lstm" else seqcore.layers.GRU
        model = seqcore.Sequential([seqcore.Input((T, F), batch_size=B), layer_cls(H, return_sequences=True)])
        model.set_weights([kernel, recurrent, bias])
        so = ort.SessionOptions()
        so.intra_op_num_threads = ctx.threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(
            seqcore.interop.to_onnx(model).SerializeToString(), so, providers=["CPUExecutionProvider"]
        )
        feed = {sess.get_inputs()[0].name: d["x"]}

        def infer() -> float:
            return float(sess.run(None, feed)[0][0, -1, 0])

        return Step(
            infer,
            f"onnxruntime {ort.__version__} InferenceSession ({ctx.threads} intra-op threads), "
            "graph from seqcore.interop.to_onnx",
        )

    return setup


def _keras_recurrent(cell: str, B: int, T: int, F: int, H: int, train: bool, rdrop: float = 0.0) -> Setup:
    def setup(ctx: Context) -> Step:
        import keras
        import tensorflow as tf

        d = _rnn_data(B, T, F, H)
        x, target = tf.constant(d["x"]), tf.constant(d["target"])
        layer_cls = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU

        def build() -> Any:
            layer = layer_cls(H, return_sequences=True, dropout=rdrop, recurrent_dropout=rdrop)
            return keras.Sequential([keras.Input((T, F)), layer])

        return _keras_pick(ctx, "train" if train else "infer", build, x, target if train else None)

    return setup


def recurrent_workload(
    name: str,
    cell: str,
    B: int,
    T: int,
    F: int,
    H: int,
    *,
    train: bool = True,
    default: bool = True,
    rdrop: float = 0.0,
) -> Workload:
    """``rdrop``: dropout = recurrent_dropout = rdrop (Keras's per-gate masked cell)."""
    cls = {"lstm": "LSTM", "gru": "GRU"}[cell]
    what = "fwd + MSE on all steps + bwd + SGD" if train else "inference (forward only)"
    extra = f", dropout={rdrop}, recurrent_dropout={rdrop}" if rdrop else ""
    g = _GATES[cell]
    formula = f"forward 2*B*T*(F+H)*{g}H" + (" ; train = 3 x forward (backward ~ 2 x forward)" if train else "")
    return Workload(
        name=name,
        description=f"{cls}({H}, return_sequences{extra}) on a ({B}, {T}, {F}) sequence: {what}",
        shape={"B": B, "T": T, "F": F, "H": H},
        flops=recurrent_flops(cell, B, T, F, H, train),
        flops_formula=formula,
        setups={
            "seqcore": _seqcore_recurrent(cell, B, T, F, H, train, rdrop),
            "torch": _torch_recurrent(cell, B, T, F, H, train, rdrop),
            "keras": _keras_recurrent(cell, B, T, F, H, train, rdrop),
            **({} if train else {"onnxruntime": _ort_recurrent(cell, B, T, F, H, train)}),
        },
        kind="train" if train else "infer",
        default=default,
    )


register(recurrent_workload("lstm_mid", "lstm", B=64, T=100, F=32, H=128))
register(recurrent_workload("lstm_long", "lstm", B=16, T=2000, F=8, H=64))
register(recurrent_workload("lstm_large", "lstm", B=128, T=50, F=256, H=512))
register(recurrent_workload("gru_mid", "gru", B=64, T=100, F=32, H=128))
register(recurrent_workload("lstm_infer_b1", "lstm", B=1, T=100, F=32, H=128, train=False))
register(recurrent_workload("gru_infer_b1", "gru", B=1, T=100, F=32, H=128, train=False))
register(recurrent_workload("lstm_infer_b64", "lstm", B=64, T=100, F=32, H=128, train=False))
register(recurrent_workload("gru_infer_b64", "gru", B=64, T=100, F=32, H=128, train=False))
register(recurrent_workload("lstm_infer_large", "lstm", B=128, T=50, F=256, H=512, train=False, default=False))
register(recurrent_workload("lstm_rdrop", "lstm", B=64, T=100, F=32, H=128, rdrop=0.2))
register(recurrent_workload("gru_rdrop", "gru", B=64, T=100, F=32, H=128, rdrop=0.2))


# --------------------------------------------------------------------------------------------------
# Convolutional (lower priority; peers only for now)
# --------------------------------------------------------------------------------------------------


def conv1d_workload(name: str, B: int, T: int, C: int, Co: int, K: int) -> Workload:
    """Conv1D(Co, K, padding="same", linear) as a first layer: forward 2*B*T*K*C*Co, backward dW only
    (no dx: the input needs no gradient) 2*B*T*K*C*Co."""

    def seqcore_setup(ctx: Context) -> Step:
        kernels = _seqcore_ops()
        rng = _rng(0)
        x, target = _normal(rng, (B, T, C)), _normal(rng, (B, T, Co))
        lim = float(np.sqrt(6.0 / (K * C + K * Co)))
        kernel = rng.uniform(-lim, lim, (K, C, Co)).astype(np.float32)
        bias = np.zeros(Co, np.float32)

        def step() -> float:
            y = kernels.conv1d_forward(x, kernel, bias, padding="same")
            loss, g = kernels.mse(y, target)
            grads = kernels.conv1d_backward(x, kernel, y, g, padding="same", need_dx=False)
            kernels.sgd_update(kernel, grads.dkernel, LR)
            kernels.sgd_update(bias, grads.dbias, LR)
            return loss

        return Step(step, "seqcore.kernels: conv1d_forward(same), mse, conv1d_backward(need_dx=False), sgd_update x2")

    def torch_setup(ctx: Context) -> Step:
        import torch
        import torch.nn.functional as tF

        rng = _rng(0)
        # torch's native layout is channels-first (B, C, T); the data is made in that layout.
        x = torch.from_numpy(_normal(rng, (B, C, T)))
        target = torch.from_numpy(_normal(rng, (B, Co, T)))
        conv = torch.nn.Conv1d(C, Co, K, padding="same")
        opt = torch.optim.SGD(conv.parameters(), lr=LR)

        def step() -> float:
            opt.zero_grad(set_to_none=True)
            loss = tF.mse_loss(conv(x), target)
            loss.backward()
            opt.step()
            return loss.item()

        return Step(step, f"nn.Conv1d(padding='same') on (B, C, T) + MSE + SGD ({_torch_threads_note()})")

    def keras_setup(ctx: Context) -> Step:
        import keras
        import tensorflow as tf

        rng = _rng(0)
        x = tf.constant(_normal(rng, (B, T, C)))
        target = tf.constant(_normal(rng, (B, T, Co)))

        def build() -> Any:
            return keras.Sequential([keras.Input((T, C)), keras.layers.Conv1D(Co, K, padding="same")])

        return _keras_pick(ctx, "train", build, x, target)

    return Workload(
        name=name,
        description=f"Conv1D({Co}, {K}, same) on a ({B}, {T}, {C}) sequence: fwd + MSE + bwd (no dx) + SGD",
        shape={"B": B, "T": T, "C": C, "Co": Co, "K": K},
        flops=4 * B * T * K * C * Co,
        flops_formula="forward 2*B*T*K*C*Co + backward dW 2*B*T*K*C*Co (no dx: first layer)",
        setups={"seqcore": seqcore_setup, "torch": torch_setup, "keras": keras_setup},
        default=False,
    )


def cnn_lstm_workload(name: str, B: int, n_seq: int, n_steps: int, F: int, Co: int, K: int, H: int) -> Workload:
    """The CNN-LSTM of the seeds: TimeDistributed(Conv1D(Co, K, relu)) -> TimeDistributed(MaxPooling1D(2))
    -> TimeDistributed(Flatten) -> LSTM(H) -> Dense(1) on (B, n_seq, n_steps, F); one train step (MSE, SGD)."""
    L_out = n_steps - K + 1
    P = L_out // 2
    flat = P * Co

    def data() -> tuple[np.ndarray, np.ndarray]:
        rng = _rng(0)
        return _normal(rng, (B, n_seq, n_steps, F)), _normal(rng, (B, 1))

    def seqcore_setup(ctx: Context) -> Step:
        import seqcore

        x, y = data()
        seqcore.utils.set_random_seed(0)
        L = seqcore.layers
        model = seqcore.Sequential(
            [
                seqcore.Input((n_seq, n_steps, F)),
                L.TimeDistributed(L.Conv1D(Co, K, activation="relu")),
                L.TimeDistributed(L.MaxPooling1D(2)),
                L.TimeDistributed(L.Flatten()),
                L.LSTM(H),
                L.Dense(1),
            ]
        )
        model.compile(seqcore.optimizers.SGD(LR), "mse")
        return Step(
            lambda: model.train_on_batch(x, y), "seqcore.Sequential.train_on_batch (layers on the Rust kernels)"
        )

    def torch_setup(ctx: Context) -> Step:
        import torch
        import torch.nn.functional as tF

        xn, yn = data()
        x = torch.from_numpy(np.ascontiguousarray(xn.reshape(B * n_seq, n_steps, F).transpose(0, 2, 1)))
        y = torch.from_numpy(yn)
        conv = torch.nn.Conv1d(F, Co, K)
        lstm = torch.nn.LSTM(flat, H, batch_first=True)
        head = torch.nn.Linear(H, 1)
        opt = torch.optim.SGD([*conv.parameters(), *lstm.parameters(), *head.parameters()], lr=LR)

        def step() -> float:
            opt.zero_grad(set_to_none=True)
            h = tF.max_pool1d(torch.relu(conv(x)), 2)  # (B*n_seq, Co, P)
            h = h.transpose(1, 2).reshape(B, n_seq, flat)  # Keras's Flatten order (steps, channels)
            out, _ = lstm(h)
            loss = tF.mse_loss(head(out[:, -1]), y)
            loss.backward()
            opt.step()
            return loss.item()

        return Step(
            step,
            f"nn.Conv1d on folded (B*n_seq, F, steps) + relu + max_pool1d + nn.LSTM + Linear ({_torch_threads_note()})",
        )

    def keras_setup(ctx: Context) -> Step:
        import keras
        import tensorflow as tf

        xn, yn = data()
        x, y = tf.constant(xn), tf.constant(yn)
        L = keras.layers

        def build() -> Any:
            return keras.Sequential(
                [
                    keras.Input((n_seq, n_steps, F)),
                    L.TimeDistributed(L.Conv1D(Co, K, activation="relu")),
                    L.TimeDistributed(L.MaxPooling1D(2)),
                    L.TimeDistributed(L.Flatten()),
                    L.LSTM(H),
                    L.Dense(1),
                ]
            )

        return _keras_pick(ctx, "train", build, x, y)

    conv = 4 * B * n_seq * L_out * K * F * Co  # forward + dW (first layer: no dx)
    lstm = recurrent_flops("lstm", B, n_seq, flat, H, train=True)
    return Workload(
        name=name,
        description=(
            f"TimeDistributed(Conv1D({Co},{K},relu) -> MaxPooling1D(2) -> Flatten) -> LSTM({H}) -> Dense(1) on "
            f"({B}, {n_seq}, {n_steps}, {F}): one train step"
        ),
        shape={"B": B, "n_seq": n_seq, "n_steps": n_steps, "F": F, "Co": Co, "K": K, "H": H},
        flops=conv + lstm + 6 * B * H,
        flops_formula="conv 4*B*n_seq*L*K*F*Co (fwd + dW) + LSTM 3 * 2*B*n_seq*(flat+H)*4H + head",
        setups={"seqcore": seqcore_setup, "torch": torch_setup, "keras": keras_setup},
        default=False,
    )


register(conv1d_workload("conv1d", B=64, T=1000, C=32, Co=64, K=5))
register(cnn_lstm_workload("cnn_lstm", B=256, n_seq=4, n_steps=32, F=1, Co=64, K=3, H=100))


# --------------------------------------------------------------------------------------------------
# Functional: a residual two-branch graph (the shape of a real forecasting model with static features)
# --------------------------------------------------------------------------------------------------
def residual_two_branch_workload(name: str, B: int, T: int, F: int, S: int, C: int, H: int) -> Workload:
    """seq (B, T, F) -> Conv1D(C, 3, same, relu) -> Conv1D(F, 3, same) -> + seq (residual) -> LSTM(H);
    static (B, S) -> Dense(32, relu); Concatenate -> Dense(1). One train step, MSE, SGD."""

    def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = _rng(0)
        return _normal(rng, (B, T, F)), _normal(rng, (B, S)), _normal(rng, (B, 1))

    def seqcore_setup(ctx: Context) -> Step:
        import seqcore as keras

        xs, xf, y = data()
        keras.utils.set_random_seed(0)
        L = keras.layers
        seq, static = keras.Input((T, F)), keras.Input((S,))
        h = L.Conv1D(F, 3, padding="same")(L.Conv1D(C, 3, padding="same", activation="relu")(seq))
        h = L.LSTM(H)(L.Add()([h, seq]))
        out = L.Dense(1)(L.Concatenate()([h, L.Dense(32, activation="relu")(static)]))
        model = keras.Model([seq, static], out)
        model.compile(keras.optimizers.SGD(LR), "mse")
        return Step(lambda: model.train_on_batch([xs, xf], y), "seqcore.Model (Functional).train_on_batch")

    def torch_setup(ctx: Context) -> Step:
        import torch
        import torch.nn.functional as tF

        xs, xf, yn = data()
        seq = torch.from_numpy(np.ascontiguousarray(xs.transpose(0, 2, 1)))  # (B, F, T)
        static, y = torch.from_numpy(xf), torch.from_numpy(yn)
        c1, c2 = torch.nn.Conv1d(F, C, 3, padding=1), torch.nn.Conv1d(C, F, 3, padding=1)
        lstm = torch.nn.LSTM(F, H, batch_first=True)
        dense_s, head = torch.nn.Linear(S, 32), torch.nn.Linear(H + 32, 1)
        mods = [c1, c2, lstm, dense_s, head]
        opt = torch.optim.SGD([p for m in mods for p in m.parameters()], lr=LR)

        def step() -> float:
            opt.zero_grad(set_to_none=True)
            h = c2(torch.relu(c1(seq))) + seq
            out, _ = lstm(h.transpose(1, 2))
            z = torch.cat([out[:, -1], torch.relu(dense_s(static))], dim=1)
            loss = tF.mse_loss(head(z), y)
            loss.backward()
            opt.step()
            return loss.item()

        return Step(step, f"Conv1d x2 + residual + nn.LSTM, Linear branch, cat, Linear ({_torch_threads_note()})")

    def keras_setup(ctx: Context) -> Step:
        import keras
        import tensorflow as tf

        xs, xf, yn = data()
        L = keras.layers

        def build() -> Any:
            seq, static = keras.Input((T, F)), keras.Input((S,))
            h = L.Conv1D(F, 3, padding="same")(L.Conv1D(C, 3, padding="same", activation="relu")(seq))
            h = L.LSTM(H)(L.Add()([h, seq]))
            out = L.Dense(1)(L.Concatenate()([h, L.Dense(32, activation="relu")(static)]))
            return keras.Model([seq, static], out)

        return _keras_pick(ctx, "train", build, [tf.constant(xs), tf.constant(xf)], tf.constant(yn))

    conv = 2 * (3 * B * T * 3 * F * C)  # two convs, forward + dW + dx (second has dx)
    lstm = recurrent_flops("lstm", B, T, F, H, train=True)
    return Workload(
        name=name,
        description=(
            f"Functional: seq ({B}, {T}, {F}) -> Conv1D({C},3,relu) -> Conv1D({F},3) -> +seq -> LSTM({H}); "
            f"static ({B}, {S}) -> Dense(32, relu); Concatenate -> Dense(1): one train step"
        ),
        shape={"B": B, "T": T, "F": F, "S": S, "C": C, "H": H},
        flops=conv + lstm,
        flops_formula="2 convs 3 * 2*B*T*3*F*C + LSTM train",
        setups={"seqcore": seqcore_setup, "torch": torch_setup, "keras": keras_setup},
    )


register(residual_two_branch_workload("residual_two_branch", B=64, T=100, F=16, S=8, C=32, H=64))


# --------------------------------------------------------------------------------------------------
# Normalization
# --------------------------------------------------------------------------------------------------
def layernorm_workload(name: str, B: int, T: int, C: int) -> Workload:
    """LayerNormalization(axis=-1) as a first layer on (B, T, C): memory-bound. Per step every
    framework reads x for the statistics and writes y, the loss reads y and the target and writes
    dL/dy, and backward reads x and dL/dy for dgamma, dbeta (no dx: first layer): about
    7 * B*T*C*4 bytes to and from memory."""

    def data() -> tuple[np.ndarray, np.ndarray]:
        rng = _rng(0)
        return _normal(rng, (B, T, C)) * 2 + 1, _normal(rng, (B, T, C))

    def seqcore_setup(ctx: Context) -> Step:
        import seqcore

        kernels = _seqcore_ops()
        x, target = data()
        layer = seqcore.layers.LayerNormalization()
        layer(x[:1])

        def step() -> float:
            y, call = layer.apply(x, training=True)
            loss, g = kernels.mse(y, target)
            for w in layer.weights:
                w.grad = None
            layer.unapply(call, g, need_dx=False)
            for w in layer.weights:
                kernels.sgd_update(w.value, w.grad, LR)
            return loss

        return Step(step, "seqcore LayerNormalization.apply + mse + unapply(need_dx=False) + sgd_update x2")

    def torch_setup(ctx: Context) -> Step:
        import torch
        import torch.nn.functional as tF

        xn, tn = data()
        x, target = torch.from_numpy(xn), torch.from_numpy(tn)
        ln = torch.nn.LayerNorm(C, eps=1e-3)
        opt = torch.optim.SGD(ln.parameters(), lr=LR)

        def step() -> float:
            opt.zero_grad(set_to_none=True)
            loss = tF.mse_loss(ln(x), target)
            loss.backward()
            opt.step()
            return loss.item()

        return Step(step, f"nn.LayerNorm + MSE + SGD ({_torch_threads_note()})")

    def keras_setup(ctx: Context) -> Step:
        import keras
        import tensorflow as tf

        xn, tn = data()

        def build() -> Any:
            return keras.Sequential([keras.Input((T, C)), keras.layers.LayerNormalization()])

        return _keras_pick(ctx, "train", build, tf.constant(xn), tf.constant(tn))

    return Workload(
        name=name,
        description=f"LayerNormalization on a ({B}, {T}, {C}) sequence: fwd + MSE + bwd (no dx) + SGD",
        shape={"B": B, "T": T, "C": C},
        flops=16 * B * T * C,
        flops_formula="~16 flops per element (statistics, normalization, loss, gradients); memory-bound: "
        "~7 x B*T*C*4 bytes",
        setups={"seqcore": seqcore_setup, "torch": torch_setup, "keras": keras_setup},
        default=False,
    )


register(layernorm_workload("layernorm", B=64, T=500, C=256))


# --------------------------------------------------------------------------------------------------
# Attention
# --------------------------------------------------------------------------------------------------
def _torch_mha(torch: Any, D: int, heads: int, key_dim: int, dropout: float) -> Any:
    """Keras's MultiHeadAttention in PyTorch: q, k, v projections to heads*key_dim (which need not be
    D, so nn.MultiheadAttention cannot express it), scaled_dot_product_attention (PyTorch's fused
    CPU kernel, flash attention where it applies), an output projection back to D."""

    class MHA(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            inner = heads * key_dim
            self.q, self.k, self.v = (torch.nn.Linear(D, inner) for _ in range(3))
            self.o = torch.nn.Linear(inner, D)

        def forward(self, x: Any) -> Any:
            b, t, _ = x.shape
            split = lambda z: z.view(b, t, heads, key_dim).transpose(1, 2)  # noqa: E731
            a = torch.nn.functional.scaled_dot_product_attention(
                split(self.q(x)), split(self.k(x)), split(self.v(x)), dropout_p=dropout if self.training else 0.0
            )
            return self.o(a.transpose(1, 2).reshape(b, t, heads * key_dim))

    return MHA()


def mha_workload(name: str, B: int, T: int, D: int, heads: int, key_dim: int) -> Workload:
    """Self-attention MultiHeadAttention(heads, key_dim) on (B, T, D): fwd + MSE + bwd (dx too: an
    attention block is never the first layer that matters) + SGD."""

    def data() -> tuple[np.ndarray, np.ndarray]:
        rng = _rng(0)
        return _normal(rng, (B, T, D)), _normal(rng, (B, T, D))

    def seqcore_setup(ctx: Context) -> Step:
        import seqcore as keras

        x, y = data()
        keras.utils.set_random_seed(0)
        inp = keras.Input((T, D))
        out = keras.layers.MultiHeadAttention(heads, key_dim)(inp, inp)
        model = keras.Model(inp, out)
        model.compile(keras.optimizers.SGD(LR), "mse")
        return Step(lambda: model.train_on_batch(x, y), "seqcore.Model(MultiHeadAttention).train_on_batch")

    def torch_setup(ctx: Context) -> Step:
        import torch
        import torch.nn.functional as tF

        xn, yn = data()
        x, y = torch.from_numpy(xn).requires_grad_(), torch.from_numpy(yn)
        mha = _torch_mha(torch, D, heads, key_dim, 0.0)
        opt = torch.optim.SGD(mha.parameters(), lr=LR)

        def step() -> float:
            opt.zero_grad(set_to_none=True)
            loss = tF.mse_loss(mha(x), y)
            loss.backward()
            opt.step()
            return loss.item()

        return Step(step, f"Linear q/k/v + F.scaled_dot_product_attention + Linear, MSE, SGD ({_torch_threads_note()})")

    def keras_setup(ctx: Context) -> Step:
        import keras
        import tensorflow as tf

        xn, yn = data()

        def build() -> Any:
            inp = keras.Input((T, D))
            return keras.Model(inp, keras.layers.MultiHeadAttention(heads, key_dim)(inp, inp))

        return _keras_pick(ctx, "train", build, tf.constant(xn), tf.constant(yn))

    inner = heads * key_dim
    proj = 2 * B * T * D * inner * 4  # q, k, v, output projections, forward
    attn = 4 * B * heads * T * T * key_dim  # QK^T and PV, forward
    return Workload(
        name=name,
        description=f"MultiHeadAttention({heads} heads, key_dim {key_dim}) self-attention on ({B}, {T}, {D}): "
        f"fwd + MSE + bwd + SGD",
        shape={"B": B, "T": T, "D": D, "heads": heads, "key_dim": key_dim},
        flops=3 * (proj + attn),
        flops_formula="3 x forward (projections 4 x 2*B*T*D*H*dk, attention 4*B*H*T^2*dk): backward = 2 x forward",
        setups={"seqcore": seqcore_setup, "torch": torch_setup, "keras": keras_setup},
        default=False,
    )


register(mha_workload("mha", B=32, T=500, D=128, heads=4, key_dim=64))


def ts_transformer_workload(name: str, B: int, T: int, blocks: int, head_size: int, heads: int, ff_dim: int,
                            mlp: int, classes: int) -> Workload:  # fmt: skip
    """The keras.io time-series transformer classifier ("Timeseries classification with a
    Transformer model"): `blocks` encoder blocks (MultiHeadAttention with dropout 0.25, Dropout,
    LayerNormalization(1e-6), residual, Conv1D(ff_dim, 1, relu), Dropout, Conv1D(F, 1),
    LayerNormalization, residual), GlobalAveragePooling1D(channels_first), Dense(mlp, relu),
    Dropout(0.4), Dense(classes, softmax); sparse categorical cross-entropy, Adam(1e-4)."""
    F = 1

    def data() -> tuple[np.ndarray, np.ndarray]:
        rng = _rng(0)
        x = _normal(rng, (B, T, F))
        return x, (x.mean(axis=(1, 2)) > 0).astype(np.int64)

    def keras_like(keras: Any) -> Any:
        L = keras.layers

        def encoder(inputs: Any) -> Any:
            x = L.MultiHeadAttention(key_dim=head_size, num_heads=heads, dropout=0.25)(inputs, inputs)
            x = L.Dropout(0.25)(x)
            x = L.LayerNormalization(epsilon=1e-6)(x)
            res = x + inputs
            x = L.Conv1D(filters=ff_dim, kernel_size=1, activation="relu")(res)
            x = L.Dropout(0.25)(x)
            x = L.Conv1D(filters=inputs.shape[-1], kernel_size=1)(x)
            x = L.LayerNormalization(epsilon=1e-6)(x)
            return x + res

        inputs = keras.Input(shape=(T, F))
        x = inputs
        for _ in range(blocks):
            x = encoder(x)
        x = L.GlobalAveragePooling1D(data_format="channels_first")(x)
        x = L.Dropout(0.4)(L.Dense(mlp, activation="relu")(x))
        model = keras.Model(inputs, L.Dense(classes, activation="softmax")(x))
        return model

    def seqcore_setup(ctx: Context) -> Step:
        import seqcore as keras

        x, y = data()
        keras.utils.set_random_seed(0)
        model = keras_like(keras)
        model.compile(keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy")
        return Step(lambda: model.train_on_batch(x, y), "seqcore.Model (the keras.io code, import changed)")

    def torch_setup(ctx: Context) -> Step:
        import torch

        xn, yn = data()
        x, y = torch.from_numpy(xn), torch.from_numpy(yn)

        class Block(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.mha = _torch_mha(torch, F, heads, head_size, 0.25)
                self.n1, self.n2 = torch.nn.LayerNorm(F, eps=1e-6), torch.nn.LayerNorm(F, eps=1e-6)
                self.c1, self.c2 = torch.nn.Linear(F, ff_dim), torch.nn.Linear(ff_dim, F)  # Conv1D(k=1)
                self.drop = torch.nn.Dropout(0.25)

            def forward(self, inputs: Any) -> Any:
                res = self.n1(self.drop(self.mha(inputs))) + inputs
                h = self.n2(self.c2(self.drop(torch.relu(self.c1(res)))))
                return h + res

        class Net(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.blocks = torch.nn.Sequential(*(Block() for _ in range(blocks)))
                self.d1, self.d2 = torch.nn.Linear(T, mlp), torch.nn.Linear(mlp, classes)
                self.drop = torch.nn.Dropout(0.4)

            def forward(self, inputs: Any) -> Any:
                h = self.blocks(inputs).mean(dim=2)  # GlobalAveragePooling1D(channels_first)
                return self.d2(self.drop(torch.relu(self.d1(h))))

        net = Net()
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)

        def step() -> float:
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            return loss.item()

        return Step(step, f"the same model in torch.nn with F.scaled_dot_product_attention ({_torch_threads_note()})")

    def keras_setup(ctx: Context) -> Step:
        import keras
        import tensorflow as tf

        xn, yn = data()

        def build() -> Any:
            return keras_like(keras)

        adam = lambda: keras.optimizers.Adam(1e-4)  # noqa: E731
        return _keras_pick(ctx, "train", build, tf.constant(xn), tf.constant(yn),
                           loss="sparse_categorical_crossentropy", optimizer=adam)  # fmt: skip

    inner = heads * head_size
    attn = 4 * B * heads * T * T * head_size + 2 * B * T * F * inner * 4
    return Workload(
        name=name,
        description=f"keras.io time-series transformer classifier ({blocks} blocks, head_size {head_size}, {heads} "
        f"heads) on ({B}, {T}, {F}): one train step, Adam",
        shape={"B": B, "T": T, "blocks": blocks, "head_size": head_size, "heads": heads},
        flops=3 * blocks * attn,
        flops_formula="3 x blocks x (attention 4*B*H*T^2*dk + projections): the attention dominates",
        setups={"seqcore": seqcore_setup, "torch": torch_setup, "keras": keras_setup},
        default=False,
    )


register(ts_transformer_workload("ts_transformer", B=64, T=500, blocks=4, head_size=256, heads=4, ff_dim=4, mlp=128,
                                 classes=2))  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Long sequences: checkpointed backpropagation through time (issue #12)
# --------------------------------------------------------------------------------------------------


def long_lstm_workload(name: str, B: int, T: int, F: int, H: int, *, checkpointed: bool, torch_fits: bool) -> Workload:
    """``LSTM(H)`` many-to-one then ``Dense(1)``, MSE, SGD, one train step on a ``(B, T, F)`` batch.
    seqcore's LSTM is created inside ``RematScope("full")`` when ``checkpointed`` (its tape is a
    window of steps and the states at window starts) and keeps its whole (windowed) tape otherwise,
    which is the time the checkpointed step is compared with."""

    def data() -> tuple[np.ndarray, np.ndarray]:
        rng = _rng(0)
        return _normal(rng, (B, T, F)), _normal(rng, (B, 1))

    def seqcore_setup(ctx: Context) -> Step:
        import contextlib

        import seqcore as keras

        x, y = data()
        scope = keras.RematScope("full") if checkpointed else contextlib.nullcontext()
        with scope:
            lstm = keras.layers.LSTM(H)
        model = keras.Sequential([keras.Input((T, F)), lstm, keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(LR), "mse")
        how = "Sequential LSTM + Dense, train_on_batch; " + (
            "LSTM in RematScope('full'): checkpointed BPTT" if checkpointed else "whole tape kept"
        )
        return Step(lambda: model.train_on_batch(x, y), how)

    def torch_setup(ctx: Context) -> Step:
        if not torch_fits:
            raise Unavailable(
                f"PyTorch keeps the whole tape: about 64 GB at T={T} (6.4 GB measured at T=100000), more than "
                f"this machine has"
            )
        import torch
        import torch.nn.functional as tF

        xn, yn = data()
        x, y = torch.from_numpy(xn), torch.from_numpy(yn)
        lstm, head = torch.nn.LSTM(F, H, batch_first=True), torch.nn.Linear(H, 1)
        opt = torch.optim.SGD([*lstm.parameters(), *head.parameters()], lr=LR)

        def step() -> float:
            opt.zero_grad(set_to_none=True)
            out, _ = lstm(x)
            loss = tF.mse_loss(head(out[:, -1]), y)
            loss.backward()
            opt.step()
            return loss.item()

        return Step(step, f"nn.LSTM(batch_first) + Linear on the last step, whole tape ({_torch_threads_note()})")

    def keras_setup(ctx: Context) -> Step:
        raise Unavailable(
            f"not timed: a Keras 3 / TensorFlow LSTM step over T={T} runs a {T}-iteration while-loop and is "
            f"outside this benchmark's time budget"
        )

    setups: dict[str, Setup] = {"seqcore": seqcore_setup, "torch": torch_setup, "keras": keras_setup}
    if not checkpointed:
        setups = {"seqcore": seqcore_setup}  # the reference time for the checkpointed step
    return Workload(
        name=name,
        description=(
            f"LSTM({H}) many-to-one + Dense(1) on ({B}, {T}, {F}), MSE + SGD: one train step"
            + (", checkpointed BPTT (RematScope)" if checkpointed else ", whole tape kept (seqcore only)")
        ),
        shape={"B": B, "T": T, "F": F, "H": H},
        flops=recurrent_flops("lstm", B, T, F, H, train=True),
        flops_formula="forward 2*B*T*(F+H)*4H ; train = 3 x forward (checkpointed: one more forward, not counted)",
        setups=setups,
        default=False,
    )


register(long_lstm_workload("lstm_100k", B=8, T=100_000, F=8, H=128, checkpointed=True, torch_fits=True))
register(long_lstm_workload("lstm_100k_kept", B=8, T=100_000, F=8, H=128, checkpointed=False, torch_fits=True))
register(long_lstm_workload("lstm_1m", B=8, T=1_000_000, F=8, H=128, checkpointed=True, torch_fits=False))


# --------------------------------------------------------------------------------------------------
# Streaming: a stateful model called one time step at a time (online forecasting).
def stream_step_workload(name: str, F: int, H: int) -> Workload:
    """``Input((1, F), batch_size=1) -> LSTM(H, stateful=True) -> Dense(1)``, one call per step from
    Python on one core: seqcore ``predict_on_batch`` (its streaming plan), PyTorch ``LSTMCell`` +
    ``Linear`` under ``inference_mode`` carrying (h, c), Keras ``model(x)`` on the stateful model.
    Each call also timed alone: the report adds p50/p99 per call."""

    def xs(n: int = 64) -> list[np.ndarray]:
        rng = _rng(0)
        return [_normal(rng, (1, 1, F)) for _ in range(n)]

    def cycle(items: list[Any]) -> Callable[[], Any]:
        i = [0]

        def nxt() -> Any:
            i[0] = (i[0] + 1) % len(items)
            return items[i[0]]

        return nxt

    def seqcore_setup(ctx: Context) -> Step:
        import seqcore as keras

        model = keras.Sequential([keras.Input((1, F), batch_size=1), keras.layers.LSTM(H, stateful=True),
                                  keras.layers.Dense(1)])  # fmt: skip
        nxt = cycle(xs())
        model.predict_on_batch(nxt())  # builds the streaming plan
        return Step(lambda: model.predict_on_batch(nxt())[0, 0], "stateful Sequential, predict_on_batch per "
                    "step (seqcore.streaming plan)", {"per_call": True})  # fmt: skip

    def torch_setup(ctx: Context) -> Step:
        import torch

        cell, head = torch.nn.LSTMCell(F, H), torch.nn.Linear(H, 1)
        state = [torch.zeros(1, H), torch.zeros(1, H)]
        nxt = cycle([torch.from_numpy(x[:, 0]) for x in xs()])

        def step() -> Any:
            with torch.inference_mode():
                h, c = cell(nxt(), (state[0], state[1]))
                state[0], state[1] = h, c
                return head(h)

        return Step(step, f"LSTMCell + Linear under inference_mode, state carried ({_torch_threads_note()})",
                    {"per_call": True})  # fmt: skip

    def keras_setup(ctx: Context) -> Step:
        import keras

        model = keras.Sequential([keras.Input((1, F), batch_size=1), keras.layers.LSTM(H, stateful=True),
                                  keras.layers.Dense(1)])  # fmt: skip
        nxt = cycle(xs())
        model(nxt())
        return Step(lambda: float(model(nxt())[0, 0]), "stateful Sequential, model(x) per step (eager)",
                    {"per_call": True})  # fmt: skip

    return Workload(
        name=name,
        description=f"stateful LSTM({H}) + Dense(1), one step (1, 1, {F}) per call from Python",
        shape={"B": 1, "T": 1, "F": F, "H": H},
        flops=recurrent_flops("lstm", 1, 1, F, H, train=False) + 2 * H,
        flops_formula="2*(F+H)*4H + 2H per step",
        setups={"seqcore": seqcore_setup, "torch": torch_setup, "keras": keras_setup},
        kind="infer",
        default=False,
    )


register(stream_step_workload("stream_step", F=32, H=128))
