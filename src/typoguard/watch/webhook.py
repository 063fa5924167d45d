"""Webhook alerts: an HTTP POST of JSON per batch of events.

The typoguard format (``preset = ""``), schema ``typoguard-alert/1`` (docs/watch.md)::

    {"schema": "typoguard-alert/1", "sent_at": "2026-12-07T00:00:00Z", "node": "mx1",
     "events": [{"id": 7, "kind": "lookalike-accepts-mail", "subject": "army.ml", "severity": "critical",
                 "summary": "...", "first_seen": 1765065600.0, "last_seen": ..., "count": 1,
                 "state": "open", "reminder": false, "details": {...}, ...}]}

With a ``secret_file``, two headers let the receiver check it came from us and is fresh:
``X-Typoguard-Timestamp: <UNIX seconds>`` and ``X-Typoguard-Signature: sha256=<hex HMAC-SHA256 of
"<timestamp>." + body>`` (reject a timestamp older than a few minutes: a replay). ``preset = "slack"`` sends
Slack's incoming-webhook message (``text`` and ``blocks``), ``preset = "teams"`` a Microsoft Teams
(Workflows) message with an Adaptive Card; both carry the signature headers too when a secret is set.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from typoguard.config import AlertConfig, Config
from typoguard.errors import ConfigError
from typoguard.watch.alerts import Alert, AlertError

SCHEMA = "typoguard-alert/1"
SIGNATURE_HEADER = "X-Typoguard-Signature"
TIMESTAMP_HEADER = "X-Typoguard-Timestamp"
_ICON = {
    "critical": "\N{LARGE RED CIRCLE}",
    "warning": "\N{LARGE ORANGE CIRCLE}",
    "info": "\N{LARGE BLUE CIRCLE}",
}


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of ``timestamp.body``."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _line(a: Alert) -> str:
    again = " (reminder: still open)" if a.reminder else ""
    return f"{_ICON.get(a.event.severity, '')} [{a.event.severity}] {a.event.summary}{again}"


def typoguard_payload(alerts: Sequence[Alert], node: str, now: float) -> dict[str, Any]:
    return {"schema": SCHEMA, "sent_at": _iso(now), "node": node, "events": [a.to_dict() for a in alerts]}


def slack_payload(alerts: Sequence[Alert]) -> dict[str, Any]:
    """Slack incoming webhook: ``text`` (notifications, fallback) and one section block per event."""
    title = f"typoguard: {len(alerts)} event{'s' if len(alerts) != 1 else ''}"
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": title}}]
    for a in alerts[:45]:  # Slack accepts at most 50 blocks
        text = f"*{a.event.kind}* `{a.event.subject}`\n{_line(a)}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}})
    return {"text": title + ": " + "; ".join(a.event.summary for a in alerts[:5]), "blocks": blocks}


def teams_payload(alerts: Sequence[Alert]) -> dict[str, Any]:
    """Microsoft Teams incoming webhook (Workflows): a message with one Adaptive Card."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "size": "Medium",
            "weight": "Bolder",
            "text": f"typoguard: {len(alerts)} event(s)",
        }
    ]
    for a in alerts:
        body.append({"type": "TextBlock", "wrap": True, "text": _line(a)})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


class WebhookSender:
    """POSTs each batch; a status outside 2xx, a timeout or a refused connection raises ``AlertError``."""

    def __init__(
        self, url: str, *, preset: str = "", secret: bytes = b"", timeout: float = 5.0, node: str = ""
    ) -> None:
        self.url = url
        self.preset = preset
        self.secret = secret
        self.timeout = timeout
        self.node = node
        self.name = f"webhook {url.split('?', 1)[0]}"

    @classmethod
    def from_config(cls, settings: AlertConfig, config: Config) -> WebhookSender:
        secret = b""
        if settings.secret_file:
            path = Path(config.base_dir, settings.secret_file)
            try:
                secret = path.read_bytes().strip()
            except OSError as exc:
                raise ConfigError(f"[[alert]] secret_file {path}: {exc.strerror or exc}") from None
            if not secret:
                raise ConfigError(f"[[alert]] secret_file {path} is empty")
        from typoguard.store.db import hostname

        sender = cls(
            settings.url, preset=settings.preset, secret=secret, timeout=settings.timeout,
            node=config.store.node or hostname(),
        )  # fmt: skip
        if settings.name:
            sender.name = settings.name
        return sender

    def body(self, alerts: Sequence[Alert], now: float) -> bytes:
        if self.preset == "slack":
            doc = slack_payload(alerts)
        elif self.preset == "teams":
            doc = teams_payload(alerts)
        else:
            doc = typoguard_payload(alerts, self.node, now)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    def deliver(self, alerts: Sequence[Alert]) -> None:
        now = time.time()
        body = self.body(alerts, now)
        headers = {"Content-Type": "application/json", "User-Agent": "typoguard-watch"}
        if self.secret:
            stamp = str(int(now))
            headers[TIMESTAMP_HEADER] = stamp
            headers[SIGNATURE_HEADER] = sign(self.secret, stamp, body)
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read(65536)
        except urllib.error.HTTPError as exc:
            raise AlertError(f"{self.name}: HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise AlertError(f"{self.name}: {getattr(exc, 'reason', exc)}") from None
