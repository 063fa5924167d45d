"""Content sensitivity: what an outgoing message carries, as categories and counts, never the text.

    report = scan_message(raw_bytes, max_bytes)      # ContentReport(counts={"ssn": 2, "cui": 1}, ...)

Categories (``CATEGORIES``): ``classified`` and ``cui`` markings (markings.py), ``credential``
(detect-secrets, credentials.py), ``ssn``, ``payment_card``, ``passport`` (identifiers.py, with validity
rules), ``itinerary`` (itinerary.py). The relay uses the report to raise the stakes for flagged and
first-time recipients (relay/server.py, docs/relay.md).

Pure: bytes in, counts out. May import: ``core``, ``errors``.
"""

from __future__ import annotations

from typoguard.content.scan import CATEGORIES, ContentReport, scan_message, scan_text

__all__ = ["CATEGORIES", "ContentReport", "scan_message", "scan_text"]
