"""Writes tests/golden/metric_goldens.npz: Keras 3 results of the classification metrics (Precision,
Recall, AUC, TruePositives/FalsePositives/TrueNegatives/FalseNegatives, F1Score, FBetaScore) on fixed
random inputs, so that tests/test_metrics.py checks seqcore's metrics against Keras without Keras
installed. The inputs are stored in the file too.

Every metric is updated with two batches (the first 60% of the rows, then the rest), so the goldens
also check that the state accumulates across batches instead of averaging per-batch results.

Run once, by hand, where keras and tensorflow are installed:
    python tests/golden/generate_metric_goldens.py
Generated with keras 3.15.1 / tensorflow 2.21.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = Path(__file__).with_name("metric_goldens.npz")


def inputs() -> dict[str, dict[str, np.ndarray]]:
    r = np.random.default_rng(20240611)
    f32 = np.float32
    cases: dict[str, dict[str, np.ndarray]] = {}
    # binary, one prediction per sample
    cases["bin"] = {
        "yt": (r.random(60) < 0.4).astype(f32),
        "yp": r.random(60).astype(f32),
        "sw": r.random(60).astype(f32),
    }
    # predictions exactly on AUC's default grid i/199 and on 0, 0.5, 1: where the bucketing and the
    # float32 comparison have to agree with Keras to the last bit
    grid = (r.integers(0, 200, 60) / 199).astype(f32)
    grid[:6] = [0.0, 1.0, 0.5, 0.0, 1.0, 0.5]
    cases["grid"] = {"yt": (r.random(60) < 0.5).astype(f32), "yp": grid, "sw": r.integers(0, 3, 60).astype(f32)}
    # (samples, 1) predictions with (samples,) targets: Keras's squeeze-or-expand rank rule
    cases["col"] = {"yt": (r.random(40) < 0.5).astype(f32), "yp": r.random((40, 1)).astype(f32)}
    # multi-label (samples, labels)
    cases["multi"] = {
        "yt": (r.random((50, 4)) < 0.35).astype(f32),
        "yp": r.random((50, 4)).astype(f32),
        "sw": r.random(50).astype(f32),
    }
    # one-hot targets, softmax-like predictions rounded so that rows have ties (top_k order, F1 argmax)
    logits = r.normal(size=(50, 4))
    soft = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    cases["onehot"] = {
        "yt": np.eye(4, dtype=f32)[r.integers(0, 4, 50)],
        "yp": np.round(soft, 1).astype(f32),
        "sw": r.random(50).astype(f32),
    }
    # targets outside {0, 1}: Keras casts them to bool for the confusion metrics (non-zero = positive)
    # and uses them as they are in the F-score
    cases["nonbinary"] = {
        "yt": r.choice(np.array([0.0, 0.3, 1.0, 2.0, -1.0], f32), 40),
        "yp": r.random(40).astype(f32),
    }
    cases["nonbinary_col"] = {"yt": cases["nonbinary"]["yt"][:, None], "yp": cases["nonbinary"]["yp"][:, None]}
    # per-step outputs with a 0/1 weight per step (what a mask becomes)
    cases["seq"] = {
        "yt": (r.random((8, 6, 1)) < 0.5).astype(f32),
        "yp": r.random((8, 6, 1)).astype(f32),
        "sw": (r.random((8, 6)) < 0.7).astype(f32),
    }
    # logits for from_logits=True
    cases["logits"] = {"yt": (r.random(50) < 0.5).astype(f32), "yp": (r.normal(size=50) * 3).astype(f32)}
    # no positive label at all
    cases["nopos"] = {"yt": np.zeros(20, f32), "yp": r.random(20).astype(f32)}
    # predictions outside [0, 1] (an unbounded output): Keras clips them before bucketing on evenly
    # spaced thresholds, and compares them as they are otherwise
    cases["outside"] = {
        "yt": (r.random((30, 2)) < 0.5).astype(f32),
        "yp": (r.random((30, 2)) * 1.6 - 0.3).astype(f32),
        "sw": r.random(30).astype(f32),
    }
    # NaN predictions: never above a threshold (Keras's comparison is false, its bucket index dropped)
    nan = r.random(30).astype(f32)
    nan[::4] = np.nan
    cases["nan"] = {"yt": (r.random(30) < 0.5).astype(f32), "yp": nan}
    # perfectly separated, positives all at 1.0: the top bucket holds every positive (PR-gain's tp == 0 end)
    cases["separable"] = {
        "yt": np.array([1, 1, 1, 0, 0, 0, 0, 0], f32),
        "yp": np.array([1.0, 1.0, 1.0, 0.5, 0.4, 0.0, 0.5, 0.1], f32),
    }
    return cases


# (id, class, kwargs, case, weighted)
CONFIGS: list[tuple[str, str, dict, str, bool]] = []


def add(cls: str, kwargs: dict, case: str, weighted: bool = False) -> None:
    CONFIGS.append((f"{cls}_{len(CONFIGS)}", cls, kwargs, case, weighted))


for case in ("bin", "grid", "multi", "seq"):
    for w in (False, True):
        add("Precision", {}, case, w)
        add("Recall", {}, case, w)
        add("AUC", {}, case, w)
        add("AUC", {"curve": "PR"}, case, w)
add("Precision", {"thresholds": [0.1, 0.5, 0.9]}, "bin")
add("Recall", {"thresholds": [0.0, 0.25, 0.5, 0.75, 1.0]}, "grid", True)  # evenly spaced: Keras buckets
add("Precision", {"thresholds": [1.0, 0.5, 0.0]}, "grid")  # the same thresholds reversed: compared one by one
add("Precision", {"thresholds": 0.5}, "grid")  # 0.5 exactly on predictions of 0.5: not above
add("Precision", {"top_k": 2}, "onehot")
add("Recall", {"top_k": 2}, "onehot", True)
add("Precision", {"top_k": 1, "thresholds": 0.3}, "onehot")
add("Precision", {"class_id": 1}, "onehot")
add("Recall", {"class_id": 2, "top_k": 1}, "onehot")
add("Recall", {"class_id": 3}, "multi", True)
add("Precision", {}, "col")
add("Recall", {}, "col")
add("AUC", {}, "col")
for s in ("interpolation", "minoring", "majoring"):
    for curve in ("ROC", "PR"):
        add("AUC", {"curve": curve, "summation_method": s}, "grid", True)
add("AUC", {"curve": "PRGAIN"}, "bin")
add("AUC", {"num_thresholds": 7}, "bin", True)
add("AUC", {"num_thresholds": 7, "curve": "PR"}, "bin")
add("AUC", {"num_thresholds": 2}, "bin")
add("AUC", {"thresholds": [0.2, 0.7, 0.35]}, "bin")
add("AUC", {"thresholds": [0.25, 0.5, 0.75], "curve": "PR"}, "grid")  # evenly spaced once 0 and 1 are added
add("AUC", {"multi_label": True}, "multi")
add("AUC", {"multi_label": True, "curve": "PR"}, "multi", True)
add("AUC", {"multi_label": True, "label_weights": [1.0, 2.0, 0.0, 0.5]}, "multi")
add("AUC", {"label_weights": [1.0, 2.0, 0.0, 0.5]}, "multi", True)
add("AUC", {"from_logits": True}, "logits")
add("AUC", {"from_logits": True, "curve": "PR"}, "logits")
for cls in ("TruePositives", "FalsePositives", "TrueNegatives", "FalseNegatives"):
    add(cls, {}, "bin", True)
    add(cls, {"thresholds": [0.0, 0.5, 1.0]}, "grid")
    add(cls, {}, "seq", True)
for cls in ("Precision", "Recall", "AUC", "TruePositives", "FalseNegatives"):
    add(cls, {}, "nonbinary")
    add(cls, {}, "nopos")
add("AUC", {"curve": "PR"}, "nopos")
add("Precision", {"thresholds": [0.0, 0.5, 1.0]}, "outside", True)  # evenly spaced: clipped
add("Recall", {"thresholds": [1.0, 0.5, 0.0]}, "outside")  # not evenly spaced (order): compared directly
add("AUC", {}, "outside", True)
add("AUC", {"curve": "PR", "multi_label": True}, "outside")
add("TrueNegatives", {"thresholds": [0.0, 0.25, 0.5, 0.75, 1.0]}, "outside")
for cls, kw in [("Precision", {}), ("Recall", {"thresholds": [0.0, 0.5, 1.0]}), ("AUC", {}), ("TrueNegatives", {})]:
    add(cls, kw, "nan")
for kw in [{"curve": "PRGAIN"}, {"curve": "PR"}, {}, {"curve": "PRGAIN", "summation_method": "majoring"}]:
    add("AUC", kw, "separable")
for avg in (None, "micro", "macro", "weighted"):
    add("F1Score", {"average": avg}, "onehot", avg == "macro")
    add("F1Score", {"average": avg, "threshold": 0.5}, "multi", avg != "macro")
add("FBetaScore", {"beta": 2.0}, "onehot")
add("FBetaScore", {"beta": 0.5, "average": "weighted", "threshold": 0.3}, "multi", True)
add("F1Score", {"threshold": 0.5}, "nonbinary_col")
add("F1Score", {}, "nonbinary_col")  # no threshold on one column: every non-zero prediction is positive


def main() -> None:
    cases = inputs()
    out: dict[str, np.ndarray] = {}
    for name, arrays in cases.items():
        for k, v in arrays.items():
            out[f"in__{name}__{k}"] = v
    for cid, cls, kwargs, case, weighted in CONFIGS:
        m = getattr(keras.metrics, cls)(**kwargs)
        c = cases[case]
        split = int(len(c["yt"]) * 0.6)
        for part in (slice(0, split), slice(split, None)):
            m.update_state(c["yt"][part], c["yp"][part], c["sw"][part] if weighted else None)
        out[f"res__{cid}"] = np.asarray(m.result(), dtype=np.float64)
    out["configs"] = np.array(json.dumps(CONFIGS))
    out["versions"] = np.array(json.dumps({"keras": keras.__version__, "backend": keras.backend.backend()}))
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({len(CONFIGS)} metric configurations, {len(cases)} input sets)")


if __name__ == "__main__":
    main()
