"""Writes tests/golden/timeseries_goldens.npz and .json: the batches Keras 3's
``keras.utils.timeseries_dataset_from_array`` yields for a grid of arguments, so that
tests/test_timeseries.py checks seqcore's windows, targets and batch boundaries without Keras.

Run once, by hand, where keras and tensorflow are installed:
    python tests/golden/generate_timeseries_goldens.py
Generated with keras 3.15.1 / tensorflow 2.21.0.

The JSON holds ``CASES`` (each case's arguments). Per case ``c`` the npz holds ``c__x`` (all
batches' windows, concatenated),
``c__y`` (their targets, when there are targets) and ``c__sizes`` (each batch's size). Data is
``np.arange(n * features).reshape(n, features)`` as float32 and targets ``np.arange(n_targets) * 10``.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

# name -> (n, features, n_targets or None, kwargs)
CASES = {
    "basic": (20, 1, 20, {"sequence_length": 5, "batch_size": 4}),
    "stride_rate": (30, 2, 30, {"sequence_length": 4, "sequence_stride": 3, "sampling_rate": 2, "batch_size": 5}),
    "no_targets": (15, 3, None, {"sequence_length": 3, "batch_size": 2}),
    "short_targets": (25, 1, 9, {"sequence_length": 6, "batch_size": 4}),
    "start_end": (40, 2, 40, {"sequence_length": 5, "start_index": 7, "end_index": 31, "batch_size": 6}),
    "start_only": (20, 1, 20, {"sequence_length": 2, "start_index": 3, "sequence_stride": 4, "batch_size": 128}),
    "one_window": (10, 1, 10, {"sequence_length": 10, "batch_size": 3}),
    "forecast": (50, 2, 50, {"sequence_length": 8, "sampling_rate": 3, "batch_size": 7, "end_index": 45}),
}


def main() -> None:
    out: dict[str, np.ndarray] = {}
    for name, (n, features, n_targets, kw) in CASES.items():
        data = np.arange(n * features, dtype=np.float32).reshape(n, features)
        targets = None if n_targets is None else np.arange(n_targets) * 10
        ds = keras.utils.timeseries_dataset_from_array(data, targets, **kw)
        xs, ys, sizes = [], [], []
        for batch in ds:
            x = batch[0] if targets is not None else batch
            xs.append(np.asarray(x))
            sizes.append(len(xs[-1]))
            if targets is not None:
                ys.append(np.asarray(batch[1]))
        out[f"{name}__x"] = np.concatenate(xs)
        out[f"{name}__sizes"] = np.asarray(sizes)
        if ys:
            out[f"{name}__y"] = np.concatenate(ys)
    here = Path(__file__).parent
    np.savez_compressed(here / "timeseries_goldens.npz", **out)
    (here / "timeseries_goldens.json").write_text(json.dumps(CASES, indent=1) + "\n")
    print(f"wrote {len(CASES)} cases")


if __name__ == "__main__":
    main()
