"""A small PNG line-chart writer that needs only NumPy and the standard library.

``python -m seqcore demo`` draws its plot with matplotlib when it is installed (``pip install
seqcore[plot]``). The README's first command runs on a fresh machine without it, and the demo must
still leave a picture behind, so this module rasterizes the same chart itself: a white canvas,
panels with an axes box, "nice" ticks labelled in a 3x5 pixel font, polylines (solid or dashed)
and a legend, encoded as an 8-bit RGB PNG with zlib (no filters: the file is small anyway).
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

Color = tuple[int, int, int]

BLACK: Color = (0, 0, 0)
WHITE: Color = (255, 255, 255)
GRID: Color = (232, 232, 232)
# matplotlib's default cycle, so the two renderers draw the same chart in the same colours.
BLUE: Color = (31, 119, 180)
ORANGE: Color = (255, 127, 14)
GREY: Color = (150, 150, 150)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ----- encoding ---------------------------------------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    # The CRC covers the chunk type and data, not the length (PNG spec, section 5.3).
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an ``(height, width, 3)`` uint8 image."""
    img = np.asarray(rgb)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(
            f"encode_png: expected an (height, width, 3) uint8 array; received shape {img.shape}, dtype {img.dtype}."
        )
    h, w = img.shape[:2]
    if h < 1 or w < 1:
        raise ValueError(f"encode_png: the image must be at least 1x1 pixels; received {w}x{h}.")
    # Each scanline starts with its filter type; 0 ("None") keeps the writer trivial.
    raw = np.concatenate([np.zeros((h, 1), np.uint8), np.ascontiguousarray(img).reshape(h, w * 3)], axis=1)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8 bits per channel, colour type 2 = RGB
    return (
        PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + _chunk(b"IEND", b"")
    )


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    Path(path).write_bytes(encode_png(rgb))


# ----- a 3x5 pixel font -------------------------------------------------------------------------
# Upper case only: 3 pixels are too narrow for readable lower case. Text is upper-cased when drawn.
_GLYPHS: dict[str, tuple[str, ...]] = {
    "0": ("###", "#.#", "#.#", "#.#", "###"),
    "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"),
    "3": ("###", "..#", ".##", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"),
    "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"),
    "7": ("###", "..#", "..#", ".#.", ".#."),
    "8": ("###", "#.#", "###", "#.#", "###"),
    "9": ("###", "#.#", "###", "..#", "###"),
    "A": (".#.", "#.#", "###", "#.#", "#.#"),
    "B": ("##.", "#.#", "##.", "#.#", "##."),
    "C": (".##", "#..", "#..", "#..", ".##"),
    "D": ("##.", "#.#", "#.#", "#.#", "##."),
    "E": ("###", "#..", "##.", "#..", "###"),
    "F": ("###", "#..", "##.", "#..", "#.."),
    "G": (".##", "#..", "#.#", "#.#", ".##"),
    "H": ("#.#", "#.#", "###", "#.#", "#.#"),
    "I": ("###", ".#.", ".#.", ".#.", "###"),
    "J": ("..#", "..#", "..#", "#.#", ".#."),
    "K": ("#.#", "#.#", "##.", "#.#", "#.#"),
    "L": ("#..", "#..", "#..", "#..", "###"),
    "M": ("#.#", "###", "###", "#.#", "#.#"),
    "N": ("##.", "#.#", "#.#", "#.#", "#.#"),
    "O": (".#.", "#.#", "#.#", "#.#", ".#."),
    "P": ("##.", "#.#", "##.", "#..", "#.."),
    "Q": (".#.", "#.#", "#.#", "##.", ".##"),
    "R": ("##.", "#.#", "##.", "#.#", "#.#"),
    "S": (".##", "#..", ".#.", "..#", "##."),
    "T": ("###", ".#.", ".#.", ".#.", ".#."),
    "U": ("#.#", "#.#", "#.#", "#.#", "###"),
    "V": ("#.#", "#.#", "#.#", "#.#", ".#."),
    "W": ("#.#", "#.#", "###", "###", "#.#"),
    "X": ("#.#", "#.#", ".#.", "#.#", "#.#"),
    "Y": ("#.#", "#.#", ".#.", ".#.", ".#."),
    "Z": ("###", "..#", ".#.", "#..", "###"),
    " ": ("...", "...", "...", "...", "..."),
    ".": ("...", "...", "...", "...", ".#."),
    ",": ("...", "...", "...", ".#.", "#.."),
    ":": ("...", ".#.", "...", ".#.", "..."),
    "-": ("...", "...", "###", "...", "..."),
    "+": ("...", ".#.", "###", ".#.", "..."),
    "=": ("...", "###", "...", "###", "..."),
    "_": ("...", "...", "...", "...", "###"),
    "/": ("..#", "..#", ".#.", "#..", "#.."),
    "(": ("..#", ".#.", ".#.", ".#.", "..#"),
    ")": ("#..", ".#.", ".#.", ".#.", "#.."),
    "%": ("#.#", "..#", ".#.", "#..", "#.#"),
    "?": ("###", "..#", ".#.", "...", ".#."),
}
_GLYPH_BITS = {c: np.array([[ch == "#" for ch in row] for row in rows], dtype=bool) for c, rows in _GLYPHS.items()}


def text_size(text: str, scale: int = 2) -> tuple[int, int]:
    """Width and height in pixels of ``text`` drawn at ``scale``."""
    return (4 * len(text) - 1) * scale if text else 0, 5 * scale


# ----- drawing ----------------------------------------------------------------------------------
class Canvas:
    """An RGB pixel buffer, origin at the top left, x to the right and y down."""

    def __init__(self, width: int, height: int, background: Color = WHITE):
        self.pixels = np.empty((height, width, 3), np.uint8)
        self.pixels[:] = background

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    def fill_rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """Fills the pixels x0..x1, y0..y1 inclusive (clipped to the canvas)."""
        xa, xb = max(0, min(x0, x1)), min(self.width - 1, max(x0, x1))
        ya, yb = max(0, min(y0, y1)), min(self.height - 1, max(y0, y1))
        if xa <= xb and ya <= yb:
            self.pixels[ya : yb + 1, xa : xb + 1] = color

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """A one-pixel outline."""
        self.fill_rect(x0, y0, x1, y0, color)
        self.fill_rect(x0, y1, x1, y1, color)
        self.fill_rect(x0, y0, x0, y1, color)
        self.fill_rect(x1, y0, x1, y1, color)

    def _plot(self, px: np.ndarray, py: np.ndarray, color: Color, width: int, clip: tuple[int, int, int, int]) -> None:
        # Thick lines: stamp every sample as a width x width square (plenty for 1-3 px lines).
        x0, y0, x1, y1 = clip
        for ox in range(width):
            for oy in range(width):
                qx, qy = px + ox - width // 2, py + oy - width // 2
                keep = (qx >= x0) & (qx <= x1) & (qy >= y0) & (qy <= y1)
                self.pixels[qy[keep], qx[keep]] = color

    def polyline(
        self,
        xs: Sequence[float] | np.ndarray,
        ys: Sequence[float] | np.ndarray,
        color: Color,
        width: int = 1,
        dash: int = 0,
        clip: tuple[int, int, int, int] | None = None,
    ) -> None:
        """Connects the points (pixel coordinates) with straight segments: each segment is sampled
        once per pixel along its longer axis (a DDA line). Non-finite points break the line.
        ``dash`` > 0 draws dashes and gaps of that many pixels; ``clip`` is (x0, y0, x1, y1)."""
        x = np.asarray(xs, np.float64)
        y = np.asarray(ys, np.float64)
        if x.shape != y.shape or x.ndim != 1:
            raise ValueError(f"polyline: xs and ys must be 1-D of equal length; received {x.shape} and {y.shape}.")
        box = clip if clip is not None else (0, 0, self.width - 1, self.height - 1)
        ok = np.isfinite(x) & np.isfinite(y)
        pts_x: list[np.ndarray] = []
        pts_y: list[np.ndarray] = []
        for i in range(len(x)):
            if not ok[i]:
                continue
            if i + 1 < len(x) and ok[i + 1]:
                n = int(math.ceil(max(abs(x[i + 1] - x[i]), abs(y[i + 1] - y[i])))) + 1
                t = np.linspace(0.0, 1.0, n)
                pts_x.append(x[i] + t * (x[i + 1] - x[i]))
                pts_y.append(y[i] + t * (y[i + 1] - y[i]))
            else:  # an isolated point still shows
                pts_x.append(x[i : i + 1])
                pts_y.append(y[i : i + 1])
        if not pts_x:
            return
        fx, fy = np.concatenate(pts_x), np.concatenate(pts_y)
        if dash > 0:
            step = np.hypot(np.diff(fx, prepend=fx[0]), np.diff(fy, prepend=fy[0]))
            on = (np.cumsum(step) // dash) % 2 == 0
            fx, fy = fx[on], fy[on]
        self._plot(np.rint(fx).astype(np.int64), np.rint(fy).astype(np.int64), color, width, box)

    def text(self, x: int, y: int, text: str, color: Color = BLACK, scale: int = 2) -> None:
        """Draws ``text`` (upper-cased; unknown characters become '?') with its top-left at (x, y)."""
        for i, ch in enumerate(text.upper()):
            bits = _GLYPH_BITS.get(ch, _GLYPH_BITS["?"])
            big = np.kron(bits, np.ones((scale, scale), dtype=bool))
            gx = x + 4 * scale * i
            rows, cols = np.nonzero(big)
            rows, cols = rows + y, cols + gx
            keep = (rows >= 0) & (rows < self.height) & (cols >= 0) & (cols < self.width)
            self.pixels[rows[keep], cols[keep]] = color


# ----- charts -----------------------------------------------------------------------------------
@dataclass
class Series:
    x: np.ndarray
    y: np.ndarray
    color: Color
    label: str = ""
    width: int = 2
    dash: int = 0


@dataclass
class Panel:
    title: str
    series: list[Series] = field(default_factory=list)
    log_y: bool = False


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, target)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(0.0 if abs(v) < step * 1e-9 else v)
        v += step
    return ticks


def _tick_label(v: float, log: bool) -> str:
    if log:
        v = 10.0**v
    text = f"{v:.6g}"
    return text.replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")


def _range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if hi == lo:  # a flat line sits in the middle of a unit-wide axis
        return lo - 0.5, hi + 0.5
    pad = 0.05 * (hi - lo)
    return lo - pad, hi + pad


def draw_panel(canvas: Canvas, panel: Panel, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """Draws one panel inside ``box`` (x0, y0, x1, y1 of the whole panel, labels included) and
    returns the plot area's box."""
    bx0, by0, bx1, by1 = box
    px0, py0, px1, py1 = bx0 + 80, by0 + 28, bx1 - 16, by1 - 30  # room for tick labels and the title
    canvas.text(px0, by0 + 8, panel.title)

    def yv(s: Series) -> np.ndarray:
        y = np.asarray(s.y, np.float64)
        if panel.log_y:
            with np.errstate(divide="ignore", invalid="ignore"):
                y = np.where(y > 0, np.log10(np.where(y > 0, y, 1.0)), np.nan)
        return y

    all_x = np.concatenate([np.asarray(s.x, np.float64) for s in panel.series]) if panel.series else np.zeros(0)
    all_y = np.concatenate([yv(s) for s in panel.series]) if panel.series else np.zeros(0)
    xlo, xhi = _range(all_x)
    ylo, yhi = _range(all_y)
    if all_x.size and np.isfinite(all_x).any():  # no side padding on the x axis: the data fills the width
        xlo, xhi = float(np.nanmin(all_x)), float(np.nanmax(all_x))
        if xhi == xlo:
            xlo, xhi = xlo - 0.5, xhi + 0.5

    def to_px(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return px0 + (x - xlo) / (xhi - xlo) * (px1 - px0), py1 - (y - ylo) / (yhi - ylo) * (py1 - py0)

    yticks = [float(k) for k in range(math.ceil(ylo), math.floor(yhi) + 1)] if panel.log_y else nice_ticks(ylo, yhi, 5)
    if panel.log_y and len(yticks) < 3:  # under two decades: add 2x and 5x between the powers of ten
        decades = range(math.floor(ylo), math.ceil(yhi) + 1)
        yticks = sorted(v for k in decades for m in (1, 2, 5) if ylo <= (v := k + math.log10(m)) <= yhi)
    for v in yticks:
        _, py = to_px(np.array([xlo]), np.array([v]))
        yy = int(round(py[0]))
        canvas.fill_rect(px0 + 1, yy, px1 - 1, yy, GRID)
        canvas.fill_rect(px0 - 5, yy, px0, yy, BLACK)
        label = _tick_label(v, panel.log_y)
        tw, th = text_size(label)
        canvas.text(px0 - 8 - tw, yy - th // 2, label)
    for v in nice_ticks(xlo, xhi, 6):
        px, _ = to_px(np.array([v]), np.array([ylo]))
        xx = int(round(px[0]))
        canvas.fill_rect(xx, py1, xx, py1 + 5, BLACK)
        label = _tick_label(v, False)
        tw, _ = text_size(label)
        canvas.text(xx - tw // 2, py1 + 10, label)

    clip = (px0 + 1, py0 + 1, px1 - 1, py1 - 1)
    for s in panel.series:
        sx, sy = to_px(np.asarray(s.x, np.float64), yv(s))
        canvas.polyline(sx, sy, s.color, width=s.width, dash=s.dash, clip=clip)
    canvas.rect(px0, py0, px1, py1, BLACK)

    # Legend on one row above the plot area, right-aligned, so it never hides data.
    x = px1
    for s in reversed([s for s in panel.series if s.label]):
        tw, _ = text_size(s.label)
        x -= tw
        canvas.text(x, by0 + 8, s.label)
        canvas.polyline([x - 30, x - 6], [by0 + 12, by0 + 12], s.color, width=s.width, dash=s.dash)
        x -= 48
    return px0, py0, px1, py1


def line_chart(path: str | Path, panels: Sequence[Panel], width: int = 1000, height: int = 760) -> None:
    """Writes ``panels`` stacked vertically (equal heights) as a PNG at ``path``."""
    if not panels:
        raise ValueError("line_chart: nothing to draw (no panels).")
    canvas = Canvas(width, height)
    h = height // len(panels)
    for i, panel in enumerate(panels):
        draw_panel(canvas, panel, (0, i * h, width - 1, (i + 1) * h - 1))
    write_png(path, canvas.pixels)
