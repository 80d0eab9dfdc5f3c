"""Single layers against Keras 3: for every case of tests/golden/generate_layer_goldens.py
(normalization and activation layers), the same config and weights must give Keras's weight names,
parameter counts, inference and training outputs, the gradients of ``sum(y * dy)`` by the input and
every trainable weight, and the weights after the training call (moving statistics)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from seqcore import layers as L

HERE = Path(__file__).parent / "golden"
G = np.load(HERE / "layer_goldens.npz")
META = json.loads((HERE / "layer_goldens.json").read_text())


def run(layer: Any, x: np.ndarray, dy: np.ndarray, training: bool = True, **kw: Any) -> tuple[Any, ...]:
    for w in layer.weights:
        w.grad = None
    y, call = layer.apply(x, training=training, **kw)
    dx = layer.unapply(call, dy)
    return y, dx, [None if w.grad is None else w.grad.copy() for w in layer.trainable_weights]


CASES = sorted(META["cases"])


def _make(case: str) -> Any:
    info = META["cases"][case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if info["class"] != "RNN":
            return getattr(L, info["class"])(**info["config"])
        cfg = dict(info["config"])
        cells = [getattr(L, c)(**kw) for c, kw in cfg.pop("cells")]  # as generate_layer_goldens.make_layer
        return L.RNN(cells[0] if len(cells) == 1 else L.StackedRNNCells(cells), **cfg)


@pytest.mark.parametrize("case", CASES)
def test_against_keras(case: str) -> None:
    info = META["cases"][case]
    layer = _make(case)
    x, dy = G[f"{case}__x"], G[f"{case}__dy"]
    layer(x)
    n = len(layer.weights)
    assert [w.name for w in layer.weights] == info["weights"]
    layer.set_weights([G[f"{case}__w{i}"] for i in range(n)])
    assert layer.count_params() == info["total"]
    assert sum(int(np.prod(w.shape)) for w in layer.trainable_weights) == info["trainable"]
    kw: dict[str, Any] = {}
    if f"{case}__mask" in G.files:
        kw["lengths"] = G[f"{case}__mask"]
    infer, _ = layer.apply(x, training=False, **kw)
    np.testing.assert_allclose(infer, G[f"{case}__infer"], rtol=1e-5, atol=1e-5)
    y, dx, grads = run(layer, x, dy, **kw)
    np.testing.assert_allclose(y, G[f"{case}__train"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, G[f"{case}__dx"], rtol=1e-4, atol=1e-4)
    for i, gw in enumerate(grads):
        np.testing.assert_allclose(gw, G[f"{case}__dw{i}"], rtol=1e-4, atol=1e-4, err_msg=f"grad {i}")
    for i, w in enumerate(layer.get_weights()):
        np.testing.assert_allclose(w, G[f"{case}__after{i}"], rtol=1e-6, atol=1e-6, err_msg=f"weight {i} after")
