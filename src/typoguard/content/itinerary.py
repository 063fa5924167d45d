"""Travel itineraries: flight segments in a message that talks about travel.

A *segment* is a line holding a flight number (``AF 123``, ``DL4032``, ``U2 8011``) together with a route
(``IAD-BKO``, ``IAD to BKO``, ``IAD → BKO``), or with a time of day (``14:35``) and a leg word
("dep", "departs", "arrives"). Lines are only looked at when the
text uses travel words (itinerary, flight, departure, boarding, record locator, e-ticket ...), so part
numbers and catalogue codes in other mail do not count. A booking reference ("record locator: X7Y2ZQ")
counts as one more. Counts only.
"""

from __future__ import annotations

import re
from typing import Final

from typoguard.content.prepared import Prepared

_TRAVEL_WORDS: Final = re.compile(
    r"(?i)\b(?:itinerary|flight|departs?|departure|arrival|arrives?|boarding|record[ \t]+locator"
    r"|booking[ \t]+reference|e-?ticket|layover|terminal)\b"
)
_FLIGHT: Final = re.compile(r"\b(?:[A-Z]{2}|[A-Z][0-9]|[0-9][A-Z])[ \t]?[0-9]{1,4}[A-Z]?\b")
_ROUTE: Final = re.compile(r"\b[A-Z]{3}[ \t]*(?:-|–|—|→|>|/|\bto\b)[ \t]*[A-Z]{3}\b")
_TIME: Final = re.compile(r"\b(?:[01]?\d|2[0-3]):[0-5]\d\b")
_LEG: Final = re.compile(r"(?i)\b(?:dep(?:arts?|arture)?|arr(?:ives?|ival)?)\b")
_LOCATOR: Final = re.compile(
    r"(?i:\b(?:record[ \t]+locator|booking[ \t]+reference|PNR|confirmation[ \t]+code))[ \t]*[:#]?[ \t]*"
    r"\b[A-Z0-9]{6}\b"
)


_ANCHORS: Final = ("itinerar", "flight", "depart", "arriv", "boarding", "locator", "booking", "ticket",
            "layover", "terminal")  # fmt: skip


def count_itinerary(p: Prepared) -> int:
    # a segment has a route (three capitals) or a time (digit, colon, two digits): else nothing to count
    if not any(p.has_folded(a) for a in _ANCHORS) or not (p.acronyms or "0:00" in p.shape):
        return 0
    text = p.text
    if _TRAVEL_WORDS.search(text) is None:
        return 0
    n = 0
    for line in text.splitlines():
        if len(line) > 300 or _FLIGHT.search(line) is None:
            continue
        if _ROUTE.search(line) is not None or (
            _TIME.search(line) is not None and _LEG.search(line) is not None
        ):
            n += 1
    return n + sum(1 for _ in _LOCATOR.finditer(text))
