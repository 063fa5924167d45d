"""Timestamps as the log formats write them. Syslog omits the year: it is inferred from a reference time
(the file's modification time), so a December line in a file written in January lands in the old year."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

MONTHS: dict[bytes, int] = {
    m: i
    for i, m in enumerate(
        (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"), 1
    )
}


_SKEW = timedelta(days=1)


def reference_time(path: Path, now: float | None = None) -> datetime:
    """When ``path`` was last written, as naive local time: the syslog lines in it were written at or before
    it. ``now`` (default: the clock) when the file cannot be read."""
    try:
        return datetime.fromtimestamp(path.stat().st_mtime)
    except OSError:
        return datetime.fromtimestamp(time.time() if now is None else now)


def syslog_time(month: bytes, day: bytes, hms: bytes, reference: datetime) -> datetime | None:
    """``Nov 26 16:47:38`` in the year that puts it at or before ``reference`` (plus a day of clock skew)."""
    m = MONTHS.get(month)
    if m is None:
        return None
    try:
        t = datetime(reference.year, m, int(day), int(hms[0:2]), int(hms[3:5]), int(hms[6:8]))
        if t > reference.replace(tzinfo=None) + _SKEW:
            t = t.replace(year=reference.year - 1)
    except ValueError:  # Feb 29 in the wrong year, a mangled field
        return None
    return t


def iso_time(text: str) -> datetime | None:
    """RFC 3339 / ISO 8601 (``2026-11-26T16:47:38.123456+00:00``, ``... 16:47:38 +0100``, ``...Z``)."""
    text = text.strip()
    if len(text) > 20 and text[-5] in "+-" and text[-6] == " ":  # Exim: "2026-11-26 16:47:38 +0100"
        text = text[:-6] + text[-5:-2] + ":" + text[-2:]
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


_LOOSE = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %I:%M %p")


def loose_time(text: str) -> datetime | None:
    """What Microsoft exports write, depending on locale: ISO, or ``11/26/2026 4:47:38 PM`` (taken as UTC)."""
    text = text.strip()
    if not text:
        return None
    t = iso_time(text)
    if t is not None:
        return t
    for fmt in _LOOSE:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None
