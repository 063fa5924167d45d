"""Charts as inline SVG, drawn on the server: no JavaScript library, no CDN, works offline and in tests.

Every function returns a complete ``<svg>`` element as ``markupsafe.Markup``; labels are escaped here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

# Colours per action, shared with style.css's legend.
ACTION_COLOURS = {"allow": "#8fbc8f", "warn": "#e6b422", "hold": "#e07b39", "reject": "#c0392b"}


def stacked_bars(
    rows: Sequence[Mapping[str, object]], keys: Sequence[str], *, width: int = 640, height: int = 220
) -> Markup:
    """A bar per row (``row["day"]``), stacked by ``keys`` (counts), with a y-axis maximum and a legend."""
    if not rows:
        return Markup('<p class="empty">No decisions in this period.</p>')
    pad_left, pad_bottom, pad_top = 40, 40, 24
    plot_h = height - pad_bottom - pad_top
    total = [sum(int(str(r.get(k, 0))) for k in keys) for r in rows]
    top = max(*total, 1)
    slot = (width - pad_left) / len(rows)
    bar = max(slot * 0.7, 1.0)
    parts = [
        '<svg class="chart" role="img" aria-label="decisions per day by action" '
        f'viewBox="0 0 {width} {height}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="4" y="{pad_top + 4}" class="axis">{top}</text>',
        f'<text x="4" y="{height - pad_bottom}" class="axis">0</text>',
        f'<line x1="{pad_left}" y1="{height - pad_bottom}" x2="{width}" y2="{height - pad_bottom}" '
        f'class="axis-line"/>',
    ]
    for i, row in enumerate(rows):
        x = pad_left + i * slot + (slot - bar) / 2
        y = float(height - pad_bottom)
        for key in keys:
            n = int(str(row.get(key, 0)))
            if n == 0:
                continue
            h = plot_h * n / top
            y -= h
            parts.append(
                f'<rect class="bar bar-{escape(key)}" x="{x:.1f}" y="{y:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{ACTION_COLOURS.get(key, "#888")}"><title>{escape(row.get("day", ""))} '
                f"{escape(key)}: {n}</title></rect>"
            )
        if len(rows) <= 16 or i % max(len(rows) // 8, 1) == 0:
            label = escape(str(row.get("day", ""))[5:])
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - pad_bottom + 14}" class="axis" '
                f'text-anchor="middle">{label}</text>'
            )
    lx = pad_left
    for key in keys:
        parts.append(
            f'<rect x="{lx}" y="{height - 14}" width="10" height="10" '
            f'fill="{ACTION_COLOURS.get(key, "#888")}"/>'
            f'<text x="{lx + 14}" y="{height - 5}" class="axis">{escape(key)}</text>'
        )
        lx += 70
    parts.append("</svg>")
    return Markup("".join(parts))


def horizontal_bars(items: Sequence[tuple[str, int]], *, label: str, width: int = 480) -> Markup:
    """One bar per (label, count), longest first as given; ``label`` names the chart for screen readers."""
    if not items:
        return Markup('<p class="empty">Nothing flagged in this period.</p>')
    row_h, text_w = 24, 230
    height = row_h * len(items) + 8
    top = max(n for _, n in items) or 1
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(label)}" viewBox="0 0 {width} {height}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (name, n) in enumerate(items):
        y = 4 + i * row_h
        w = (width - text_w - 40) * n / top
        parts.append(
            f'<text x="0" y="{y + 15}" class="label">{escape(name)}</text>'
            f'<rect class="bar" x="{text_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" fill="#4a6fa5">'
            f"<title>{escape(name)}: {n}</title></rect>"
            f'<text x="{text_w + w + 4:.1f}" y="{y + 15}" class="axis">{n}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
