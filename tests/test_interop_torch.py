"""seqcore.interop PyTorch converters: from_torch / to_torch / torch_state_dict / load_torch_state_dict,
and the conv1d weight converters in seqcore.convert.

Without torch (CI): tests/golden/interop/torch_goldens.npz (written by torch 2.15 with
tests/golden/generate_interop_goldens.py) holds the state_dicts, inputs and outputs of nn.Linear,
multi-layer bidirectional nn.LSTM, nn.GRU, three nn.Conv1d paddings and two nn.Sequential; loading each
state_dict into the equivalent seqcore layer must reproduce torch's output, and torch_state_dict must
give the state_dict back. With torch installed: live round trips torch -> seqcore -> torch, error
messages, and the built-in verification catching a module that is not what its class says."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import seqcore
from seqcore import convert, interop

L = seqcore.layers
G = np.load(Path(__file__).parent / "golden" / "interop" / "torch_goldens.npz")
CASES = sorted({k.split("__")[0] for k in G.files})
CHANNELS_FIRST = {"conv_same_even", "conv_int_same_dilated", "conv_groups_stride", "seq_cnn"}


def _seqcore_equivalent(case: str) -> Any:
    """The seqcore layer for each golden module (see torch_modules() in the generator)."""
    if case == "linear":
        return L.Dense(3)  # unbuilt: load_torch_state_dict builds it from the weight shapes
    if case == "lstm_bi2":
        return seqcore.Sequential(
            [seqcore.Input((None, 3)), L.Bidirectional(L.LSTM(4, return_sequences=True)), L.Dropout(0.1),
             L.Bidirectional(L.LSTM(4, return_sequences=True))]
        )  # fmt: skip
    if case == "gru":
        return L.GRU(5, return_sequences=True)
    if case == "gru_nobias":
        return L.GRU(3, return_sequences=True, use_bias=False)
    if case == "conv_same_even":
        return L.Conv1D(4, 4, padding="same")
    if case == "conv_int_same_dilated":  # padding=4 = dilation * (kernel_size - 1) / 2
        return L.Conv1D(3, 5, padding="same", dilation_rate=2)
    if case == "conv_groups_stride":
        return L.Conv1D(6, 3, strides=2, dilation_rate=2, groups=2)
    if case == "seq_cnn":
        return seqcore.Sequential(
            [seqcore.Input((12, 2)), L.Conv1D(4, 3), L.Activation("relu"), L.MaxPooling1D(2),
             L.Conv1D(3, 3, padding="same"), L.Flatten(), L.Dense(2)]
        )  # fmt: skip
    if case == "seq_mlp":
        return seqcore.Sequential(
            [seqcore.Input((4,)), L.Dense(6), L.Activation("tanh"), L.Dropout(0.3), L.Dense(3), L.Activation("softmax")]
        )
    raise KeyError(case)


def _golden(case: str) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    sd = {k.split("__sd__")[1]: G[k] for k in G.files if k.startswith(f"{case}__sd__")}
    x, y = G[f"{case}__x"], G[f"{case}__y"]
    if case in CHANNELS_FIRST:  # torch (batch, channels, steps) -> seqcore (batch, steps, channels)
        x = np.ascontiguousarray(x.transpose(0, 2, 1))
        y = np.ascontiguousarray(y.transpose(0, 2, 1)) if y.ndim == 3 else y
    return sd, x, y


# ----- goldens, no torch --------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
def test_torch_state_dict_golden_reproduces_torch_outputs(case: str) -> None:
    sd, x, y = _golden(case)
    layer = _seqcore_equivalent(case)
    interop.load_torch_state_dict(layer, sd)
    out = layer(x)
    np.testing.assert_allclose(out, y, rtol=1e-5, atol=1e-5)
    assert float(np.max(np.abs(out - y))) < 1e-5


@pytest.mark.parametrize("case", CASES)
def test_torch_state_dict_gives_the_state_dict_back(case: str) -> None:
    sd, _, _ = _golden(case)
    layer = _seqcore_equivalent(case)
    interop.load_torch_state_dict(layer, sd)
    back = interop.torch_state_dict(layer)
    assert sorted(back) == sorted(sd)
    for key, value in sd.items():
        assert back[key].dtype == np.float32
        if case == "lstm_bi2" and key.startswith("bias_"):
            continue  # an LSTM only ever uses bias_ih + bias_hh: their sum survives, checked below
        np.testing.assert_array_equal(back[key], value, err_msg=key)
    if case == "lstm_bi2":
        for key in (k for k in sd if k.startswith("bias_ih")):
            hh = key.replace("bias_ih", "bias_hh")
            np.testing.assert_allclose(back[key] + back[hh], sd[key] + sd[hh], rtol=1e-6)
            assert not back[hh].any()


def test_conv1d_weight_converters() -> None:
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(6, 2, 3)).astype(np.float32), rng.normal(size=6).astype(np.float32)
    kernel, kb = convert.conv1d_from_torch(w, b)
    assert kernel.shape == (3, 2, 6) and kernel.dtype == np.float32 and kernel.flags.c_contiguous
    np.testing.assert_array_equal(kernel[1, 0, 4], w[4, 0, 1])  # (tap, input channel, filter)
    w2, b2 = convert.conv1d_to_torch(kernel, kb)
    np.testing.assert_array_equal(w2, w)
    assert b2 is not None and np.array_equal(b2, b) and b2 is not kb
    assert convert.conv1d_from_torch(w)[1] is None
    with pytest.raises(
        ValueError, match=r"conv1d_from_torch: weight must have shape \(out_channels.*received \(6, 2\)"
    ):
        convert.conv1d_from_torch(w[..., 0])
    with pytest.raises(ValueError, match=r"conv1d_from_torch: bias must have shape \(6,\).*received \(5,\)"):
        convert.conv1d_from_torch(w, b[:5])
    with pytest.raises(ValueError, match=r"conv1d_to_torch: kernel must have shape \(kernel_size.*received \(3, 2\)"):
        convert.conv1d_to_torch(kernel[..., 0])
    with pytest.raises(ValueError, match=r"conv1d_to_torch: bias must have shape \(6,\) = \(filters,\)"):
        convert.conv1d_to_torch(kernel, b[:2])


def test_load_refuses_bad_state_dicts_and_changes_nothing() -> None:
    sd, _, _ = _golden("seq_cnn")
    model = _seqcore_equivalent("seq_cnn")
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"missing \['5.bias'\], unexpected \['5.b'\]"):
        interop.load_torch_state_dict(model, {**{k: v for k, v in sd.items() if k != "5.bias"}, "5.b": sd["5.bias"]})
    with pytest.raises(ValueError, match=r"shape mismatch: 3.weight: expected \(3, 4, 3\), received \(3, 4, 2\)"):
        interop.load_torch_state_dict(model, {**sd, "3.weight": sd["3.weight"][..., :2]})
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="load_torch_state_dict: expected a mapping"):
        interop.load_torch_state_dict(model, [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"cannot build it from the state dict: no 'weight'"):
        interop.load_torch_state_dict(L.Dense(2), {"bias": np.zeros(2)})


def test_bare_linear_keys_load_into_a_dense_with_activation() -> None:
    dense = L.Dense(2, activation="relu")
    interop.load_torch_state_dict(dense, {"weight": np.ones((2, 3)), "bias": np.zeros(2)})
    assert sorted(interop.torch_state_dict(dense)) == ["0.bias", "0.weight"]  # nn.Sequential(Linear, ReLU)
    np.testing.assert_array_equal(dense(-np.ones((1, 3), np.float32)), [[0.0, 0.0]])


def test_time_distributed_dense_is_an_nn_linear() -> None:
    sd, x, y = _golden("linear")  # nn.Linear applied to (batch, 5, 4)
    model = seqcore.Sequential([seqcore.Input((5, 4)), L.TimeDistributed(L.Dense(3))])
    interop.load_torch_state_dict(model, {f"0.{k}": v for k, v in sd.items()})
    np.testing.assert_allclose(model.predict(x, verbose=0), y, atol=1e-5)
    assert sorted(interop.torch_state_dict(model.layers[0])) == ["bias", "weight"]


def test_linear_converts_to_a_dense_for_any_leading_axes() -> None:
    sd, x, y = _golden("linear")
    dense = L.Dense(3)
    interop.load_torch_state_dict(dense, sd)
    model = seqcore.Sequential([seqcore.Input((5, 4)), dense])  # built from (4,), used on (5, 4): fine
    np.testing.assert_allclose(model.predict(x, verbose=0), y, atol=1e-5)
    np.testing.assert_allclose(dense(x[:, 0]), y[:, 0], atol=1e-5)


@pytest.mark.parametrize(
    ("layer", "shape", "match"),
    [
        (L.GRU(2, reset_after=False), (4, 3), r"reset_after=False .* no torch equivalent"),
        (L.LSTM(2, go_backwards=True), (4, 3), r"go_backwards=True has no nn.LSTM/nn.GRU option"),
        (L.LSTM(2, activation="relu"), (4, 3), r"torch's cells are fixed to tanh and sigmoid"),
        (L.LSTM(2, dropout=0.2), (4, 3), r"dropout=0.2 drops the layer's inputs"),
        (L.Bidirectional(L.GRU(2), merge_mode="ave"), (4, 3), r"merge_mode='ave'; .* concatenates"),
        (L.Conv1D(2, 3, strides=2, padding="same"), (9, 3), r"padding='same' with strides=2"),
        (L.MaxPooling1D(2), (9, 3), r"no torch equivalent is known"),
    ],
)
def test_layers_without_a_torch_equivalent_are_named(layer: Any, shape: tuple[int, ...], match: str) -> None:
    layer(np.zeros((1, *shape), np.float32))  # build
    with pytest.raises(
        ValueError, match=rf"^torch_state_dict: layer '{layer.name}' \({type(layer).__name__}\): .*{match}"
    ):
        interop.torch_state_dict(layer)


def test_sequentials_without_an_nn_sequential_form_are_refused() -> None:
    inp = seqcore.Input
    cases = [
        (
            [inp((8, 2)), L.LSTM(3, return_sequences=True), L.Dense(2)],
            r"'lstm\w*' \(LSTM\): no nn.Sequential equivalent",
        ),
        ([inp((8, 2)), L.Conv1D(3, 3), L.Dense(2)], r"a Dense on a \(batch, steps, channels\) sequence after conv"),
        ([inp((8, 2)), L.Dense(3), L.Conv1D(3, 3)], r"Conv1D after channels-last layers"),
        ([inp((8, 2)), L.Conv1D(3, 3), L.Flatten()], r"ends with a Flatten of channels-first data"),
        ([inp((8, 2)), L.Conv1D(3, 3), L.MaxPooling1D(2, padding="same")], r"padding='same' has no nn.MaxPool1d form"),
    ]
    for layers, match in cases:
        with pytest.raises(ValueError, match=match):
            interop.torch_state_dict(seqcore.Sequential(layers))


def test_rnn_stack_becomes_one_multi_layer_module() -> None:
    model = seqcore.Sequential(
        [seqcore.Input((None, 3)), L.GRU(4, return_sequences=True), L.Dropout(0.2), L.GRU(4, return_sequences=False)]
    )
    sd = interop.torch_state_dict(model)
    assert sorted(sd) == sorted(f"{w}_l{k}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh") for k in (0, 1))
    bad = seqcore.Sequential([seqcore.Input((None, 3)), L.GRU(4, return_sequences=True), L.GRU(5)])
    with pytest.raises(ValueError, match=r"one hidden_size and one bias setting; layer 0 has units=4"):
        interop.torch_state_dict(bad)


def test_without_torch_the_module_converters_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    dense = L.Dense(2)
    dense(np.zeros((1, 3), np.float32))
    with pytest.raises(ImportError, match=r"to_torch needs torch \(pip install torch\); torch_state_dict and"):
        interop.to_torch(dense)
    with pytest.raises(ImportError, match="from_torch needs torch"):
        interop.from_torch(object())


# ----- with torch ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("torch")


def _modules(torch: Any) -> dict[str, tuple[Any, tuple[int, ...], dict[str, Any]]]:
    """name -> (module, torch input shape, from_torch kwargs)."""
    nn = torch.nn
    return {
        "linear": (nn.Linear(4, 3), (3, 4), {}),
        "linear_nobias": (nn.Linear(4, 3, bias=False), (2, 5, 4), {}),
        "lstm": (nn.LSTM(3, 5, batch_first=True), (2, 7, 3), {}),
        "lstm_nobias_bi": (nn.LSTM(3, 4, bias=False, bidirectional=True, batch_first=True), (2, 7, 3), {}),
        "lstm_stack_last": (nn.LSTM(3, 4, num_layers=3, batch_first=True), (2, 7, 3), {"return_sequences": False}),
        "gru_bi2": (nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True, dropout=0.2), (2, 6, 3), {}),
        "gru_time_major": (nn.GRU(3, 4), (6, 2, 3), {"assume_batch_first": True}),
        "conv_valid": (nn.Conv1d(3, 4, 3), (2, 3, 10), {}),
        "conv_same_odd_reach": (nn.Conv1d(3, 4, 2, padding="same", dilation=3, bias=False), (2, 3, 10), {}),
        "conv_groups": (nn.Conv1d(4, 8, 3, stride=3, groups=4), (2, 4, 14), {}),
        "seq_cnn_global": (
            nn.Sequential(
                nn.Conv1d(2, 4, 3),
                nn.Hardsigmoid(),
                nn.AvgPool1d(2),
                nn.Conv1d(4, 5, 3, padding=1),
                nn.AdaptiveMaxPool1d(1),
                nn.Flatten(),
                nn.Identity(),
                nn.Linear(5, 2),
                nn.Sigmoid(),
            ),
            (2, 2, 20),
            {},
        ),
        "seq_flatten": (
            nn.Sequential(nn.Conv1d(2, 3, 3), nn.Softmax(dim=1), nn.MaxPool1d(2), nn.Flatten(), nn.Linear(12, 2)),
            (2, 2, 10),
            {"input_length": 10},
        ),
        "seq_mlp": (nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Dropout(0.5), nn.Linear(5, 2)), (3, 4), {}),
    }


def test_live_round_trip_torch_seqcore_torch(torch: Any) -> None:
    torch.manual_seed(0)
    for name, (module, shape, kw) in _modules(torch).items():
        with torch.no_grad():
            for p in module.parameters():
                p.copy_(torch.randn_like(p) * 0.5)
        module.eval()
        layer = interop.from_torch(module, **kw)
        assert layer.conversion_report.verified and layer.conversion_report.max_abs_diff < 1e-5, name
        back = interop.to_torch(layer)
        assert back.conversion_report.max_abs_diff < 1e-5, name
        x = torch.randn(*shape)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch: 'same' padding with an even kernel copies the input
            ref = module(x)
            again = back(x.transpose(0, 1) if kw.get("assume_batch_first") else x)
        ref, again = (ref[0], again[0]) if isinstance(ref, tuple) else (ref, again)
        xs = x.numpy()
        if name.startswith(("conv", "seq_cnn", "seq_flatten")):
            xs = xs.transpose(0, 2, 1)
        if kw.get("assume_batch_first"):
            xs, ref = xs.transpose(1, 0, 2), ref.transpose(0, 1)
        want = ref.numpy()
        if name.startswith("conv"):
            want = want.transpose(0, 2, 1)
        if kw.get("return_sequences") is False:
            want = want[:, -1]
        np.testing.assert_allclose(np.asarray(layer(np.ascontiguousarray(xs))), want, atol=1e-5, err_msg=name)
        np.testing.assert_allclose(again.numpy(), ref.numpy(), atol=1e-5, err_msg=name)
        if not name.startswith("lstm"):  # LSTM biases come back summed
            for key, value in module.state_dict().items():
                np.testing.assert_array_equal(back.state_dict()[key].numpy(), value.numpy(), err_msg=f"{name} {key}")


def test_to_torch_of_seqcore_only_forms(torch: Any) -> None:
    """Causal padding and fused activations have no single torch module: they become small
    nn.Sequential modules that compute the same thing."""
    conv = L.Conv1D(3, 3, padding="causal", dilation_rate=2, activation="tanh")
    conv(np.zeros((1, 9, 2), np.float32))
    module = interop.to_torch(conv)
    assert [type(m).__name__ for m in module] == ["ConstantPad1d", "Conv1d", "Tanh"]
    assert module.conversion_report.max_abs_diff < 1e-6
    model = seqcore.Sequential(
        [seqcore.Input((16, 2)), L.Conv1D(4, 3, activation="relu"), L.MaxPooling1D(2), L.GlobalAveragePooling1D(),
         L.Dense(3, activation="softmax")]
    )  # fmt: skip
    module = interop.to_torch(model)
    assert [type(m).__name__ for m in module] == [
        "Conv1d", "ReLU", "MaxPool1d", "AdaptiveAvgPool1d", "Flatten", "Linear", "Softmax",
    ]  # fmt: skip
    assert module.conversion_report.max_abs_diff < 1e-6
    td = seqcore.Sequential([seqcore.Input((4, 3)), L.TimeDistributed(L.Dense(2, activation="tanh")), L.Dense(1)])
    module = interop.to_torch(td)
    assert [type(m).__name__ for m in module] == ["Linear", "Tanh", "Linear"]
    assert module.conversion_report.probe_shape == (2, 4, 3) and module.conversion_report.max_abs_diff < 1e-6


@pytest.mark.parametrize(
    ("make", "kw", "match"),
    [
        (lambda nn: nn.LSTM(3, 4, batch_first=True, proj_size=2), {}, r"LSTM\(proj_size=2\) projects the hidden"),
        (lambda nn: nn.GRU(3, 4), {}, r"GRU has batch_first=False .* pass assume_batch_first=True"),
        (lambda nn: nn.Conv1d(3, 4, 3, padding=1, padding_mode="circular"), {}, r"padding_mode='circular'"),
        (lambda nn: nn.Conv1d(3, 4, 3, padding=2), {}, r"padding=2\) pads 2 zero\(s\) on both sides.*np.pad"),
        (lambda nn: nn.Conv1d(3, 4, 3, padding=1, stride=2), {}, r"stride=2, dilation=1, padding=1\) pads"),
        (lambda nn: nn.RNN(3, 4), {}, r"RNN is not supported; seqcore converts nn.Linear"),
        (lambda nn: nn.Sequential(nn.LSTM(3, 4)), {}, r"nn.Sequential\[0\] LSTM: .* tuples"),
        (lambda nn: nn.Sequential(nn.Linear(3, 4), nn.CELU()), {}, r"nn.Sequential\[1\] CELU is not supported"),
        (
            lambda nn: nn.Sequential(nn.Linear(3, 4), nn.GELU(approximate="tanh")),
            {},
            r"nn.Sequential\[1\] GELU\(approximate='tanh'\): seqcore's gelu needs approximate='none'",
        ),
        (
            lambda nn: nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU()),
            {},
            r"LeakyReLU\(negative_slope=0.01\): seqcore's leaky_relu needs negative_slope=0.2",
        ),
        (lambda nn: nn.Sequential(nn.Conv1d(2, 3, 3), nn.Linear(3, 2)), {}, r"nn.Linear on a channels-first"),
        (lambda nn: nn.Sequential(nn.Conv1d(2, 3, 3), nn.Flatten(), nn.Linear(3, 2)), {}, r"input_length="),
        (lambda nn: nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=0)), {}, r"Softmax\(dim=0\)"),
        (lambda nn: nn.Sequential(nn.Conv1d(2, 3, 3), nn.MaxPool1d(2, ceil_mode=True)), {}, r"ceil_mode=True"),
    ],
)
def test_unsupported_modules_and_options_are_named(torch: Any, make: Any, kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=r"^from_torch: .*" + match):
        interop.from_torch(make(torch.nn), **kw)


def test_verification_catches_a_module_that_is_not_what_its_class_says(torch: Any) -> None:
    class Shifted(torch.nn.Linear):  # an nn.Linear subclass whose forward adds 1
        def forward(self, x: Any) -> Any:
            return super().forward(x) + 1

    with pytest.raises(
        ValueError, match=r"from_torch: verification failed: .* differs from the torch model by up to 1"
    ):
        interop.from_torch(Shifted(3, 2))
    layer = interop.from_torch(Shifted(3, 2), verify=False)
    assert layer.conversion_report.max_abs_diff is None and layer.conversion_report.detail == "verify=False"
    with pytest.raises(TypeError, match="from_torch: expected a torch.nn.Module; received int"):
        interop.from_torch(3)


def test_from_torch_leaves_the_module_alone(torch: Any) -> None:
    module = torch.nn.LSTM(3, 4, num_layers=2, dropout=0.5, batch_first=True).double().train()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    layer = interop.from_torch(module)
    assert module.training and next(module.parameters()).dtype == torch.float64
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert [type(x).__name__ for x in layer.layers] == ["LSTM", "Dropout", "LSTM"] and layer.layers[1].rate == 0.5


def test_to_torch_of_a_stateful_layer_keeps_its_state(torch: Any) -> None:
    lstm = L.LSTM(3, stateful=True, return_sequences=True)
    x = np.random.default_rng(0).normal(size=(2, 4, 2)).astype(np.float32)
    lstm(x)
    carried = [a.copy() for a in lstm.states]
    module = interop.to_torch(lstm)  # compared from zero states, as torch starts
    assert module.conversion_report.max_abs_diff < 1e-5
    for a, b in zip(lstm.states, carried, strict=True):
        np.testing.assert_array_equal(a, b)
