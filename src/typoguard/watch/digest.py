"""E-mail digest alerts: one message per batch, plain text and HTML, through the local MTA (SMTP to
``smtp``, 127.0.0.1:25 by default, or the ``sendmail`` command).

A digest names look-alike domains and senders; it must never itself go to a look-alike. Every recipient is
checked with the Guard (the same index and policy as the mail it protects) when the alert is built, where a
look-alike recipient is a configuration error, and again before each delivery.
"""

from __future__ import annotations

import datetime as dt
import smtplib
import subprocess
from collections import Counter
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html import escape
from typing import Any

from typoguard.config import AlertConfig, parse_host_port
from typoguard.errors import ConfigError
from typoguard.store.db import hostname
from typoguard.watch.alerts import Alert, AlertError

_COLOUR = {"critical": "#b00020", "warning": "#b26a00", "info": "#1565c0"}


def lookalike_recipients(guard: Any, recipients: Sequence[str]) -> list[str]:
    """The recipients the Guard flags (anything but allow): a digest is never sent to them."""
    if guard is None:
        return []
    from typoguard.core.verdict import Action

    return [r for r in recipients if guard.check(r).action is not Action.ALLOW]


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def render_text(alerts: Sequence[Alert]) -> str:
    lines = [f"typoguard watch: {len(alerts)} event(s)", ""]
    for a in alerts:
        e = a.event
        again = " (reminder: still open)" if a.reminder else ""
        lines.append(f"[{e.severity}] {e.summary}{again}")
        lines.append(
            f"    #{e.id} {e.kind} {e.subject}; first seen {_when(e.first_seen)}, seen {e.count} time(s)"
        )
    lines += ["", "Acknowledge in the dashboard (alerts page) or POST /v1/events/{id}/ack."]
    return "\n".join(lines) + "\n"


def render_html(alerts: Sequence[Alert]) -> str:
    from typoguard.charts import horizontal_bars

    by_kind = Counter(a.event.kind for a in alerts)
    chart = horizontal_bars(sorted(by_kind.items(), key=lambda kv: -kv[1]), label="events by kind")
    rows = "".join(
        f"<tr><td style='color:{_COLOUR.get(a.event.severity, '#000')}'>{escape(a.event.severity)}</td>"
        f"<td>{escape(a.event.kind)}</td><td>{escape(a.event.summary)}"
        f"{' <em>(reminder)</em>' if a.reminder else ''}</td>"
        f"<td>{escape(_when(a.event.first_seen))}</td><td>{a.event.count}</td></tr>"
        for a in alerts
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>typoguard watch</title></head><body>"
        f"<h1>typoguard watch: {len(alerts)} event(s)</h1>{chart}"
        "<table border='1' cellpadding='4' style='border-collapse:collapse'>"
        "<tr><th>severity</th><th>kind</th><th>what</th><th>first seen</th><th>seen</th></tr>"
        f"{rows}</table><p>Acknowledge in the dashboard (alerts page).</p></body></html>\n"
    )


class EmailDigestSender:
    def __init__(
        self,
        to: Sequence[str],
        *,
        sender: str = "",
        smtp: str = "127.0.0.1:25",
        sendmail: str = "",
        guard: Any = None,
        timeout: float = 30.0,
    ) -> None:
        bad = lookalike_recipients(guard, to)
        if bad:
            raise ConfigError(
                f"[[alert]] to: {', '.join(bad)} look(s) like a protected domain: "
                "a digest is never sent there"
            )
        self.to = tuple(to)
        self.sender = sender or f"typoguard@{hostname()}"
        self.smtp = smtp
        self.sendmail = sendmail
        self.guard = guard
        self.timeout = timeout
        self.name = f"email {', '.join(self.to)}"

    @classmethod
    def from_config(cls, settings: AlertConfig, guard: Any) -> EmailDigestSender:
        out = cls(
            settings.to,
            sender=settings.sender,
            smtp=settings.smtp,
            sendmail=settings.sendmail,
            guard=guard,
            timeout=settings.timeout,
        )
        if settings.name:
            out.name = settings.name
        return out

    def message(self, alerts: Sequence[Alert], recipients: Sequence[str]) -> EmailMessage:
        msg = EmailMessage()
        worst = max((a.event.severity for a in alerts), key=("info", "warning", "critical").index)
        msg["Subject"] = f"typoguard watch: {len(alerts)} event(s), worst {worst}"
        msg["From"] = self.sender
        msg["To"] = ", ".join(recipients)
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(domain=self.sender.rsplit("@", 1)[-1])
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies
        msg.set_content(render_text(alerts))
        msg.add_alternative(render_html(alerts), subtype="html")
        return msg

    def deliver(self, alerts: Sequence[Alert]) -> None:
        bad = set(lookalike_recipients(self.guard, self.to))
        recipients = [r for r in self.to if r not in bad]
        if not recipients:
            raise AlertError(f"{self.name}: every recipient looks like a protected domain: not sent")
        msg = self.message(alerts, recipients)
        if self.sendmail:
            try:
                proc = subprocess.run(
                    [*self.sendmail.split(), "-i", "-f", self.sender, "--", *recipients],
                    input=msg.as_bytes(),
                    capture_output=True,
                    timeout=self.timeout,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise AlertError(f"{self.name}: {self.sendmail}: {exc}") from None
            if proc.returncode != 0:
                raise AlertError(
                    f"{self.name}: {self.sendmail} exit {proc.returncode}: {proc.stderr[:200]!r}"
                )
            return
        host, port = parse_host_port(self.smtp, "[[alert]] smtp", min_port=1)
        try:
            with smtplib.SMTP(host, port, timeout=self.timeout) as smtp:
                smtp.send_message(msg, from_addr=self.sender, to_addrs=recipients)
        except (smtplib.SMTPException, OSError) as exc:
            raise AlertError(f"{self.name}: SMTP {self.smtp}: {exc}") from None
