# Type stubs for the compiled extension (rust/src/py). Checked against the module by
# `python -m mypy.stubtest seqcore._seqcore` (make stubtest).
from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_ALIASES",
    "INPUT_ACTIVATIONS",
    "ATTENTION_SAVE_PROBS_MAX_KEYS",
    "BUILD_PROFILE",
    "__version__",
    "_debug_panic",
    "_force_simd_level",
    "activation_backward",
    "activation_backward_from_input",
    "activation_forward",
    "attention_backward",
    "attention_forward",
    "attention_scores",
    "batch_norm_backward",
    "batch_norm_forward",
    "batch_norm_moments",
    "dense_backward",
    "dense_forward",
    "detected_simd_level",
    "get_num_threads",
    "gru_backward",
    "gru_forward",
    "lstm_backward",
    "lstm_forward",
    "mse",
    "set_num_threads",
    "sgd_update",
    "sgd_momentum_update",
    "adam_update",
    "rmsprop_update",
    "adagrad_update",
    "PooledBuffer",
    "StreamPlan",
    "release_memory",
    "cached_bytes",
    "conv1d_forward",
    "conv1d_backward",
    "pool1d_forward",
    "max_pool1d_backward",
    "avg_pool1d_backward",
    "global_pool1d_forward",
    "global_max_pool1d_backward",
    "global_avg_pool1d_backward",
    "simd_level",
    "row_norm_backward",
    "row_norm_forward",
    "simple_rnn_backward",
    "simple_rnn_forward",
]

__version__: str
BUILD_PROFILE: str
ACTIVATIONS: list[str]
INPUT_ACTIVATIONS: list[str]
ACTIVATION_ALIASES: dict[str, str]

_F32 = npt.NDArray[np.float32]

def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def simd_level() -> str: ...
def detected_simd_level() -> str: ...
def _force_simd_level(level: str | None = None) -> str: ...
def _debug_panic() -> None: ...
def dense_forward(x: _F32, kernel: _F32, bias: _F32 | None, activation: str, out: _F32 | None = None) -> _F32: ...
def dense_backward(
    x: _F32, kernel: _F32, y: _F32, dy: _F32, activation: str, need_dx: bool, need_db: bool
) -> tuple[_F32 | None, _F32, _F32 | None]: ...
def activation_forward(x: _F32, name: str) -> _F32: ...
def activation_backward(y: _F32, dy: _F32, name: str) -> _F32: ...
def activation_backward_from_input(x: _F32, dy: _F32, name: str) -> _F32: ...
def mse(pred: _F32, target: _F32) -> tuple[float, _F32]: ...
def sgd_update(param: _F32, grad: _F32, lr: float) -> None: ...

_I64 = npt.NDArray[np.int64]

def lstm_forward(
    x: _F32,
    kernel: _F32,
    recurrent_kernel: _F32,
    bias: _F32 | None,
    h0: _F32 | None,
    c0: _F32 | None,
    mask: _I64 | npt.NDArray[np.bool_] | None,
    activation: str,
    recurrent_activation: str,
    go_backwards: bool,
    training: bool,
    input_masks: _F32 | None = None,
    recurrent_masks: _F32 | None = None,
    continued: npt.NDArray[np.bool_] | None = None,
) -> tuple[_F32, _F32, _F32, _F32 | None, _F32 | None]: ...
def lstm_backward(
    x: _F32,
    kernel: _F32,
    recurrent_kernel: _F32,
    has_bias: bool,
    h0: _F32 | None,
    c0: _F32 | None,
    mask: _I64 | npt.NDArray[np.bool_] | None,
    activation: str,
    recurrent_activation: str,
    go_backwards: bool,
    outputs: _F32,
    gates: _F32,
    cells: _F32,
    d_outputs: _F32 | None,
    d_h: _F32 | None,
    d_c: _F32 | None,
    need_dx: bool,
    input_masks: _F32 | None = None,
    recurrent_masks: _F32 | None = None,
    continued: npt.NDArray[np.bool_] | None = None,
) -> tuple[_F32 | None, _F32, _F32, _F32 | None, _F32, _F32]: ...
def gru_forward(
    x: _F32,
    kernel: _F32,
    recurrent_kernel: _F32,
    bias: _F32 | None,
    h0: _F32 | None,
    mask: _I64 | npt.NDArray[np.bool_] | None,
    activation: str,
    recurrent_activation: str,
    go_backwards: bool,
    reset_after: bool,
    training: bool,
    input_masks: _F32 | None = None,
    recurrent_masks: _F32 | None = None,
    continued: npt.NDArray[np.bool_] | None = None,
) -> tuple[_F32, _F32, _F32 | None, _F32 | None]: ...
def gru_backward(
    x: _F32,
    kernel: _F32,
    recurrent_kernel: _F32,
    has_bias: bool,
    h0: _F32 | None,
    mask: _I64 | npt.NDArray[np.bool_] | None,
    activation: str,
    recurrent_activation: str,
    go_backwards: bool,
    reset_after: bool,
    outputs: _F32,
    gates: _F32,
    extra: _F32,
    d_outputs: _F32 | None,
    d_h: _F32 | None,
    need_dx: bool,
    input_masks: _F32 | None = None,
    recurrent_masks: _F32 | None = None,
    continued: npt.NDArray[np.bool_] | None = None,
) -> tuple[_F32 | None, _F32, _F32, _F32 | None, _F32]: ...
def sgd_momentum_update(
    params: list[_F32], grads: list[_F32], velocities: list[_F32], lr: float, momentum: float, nesterov: bool
) -> None: ...
def adam_update(
    params: list[_F32],
    grads: list[_F32],
    ms: list[_F32],
    vs: list[_F32],
    lr: float,
    beta_1: float,
    beta_2: float,
    epsilon: float,
    t: int,
    weight_decay: float,
) -> None: ...
def conv1d_forward(
    x: _F32,
    kernel: _F32,
    bias: _F32 | None,
    strides: int,
    padding: str,
    dilation_rate: int,
    groups: int,
    activation: str,
) -> _F32: ...
def conv1d_backward(
    x: _F32,
    kernel: _F32,
    y: _F32,
    dy: _F32,
    strides: int,
    padding: str,
    dilation_rate: int,
    groups: int,
    activation: str,
    need_dx: bool,
    need_db: bool,
) -> tuple[_F32 | None, _F32, _F32 | None]: ...
def pool1d_forward(x: _F32, pool_size: int, strides: int, padding: str, average: bool) -> _F32: ...
def max_pool1d_backward(x: _F32, dy: _F32, pool_size: int, strides: int, padding: str) -> _F32: ...
def avg_pool1d_backward(dy: _F32, steps: int, pool_size: int, strides: int, padding: str) -> _F32: ...
def global_pool1d_forward(x: _F32, average: bool) -> _F32: ...
def global_max_pool1d_backward(x: _F32, dy: _F32) -> _F32: ...
def global_avg_pool1d_backward(dy: _F32, steps: int) -> _F32: ...

@final
class PooledBuffer: ...

# streaming inference (rust/src/py/stream.rs); see seqcore.streaming
@final
class StreamPlan:
    def __new__(
        cls, ops: list[tuple[str, Any, int, str, str]], batch: int, features: int, out_shape: list[int]
    ) -> StreamPlan: ...
    def run(self, x: _F32, lock: Any = None) -> _F32 | None: ...

def release_memory() -> None: ...
def cached_bytes() -> int: ...
def rmsprop_update(
    params: list[_F32],
    grads: list[_F32],
    velocities: list[_F32],
    averages: list[_F32] | None,
    momentums: list[_F32] | None,
    lr: float,
    rho: float,
    epsilon: float,
    momentum: float,
) -> None: ...
def adagrad_update(
    params: list[_F32], grads: list[_F32], accumulators: list[_F32], lr: float, epsilon: float
) -> None: ...

# normalization (rust/src/py/norm.rs)
def row_norm_forward(
    x: _F32, gamma: _F32 | None, beta: _F32 | None, epsilon: float, center_stats: bool, center_out: bool
) -> tuple[_F32, _F32, _F32]: ...
def row_norm_backward(
    x: _F32,
    dy: _F32,
    gamma: _F32 | None,
    mean: _F32,
    rstd: _F32,
    center_stats: bool,
    center_out: bool,
    need_dx: bool,
    need_dgamma: bool,
    need_dbeta: bool,
) -> tuple[_F32 | None, _F32 | None, _F32 | None]: ...
def batch_norm_moments(x: _F32, mask: _I64 | npt.NDArray[np.bool_] | None, steps: int) -> tuple[_F32, _F32, float]: ...
def batch_norm_forward(
    x: _F32, mean: _F32, variance: _F32, gamma: _F32 | None, beta: _F32 | None, epsilon: float
) -> tuple[_F32, _F32]: ...
def batch_norm_backward(
    x: _F32,
    dy: _F32,
    mean: _F32,
    rstd: _F32,
    gamma: _F32 | None,
    training: bool,
    mask: _I64 | npt.NDArray[np.bool_] | None,
    steps: int,
    denom: float,
    need_dx: bool,
    need_dgamma: bool,
    need_dbeta: bool,
) -> tuple[_F32 | None, _F32 | None, _F32 | None]: ...

# SimpleRNN (rust/src/py/rnn.rs)
def simple_rnn_forward(
    x: _F32,
    kernel: _F32,
    recurrent_kernel: _F32,
    bias: _F32 | None,
    h0: _F32 | None,
    mask: _I64 | npt.NDArray[np.bool_] | None,
    activation: str,
    go_backwards: bool,
    training: bool,
    input_masks: _F32 | None = None,
    recurrent_masks: _F32 | None = None,
    continued: npt.NDArray[np.bool_] | None = None,
) -> tuple[_F32, _F32, _F32 | None]: ...
def simple_rnn_backward(
    x: _F32,
    kernel: _F32,
    recurrent_kernel: _F32,
    has_bias: bool,
    h0: _F32 | None,
    mask: _I64 | npt.NDArray[np.bool_] | None,
    activation: str,
    go_backwards: bool,
    outputs: _F32,
    states: _F32,
    d_outputs: _F32 | None,
    d_h: _F32 | None,
    need_dx: bool,
    input_masks: _F32 | None = None,
    recurrent_masks: _F32 | None = None,
    continued: npt.NDArray[np.bool_] | None = None,
) -> tuple[_F32 | None, _F32, _F32, _F32 | None, _F32]: ...

ATTENTION_SAVE_PROBS_MAX_KEYS: int

# attention (rust/src/py/attention.rs); `options` has the attributes heads, key_dim, value_dim,
# cols (q, k, v column offsets), scale, causal, window, replace_fill, dropout, seed, scores_after_dropout
def attention_forward(
    q: _F32,
    k: _F32,
    v: _F32,
    options: Any,
    q_len: _I64 | None,
    k_len: _I64 | None,
    mask: npt.NDArray[np.uint8] | None,
    save_probs: bool,
) -> tuple[_F32, _F32, _F32 | None]: ...
def attention_backward(
    q: _F32,
    k: _F32,
    v: _F32,
    options: Any,
    q_len: _I64 | None,
    k_len: _I64 | None,
    mask: npt.NDArray[np.uint8] | None,
    o: _F32,
    stats: _F32,
    d_o: _F32,
    d_scores: _F32 | None,
    d_extra: _F32 | None,
    probs: _F32 | None,
    need: tuple[bool, bool, bool],
    fused: bool,
    want_dscale: bool,
) -> tuple[_F32 | None, _F32 | None, _F32 | None, float]: ...
def attention_scores(
    q: _F32,
    k: _F32,
    options: Any,
    q_len: _I64 | None,
    k_len: _I64 | None,
    mask: npt.NDArray[np.uint8] | None,
    stats: _F32,
) -> _F32: ...
