"""Command-line entry points behind ``python -m seqcore``: ``demo`` (the forecasting pipeline in
``seqcore.demo``) and ``info``."""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
from collections.abc import Callable

from . import info


def run_info() -> int:
    for k, v in info().items():
        print(f"{k:20s} {v}")
    return 0


def _int_at_least(low: int, why: str = "") -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}; received {text!r}.") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}{why}; received {value}.")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number such as 0.003; received {text!r}.") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive finite number such as 0.003; received {text!r}.")
    return value


DEMO_DESCRIPTION = """\
Train a sequence model on a real time series and compare its test error with naive forecasts.

With no arguments: yearly sunspot numbers 1700-2008 (NOAA, public domain, bundled with seqcore),
an LSTM trained on windows of 12 years with a Keras-style progress bar and early stopping, then
the test RMSE and MAE beside the naive forecast (last value), a linear autoregression and the
training mean, and a PNG of forecast against actual on the test span (plus the training history).

The series is split in time order (70% train, 15% validation, 15% test). Each window is taken
relative to its last value and the model predicts the next change, scaled by the spread of changes
on the training span only: predicting "no change" is the naive forecast, and trending series work
at levels never seen in training."""

DEMO_EPILOG = """\
examples:
  python -m seqcore demo                                   the defaults (sunspots, LSTM)
  python -m seqcore demo --dataset co2 --model cnn-lstm    monthly Mauna Loa CO2, seasonal naive
  python -m seqcore demo --data sales.csv --column units --season 12
  python -m seqcore demo --quiet --no-plot --seed 3

Your CSV: comma, semicolon or tab separated, header optional, one value per row in time order
with no gaps. --column is optional when the file has one numeric column; a first column such as a
date or year labels the spans. The plot needs no extra package: with matplotlib installed
(pip install 'seqcore[plot]') it is drawn by matplotlib, otherwise by a built-in PNG writer."""


def add_demo_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from .datasets import NAMES
    from .demo import DEFAULT_DATASET, DEFAULT_PLOT, MODELS, RENDERERS, DemoConfig

    d = DemoConfig()
    p = sub.add_parser(
        "demo",
        help="forecast a real time series (bundled sunspots by default) and compare with naive forecasts",
        description=DEMO_DESCRIPTION,
        epilog=DEMO_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = p.add_argument_group("data")
    src = data.add_mutually_exclusive_group()
    src.add_argument(
        "--dataset",
        choices=NAMES,
        default=None,
        help=f"bundled series: sunspots (yearly 1700-2008) or co2 (Mauna Loa monthly 1965-2001, season 12) "
        f"(default: {DEFAULT_DATASET})",
    )
    src.add_argument("--data", metavar="FILE.csv", default=None, help="your own series, a CSV file (see below)")
    data.add_argument(
        "--column",
        metavar="NAME",
        default=None,
        help="the CSV column holding the series: header name or 1-based position (default: the only numeric column)",
    )
    data.add_argument(
        "--season",
        type=_int_at_least(2),
        default=None,
        metavar="N",
        help="season length in steps for a seasonal naive baseline, e.g. 12 for monthly data "
        "(default: 12 for co2, none otherwise)",
    )
    m = p.add_argument_group("model and training")
    m.add_argument("--model", choices=MODELS, default=d.model, help=f"architecture (default: {d.model})")
    m.add_argument(
        "--window",
        type=_int_at_least(2, " (each window is taken relative to its last value, so one step carries nothing)"),
        default=d.window,
        metavar="STEPS",
        help=f"input window length in steps (default: {d.window}; cnn-lstm splits it into sub-sequences of >= 4)",
    )
    m.add_argument(
        "--epochs",
        type=_int_at_least(1),
        default=d.epochs,
        metavar="N",
        help=f"maximum training epochs; early stopping usually ends sooner (default: {d.epochs})",
    )
    m.add_argument(
        "--patience",
        type=_int_at_least(0),
        default=d.patience,
        metavar="N",
        help=f"early stopping patience on val_loss, the best epoch's weights are kept; 0 turns it off "
        f"(default: {d.patience})",
    )
    m.add_argument(
        "--batch-size",
        type=_int_at_least(1),
        default=d.batch_size,
        metavar="N",
        help=f"windows per training step (default: {d.batch_size})",
    )
    m.add_argument(
        "--units",
        type=_int_at_least(1),
        default=d.units,
        metavar="N",
        help=f"recurrent layer units (default: {d.units})",
    )
    m.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=d.learning_rate,
        metavar="LR",
        help=f"Adam's learning rate (default: {d.learning_rate})",
    )
    m.add_argument(
        "--seed",
        type=_int_at_least(0),
        default=d.seed,
        metavar="N",
        help=f"seeds initialization and shuffling via seqcore.utils.set_random_seed (default: {d.seed})",
    )
    o = p.add_argument_group("output")
    plot = o.add_mutually_exclusive_group()
    plot.add_argument(
        "--plot", metavar="PATH.png", default=DEFAULT_PLOT, help=f"where to write the plot (default: ./{DEFAULT_PLOT})"
    )
    plot.add_argument("--no-plot", action="store_true", help="write no plot")
    o.add_argument(
        "--renderer",
        choices=RENDERERS,
        default=d.renderer,
        help="who draws the plot; auto: matplotlib when installed, else the built-in PNG writer (default: auto)",
    )
    o.add_argument("--quiet", action="store_true", help="no progress bar or model description, only the results")


def run_demo(args: argparse.Namespace) -> int:
    from .demo import DemoConfig, DemoError, run

    cfg = DemoConfig(
        dataset=args.dataset,
        data=args.data,
        column=args.column,
        model=args.model,
        epochs=args.epochs,
        window=args.window,
        batch_size=args.batch_size,
        units=args.units,
        learning_rate=args.learning_rate,
        patience=args.patience,
        season=args.season,
        seed=args.seed,
        plot=None if args.no_plot else args.plot,
        renderer=args.renderer,
        verbose=0 if args.quiet else 1,
    )
    try:
        run(cfg)
    except DemoError as e:
        # The user's input is wrong, not the program: a message, no traceback (argparse's convention).
        print(textwrap.fill(f"python -m seqcore demo: error: {e}", width=100), file=sys.stderr)
        return 2
    return 0
