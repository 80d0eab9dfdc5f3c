"""The forecasting pipeline behind ``python -m seqcore demo``, importable and testable.

One-step-ahead forecasting of a univariate series with a small recurrent network:

1. the series (a bundled public-domain record, or a column of the user's CSV) is split in time
   order into train / validation / test spans (70 / 15 / 15 %);
2. sliding windows of ``window`` values predict the value after them (``seqcore.utils.make_windows``);
3. each window is expressed relative to its own last value, and the target is the change from that
   value, both divided by the spread of step-to-step changes on the training span only (no
   information from the validation or test spans leaks into the scaling);
4. the model (LSTM, GRU or CNN-LSTM) trains with Adam on MSE, with EarlyStopping on ``val_loss``
   restoring the best epoch's weights;
5. its test forecasts are compared with naive forecasts (last value, seasonal naive when the
   series has a fixed season) and two reference forecasts (the training mean, a linear
   autoregression on the same windows), and a PNG shows forecast against actual.

Why the relative form (step 3): a network fed absolute levels only knows the levels it was trained
on. On a trending series such as the CO2 record, the test span lies above anything in the training
span, and a level-based LSTM's forecasts there were 4-5x worse than the naive forecast when this
demo was tuned. Windows relative to their last value look the same at any level, so the network
learns the shape of the dynamics (cycles, seasons, momentum), and predicting "no change" (output 0)
is exactly the naive forecast: whatever the network learns is measured against that.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__, callbacks, datasets, get_num_threads, layers, optimizers, simd_level
from .layers import Input
from .models import Sequential
from .utils import make_windows, set_random_seed, split_sequences

MODELS = ("lstm", "gru", "cnn-lstm")
RENDERERS = ("auto", "matplotlib", "builtin")
DEFAULT_DATASET = "sunspots"
DEFAULT_PLOT = "seqcore_demo.png"

# Chronological split: the last 15 % of the targets are the test span, the 15 % before it the
# validation span. Minimums keep the numbers meaningful on short user series.
VAL_FRACTION = TEST_FRACTION = 0.15
MIN_EVAL_STEPS = 3
MIN_TRAIN_WINDOWS = 10
CONV_FILTERS = 32
CONV_KERNEL = 3


class DemoError(ValueError):
    """Bad input to the demo (file, column, values, options): the message says what and how to fix it."""


@dataclass
class DemoConfig:
    """Every option of ``python -m seqcore demo``; the defaults are the command's defaults."""

    dataset: str | None = None  # a bundled series (seqcore.datasets.NAMES); None: sunspots unless data is set
    data: str | None = None  # path of a CSV file with the user's series
    column: str | None = None  # its column: a header name or a 1-based position
    model: str = "lstm"
    epochs: int = 200
    window: int = 12
    batch_size: int = 16
    units: int = 32
    learning_rate: float = 0.003
    patience: int = 20  # EarlyStopping patience on val_loss; 0 turns early stopping off
    season: int | None = None  # season length for the seasonal naive forecast; None: the dataset's
    seed: int = 0
    plot: str | None = DEFAULT_PLOT  # None: no plot
    renderer: str = "auto"
    verbose: int = 1  # 1: Keras progress bar and a full report; 0: only the results


@dataclass
class SeriesData:
    name: str
    title: str
    time: np.ndarray  # numeric instants for the plot's x axis (years, or 0..n-1)
    labels: list[str]  # the same instants as text
    values: np.ndarray  # float64
    unit: str = ""
    season: int | None = None
    source: str = ""


@dataclass(frozen=True)
class Split:
    """Indices into the series. Targets ``window .. train_end-1`` train, ``train_end .. val_end-1``
    validate, ``val_end .. n-1`` test; each target's input is the ``window`` values before it."""

    n: int
    window: int
    train_end: int
    val_end: int

    @property
    def train_targets(self) -> np.ndarray:
        return np.arange(self.window, self.train_end)

    @property
    def val_targets(self) -> np.ndarray:
        return np.arange(self.train_end, self.val_end)

    @property
    def test_targets(self) -> np.ndarray:
        return np.arange(self.val_end, self.n)


@dataclass
class DemoResult:
    series: SeriesData
    split: Split
    model_label: str
    forecast: np.ndarray  # the model's test forecasts, in the series' units
    actual: np.ndarray  # the test span's values
    baselines: dict[str, np.ndarray]  # label -> test forecasts
    scores: dict[str, tuple[float, float]]  # label -> (RMSE, MAE); the model first
    naive_label: str  # the best naive baseline, the one the model is judged against
    history: dict[str, list[float]]
    best_epoch: int | None  # 1-based epoch whose weights were kept (None without early stopping)
    train_seconds: float
    plot_path: str | None = None
    renderer: str | None = None
    summary_line: str = ""
    messages: list[str] = field(default_factory=list)

    @property
    def model_rmse(self) -> float:
        return self.scores[self.model_label][0]

    @property
    def naive_rmse(self) -> float:
        return self.scores[self.naive_label][0]


# ----- data -------------------------------------------------------------------------------------
def load_dataset(name: str) -> SeriesData:
    if name not in datasets.NAMES:
        raise DemoError(f"--dataset: unknown dataset {name!r}; expected one of {', '.join(datasets.NAMES)}.")
    d = datasets.load(name)
    return SeriesData(
        name=d.name,
        title=d.title,
        time=d.time,
        labels=d.labels,
        values=d.values,
        unit=d.unit,
        season=d.season,
        source=f"{d.source}; bundled as seqcore/datasets/{d.file}",
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _sniff_delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:  # a single column has no delimiter to find
        return ","


def read_csv_series(path: str | Path, column: str | None = None) -> SeriesData:
    """One numeric column of a CSV file (comma, semicolon or tab separated, header optional).

    ``column`` is a header name (exact, else case-insensitive) or a 1-based position; it may be
    omitted when the file has exactly one numeric column. A header-less file's columns are named
    "1", "2", ... When another column comes first (a date or year), its text labels the steps."""
    p = Path(path)
    if not p.exists():
        raise DemoError(
            f"--data: file not found: {str(path)!r} (relative paths start from {Path.cwd()}). Pass the path of an "
            f"existing CSV file."
        )
    if p.is_dir():
        raise DemoError(f"--data: {str(path)!r} is a directory; expected a CSV file.")
    try:
        text = p.read_text(encoding="utf-8-sig")  # -sig: drops the byte-order mark spreadsheet exports add
    except UnicodeDecodeError as e:
        raise DemoError(
            f"--data: {str(path)!r} is not UTF-8 text (byte {e.start}: {e.reason}). Save it as a UTF-8 CSV file."
        ) from None
    reader = csv.reader(io.StringIO(text), delimiter=_sniff_delimiter(text[:4096]))
    try:
        rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as e:
        raise DemoError(f"--data: {str(path)!r} is not valid CSV (line {reader.line_num}: {e}).") from None
    if not rows:
        raise DemoError(f"--data: {str(path)!r} is empty; expected a CSV file with a numeric column.")
    first = [cell.strip() for cell in rows[0][1]]
    has_header = not all(_is_number(c) for c in first)
    names = first if has_header else [str(i + 1) for i in range(len(first))]
    data = rows[1:] if has_header else rows
    if not data:
        raise DemoError(f"--data: {str(path)!r} has a header ({', '.join(names)}) but no data rows.")
    listing = ", ".join(repr(n) for n in names)

    if column is None:
        numeric = [j for j in range(len(names)) if all(j < len(r) and _is_number(r[j].strip()) for _, r in data)]
        if len(names) == 1:
            j = 0  # the only column: bad values in it are reported row by row below
        elif len(numeric) == 1:
            j = numeric[0]
        elif not numeric:
            raise DemoError(
                f"--data: no column of {str(path)!r} is entirely numeric (columns: {listing}). Pass --column NAME "
                f"to choose the series; the error will then name the rows to fix."
            )
        else:
            raise DemoError(
                f"--data: {str(path)!r} has {len(numeric)} numeric columns "
                f"({', '.join(repr(names[j]) for j in numeric)}); choose the series with --column NAME."
            )
    else:
        want = column.strip()
        matches = [j for j, n in enumerate(names) if n == want] or [
            j for j, n in enumerate(names) if n.casefold() == want.casefold()
        ]
        if len(matches) == 1:
            j = matches[0]
        elif len(matches) > 1:
            raise DemoError(
                f"--column: {column!r} matches {len(matches)} columns of {str(path)!r} (positions "
                f"{', '.join(str(m + 1) for m in matches)}); pass the position instead, e.g. --column {matches[0] + 1}."
            )
        elif want.isdigit() and 1 <= int(want) <= len(names):
            j = int(want) - 1
        else:
            raise DemoError(
                f"--column: no column {column!r} in {str(path)!r}; available columns: {listing} (or a position "
                f"1-{len(names)})."
            )
    name = names[j]

    values = np.empty(len(data), np.float64)
    for i, (line, row) in enumerate(data):
        if j >= len(row):
            raise DemoError(
                f"--data: line {line} of {str(path)!r} has {len(row)} field(s), but column {name!r} is field {j + 1}. "
                f"Fix that row so every row has all {len(names)} columns."
            )
        cell = row[j].strip()
        if not cell:
            raise DemoError(
                f"--data: line {line} of {str(path)!r}, column {name!r}: missing value. The series must have no "
                f"gaps: fill it (e.g. with the previous value or an interpolation) or drop the row."
            )
        try:
            v = float(cell)
        except ValueError:
            raise DemoError(
                f"--data: line {line} of {str(path)!r}, column {name!r}: {cell!r} is not a number (expected a "
                f"decimal such as 12.5). Fix or remove that row."
            ) from None
        if not math.isfinite(v):
            raise DemoError(
                f"--data: line {line} of {str(path)!r}, column {name!r}: {cell!r} is not a finite number. Fill or "
                f"drop that row."
            )
        values[i] = v

    steps = np.arange(len(values), dtype=np.float64)
    labels = [str(k + 1) for k in range(len(values))]
    if j != 0:
        # The first column is usually the time (a year, a date): use it to label the spans.
        first_col = [r[0].strip() if r else "" for _, r in data]
        labels = first_col
        if all(_is_number(c) for c in first_col):
            t = np.array([float(c) for c in first_col])
            if len(t) < 2 or bool(np.all(np.diff(t) > 0)):
                steps = t
    return SeriesData(
        name=p.name,
        title=f"{p.name}, column {name!r}",
        time=steps,
        labels=labels,
        values=values,
        source=str(p),
    )


# ----- splitting, baselines, metrics ------------------------------------------------------------
def _split_sizes(n: int, window: int) -> tuple[int, int, int]:
    """(train windows, validation steps, test steps) for a series of ``n`` values."""
    n_test = max(MIN_EVAL_STEPS, round(TEST_FRACTION * n))
    n_val = max(MIN_EVAL_STEPS, round(VAL_FRACTION * n))
    return n - n_test - n_val - window, n_val, n_test


def min_length(window: int) -> int:
    """The shortest series the demo accepts for ``window``."""
    n = window + MIN_TRAIN_WINDOWS + 2 * MIN_EVAL_STEPS
    while _split_sizes(n, window)[0] < MIN_TRAIN_WINDOWS:
        n += 1
    return n


def split_series(n: int, window: int) -> Split:
    n_train, n_val, n_test = _split_sizes(n, window)
    if n_train < MIN_TRAIN_WINDOWS:
        raise DemoError(
            f"the series has {n} values, too few for windows of {window} steps: it needs at least "
            f"{min_length(window)} (a first window of {window}, at least {MIN_TRAIN_WINDOWS} training targets, and "
            f"{VAL_FRACTION:.0%} of the series but at least {MIN_EVAL_STEPS} values each for validation and test). "
            f"Use a smaller --window or a longer series."
        )
    return Split(n=n, window=window, train_end=n - n_test - n_val, val_end=n - n_test)


def rmse(forecast: np.ndarray, actual: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(forecast, np.float64) - np.asarray(actual, np.float64)) ** 2)))


def mae(forecast: np.ndarray, actual: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(forecast, np.float64) - np.asarray(actual, np.float64))))


def naive_label(season: int | None = None) -> str:
    return "naive (last value)" if season is None else f"seasonal naive ({season} steps back)"


def baseline_forecasts(values: np.ndarray, split: Split, season: int | None) -> dict[str, np.ndarray]:
    """Forecasts of the test targets that need no training beyond a mean or a least-squares fit,
    each using only values before its target (and, for the fitted ones, the training span)."""
    v = np.asarray(values, np.float64)
    t = split.test_targets
    out = {naive_label(): v[t - 1]}
    if season is not None:
        out[naive_label(season)] = v[t - season]
    out["mean of the training span"] = np.full(len(t), v[: split.train_end].mean())
    # Linear autoregression on the same windows as the network (least squares with an intercept,
    # fitted on the training targets): the classical model a network has to beat to be worth it.
    w = split.window
    lags = np.stack([v[k - w : k] for k in range(w, split.n)])
    design = np.concatenate([lags, np.ones((len(lags), 1))], axis=1)
    train = split.train_targets - w
    coef, *_ = np.linalg.lstsq(design[train], v[split.train_targets], rcond=None)
    out[f"linear autoregression, {w} lags"] = design[t - w] @ coef
    return out


# ----- model ------------------------------------------------------------------------------------
def cnn_lstm_shape(window: int) -> tuple[int, int]:
    """(n_seq, n_steps) for the CNN-LSTM: as few sub-sequences as possible (>= 2) that leave each
    one long enough for Conv1D(kernel 3) followed by MaxPooling1D(2), i.e. at least 4 steps."""
    need = CONV_KERNEL + 1
    for n_seq in range(2, window + 1):
        if window % n_seq == 0 and window // n_seq >= need:
            return n_seq, window // n_seq
    valid = [w for w in range(2 * need, max(window, 2 * need) + 9) if _has_subsequences(w, need)]
    near = sorted(valid, key=lambda w: (abs(w - window), w))[:2]
    raise DemoError(
        f"--model cnn-lstm splits each window into 2 or more equal sub-sequences of at least {need} steps (Conv1D "
        f"kernel {CONV_KERNEL}, then pooling by 2); --window {window} cannot be split that way (windows that can: "
        f"{', '.join(map(str, valid[:8]))}, ...). Use e.g. --window {near[0]} or --window {near[1]}."
    )


def _has_subsequences(window: int, need: int) -> bool:
    return any(window % k == 0 and window // k >= need for k in range(2, window + 1))


def build_model(kind: str, window: int, units: int, learning_rate: float) -> tuple[Sequential, str]:
    """The compiled Sequential and a one-line description of it."""
    if kind == "lstm":
        model = Sequential([Input((window, 1)), layers.LSTM(units), layers.Dense(1)])
        text = f"LSTM({units}) -> Dense(1)"
    elif kind == "gru":
        model = Sequential([Input((window, 1)), layers.GRU(units), layers.Dense(1)])
        text = f"GRU({units}) -> Dense(1)"
    elif kind == "cnn-lstm":
        n_seq, n_steps = cnn_lstm_shape(window)
        model = Sequential(
            [
                Input((n_seq, n_steps, 1)),
                layers.TimeDistributed(layers.Conv1D(CONV_FILTERS, CONV_KERNEL, activation="relu")),
                layers.TimeDistributed(layers.MaxPooling1D(2)),
                layers.TimeDistributed(layers.Flatten()),
                layers.LSTM(units),
                layers.Dense(1),
            ]
        )
        text = (
            f"{n_seq} sub-sequences of {n_steps} steps -> TimeDistributed(Conv1D({CONV_FILTERS}, {CONV_KERNEL}, "
            f"relu) -> MaxPooling1D(2) -> Flatten) -> LSTM({units}) -> Dense(1)"
        )
    else:
        raise DemoError(f"--model: expected one of {', '.join(MODELS)}; received {kind!r}.")
    model.compile(optimizer=optimizers.Adam(learning_rate=learning_rate), loss="mse")
    return model, text


# ----- plotting ---------------------------------------------------------------------------------
def pick_renderer(renderer: str) -> str:
    if renderer not in RENDERERS:
        raise DemoError(f"--renderer: expected one of {', '.join(RENDERERS)}; received {renderer!r}.")
    if renderer == "builtin":
        return renderer
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if renderer == "matplotlib":
            raise DemoError(
                "--renderer matplotlib: matplotlib is not installed. Install it with pip install 'seqcore[plot]', "
                "or use --renderer builtin (or auto)."
            ) from None
        return "builtin"
    return "matplotlib"


def check_plot_path(path: str) -> None:
    """Fails before training, not after it, when the plot cannot be written."""
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise DemoError(f"--plot: the plot is a PNG file, so the path must end in .png; received {path!r}.")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise DemoError(f"--plot: the directory {str(parent)!r} does not exist; create it or choose another path.")
    if p.is_dir():
        raise DemoError(f"--plot: {path!r} is a directory; pass a file name ending in .png.")


def _plot_panels(result: DemoResult) -> list[tuple[str, list[tuple[np.ndarray, np.ndarray, str, str, bool]], bool]]:
    """What both renderers draw: (title, [(x, y, colour name, label, dashed)], log y)."""
    s, sp = result.series, result.split
    x = s.time[sp.test_targets]
    span = f"{s.labels[sp.val_end]} to {s.labels[-1]}"
    top = [
        (x, result.baselines[result.naive_label], "grey", result.naive_label, True),
        (x, result.actual, "blue", "actual", False),
        (x, result.forecast, "orange", f"{result.model_label} forecast", False),
    ]
    epochs = np.arange(1, len(result.history.get("loss", [])) + 1, dtype=np.float64)
    bottom = [(epochs, np.asarray(result.history["loss"]), "blue", "loss", False)]
    if "val_loss" in result.history:
        bottom.append((epochs, np.asarray(result.history["val_loss"]), "orange", "val_loss", False))
    if result.best_epoch is not None and len(epochs) > 1:
        ys = np.concatenate([b[1] for b in bottom])
        ys = ys[np.isfinite(ys) & (ys > 0)]
        if ys.size:
            bottom.append(
                (np.full(2, float(result.best_epoch)), np.array([ys.min(), ys.max()]), "grey", "kept epoch", True)
            )
    return [
        (f"Test span {span}: one-step forecasts", top, False),
        ("Training history (MSE of scaled changes, log scale)", bottom, True),
    ]


def write_plot(result: DemoResult, path: str, renderer: str) -> None:
    panels = _plot_panels(result)
    if renderer == "matplotlib":
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        # Figure + Agg canvas directly, not pyplot: no global backend switch or figure registry in
        # the caller's process.
        colors = {"blue": "tab:blue", "orange": "tab:orange", "grey": "0.6"}
        fig = Figure(figsize=(10, 7.6), dpi=100)
        FigureCanvasAgg(fig)
        for i, (title, series, log_y) in enumerate(panels):
            ax = fig.add_subplot(len(panels), 1, i + 1)
            for x, y, color, label, dashed in series:
                ax.plot(x, y, color=colors[color], label=label, linestyle="--" if dashed else "-", linewidth=1.8)
            if log_y:
                ax.set_yscale("log")
            ax.set_title(title, loc="left", fontsize=11)
            ax.grid(True, color="0.92")
            ax.legend(loc="best", fontsize=9)
        fig.axes[0].set_ylabel(result.series.unit or "value")
        fig.axes[1].set_xlabel("epoch")
        fig.tight_layout()
        fig.savefig(path)
        return
    from . import _png

    palette = {"blue": _png.BLUE, "orange": _png.ORANGE, "grey": _png.GREY}
    _png.line_chart(
        path,
        [
            _png.Panel(
                title, [_png.Series(x, y, palette[c], label, dash=6 if d else 0) for x, y, c, label, d in ser], lg
            )
            for title, ser, lg in panels
        ],
    )


# ----- the pipeline -----------------------------------------------------------------------------
def _fmt(v: float, ref: float | None = None) -> str:
    """``v`` with 4 significant digits of ``ref`` (default: of ``v``), so a column of errors shares
    one number of decimals."""
    ref = abs(v) if ref is None else abs(ref)
    decimals = 3 - math.floor(math.log10(ref)) if ref > 0 and math.isfinite(ref) else 3
    return f"{v:,.{max(0, min(decimals, 12))}f}"


def comparison_line(model_rmse: float, naive_rmse: float, naive: str) -> str:
    """The verdict, stated plainly whichever way it goes."""
    head = f"Test RMSE: model {_fmt(model_rmse, naive_rmse)} vs {naive} {_fmt(naive_rmse)}"
    if model_rmse < naive_rmse:
        ratio = naive_rmse / model_rmse if model_rmse > 0 else math.inf
        return f"{head} (the model is {ratio:.2f}x better)"
    if model_rmse == naive_rmse:
        return f"{head} (a tie: the model is no better than the naive forecast)"
    ratio = model_rmse / naive_rmse if naive_rmse > 0 else math.inf
    return f"{head} (the model is {ratio:.2f}x WORSE: the naive forecast wins on this series)"


def resolve_series(cfg: DemoConfig) -> SeriesData:
    if cfg.data is not None and cfg.dataset is not None:
        raise DemoError("--data and --dataset both given: pass one (--data for your CSV, --dataset for a bundled one).")
    if cfg.data is None and cfg.column is not None:
        raise DemoError(f"--column {cfg.column!r} needs --data FILE.csv (the bundled datasets have one series).")
    if cfg.data is not None:
        return read_csv_series(cfg.data, cfg.column)
    return load_dataset(cfg.dataset or DEFAULT_DATASET)


def run(cfg: DemoConfig, out: Callable[[str], None] = print) -> DemoResult:
    """Runs the whole demo: data, split, training, evaluation, plot; ``out`` receives the report."""
    say = out if cfg.verbose else (lambda _line: None)
    if cfg.model not in MODELS:
        raise DemoError(f"--model: expected one of {', '.join(MODELS)}; received {cfg.model!r}.")
    if cfg.window < 2:
        raise DemoError(f"--window must be >= 2; received {cfg.window}.")
    if cfg.model == "cnn-lstm":
        cnn_lstm_shape(cfg.window)  # a bad window fails here, before any work
    renderer = None
    if cfg.plot is not None:
        check_plot_path(cfg.plot)
        renderer = pick_renderer(cfg.renderer)

    series = resolve_series(cfg)
    v = series.values
    split = split_series(len(v), cfg.window)
    season = cfg.season if cfg.season is not None else series.season
    if season is not None and not 2 <= season <= split.val_end:
        raise DemoError(
            f"--season must be between 2 and {split.val_end} (the values before the test span) for this series; "
            f"received {season}. (A season of 1 is the last-value forecast, always shown.)"
        )

    # Scaling fitted on the training span only: the spread of its step-to-step changes, which is the
    # scale of what the network predicts (see the module docstring for the relative form).
    scale = float(np.std(np.diff(v[: split.train_end])))
    if not scale > 0:
        raise DemoError(
            f"the training span ({series.labels[0]}-{series.labels[split.train_end - 1]}) is constant: there is "
            f"nothing to learn. Pass a series that varies."
        )
    # Windows of positions, then values in float64: make_windows returns float32, and rounding the
    # levels before taking differences would wipe out small changes on a large level (a series
    # around 1e7 has a float32 resolution of 1). Only the relative, scaled windows become float32.
    pos, _ = make_windows(np.arange(len(v)), cfg.window)  # pos[i] = i .. i + window - 1, exact below 2**24
    windows = v[pos[..., 0].astype(np.int64)]  # (samples, window), sample i predicts v[i + window]
    last = windows[:, -1]
    xs = ((windows - last[:, None]) / scale).astype(np.float32)[..., None]  # (samples, window, 1)
    ys = ((v[cfg.window :] - last) / scale).astype(np.float32)[:, None]  # (samples, 1)
    if cfg.model == "cnn-lstm":
        xs = split_sequences(xs, *cnn_lstm_shape(cfg.window))
    # Sample i is the window whose target is v[i + window].
    rows = {
        "train": split.train_targets - cfg.window,
        "val": split.val_targets - cfg.window,
        "test": split.test_targets - cfg.window,
    }

    set_random_seed(cfg.seed)
    model, description = build_model(cfg.model, cfg.window, cfg.units, cfg.learning_rate)
    model_label = {"lstm": "LSTM", "gru": "GRU", "cnn-lstm": "CNN-LSTM"}[cfg.model]

    lab = series.labels
    say(f"seqcore {__version__} forecasting demo ({simd_level()}, {get_num_threads()} threads)")
    say(f"Data: {series.title} ({len(v)} values)")
    say(f"  source: {series.source}")
    say("Chronological split; scaling fitted on the training span only:")
    say(f"  train       {lab[0]} to {lab[split.train_end - 1]}: {len(rows['train'])} windows")
    say(f"  validation  {lab[split.train_end]} to {lab[split.val_end - 1]}: {len(rows['val'])} windows")
    say(f"  test        {lab[split.val_end]} to {lab[-1]}: {len(rows['test'])} one-step forecasts")
    say(
        f"Model: {description}. Input: the last {cfg.window} values relative to the latest; output: the next "
        f"change, both divided by {_fmt(scale)} (the training span's step-to-step spread)."
    )
    if cfg.verbose:
        model.summary(print_fn=say)

    cbs = []
    stopper = None
    if cfg.patience > 0:
        stopper = callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience, restore_best_weights=True)
        cbs.append(stopper)
    t0 = time.perf_counter()
    hist = model.fit(
        xs[rows["train"]],
        ys[rows["train"]],
        validation_data=(xs[rows["val"]], ys[rows["val"]]),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        callbacks=cbs,
        verbose=1 if cfg.verbose else 0,
    )
    train_seconds = time.perf_counter() - t0
    history = {k: [float(a) for a in vals] for k, vals in hist.history.items()}
    epochs_run = len(history["loss"])
    best_epoch = None
    if stopper is not None and stopper.best_weights is not None:
        # EarlyStopping restores the best weights only when it stops training early; when training
        # runs to the last epoch the weights are those of the last epoch. Restore them either way.
        model.set_weights(stopper.best_weights)
        best_epoch = stopper.best_epoch + 1
        how = f"stopped early after epoch {epochs_run}" if stopper.stopped_epoch else f"ran all {epochs_run} epochs"
        best_val = history["val_loss"][stopper.best_epoch]
        say(f"Training {how}; kept the weights of epoch {best_epoch} (val_loss {best_val:.4g}).")
    say(f"Trained in {train_seconds:.1f} s.")

    pred = model.predict(xs[rows["test"]], batch_size=256)[:, 0].astype(np.float64)
    forecast = last[rows["test"]] + scale * pred
    actual = v[split.test_targets]
    baselines = baseline_forecasts(v, split, season)
    scores = {model_label: (rmse(forecast, actual), mae(forecast, actual))}
    scores.update({k: (rmse(f, actual), mae(f, actual)) for k, f in baselines.items()})
    naive_names = [naive_label()] + ([naive_label(season)] if season is not None else [])
    best_naive = min(naive_names, key=lambda k: scores[k][0])

    result = DemoResult(
        series=series,
        split=split,
        model_label=model_label,
        forecast=forecast,
        actual=actual,
        baselines=baselines,
        scores=scores,
        naive_label=best_naive,
        history=history,
        best_epoch=best_epoch,
        train_seconds=train_seconds,
    )

    unit = f" ({series.unit})" if series.unit else ""
    say("")
    out(
        f"Test span {lab[split.val_end]} to {lab[-1]}: {len(actual)} one-step-ahead forecasts, each from the "
        f"{cfg.window} actual values before it. Errors{unit}:"
    )
    width = max(len(k) for k in scores) + 2
    ref = scores[best_naive][0]
    cells = {k: (_fmt(r, ref), _fmt(m, ref)) for k, (r, m) in scores.items()}
    num = max(10, *(len(c) for pair in cells.values() for c in pair))
    out(f"  {'forecast':<{width}} {'RMSE':>{num}} {'MAE':>{num}}")
    for k, (r_text, m_text) in cells.items():
        mark = "  <- the naive forecast to beat" if k == best_naive else ""
        out(f"  {k:<{width}} {r_text:>{num}} {m_text:>{num}}{mark}")

    if cfg.plot is not None:
        assert renderer is not None
        try:
            write_plot(result, cfg.plot, renderer)
        except OSError as e:
            raise DemoError(f"--plot: could not write {cfg.plot!r}: {e.strerror or e}. Choose another path.") from None
        result.plot_path, result.renderer = cfg.plot, renderer
    result.summary_line = comparison_line(scores[model_label][0], scores[best_naive][0], best_naive)
    out(result.summary_line)
    if cfg.plot is not None:
        how = "drawn with matplotlib" if renderer == "matplotlib" else "built-in PNG writer"
        if renderer == "builtin" and cfg.renderer == "auto":
            how += "; matplotlib is not installed"
        out(f"Plot: {Path(cfg.plot).resolve()} (forecast vs actual on the test span, training history; {how})")
    return result
