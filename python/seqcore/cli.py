"""Command-line entry points behind ``python -m seqcore``."""

from __future__ import annotations

import argparse
import time

import numpy as np

from . import info, ops


def run_info() -> int:
    for k, v in info().items():
        print(f"{k:20s} {v}")
    return 0


def add_demo_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="train a small sequence model and report the fit")
    p.add_argument("--epochs", type=int, default=200, help="training steps (default 200)")
    p.add_argument("--seed", type=int, default=0)


def run_demo(args: argparse.Namespace) -> int:
    """A time-distributed Dense regression trained with the fused kernels: every step of a
    (batch, time, features) sequence is mapped by the same weights (Keras's Dense on a sequence).
    The full forecasting demo on a real series arrives with the trainer."""
    rng = np.random.default_rng(args.seed)
    b, t, f, u = 64, 100, 16, 8
    true_w = rng.normal(size=(f, u)).astype(np.float32)
    x = rng.normal(size=(b, t, f)).astype(np.float32)
    y = np.tanh(x @ true_w).astype(np.float32)
    w = (rng.normal(size=(f, u)) * 0.1).astype(np.float32)
    bias = np.zeros(u, np.float32)
    print(f"seqcore {info()['version']} ({info()['simd_level']}, {info()['num_threads']} threads)")
    print(f"Fitting Dense({u}, activation='tanh') on sequences of shape {x.shape} -> {y.shape}")
    t0 = time.perf_counter()
    first = None
    for step in range(args.epochs):
        pred = ops.dense_forward(x, w, bias, "tanh")
        loss, g = ops.mse(pred, y)
        first = loss if first is None else first
        grads = ops.dense_backward(x, w, pred, g, "tanh", need_dx=False)
        ops.sgd_update(w, grads.dkernel, 2.0)
        assert grads.dbias is not None
        ops.sgd_update(bias, grads.dbias, 2.0)
        if step % max(1, args.epochs // 5) == 0 or step == args.epochs - 1:
            print(f"  step {step + 1:4d}  mse {loss:.5f}")
    dt = time.perf_counter() - t0
    print(f"mse {first:.4f} -> {loss:.5f} in {args.epochs} steps ({dt * 1e3 / args.epochs:.2f} ms/step)")
    return 0
