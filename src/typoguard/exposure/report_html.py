"""The exposure report as one self-contained HTML page: inline CSS and SVG, no script, no network."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from html import escape

from typoguard.exposure.classify import count_by_status, failed_lookups, group_by_provider
from typoguard.exposure.model import Change, Exposure, Status

COLOURS = {
    Status.ACCEPTS_MAIL: "#c0392b",
    Status.UNKNOWN: "#e67e22",
    Status.NULL_MX: "#7f8c8d",
    Status.NO_MAIL: "#2980b9",
    Status.UNREGISTERED: "#bdc3c7",
}
_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
th{background:#f4f4f4}.n{text-align:right}.legend span{display:inline-block;margin-right:1.2em}
.sw{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle}
"""


def _chart(results: Sequence[Exposure]) -> str:
    """Horizontal stacked bars: per protected domain, how many look-alikes are in each status."""
    per: dict[str, dict[Status, int]] = defaultdict(lambda: dict.fromkeys(Status, 0))
    for r in results:
        per[r.protected][r.status] += 1
    rows = sorted(per.items(), key=lambda kv: (-kv[1][Status.ACCEPTS_MAIL], kv[0]))
    width, label_w, bar_h = 640, 180, 18
    top = max((sum(c.values()) for _, c in rows), default=1) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + width + 60}" '
        f'height="{len(rows) * (bar_h + 6) + 6}" role="img" aria-label="look-alikes by status">'
    ]
    for i, (domain, counts) in enumerate(rows):
        y = 6 + i * (bar_h + 6)
        parts.append(f'<text x="0" y="{y + 13}" font-size="12">{escape(domain)}</text>')
        x = float(label_w)
        for status in Status:
            w = width * counts[status] / top
            if w > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{COLOURS[status]}">'
                    f"<title>{status.value}: {counts[status]}</title></rect>"
                )
            x += w
        parts.append(
            f'<text x="{x + 4:.1f}" y="{y + 13}" font-size="12">'
            f"{counts[Status.ACCEPTS_MAIL]} accept mail</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _incomplete(results: Sequence[Exposure]) -> str:
    """A warning when look-ups failed: those look-alikes are unknown, and the page is not an all-clear."""
    failed, distinct = failed_lookups(results)
    if not failed:
        return ""
    return (
        f'<p style="color:{COLOURS[Status.UNKNOWN]}">'
        f"<b>Incomplete: {failed} of {distinct} look-ups failed</b> "
        "(no answer, SERVFAIL or REFUSED). Those look-alikes are listed as unknown / lookup failed: they may "
        "accept mail.</p>"
    )


def render(
    results: Sequence[Exposure], *, title: str, generated_at: str, changes: Sequence[Change] = ()
) -> str:
    """The whole page."""
    counts = count_by_status(results)
    legend = "".join(
        f'<span><i class="sw" style="background:{COLOURS[s]}"></i>{s.value}: {counts[s]}</span>'
        for s in Status
    )
    out = [
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{escape(title)}</h1>"
        f"<p>Generated {escape(generated_at)}; {len(results)} look-alikes checked.</p>{_incomplete(results)}"
        f'<p class="legend">{legend}</p>{_chart(results)}'
    ]
    if changes:
        out.append(
            "<h2>Changed since the last run</h2><table><tr><th>look-alike</th><th>of</th>"
            "<th>before</th><th>now</th><th>mail hosts</th></tr>"
        )
        for c in changes:
            out.append(
                f"<tr><td>{escape(c.lookalike)}</td><td>{escape(c.protected)}</td>"
                f"<td>{escape(c.before.value if c.before else 'not scanned')}</td>"
                f"<td>{escape(c.after.value)}</td>"
                f"<td>{escape(', '.join(c.mail_hosts))}</td></tr>"
            )
        out.append("</table>")
    groups = group_by_provider(results)
    out.append(
        "<h2>Who receives the mail</h2><table><tr><th>provider</th><th class=n>look-alikes</th>"
        "<th>imitating</th><th>mail hosts</th><th>look-alikes</th></tr>"
    )
    for g in groups:
        out.append(
            f"<tr><td>{escape(g.provider)}</td><td class=n>{len(g.lookalikes)}</td>"
            f"<td>{escape(', '.join(g.protected))}</td><td>{escape(', '.join(g.mail_hosts))}</td>"
            f"<td>{escape(', '.join(e.lookalike for e in g.lookalikes))}</td></tr>"
        )
    out.append(
        "</table><h2>Registered look-alikes</h2><table><tr><th>look-alike</th><th>of</th><th>kind</th>"
        "<th class=n>score</th><th>status</th><th>mail hosts</th><th>name servers</th><th>note</th></tr>"
    )
    for r in sorted(results, key=lambda r: (r.status.rank, r.protected, -r.score, r.lookalike)):
        if r.status is Status.UNREGISTERED:
            continue
        out.append(
            f"<tr><td>{escape(r.lookalike)}</td><td>{escape(r.protected)}</td><td>{escape(r.kind)}</td>"
            f'<td class=n>{r.score:.2f}</td><td style="color:{COLOURS[r.status]}">{r.status.value}</td>'
            f"<td>{escape(', '.join(r.mail_hosts))}</td><td>{escape(', '.join(r.ns))}</td>"
            f"<td>{escape(r.error)}</td></tr>"
        )
    out.append("</table></body></html>\n")
    return "".join(out)
