"""``typoguard sink report``: what the sink refused, for the organisation whose domains were mistyped.

Attempts per day, per look-alike (with its intended domain and, when sender hashing is on, how many
distinct and repeat senders), per sending domain (gmail.com, yahoo.com, ...), and **surges**.

Surge rule: a sending domain surges on day *d* when it made at least ``surge_min`` attempts that day and at
least ``surge_factor`` times the median of its daily counts over the ``SURGE_WINDOW`` days before *d*
(days without attempts count as 0; a median of 0 counts as 1). A median is not moved by one earlier busy
day, so a provider that misdirects a steady trickle is quiet and one that suddenly sends many stands out
(a campaign, a broken address book, an auto-complete entry gone wrong).
"""

from __future__ import annotations

import statistics
import urllib.request
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape

from typoguard import charts
from typoguard.errors import ConfigError
from typoguard.sink.counts import CountStore

SURGE_WINDOW = 14  # days before the day in question
TOP = 25  # rows per table in text and HTML (JSON has them all)
_TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"


@dataclass(frozen=True, slots=True)
class Surge:
    sender_domain: str
    day: str
    attempts: int
    median_before: float
    factor: float


@dataclass(slots=True)
class SinkReport:
    since: str
    until: str
    generated_at: str
    total: int = 0
    hinted: int = 0  # attempts answered with the probable intended address
    per_day: list[dict[str, Any]] = field(default_factory=list)
    per_lookalike: list[dict[str, Any]] = field(default_factory=list)
    per_sender_domain: list[dict[str, Any]] = field(default_factory=list)
    surges: list[Surge] = field(default_factory=list)
    rule: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"not a day: {text!r} (use YYYY-MM-DD)") from None


def build(
    store: CountStore,
    *,
    days: int = 30,
    until: str | None = None,
    surge_factor: float = 5.0,
    surge_min: int = 20,
    now: datetime | None = None,
) -> SinkReport:
    """The report over ``days`` days ending ``until`` (default: today, UTC)."""
    now = now or datetime.now(UTC)
    last = _parse_day(until) if until else now.date()
    first = last - timedelta(days=days - 1)
    window_start = first - timedelta(days=SURGE_WINDOW)
    report = SinkReport(
        since=first.isoformat(),
        until=last.isoformat(),
        generated_at=now.strftime("%Y-%m-%d %H:%M:%SZ"),
        rule=(
            f"a sending domain surges on a day with >= {surge_min} attempts and >= {surge_factor:g} x the "
            f"median of its daily attempts over the {SURGE_WINDOW} days before"
        ),
    )
    day_list = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    per_day: dict[str, dict[str, Any]] = {d: {"day": d, "hinted": 0, "neutral": 0} for d in day_list}
    per_la: dict[tuple[str, str], dict[str, Any]] = {}
    per_sender: dict[str, dict[str, Any]] = {}
    sender_daily: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in store.rows(window_start.isoformat(), last.isoformat()):
        sender_daily[row.sender_domain][row.day] += row.count
        if row.day < report.since:
            continue
        report.total += row.count
        kind = "hinted" if row.intended else "neutral"
        per_day[row.day][kind] += row.count
        if row.intended:
            report.hinted += row.count
        la = per_la.setdefault(
            (row.lookalike, row.intended),
            {"lookalike": row.lookalike, "intended": row.intended or None, "attempts": 0,
             "first_seen": row.first_seen, "last_seen": row.last_seen, "sending_domains": set()},
        )  # fmt: skip
        la["attempts"] += row.count
        la["first_seen"] = min(la["first_seen"], row.first_seen)
        la["last_seen"] = max(la["last_seen"], row.last_seen)
        la["sending_domains"].add(row.sender_domain)
        sd: dict[str, Any] = per_sender.setdefault(
            row.sender_domain, {"sender_domain": row.sender_domain, "attempts": 0, "lookalikes": set()}
        )
        sd["attempts"] += row.count
        sd["lookalikes"].add(row.lookalike)
    senders = store.sender_stats(report.since, report.until)
    for la in per_la.values():
        la["sending_domains"] = len(la["sending_domains"])
        la["first_seen"] = _iso(la["first_seen"])
        la["last_seen"] = _iso(la["last_seen"])
        distinct, repeat = senders.get(la["lookalike"], (None, None))
        la["distinct_senders"], la["repeat_senders"] = distinct, repeat
    for sd in per_sender.values():
        sd["lookalikes"] = sorted(sd["lookalikes"])
    report.per_day = [
        per_day[d] | {"attempts": per_day[d]["hinted"] + per_day[d]["neutral"]} for d in day_list
    ]
    report.per_lookalike = sorted(per_la.values(), key=lambda r: (-r["attempts"], r["lookalike"]))
    report.per_sender_domain = sorted(per_sender.values(), key=lambda r: (-r["attempts"], r["sender_domain"]))
    report.surges = find_surges(sender_daily, day_list, factor=surge_factor, minimum=surge_min)
    return report


def find_surges(
    daily: dict[str, dict[str, int]], days: list[str], *, factor: float, minimum: int
) -> list[Surge]:
    """Apply the surge rule (module docstring) to each sending domain on each of ``days``."""
    out = []
    for sender, counts in daily.items():
        for d in days:
            n = counts.get(d, 0)
            if n < minimum:
                continue
            day = date.fromisoformat(d)
            before = [
                counts.get((day - timedelta(days=i)).isoformat(), 0) for i in range(1, SURGE_WINDOW + 1)
            ]
            median = float(statistics.median(before))
            if n >= factor * max(median, 1.0):
                out.append(Surge(sender, d, n, median, round(n / max(median, 1.0), 1)))
    return sorted(out, key=lambda s: (s.day, -s.attempts, s.sender_domain))


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# --------------------------------------------------------------------------- renderers
def render(report: SinkReport, fmt: str) -> str:
    if fmt == "json":
        return orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "html":
        return render_html(report)
    return render_text(report)


def render_text(report: SinkReport) -> str:
    lines = [
        f"typoguard sink report {report.since} .. {report.until} (generated {report.generated_at})",
        f"misdirected attempts refused: {report.total} ({report.hinted} told the probable intended address)",
        "",
        "per day (days with attempts):",
    ]
    top_day = max((r["attempts"] for r in report.per_day), default=0) or 1
    for r in report.per_day:
        if not r["attempts"]:
            continue  # days without attempts are in the JSON and HTML
        bar = "#" * round(40 * r["attempts"] / top_day)
        lines.append(f"  {r['day']}  {r['attempts']:>7}  {bar}")
    lines += ["", "per look-alike:"]
    for r in report.per_lookalike[:TOP]:
        meant = r["intended"] or "(unknown)"
        extra = (
            f"  senders {r['distinct_senders']} ({r['repeat_senders']} repeat)"
            if r["distinct_senders"]
            else ""
        )
        lines.append(f"  {r['lookalike']:<32} -> {meant:<24} {r['attempts']:>7}{extra}")
    lines += ["", "per sending domain:"]
    for r in report.per_sender_domain[:TOP]:
        lines.append(f"  {r['sender_domain']:<40} {r['attempts']:>7}  to {', '.join(r['lookalikes'][:5])}")
    lines += ["", f"surges ({report.rule}):"]
    if not report.surges:
        lines.append("  none")
    for s in report.surges:
        lines.append(
            f"  FINDING {s.day} {s.sender_domain}: {s.attempts} attempts, {s.factor:g}x its median of"
            f" {s.median_before:g} over the {SURGE_WINDOW} days before"
        )
    return "\n".join(lines) + "\n"


def render_html(report: SinkReport) -> str:
    """One self-contained page: inline CSS and SVG charts, no script, nothing fetched."""
    env = Environment(loader=FileSystemLoader(str(_TEMPLATES)), autoescape=select_autoescape(["html"]))
    template = env.get_template("sink_report.html")
    return template.render(
        r=report,
        top=TOP,
        window=SURGE_WINDOW,
        per_day_chart=charts.stacked_bars(report.per_day, ["hinted", "neutral"]),
        lookalike_chart=charts.horizontal_bars(
            [
                (f"{r['lookalike']} -> {r['intended'] or '?'}", r["attempts"])
                for r in report.per_lookalike[:15]
            ],
            label="attempts per look-alike",
        ),
        sender_chart=charts.horizontal_bars(
            [(r["sender_domain"], r["attempts"]) for r in report.per_sender_domain[:15]],
            label="attempts per sending domain",
        ),
    )


# --------------------------------------------------------------------------- digest
def post_webhook(url: str, report: SinkReport, *, timeout: float = 10.0) -> int:
    """POST the JSON report to ``url``; returns the HTTP status. Raises ``OSError`` on failure."""
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--webhook must be an http:// or https:// URL, got {url!r}")
    body = orjson.dumps({"kind": "typoguard.sink.report", **report.to_dict()})
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "typoguard"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return int(response.status)
