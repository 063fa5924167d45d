"""Summaries of audit events: totals, per look-alike domain, per sender, per week, and repeat patterns.

A *repeat pattern* is one sender mailing one look-alike domain again and again (``REPEAT_MIN`` messages
or more): the signature of an address-book entry or an auto-completed address, not of a one-off slip. It
will keep leaking until the contact is fixed, so it is listed first in every report.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from operator import attrgetter
from typing import Any

from typoguard.audit.model import DROPPED, LEAKED, STOPPED, AuditEvent, Outcome

REPEAT_MIN = 3


def week_of(t: datetime | None) -> str:
    """ISO week, e.g. ``2026-W48``; ``unknown`` for undated events."""
    if t is None:
        return "unknown"
    year, week, _ = t.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(slots=True)
class Tally:
    """Counts for one group of events (a domain, a sender, a week, a sender+domain pair)."""

    events: int = 0
    leaked: int = 0
    stopped: int = 0
    dropped: int = 0  # accepted, then discarded: the sender was told it went
    pending: int = 0
    first: datetime | None = None
    last: datetime | None = None
    outcomes: Counter[str] = field(default_factory=Counter)
    others: set[str] = field(default_factory=set)  # senders of a domain, domains of a sender, ...

    def add(self, e: AuditEvent, other: str = "") -> None:
        self.events += 1
        outcome = e.outcome
        self.outcomes[outcome._value_] += 1
        if outcome in LEAKED:
            self.leaked += 1
        elif outcome in STOPPED:
            self.stopped += 1
        elif outcome in DROPPED:
            self.dropped += 1
        else:
            self.pending += 1
        t = e.time
        if t is not None:
            if self.first is None or _lt(t, self.first):
                self.first = t
            if self.last is None or _lt(self.last, t):
                self.last = t
        if other:
            self.others.add(other)

    def merge(self, other: Tally, name: str = "") -> None:
        """Add the counts of ``other`` (a finer group); ``name`` joins ``others``."""
        self.events += other.events
        self.leaked += other.leaked
        self.stopped += other.stopped
        self.dropped += other.dropped
        self.pending += other.pending
        self.outcomes.update(other.outcomes)
        if other.first is not None and (self.first is None or _lt(other.first, self.first)):
            self.first = other.first
        if other.last is not None and (self.last is None or _lt(self.last, other.last)):
            self.last = other.last
        if name:
            self.others.add(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "leaked": self.leaked,
            "stopped": self.stopped,
            "dropped": self.dropped,
            "pending": self.pending,
            "first": self.first.isoformat() if self.first else None,
            "last": self.last.isoformat() if self.last else None,
            "outcomes": dict(sorted(self.outcomes.items())),
        }


def _lt(a: datetime, b: datetime) -> bool:
    try:
        return a < b
    except TypeError:
        return a.replace(tzinfo=None) < b.replace(tzinfo=None)


@dataclass(slots=True)
class Summary:
    total: Tally
    by_domain: dict[str, Tally]
    domain_info: dict[str, tuple[str, str, float]]  # look-alike -> (intended, kind, score)
    by_sender: dict[str, Tally]
    by_week: dict[str, Tally]
    by_pair: dict[tuple[str, str], Tally]
    repeat_min: int = REPEAT_MIN

    @property
    def repeats(self) -> list[tuple[tuple[str, str], Tally]]:
        """(sender, look-alike domain) pairs mailed at least ``repeat_min`` times, most first."""
        rows = [(k, t) for k, t in self.by_pair.items() if t.events >= self.repeat_min]
        return sorted(rows, key=lambda kt: (-kt[1].events, kt[0]))

    def is_repeat(self, e: AuditEvent) -> bool:
        t = self.by_pair.get((e.sender, e.domain))
        return t is not None and t.events >= self.repeat_min

    def top_domains(self, n: int | None = None) -> list[tuple[str, Tally]]:
        return sorted(self.by_domain.items(), key=lambda kt: (-kt[1].events, kt[0]))[:n]

    def top_senders(self, n: int | None = None) -> list[tuple[str, Tally]]:
        return sorted(self.by_sender.items(), key=lambda kt: (-kt[1].events, kt[0]))[:n]

    def weeks(self) -> list[tuple[str, Tally]]:
        return sorted(self.by_week.items())

    def week_series(self, max_weeks: int = 520) -> list[tuple[str, Tally]]:
        """Dated weeks from the first to the last, with empty weeks in between (for a time axis)."""
        dated = {w: t for w, t in self.by_week.items() if w != "unknown"}
        if not dated:
            return []
        first, last = min(dated), max(dated)
        start = date.fromisocalendar(int(first[:4]), int(first[6:]), 1)
        end = date.fromisocalendar(int(last[:4]), int(last[6:]), 1)
        if (end - start).days // 7 >= max_weeks:
            return sorted(dated.items())
        out = []
        day = start
        while day <= end:
            key = week_of(datetime(day.year, day.month, day.day))
            out.append((key, dated.get(key, Tally())))
            day += timedelta(days=7)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "totals": self.total.to_dict(),
            "by_domain": [
                {
                    "domain": d,
                    "intended": self.domain_info[d][0],
                    "kind": self.domain_info[d][1],
                    "score": self.domain_info[d][2],
                    "senders": len(t.others),
                    **t.to_dict(),
                }
                for d, t in self.top_domains()
            ],
            "by_sender": [
                {"sender": s, "domains": len(t.others), **t.to_dict()} for s, t in self.top_senders()
            ],
            "by_week": [{"week": w, **t.to_dict()} for w, t in self.weeks()],
            "repeat_patterns": [
                {"sender": s, "domain": d, "recipients": sorted(t.others), **t.to_dict()}
                for (s, d), t in self.repeats
            ],
        }


def summarise(events: Iterable[AuditEvent], repeat_min: int = REPEAT_MIN) -> Summary:
    """Tallies per (sender, look-alike) pair and per week; the totals, the domains and the senders are then
    added up from the pairs (there are far fewer pairs than events).

    The events are first grouped (one list append per event), then each group is counted with C-level
    ``Counter``/``min``/``max``/``set`` over it: the same tallies as ``Tally.add`` per event, ~2x faster."""
    pairs: dict[tuple[str, str], list[AuditEvent]] = {}
    weeks: dict[str, list[AuditEvent]] = {}
    week_of_day: dict[int, str] = {}  # day number -> ISO week
    for e in events:
        pair = (e.sender, e.domain)
        group = pairs.get(pair)
        if group is None:
            pairs[pair] = [e]
        else:
            group.append(e)
        t = e.time
        if t is None:
            week = "unknown"
        else:
            day = t.toordinal()
            week = week_of_day.get(day) or week_of_day.setdefault(day, week_of(t))
        group = weeks.get(week)
        if group is None:
            weeks[week] = [e]
        else:
            group.append(e)
    by_pair: dict[tuple[str, str], Tally] = {}
    info: dict[str, tuple[str, str, float]] = {}
    for pair, group in pairs.items():
        first = group[0]
        info.setdefault(first.domain, (first.intended, first.kind, first.score))
        tally = by_pair[pair] = _tally(group)
        tally.others = set(map(str.lower, map(_RECIPIENT, group)))
    by_week = {week: _tally(group) for week, group in weeks.items()}
    total = Tally()
    by_domain: dict[str, Tally] = defaultdict(Tally)
    by_sender: dict[str, Tally] = defaultdict(Tally)
    for (sender, domain), tally in by_pair.items():
        total.merge(tally)
        by_domain[domain].merge(tally, sender)
        by_sender[sender].merge(tally, domain)
    return Summary(total, dict(by_domain), info, dict(by_sender), by_week, by_pair, repeat_min)


_RECIPIENT = attrgetter("recipient")
_OUTCOME = attrgetter("outcome")
_TIME = attrgetter("time")


def _tally(group: list[AuditEvent]) -> Tally:
    """``Tally.add`` of every event of ``group``, in order (without ``others``)."""
    counts = Counter(map(_OUTCOME, group))  # Outcome -> n, in the order first seen
    tally = Tally(events=len(group))
    tally.outcomes = Counter({outcome._value_: n for outcome, n in counts.items()})
    for outcome, n in counts.items():
        if outcome in LEAKED:
            tally.leaked += n
        elif outcome in STOPPED:
            tally.stopped += n
        elif outcome in DROPPED:
            tally.dropped += n
        else:
            tally.pending += n
    times = [t for t in map(_TIME, group) if t is not None]
    if times:
        try:  # the first smallest and the first largest, as Tally.add keeps them
            tally.first, tally.last = min(times), max(times)
        except TypeError:  # naive and aware times: compared pair by pair, as Tally.add does
            for t in times:
                if tally.first is None or _lt(t, tally.first):
                    tally.first = t
                if tally.last is None or _lt(tally.last, t):
                    tally.last = t
    return tally


OUTCOME_ORDER = [o.value for o in Outcome]
