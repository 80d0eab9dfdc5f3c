"""Loading the frameworks the benchmark compares, each pinned to the same number of threads.

:func:`configure_env` must run before NumPy, torch or TensorFlow is imported: thread pools read
their environment once, when they start (TensorFlow's in particular cannot be resized after it has
run anything). :func:`load` then imports one framework, sets its thread counts through its API as
well, and reports its version, or why it is unavailable.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

ENV_THREAD_VARS = (
    "OMP_NUM_THREADS",  # torch's OpenMP pool (and OpenBLAS when it is built with OpenMP)
    "OPENBLAS_NUM_THREADS",  # NumPy's BLAS, used for the SGEMM roofline
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "SEQCORE_NUM_THREADS",
)


def configure_env(threads: int) -> None:
    """Thread counts and quiet logs for every framework; call before importing any of them."""
    for var in ENV_THREAD_VARS:
        os.environ[var] = str(threads)
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # no oneDNN / CPU-feature banners
    os.environ["KERAS_BACKEND"] = "tensorflow"  # Keras 3 peer = Keras on TensorFlow
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")


def isolate(names: list[str]) -> list[str]:
    """Lets torch and TensorFlow share one process; returns notes for the report.

    torch's optimizers import torch._dynamo, which imports triton when it is installed; triton's
    bundled LLVM and XLA's LLVM then register the same command-line options and the process aborts
    ("LLVM ERROR: inconsistency in registered CommandLine options"). torch's CPU eager mode never
    uses triton (it is the GPU/inductor code generator), so when both peers run, triton is made
    unimportable (torch checks for it with try/except ImportError).
    """
    notes = []
    if "torch" in names and "keras" in names and "triton" not in sys.modules:
        sys.modules["triton"] = None  # type: ignore[assignment]  # `import triton` -> ImportError
        notes.append("torch: `import triton` blocked (its LLVM clashes with XLA's in one process; CPU eager")
        notes[-1] += " never uses triton)"
    return notes


@dataclass
class Loaded:
    name: str
    ok: bool
    version: str | None = None
    reason: str | None = None  # why it was skipped
    threads: dict[str, Any] | None = None


def _load_seqcore(threads: int) -> Loaded:
    import seqcore

    seqcore.set_num_threads(threads)
    return Loaded("seqcore", True, seqcore.__version__, threads={"seqcore.get_num_threads": seqcore.get_num_threads()})


def _load_torch(threads: int) -> Loaded:
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # already started (only settable once, before any inter-op work)
        pass
    return Loaded(
        "torch",
        True,
        torch.__version__,
        threads={"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()},
    )


def _load_keras(threads: int) -> Loaded:
    import tensorflow as tf

    # Must precede anything that runs a TF op (the env vars set by configure_env say the same).
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras

    if not keras.__version__.startswith("3."):
        return Loaded("keras", False, reason=f"Keras {keras.__version__} found; the benchmark needs Keras 3")
    if keras.backend.backend() != "tensorflow":
        return Loaded("keras", False, reason=f"Keras backend is {keras.backend.backend()!r}, not tensorflow")
    return Loaded(
        "keras",
        True,
        f"keras {keras.__version__} / tensorflow {tf.__version__}",
        threads={
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        },
    )


def _load_onnxruntime(threads: int) -> Loaded:
    import onnxruntime

    # Threads are set per InferenceSession (SessionOptions.intra_op_num_threads) by each setup.
    return Loaded(
        "onnxruntime", True, f"onnxruntime {onnxruntime.__version__}", threads={"intra_op": threads, "inter_op": 1}
    )


_LOADERS = {"seqcore": _load_seqcore, "torch": _load_torch, "keras": _load_keras, "onnxruntime": _load_onnxruntime}


def load(name: str, threads: int) -> Loaded:
    try:
        return _LOADERS[name](threads)
    except ImportError as e:
        return Loaded(name, False, reason=f"ImportError: {e}")
