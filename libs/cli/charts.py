"""A segment's daily trend drawn as a chart: in the terminal (one bar a day, in block
characters) and as a PNG image (Pillow, with its bundled font)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from libs.cli.errors import UsageError

_EIGHTHS = " ▏▎▍▌▋▊▉█"


@dataclass(frozen=True)
class Point:
    day: str  # YYYY-MM-DD
    count: int
    computed: bool


def terminal_bars(points: Sequence[Point], width: int = 50) -> list[str]:
    """One line a day: date, a bar proportional to the count, the count ("not computed"
    for days the daily job has not computed)."""
    top = max((p.count for p in points if p.computed), default=0)
    lines = []
    for p in points:
        if not p.computed:
            lines.append(f"{p.day}  {'':<{width}}  not computed")
            continue
        eighths = round(p.count / top * width * 8) if top else 0
        full, part = divmod(eighths, 8)
        bar = "█" * full + (_EIGHTHS[part] if part else "")
        lines.append(f"{p.day}  {bar:<{width}}  {p.count:,}")
    return lines


def _nice_top(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above `value` (at least 1)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return max(step * factor, 1)
        step *= 10


def write_png(points: Sequence[Point], title: str, path: Path) -> None:
    """A bar chart of `points` (days not computed drawn hollow) written to `path`."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = 960, 480
    left, right, top_margin, bottom = 80, 24, 56, 72
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(14)
    title_font = ImageFont.load_default(18)
    draw.text((left, 16), title, fill="#111111", font=title_font)
    plot_w, plot_h = width - left - right, height - top_margin - bottom
    base_y = top_margin + plot_h
    top = _nice_top(max((p.count for p in points if p.computed), default=0))
    for i in range(5):
        value = top * i // 4
        y = base_y - plot_h * i / 4
        draw.line((left, y, left + plot_w, y), fill="#e5e5e5")
        draw.text((left - 8, y), f"{value:,}", fill="#444444", font=font, anchor="rm")
    draw.line((left, top_margin, left, base_y), fill="#888888")
    draw.line((left, base_y, left + plot_w, base_y), fill="#888888")
    slot = plot_w / max(len(points), 1)
    bar_w = max(slot * 0.7, 1)
    label_every = max(1, round(len(points) / 8))
    for i, p in enumerate(points):
        x0 = left + slot * i + (slot - bar_w) / 2
        if p.computed:
            y0 = base_y - plot_h * p.count / top
            draw.rectangle((x0, min(y0, base_y - 1), x0 + bar_w, base_y), fill="#3b6fb6")
        else:
            draw.rectangle((x0, base_y - 6, x0 + bar_w, base_y), outline="#bbbbbb")
        if i % label_every == 0:
            draw.text(
                (x0 + bar_w / 2, base_y + 8), p.day[5:], fill="#444444", font=font, anchor="mt"
            )
    if points:
        span = f"{points[0].day} to {points[-1].day}; hollow: not computed yet"
        draw.text((left, height - 28), span, fill="#666666", font=font)
    try:
        image.save(path, format="PNG")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
