"""`python -m seqcore demo` / `info`, the bundled datasets, the forecasting pipeline
(seqcore.demo) and the built-in PNG writer (seqcore._png).

End-to-end runs use 1-2 epochs: they check the plumbing (data, split, shapes, report, plot), not
accuracy. One test trains the default model fully (~2 s) to check the claim the README makes: the
model beats the naive forecast on the default data.
"""

from __future__ import annotations

import math
import re
import struct
import subprocess
import sys
import zlib
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import seqcore
from seqcore import _png, datasets
from seqcore import demo as demo_mod
from seqcore.__main__ import main
from seqcore.demo import DemoConfig, DemoError

FAST = ["--epochs", "2", "--patience", "0"]


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo writes ./seqcore_demo.png by default: never into the checkout."""
    monkeypatch.chdir(tmp_path)


# ----- an independent PNG reader (stdlib only) -----------------------------------------------
def read_png(path: Path) -> np.ndarray:
    """Checks signature, chunk CRCs, IHDR and IDAT, and returns the (h, w, 3) pixels. Written from
    the PNG spec, not from seqcore._png, and strict about what the builtin writer promises."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "bad PNG signature"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, f"CRC mismatch in {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    assert pos == len(data), "trailing bytes after the last chunk"
    assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    w, h, depth, color_type, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, color_type, comp, filt, interlace) == (8, 2, 0, 0, 0), "expected 8-bit RGB, not interlaced"
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(raw) == h * (1 + 3 * w)
    rows = np.frombuffer(raw, np.uint8).reshape(h, 1 + 3 * w)
    assert (rows[:, 0] == 0).all(), "the builtin writer uses filter type 0 on every row"
    return rows[:, 1:].reshape(h, w, 3)


def count_color(img: np.ndarray, color: tuple[int, int, int]) -> int:
    return int((img == np.array(color, np.uint8)).all(axis=2).sum())


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def sine_csv(path: Path, n: int = 80, header: str = "date,value") -> Path:
    """A small seasonal series with a date column, as a user might export it."""
    lines = [header] if header else []
    for i in range(n):
        lines.append(f"2000-{i:03d},{10 + 5 * math.sin(2 * math.pi * i / 12) + 0.05 * i:.4f}")
    return write_csv(path, "\n".join(lines) + "\n")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["demo", *argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


# ----- datasets -------------------------------------------------------------------------------
def test_sunspots_loader() -> None:
    years, values = datasets.load_sunspots()
    assert len(years) == len(values) == 309
    assert years.dtype == np.int64 and values.dtype == np.float64
    np.testing.assert_array_equal(years, np.arange(1700, 2009))
    assert np.isfinite(values).all() and (values >= 0).all()
    # Spot values from statsmodels' file: 1700 -> 5, the 1957 maximum of the record, 2008 -> 2.9.
    assert values[0] == 5.0 and values[-1] == 2.9
    assert years[np.argmax(values)] == 1957 and values.max() == 190.2


def test_co2_loader_is_monthly_and_seasonal() -> None:
    t, values = datasets.load_co2()
    assert len(t) == len(values) == 444  # 37 years of months, 1965-01 .. 2001-12
    np.testing.assert_allclose(np.diff(t), 1 / 12, atol=1e-9)
    assert t[0] == 1965.0 and math.isclose(t[-1], 2001 + 11 / 12)
    assert np.isfinite(values).all() and 315 < values.min() < values.max() < 375
    assert values[0] == 319.40
    d = datasets.load("co2")
    assert d.season == 12 and d.labels[0] == "1965-01" and d.labels[-1] == "2001-12"
    # Mauna Loa's seasonal cycle peaks in May: the mean detrended May exceeds the mean October.
    detrended = values - np.convolve(values, np.ones(12) / 12, mode="same")
    months = np.arange(len(values)) % 12
    inner = slice(6, -6)
    assert detrended[inner][months[inner] == 4].mean() > detrended[inner][months[inner] == 9].mean() + 3


def test_dataset_files_are_package_resources() -> None:
    root = files("seqcore.datasets")
    for name in ("sunspots.csv", "co2_monthly.csv", "SOURCE.md"):
        assert root.joinpath(name).is_file(), name
    source = root.joinpath("SOURCE.md").read_text(encoding="utf-8")
    assert "public domain" in source and "statsmodels" in source


def test_unknown_dataset_lists_the_names() -> None:
    with pytest.raises(ValueError, match=r"unknown dataset 'nope'; available: sunspots, co2"):
        datasets.load("nope")


# ----- split, baselines, metrics --------------------------------------------------------------
def test_split_is_chronological_and_minimum_length_is_exact() -> None:
    sp = demo_mod.split_series(309, 12)
    assert (sp.train_end, sp.val_end) == (309 - 92, 309 - 46)  # 15 % of 309 is 46
    assert sp.train_targets[0] == 12 and sp.train_targets[-1] + 1 == sp.val_targets[0]
    assert sp.val_targets[-1] + 1 == sp.test_targets[0] and sp.test_targets[-1] == 308
    for window in (2, 5, 12, 30):
        n = demo_mod.min_length(window)
        demo_mod.split_series(n, window)  # accepted
        with pytest.raises(DemoError, match=rf"has {n - 1} values.*needs at least {n}"):
            demo_mod.split_series(n - 1, window)


def test_baselines_on_a_hand_made_series() -> None:
    # n = 40, window 3: test = val = 6 values (15 % of 40), train targets 3..27, test targets 34..39.
    v = np.array([float(i % 5) + 0.5 * i for i in range(40)])
    sp = demo_mod.split_series(40, 3)
    assert (sp.train_end, sp.val_end) == (28, 34)
    b = demo_mod.baseline_forecasts(v, sp, season=5)
    actual = v[34:]
    np.testing.assert_array_equal(b["naive (last value)"], [v[33], v[34], v[35], v[36], v[37], v[38]])
    np.testing.assert_array_equal(b["seasonal naive (5 steps back)"], [v[29], v[30], v[31], v[32], v[33], v[34]])
    np.testing.assert_allclose(b["mean of the training span"], np.full(6, sum(v[:28]) / 28))
    # v[t] - v[t-5] = 2.5 for every t: the seasonal naive is off by exactly 2.5.
    assert demo_mod.rmse(b["seasonal naive (5 steps back)"], actual) == pytest.approx(2.5)
    assert demo_mod.mae(b["seasonal naive (5 steps back)"], actual) == pytest.approx(2.5)
    # i % 5 + i/2 is not linear in 3 lags with an intercept in general; still finite and 6 long.
    assert b["linear autoregression, 3 lags"].shape == (6,)


def test_linear_autoregression_recovers_an_exact_recursion() -> None:
    # v[t] = 0.5 v[t-1] - 0.3 v[t-2] + 2 is exactly representable: the fit forecasts it exactly.
    v = [1.0, 3.0]
    for _ in range(58):
        v.append(0.5 * v[-1] - 0.3 * v[-2] + 2.0 + 0.0)
    noise = np.sin(np.arange(60) * 1.7) * 1e-9  # keeps the design matrix from being rank deficient
    series = np.array(v) + noise
    sp = demo_mod.split_series(60, 2)
    f = demo_mod.baseline_forecasts(series, sp, None)["linear autoregression, 2 lags"]
    np.testing.assert_allclose(f, series[sp.test_targets], atol=1e-6)


def test_rmse_mae_by_hand() -> None:
    assert demo_mod.rmse(np.array([1.0, 2.0, 3.0]), np.array([1.0, 4.0, 3.0])) == pytest.approx(math.sqrt(4 / 3))
    assert demo_mod.mae(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 3.0])) == pytest.approx(1.0)


def test_comparison_line_is_honest_both_ways() -> None:
    assert demo_mod.comparison_line(14.2, 21.7, "naive (last value)") == (
        "Test RMSE: model 14.20 vs naive (last value) 21.70 (the model is 1.53x better)"
    )
    worse = demo_mod.comparison_line(3.0, 2.0, "naive (last value)")
    assert "1.50x WORSE" in worse and "naive forecast wins" in worse


def test_cnn_lstm_shape() -> None:
    # The fewest sub-sequences (>= 2) that leave >= 4 steps each for Conv1D(3) + MaxPooling1D(2).
    assert demo_mod.cnn_lstm_shape(12) == (2, 6)
    assert demo_mod.cnn_lstm_shape(8) == (2, 4)
    assert demo_mod.cnn_lstm_shape(15) == (3, 5)
    with pytest.raises(DemoError, match=r"--window 9 cannot be split that way .*Use e\.g\. --window 8 or --window 10"):
        demo_mod.cnn_lstm_shape(9)  # 3 x 3 is too short after the convolution
    with pytest.raises(DemoError, match=r"--window 7 cannot be split that way .*Use e\.g\. --window 8 or --window 10"):
        demo_mod.cnn_lstm_shape(7)


# ----- the CLI end to end ---------------------------------------------------------------------
@pytest.mark.parametrize("model", ["lstm", "gru", "cnn-lstm"])
def test_demo_end_to_end_each_model(model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "out.png"
    code, out, err = run_cli(capsys, *FAST, "--model", model, "--plot", str(plot), "--renderer", "builtin")
    assert code == 0, err
    assert "Yearly sunspot numbers" in out and "public domain" in out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "━" in out  # the Keras-style progress bar
    assert re.search(r"train +1700 to 1916: 205 windows", out)
    assert re.search(r"test +1963 to 2008: 46 one-step forecasts", out)
    assert re.search(r"naive \(last value\) +29\.31 +22\.45", out)  # independent of the model
    last = out.strip().splitlines()
    assert re.fullmatch(
        r"Test RMSE: model \d+\.\d\d vs naive \(last value\) 29\.31 \(the model is \d+\.\d\dx (better|WORSE.*)\)",
        last[-2],
    )
    assert last[-1].startswith(f"Plot: {plot.resolve()}") and "built-in PNG writer" in last[-1]
    img = read_png(plot)
    assert img.shape == (760, 1000, 3)
    top = img[40:380]  # the forecast panel, below its title/legend row
    for color in (_png.BLUE, _png.ORANGE, _png.GREY):  # actual, forecast, naive
        assert count_color(top, color) > 500, color


def test_default_model_beats_the_naive_forecast() -> None:
    """The README's claim for `python -m seqcore demo` with its defaults (a full training, ~2 s)."""
    res = demo_mod.run(DemoConfig(plot=None, verbose=0), out=lambda _line: None)
    assert res.naive_label == "naive (last value)" and res.naive_rmse == pytest.approx(29.311, abs=1e-3)
    assert res.naive_rmse / res.model_rmse > 1.5
    assert res.model_rmse < res.scores["linear autoregression, 12 lags"][0]
    assert res.best_epoch is not None and res.best_epoch <= len(res.history["loss"])
    assert res.summary_line.endswith("better)")


def test_co2_uses_seasonal_naive_and_quiet_prints_only_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, *FAST, "--dataset", "co2", "--quiet", "--no-plot")
    assert code == 0
    assert "Epoch" not in out and "━" not in out and "Model:" not in out
    assert "seasonal naive (12 steps back)" in out and "Errors (ppmv)" in out
    assert out.strip().splitlines()[-1].startswith("Test RMSE: model ")
    assert not (tmp_path / demo_mod.DEFAULT_PLOT).exists()  # --no-plot: nothing in the working directory


def test_same_seed_same_forecast() -> None:
    cfg = DemoConfig(epochs=2, patience=0, plot=None, verbose=0, seed=7)
    a = demo_mod.run(cfg, out=lambda _line: None)
    b = demo_mod.run(cfg, out=lambda _line: None)
    np.testing.assert_array_equal(a.forecast, b.forecast)


def test_no_leakage_from_validation_and_test_spans(tmp_path: Path) -> None:
    """Two series that agree on the training span train identically: the scaling and the training
    windows use nothing after it."""
    base = 20 + 10 * np.sin(np.arange(120) / 3.0)
    changed = base.copy()
    sp = demo_mod.split_series(120, 12)
    changed[sp.train_end :] *= 50.0
    runs = []
    for name, series in (("a.csv", base), ("b.csv", changed)):
        path = write_csv(tmp_path / name, "\n".join(f"{x:.6f}" for x in series) + "\n")
        cfg = DemoConfig(data=str(path), epochs=2, patience=0, plot=None, verbose=0)
        runs.append(demo_mod.run(cfg, out=lambda _line: None))
    assert runs[0].history["loss"] == runs[1].history["loss"]
    assert runs[0].history["val_loss"] != runs[1].history["val_loss"]


def test_forecasts_follow_the_level(tmp_path: Path) -> None:
    """Windows are taken relative to their last value: the same series shifted up by 1e7 (far
    outside anything float32 levels could resolve to the step) gets the same forecasts shifted."""
    series = 50 + np.cumsum(np.sin(np.arange(150) / 2.0) + 0.1)
    runs = []
    for name, offset in (("low.csv", 0.0), ("high.csv", 1e7)):
        path = write_csv(tmp_path / name, "\n".join(f"{x + offset:.6f}" for x in series) + "\n")
        cfg = DemoConfig(data=str(path), epochs=2, patience=0, plot=None, verbose=0)
        runs.append(demo_mod.run(cfg, out=lambda _line: None))
    np.testing.assert_allclose(runs[1].forecast - 1e7, runs[0].forecast, atol=1e-3)
    assert runs[1].model_rmse == pytest.approx(runs[0].model_rmse, abs=1e-3)


def test_user_csv_with_header_and_date_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = sine_csv(tmp_path / "sales.csv")
    plot = tmp_path / "sales.png"
    code, out, err = run_cli(
        capsys, *FAST, "--data", str(path), "--column", "value", "--season", "12", "--plot", str(plot)
    )
    assert code == 0, err
    assert "Data: sales.csv, column 'value' (80 values)" in out
    assert "train       2000-000 to 2000-055" in out  # the date column labels the spans
    assert "seasonal naive (12 steps back)" in out
    assert png_size(plot) == (1000, 760)


def test_user_csv_column_is_optional_with_one_numeric_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = sine_csv(tmp_path / "s.csv")  # date (text) + value: one numeric column
    assert run_cli(capsys, *FAST, "--data", str(path), "--no-plot")[0] == 0
    bare = write_csv(tmp_path / "bare.csv", "\n".join(str(1.5 * (i % 7) + i) for i in range(60)) + "\n\n")
    code, out, _ = run_cli(capsys, *FAST, "--data", str(bare), "--no-plot")
    assert code == 0 and "bare.csv, column '1' (60 values)" in out


def test_bundled_csv_through_data_gives_the_same_run() -> None:
    """The shipped sunspots.csv read as a user file (two numeric columns: --column needed)
    reproduces the bundled run: same values, split and seed, hence the same forecasts."""
    path = str(files("seqcore.datasets").joinpath("sunspots.csv"))
    common = {"epochs": 2, "patience": 0, "plot": None, "verbose": 0}
    user = demo_mod.run(DemoConfig(data=path, column="SUNACTIVITY", **common), out=lambda _line: None)
    bundled = demo_mod.run(DemoConfig(**common), out=lambda _line: None)
    np.testing.assert_array_equal(user.forecast, bundled.forecast)
    assert user.series.labels == bundled.series.labels  # the YEAR column labels the steps


def test_user_csv_semicolons_and_position(tmp_path: Path) -> None:
    rows = "\n".join(f"{1900 + i};{i % 9 * 1.5};{(i % 4) * 2.0}" for i in range(50))
    path = write_csv(tmp_path / "semi.csv", "year;a;b\n" + rows + "\n")
    s = demo_mod.read_csv_series(path, "3")
    np.testing.assert_array_equal(s.values, [(i % 4) * 2.0 for i in range(50)])
    assert s.labels[0] == "1900" and s.time[0] == 1900.0  # numeric, increasing first column: the x axis
    assert demo_mod.read_csv_series(path, "A").title == "semi.csv, column 'a'"  # case-insensitive


@pytest.mark.parametrize(
    ("content", "column", "pattern"),
    [
        (
            "date,value\n2000,1\n",
            "volume",
            r"no column 'volume' in .*available columns: 'date', 'value' \(or a position 1-2\)",
        ),
        ("date,value\n2000,1\n2001,2\n2002,abc\n", "value", r"line 4 of .*column 'value': 'abc' is not a number"),
        ("date,value\n2000,1\n2001,\n", "value", r"line 3 of .*column 'value': missing value"),
        ("date,value\n2000,1\n2001,nan\n", "value", r"line 3 of .*'nan' is not a finite number"),
        ("date,value\n2000,1\n2001\n", "value", r"line 3 of .* has 1 field\(s\), but column 'value' is field 2"),
        ("year,a,b\n1,2,3\n", None, r"has 3 numeric columns \('year', 'a', 'b'\); choose the series with --column"),
        ("x,y\na,b\n", None, r"no column of .* is entirely numeric \(columns: 'x', 'y'\)"),
        ("date,value\n", "value", r"has a header \(date, value\) but no data rows"),
        ("", None, r"is empty"),
    ],
)
def test_user_csv_errors(
    content: str, column: str | None, pattern: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "bad.csv", content)
    with pytest.raises(DemoError, match=pattern):
        demo_mod.read_csv_series(path, column)
    # Through the CLI: exit status 2 and the message on stderr, no traceback.
    argv = ["--data", str(path), "--no-plot", *FAST] + (["--column", column] if column else [])
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and err.startswith("python -m seqcore demo: error:") and "Traceback" not in err
    assert re.search(pattern, " ".join(err.split())), err


def test_cli_errors_before_any_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (["--data", str(tmp_path / "missing.csv")], r"file not found: '.*missing\.csv'"),
        (["--data", str(tmp_path)], r"is a directory; expected a CSV file"),
        (["--column", "x"], r"--column 'x' needs --data FILE\.csv"),
        (
            ["--model", "cnn-lstm", "--window", "7"],
            r"--window 7 cannot be split that way .*Use e\.g\. --window 8 or --window 10",
        ),
        (["--plot", str(tmp_path / "nodir" / "p.png")], r"the directory '.*nodir' does not exist"),
        (["--plot", str(tmp_path / "p.jpg")], r"must end in \.png; received '.*p\.jpg'"),
        (
            ["--window", "300"],
            rf"has 309 values, too few for windows of 300 steps: it needs at least {demo_mod.min_length(300)} ",
        ),
        (["--season", "400"], r"--season must be between 2 and 263 .* received 400"),
    ]
    for argv, pattern in cases:
        code, out, err = run_cli(capsys, *FAST, *argv)
        assert code == 2, argv
        assert re.search(pattern, " ".join(err.split())), (argv, err)
        assert "Epoch" not in out, argv


def test_too_short_user_series(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_csv(tmp_path / "short.csv", "v\n" + "\n".join(str(i % 3) for i in range(20)) + "\n")
    need = demo_mod.min_length(12)
    code, _, err = run_cli(capsys, "--data", str(path), "--no-plot")
    assert code == 2
    assert f"has 20 values, too few for windows of 12 steps: it needs at least {need}" in " ".join(err.split())


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["--window", "1"], r"argument --window: expected an integer >= 2 .* received 1"),
        (["--epochs", "0"], r"argument --epochs: expected an integer >= 1; received 0"),
        (["--epochs", "ten"], r"argument --epochs: expected an integer >= 1; received 'ten'"),
        (["--learning-rate", "-1"], r"argument --learning-rate: expected a positive finite number"),
        (["--model", "rnn"], r"argument --model: invalid choice: 'rnn'"),
        (["--data", "a.csv", "--dataset", "co2"], r"argument --dataset: not allowed with argument --data"),
        (["--plot", "a.png", "--no-plot"], r"argument --no-plot: not allowed with argument --plot"),
    ],
)
def test_argument_errors(argv: list[str], pattern: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo", *argv])
    assert exc.value.code == 2
    assert re.search(pattern, " ".join(capsys.readouterr().err.split()))


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--dataset", "--data", "--column", "--season", "--model", "--window", "--epochs", "--patience",
        "--batch-size", "--units", "--learning-rate", "--seed", "--plot", "--no-plot", "--renderer", "--quiet",
    ):  # fmt: skip
        assert option in text, option
    flat = " ".join(text.split())
    for default in ("(default: sunspots)", "(default: lstm)", "(default: 12;", "(default: 200)", "(default: 0)"):
        assert default in flat, default
    assert "sunspot" in flat and "naive" in flat and "matplotlib" in flat


def test_info_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^version +{re.escape(seqcore.__version__)}$", out, re.M)
    assert re.search(r"^simd_level +(portable|avx2|avx512)$", out, re.M)
    assert re.search(rf"^num_threads +{seqcore.get_num_threads()}$", out, re.M)
    assert re.search(rf"^build_profile +{seqcore.BUILD_PROFILE}$", out, re.M)


def test_python_dash_m_runs_the_demo(tmp_path: Path) -> None:
    """`python -m seqcore demo` as the README runs it (a fresh process, default plot path)."""
    proc = subprocess.run(
        [sys.executable, "-m", "seqcore", "demo", *FAST, "--quiet", "--renderer", "builtin"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Test RMSE: model" in proc.stdout
    read_png(tmp_path / "seqcore_demo.png")


# ----- renderers ------------------------------------------------------------------------------
def test_renderer_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert demo_mod.pick_renderer("builtin") == "builtin"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    assert demo_mod.pick_renderer("auto") == "builtin"
    with pytest.raises(DemoError, match=r"matplotlib is not installed.*seqcore\[plot\].*--renderer builtin"):
        demo_mod.pick_renderer("matplotlib")


def test_matplotlib_renderer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    plot = tmp_path / "mpl.png"
    code, out, err = run_cli(capsys, *FAST, "--quiet", "--plot", str(plot), "--renderer", "matplotlib")
    assert code == 0, err
    assert "drawn with matplotlib" in out
    assert png_size(plot) == (1000, 760)


def test_png_lines_land_where_the_data_says() -> None:
    canvas = _png.Canvas(200, 120)
    box = _png.draw_panel(
        canvas,
        _png.Panel("t", [_png.Series(np.array([0.0, 1.0]), np.array([0.0, 1.0]), _png.ORANGE, width=1)]),
        (0, 0, 199, 119),
    )
    x0, y0, x1, y1 = box
    img = canvas.pixels
    # The diagonal from the bottom-left to the top-right of the data range (5 % y padding).
    for frac in (0.2, 0.5, 0.8):
        x = round(x0 + frac * (x1 - x0))
        y = y1 - (frac + 0.05) / 1.1 * (y1 - y0)  # the y range is padded by 5 % each side
        column = np.nonzero((img[:, x] == _png.ORANGE).all(axis=1))[0]
        assert column.size and abs(column.mean() - y) <= 1.5, (frac, column, y)
    assert (img[y0, x0:x1] == _png.BLACK).all()  # the axes box


def test_png_encoder_roundtrip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    _png.write_png(tmp_path / "r.png", img)
    np.testing.assert_array_equal(read_png(tmp_path / "r.png"), img)
    with pytest.raises(ValueError, match=r"expected an \(height, width, 3\) uint8 array; received shape \(4, 4\)"):
        _png.encode_png(np.zeros((4, 4), np.uint8))


def test_png_text_and_ticks() -> None:
    canvas = _png.Canvas(60, 20)
    canvas.text(1, 1, "ab1.?~", scale=2)  # '~' has no glyph: drawn as '?'
    drawn = (canvas.pixels == 0).all(axis=2)
    assert drawn.sum() > 40 and drawn[:, 50:].sum() == 0 and _png.text_size("ab1.?~") == (46, 10)
    assert _png.nice_ticks(0.0, 1.0, 5) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert _png.nice_ticks(1963, 2008, 6) == [1970, 1980, 1990, 2000]
