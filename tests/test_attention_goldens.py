"""MultiHeadAttention, Attention and AdditiveAttention against Keras 3: for every case of
tests/golden/generate_attention_goldens.py, the same config, weights, inputs and masks must give
Keras's weight names, parameter count, output, attention scores, and the gradients of
``sum(y·dy) + sum(scores·ds)`` by every input and every trainable weight."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from seqcore import layers as L

HERE = Path(__file__).parent / "golden"
G = np.load(HERE / "attention_goldens.npz")
META = json.loads((HERE / "attention_goldens.json").read_text())["cases"]
TOL = {"rtol": 2e-5, "atol": 2e-5}


def _inputs(case: str) -> list[np.ndarray]:
    return [G[f"{case}__{k}"] for k in ("in0", "in1", "in2") if f"{case}__{k}" in G.files]


@pytest.mark.parametrize("case", sorted(META))
def test_against_keras(case: str) -> None:
    info = META[case]
    layer = getattr(L, info["class"])(**info["config"])
    ins = _inputs(case)
    kw: dict[str, Any] = dict(info["kwargs"])
    masks = {k: G[f"{case}__{k}"] for k in ("qmask", "vmask", "amask") if f"{case}__{k}" in G.files}
    mha = info["class"] == "MultiHeadAttention"
    if mha:
        q = ins[0]
        v = q if info["self_attention"] else ins[1]
        key = ins[2] if len(ins) > 2 else None
        call_kw = {"value": v, "key": key, **kw}
        if "qmask" in masks:
            call_kw["query_mask"] = masks["qmask"]
        if "vmask" in masks:
            call_kw["value_mask"] = masks["vmask"]
        if "amask" in masks:
            call_kw["attention_mask"] = masks["amask"]
        layer(q, v, key, **{k: a for k, a in call_kw.items() if k not in ("value", "key")})
        x: Any = q
    else:
        x = ins
        if masks:
            kw["lengths"] = [masks.get("qmask"), masks.get("vmask")]
            call_kw = kw
        else:
            call_kw = kw
        layer(ins)
    assert [w.name for w in layer.weights] == info["weights"]
    assert layer.count_params() == info["params"]
    layer.set_weights([G[f"{case}__w{i}"] for i in range(len(layer.weights))])
    for w in layer.weights:
        w.grad = None
    y, call = layer.apply(x, training=True, **call_kw)
    scores = None
    if isinstance(y, list):
        y, scores = y
    np.testing.assert_allclose(y, G[f"{case}__y"], **TOL)
    if scores is not None:
        np.testing.assert_allclose(scores, G[f"{case}__scores"], **TOL)
    dy = G[f"{case}__dy"]
    d = [dy, G[f"{case}__ds"]] if scores is not None else dy
    dx = layer.unapply(call, d)
    if mha:
        got = [dx]
        if not info["self_attention"]:
            extra = call.ctx.kwarg_grads
            got += [extra["value"], extra["key"]] if len(ins) > 2 else [extra["value"]]
    else:
        got = list(dx)
    for i, g in enumerate(got):
        np.testing.assert_allclose(g, G[f"{case}__din{i}"], rtol=1e-4, atol=1e-4, err_msg=f"input {i}")
    for i, w in enumerate(layer.trainable_weights):
        np.testing.assert_allclose(w.grad, G[f"{case}__dw{i}"], rtol=1e-4, atol=1e-4, err_msg=w.name)
