"""Server-side SVG charts (no JavaScript, no CDN): grouped bars and the hour × weekday heatmap.
Every text is XML-escaped: sources and campaign names come from configuration and CRM data."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

from dashboards.i18n import WEEKDAYS

COLORS = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#c53030")


def _text(x: float, y: float, s: str, *, anchor: str = "middle", size: int = 11,
          extra: str = "") -> str:  # fmt: skip
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>'
            f"{escape(s)}</text>")  # fmt: skip


def bar_chart(title: str, labels: Sequence[str],
              series: Sequence[tuple[str, Sequence[float]]], *, width: int = 760,
              height: int = 300) -> str:  # fmt: skip
    """Grouped vertical bars, one group per label, one colour per series, with a legend."""
    top, bottom, left, right = 40, 60, 50, 10
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([v for _, values in series for v in values] + [1.0])
    group_w = plot_w / max(1, len(labels))
    bar_w = group_w * 0.8 / max(1, len(series))
    parts = [_open(width, height, title), _text(width / 2, 20, title, size=14)]
    for tick in range(5):
        y = top + plot_h - plot_h * tick / 4
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                     'stroke="#e2e8f0"/>')  # fmt: skip
        parts.append(_text(left - 4, y + 4, f"{peak * tick / 4:.0f}", anchor="end", size=10))
    for i, lab in enumerate(labels):
        x0 = left + group_w * i + group_w * 0.1
        for j, (_, values) in enumerate(series):
            v = values[i] if i < len(values) else 0.0
            h = plot_h * v / peak
            parts.append(
                f'<rect x="{x0 + j * bar_w:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{COLORS[j % len(COLORS)]}"><title>{escape(lab)}: '
                f"{v:g}</title></rect>"
            )
        parts.append(_text(x0 + group_w * 0.4, top + plot_h + 14, lab[:18], size=10))
    for j, (name, _) in enumerate(series):
        x = left + j * 160
        parts.append(f'<rect x="{x}" y="{height - 18}" width="10" height="10" '
                     f'fill="{COLORS[j % len(COLORS)]}"/>')  # fmt: skip
        parts.append(_text(x + 14, height - 9, name, anchor="start"))
    parts.append("</svg>")
    return "".join(parts)


def heatmap(title: str, values: dict[tuple[int, int], float], lang: str, *,
            width: int = 760) -> str:  # fmt: skip
    """7 rows (ISO weekdays, Monday first) × 24 columns (hours, clinic time), shaded by value."""
    left, top, cell_w, cell_h = 40, 40, (width - 50) / 24, 24
    height = int(top + 7 * cell_h + 30)
    peak = max([*list(values.values()), 1.0])
    parts = [_open(width, height, title), _text(width / 2, 20, title, size=14)]
    for hour in range(24):
        parts.append(_text(left + hour * cell_w + cell_w / 2, top + 7 * cell_h + 14, f"{hour:02d}",
                           size=9))  # fmt: skip
    for row, day in enumerate(WEEKDAYS.get(lang, WEEKDAYS["ru"])):
        y = top + row * cell_h
        parts.append(_text(left - 6, y + cell_h / 2 + 4, day, anchor="end"))
        for hour in range(24):
            v = values.get((row + 1, hour), 0.0)
            shade = 0.08 + 0.92 * v / peak if v else 0.0
            parts.append(
                f'<rect x="{left + hour * cell_w:.1f}" y="{y:.1f}" width="{cell_w - 1:.1f}" '
                f'height="{cell_h - 1}" fill="#c53030" fill-opacity="{shade:.2f}" '
                f'stroke="#edf2f7"><title>{escape(day)} {hour:02d}:00 — {v:g}</title></rect>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _open(width: int, height: int, title: str) -> str:
    aria = escape(title, {'"': "&quot;"})
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{aria}" '
            'font-family="sans-serif">')  # fmt: skip
