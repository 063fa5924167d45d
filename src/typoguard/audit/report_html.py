"""One self-contained HTML page: headline figures, three inline-SVG charts (mail per week split into
leaked/stopped/pending, top look-alike domains, top senders) and the tables. No script, no CDN, no web
font: it opens offline, from a mail attachment or a USB stick, and prints. Everything from the logs is
escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from typoguard.audit.aggregate import Summary, Tally
from typoguard.audit.model import AuditEvent, SourceStats

LEAKED_COLOUR, STOPPED_COLOUR, PENDING_COLOUR = "#c62828", "#2e7d32", "#f9a825"
MAX_EVENT_ROWS = 2000  # the page stays light; --csv/--json carry every event

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem}
.cards{display:flex;gap:1rem;flex-wrap:wrap}
.card{border:1px solid #ddd;border-radius:6px;padding:.8rem 1.2rem}
.card b{display:block;font-size:1.8rem}.leaked b{color:#c62828}.stopped b{color:#2e7d32}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border-bottom:1px solid #eee;padding:.25rem .6rem;text-align:left}
th{background:#f5f5f5}td.n{text-align:right}svg text{font-size:11px;fill:#333}.muted{color:#777}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem;vertical-align:middle}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _svg_open(label: str, width: int, height: int) -> str:
    return (
        f'<svg role="img" aria-label="{_e(label)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    )


def _rect(x: float, y: float, w: float, h: float, colour: str, *, title: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{colour}">'
        f"<title>{_e(title)}</title></rect>"
    )


def weekly_chart(weeks: list[tuple[str, Tally]], width: int = 900, height: int = 240) -> str:
    """Stacked columns per ISO week: leaked (bottom), stopped, still deferred."""
    if not weeks:
        return "<p class=muted>No dated events.</p>"
    top = max(t.events for _, t in weeks) or 1
    left, plot_h = 40, height - 60
    step = (width - left - 10) / len(weeks)
    bar = max(2.0, step * 0.7)
    parts = [_svg_open("mail to look-alike domains per week", width, height)]
    for frac in (0, 0.5, 1):
        y = 10 + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" x2="{width - 5}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e0e0e0"/>')
        parts.append(f'<text x="{left - 5}" y="{y + 4:.1f}" text-anchor="end">{round(top * frac)}</text>')
    label_every = max(1, len(weeks) // 12)
    for i, (week, t) in enumerate(weeks):
        x = left + i * step + (step - bar) / 2
        y = 10 + plot_h
        stack = ((t.leaked, LEAKED_COLOUR, "leaked"), (t.stopped, STOPPED_COLOUR, "stopped"))
        for count, colour, name in (*stack, (t.pending, PENDING_COLOUR, "still deferred")):
            if count:
                h = plot_h * count / top
                y -= h
                parts.append(_rect(x, y, bar, h, colour, title=f"{week}: {count} {name}"))
        if i % label_every == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 15}" text-anchor="middle">{_e(week)}</text>'
            )
    parts.append("</svg>")
    legend = "".join(
        f'<span style="background:{c}"></span>{n}'
        for c, n in (
            (LEAKED_COLOUR, "leaked"),
            (STOPPED_COLOUR, "stopped"),
            (PENDING_COLOUR, "still deferred"),
        )
    )
    return "".join(parts) + f"<div class=legend>{legend}</div>"


def bar_chart(rows: list[tuple[str, Tally]], label: str, width: int = 900) -> str:
    """Horizontal bars: the leaked part in red over the whole in green."""
    if not rows:
        return "<p class=muted>None.</p>"
    top = max(t.events for _, t in rows) or 1
    name_w, row_h = 280, 22
    plot_w = width - name_w - 120
    parts = [_svg_open(label, width, row_h * len(rows) + 10)]
    for i, (name, t) in enumerate(rows):
        y = 5 + i * row_h
        w_all, w_leak = plot_w * t.events / top, plot_w * t.leaked / top
        short = name if len(name) <= 42 else name[:40] + "…"
        parts.append(f'<text x="{name_w - 6}" y="{y + 14}" text-anchor="end">{_e(short)}</text>')
        parts.append(
            _rect(name_w, y + 2, w_all, row_h - 6, STOPPED_COLOUR, title=f"{name}: {t.events} mails")
        )
        if w_leak:
            parts.append(
                _rect(name_w, y + 2, w_leak, row_h - 6, LEAKED_COLOUR, title=f"{name}: {t.leaked} leaked")
            )
        parts.append(f'<text x="{name_w + w_all + 5:.1f}" y="{y + 14}">{t.events} ({t.leaked} leaked)</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: list[str], rows: list[list[object]], numeric: set[int]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=n' if i in numeric else ''}>{_e(c)}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _d(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M") if t else ""


def _cards(summary: Summary, stats: SourceStats) -> str:
    t = summary.total
    cards = [
        ("", t.events, "mails to look-alikes"),
        ("leaked", t.leaked, "leaked (delivered or sent)"),
        ("stopped", t.stopped, "stopped"),
        *([("", t.dropped, "accepted, then discarded")] if t.dropped else []),
        ("", t.pending, "still deferred"),
        ("", len(summary.repeats), "repeat patterns"),
        ("", stats.bad_lines, "bad lines"),
    ]
    return (
        "<div class=cards>"
        + "".join(f'<div class="card {c}"><b>{n}</b>{w}</div>' for c, n, w in cards)
        + "</div>"
    )


def _tables(events: list[AuditEvent], summary: Summary) -> tuple[str, str, str, str]:
    repeats = _table(
        ["sender", "look-alike", "mails", "leaked", "recipients", "first", "last"],
        [
            [s, d, r.events, r.leaked, ", ".join(sorted(r.others)), _d(r.first), _d(r.last)]
            for (s, d), r in summary.repeats
        ],
        {2, 3},
    )
    domain_rows: list[list[object]] = []
    for d, r in summary.top_domains():
        intended, kind, score = summary.domain_info[d]
        domain_rows.append(
            [
                d,
                intended,
                kind,
                f"{score:.2f}",
                r.events,
                r.leaked,
                r.stopped,
                len(r.others),
                _d(r.first),
                _d(r.last),
            ]
        )
    domains = _table(
        ["look-alike", "meant", "kind", "score", "mails", "leaked", "stopped", "senders", "first", "last"],
        domain_rows,
        {3, 4, 5, 6, 7},
    )
    senders = _table(
        ["sender", "mails", "leaked", "stopped", "look-alikes", "first", "last"],
        [
            [s, r.events, r.leaked, r.stopped, len(r.others), _d(r.first), _d(r.last)]
            for s, r in summary.top_senders()
        ],
        {1, 2, 3, 4},
    )
    shown = events[:MAX_EVENT_ROWS]
    rows: list[list[object]] = [
        [
            _d(e.time),
            e.sender,
            e.recipient,
            e.intended,
            e.kind,
            f"{e.score:.2f}",
            e.outcome.value,
            e.attempts,
            e.source,
        ]
        for e in shown
    ]
    listing = _table(
        ["time", "sender", "recipient", "meant", "kind", "score", "outcome", "attempts", "source"],
        rows,
        {5, 7},
    )
    if len(events) > len(shown):
        listing += f"<p class=muted>First {len(shown)} of {len(events)} events; --csv lists them all.</p>"
    return repeats, domains, senders, listing


def render(
    events: list[AuditEvent], summary: Summary, stats: SourceStats, inputs: list[str], top: int = 15
) -> str:
    """The whole page as text."""
    repeats, domains, senders, listing = _tables(events, summary)
    problems = "".join(f"<li><code>{_e(x)}</code></li>" for x in stats.bad_examples)
    problems += "".join(f"<li>{_e(x)}</li>" for x in stats.errors)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sources = "".join(f"<li>{_e(i)}</li>" for i in inputs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>typoguard audit: mail to look-alike domains</title><style>{_CSS}</style></head><body>
<h1>Mail to look-alike domains</h1>
<p class=muted>typoguard audit of {len(inputs)} input(s), {stats.lines} lines/records,
generated {generated}.</p>
{_cards(summary, stats)}
<h2>Per week</h2>{weekly_chart(summary.week_series())}
<h2>Top look-alike domains</h2>{bar_chart(summary.top_domains(top), "top look-alike domains")}
<h2>Top senders</h2>{bar_chart(summary.top_senders(top), "top senders")}
<h2>Repeat patterns</h2>
<p>The same sender mailing the same look-alike {summary.repeat_min} times or more: likely a saved contact.</p>
{repeats}
<h2>Look-alike domains</h2>{domains}
<h2>Senders</h2>{senders}
<h2>Events</h2>{listing}
<h2>Input problems</h2><p>{stats.bad_lines} bad line(s).</p><ul>{problems}</ul>
<h2>Inputs</h2><ul>{sources}</ul>
</body></html>
"""
