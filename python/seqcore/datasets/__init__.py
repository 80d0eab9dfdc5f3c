"""Small public-domain time series bundled with seqcore (provenance and license: ``SOURCE.md``).

``load_sunspots()`` -> ``(years, values)``: yearly sunspot numbers 1700-2008 (NOAA NGDC).
``load_co2()`` -> ``(decimal_years, ppmv)``: Mauna Loa CO2, monthly means 1965-01 to 2001-12.
``load(name)`` returns the same data with its description, unit, labels and season length.

The files are read through ``importlib.resources`` so they are found inside an installed wheel or
zip, not only in a source checkout.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib.resources import files

import numpy as np

__all__ = ["NAMES", "Dataset", "load", "load_co2", "load_sunspots"]


@dataclass(frozen=True)
class Dataset:
    """A bundled series. ``time`` is numeric (years, decimal years) for plotting;
    ``labels`` are the same instants as text for printing ("1700", "1965-01")."""

    name: str
    title: str
    time: np.ndarray
    values: np.ndarray
    labels: list[str]
    unit: str
    season: int | None  # fixed season length in steps (12 for monthly data), None when there is none
    source: str
    file: str  # file name inside the seqcore.datasets package


def _rows(filename: str, header: list[str]) -> list[list[str]]:
    text = files(__name__).joinpath(filename).read_text(encoding="utf-8")
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    if not rows or rows[0] != header:
        # The files ship with the package: a different layout means a broken install or build.
        raise RuntimeError(
            f"seqcore.datasets: {filename} should start with the header {header}; found "
            f"{rows[0] if rows else 'an empty file'}. Reinstall seqcore."
        )
    return rows[1:]


def _sunspots() -> Dataset:
    rows = _rows("sunspots.csv", ["YEAR", "SUNACTIVITY"])
    years = np.array([int(float(r[0])) for r in rows], dtype=np.int64)
    return Dataset(
        name="sunspots",
        title="Yearly sunspot numbers, 1700-2008",
        time=years.astype(np.float64),
        values=np.array([float(r[1]) for r in rows], dtype=np.float64),
        labels=[str(y) for y in years],
        unit="sunspot number",
        # The ~11-year solar cycle varies from 9 to 14 years: not a fixed season, so no seasonal naive.
        season=None,
        source="NOAA National Geophysical Data Center, via statsmodels; public domain",
        file="sunspots.csv",
    )


def _co2() -> Dataset:
    rows = _rows("co2_monthly.csv", ["year", "month", "co2"])
    year = np.array([int(r[0]) for r in rows], dtype=np.int64)
    month = np.array([int(r[1]) for r in rows], dtype=np.int64)
    return Dataset(
        name="co2",
        title="Mauna Loa atmospheric CO2, monthly means, 1965-2001",
        time=year + (month - 1) / 12.0,
        values=np.array([float(r[2]) for r in rows], dtype=np.float64),
        labels=[f"{y}-{m:02d}" for y, m in zip(year, month, strict=True)],
        unit="ppmv",
        season=12,
        source="Scripps/CDIAC (Keeling & Whorf 2004) weekly record via statsmodels, averaged by month; public domain",
        file="co2_monthly.csv",
    )


_LOADERS = {"sunspots": _sunspots, "co2": _co2}
NAMES = tuple(_LOADERS)


def load(name: str) -> Dataset:
    """The bundled series ``name`` (one of :data:`NAMES`) with its metadata."""
    if name not in _LOADERS:
        raise ValueError(f"seqcore.datasets.load: unknown dataset {name!r}; available: {', '.join(NAMES)}.")
    return _LOADERS[name]()


def load_sunspots() -> tuple[np.ndarray, np.ndarray]:
    """Yearly sunspot numbers: ``(years, values)``, 309 rows for 1700-2008, int64 and float64."""
    d = _sunspots()
    return d.time.astype(np.int64), d.values


def load_co2() -> tuple[np.ndarray, np.ndarray]:
    """Mauna Loa CO2 monthly means in ppmv: ``(decimal_years, values)``, 444 rows for 1965-01 to
    2001-12 (``1965.0`` is January 1965, ``1965 + 11/12`` December)."""
    d = _co2()
    return d.time, d.values
