"""Syslog alerts: one RFC 5424 message per event, with the event as structured data, for SIEMs.

    <PRI>1 2026-12-07T00:00:00Z mx1 typoguard 4242 lookalike-accepts-mail [typoguard@32473 id="7"
    kind="lookalike-accepts-mail" subject="army.ml" severity="critical" count="1" state="open"
    reminder="false"] army.ml (look-alike of army.mil) accepts mail at mx1.catchall.example

32473 is the example enterprise number of RFC 5612 (documentation use); the SD-ID is stable. ``socket`` is
a Unix datagram socket (``/dev/log``, the default) or ``udp:HOST:PORT``.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Sequence

from typoguard.config import SYSLOG_FACILITIES, AlertConfig, parse_host_port
from typoguard.store.db import hostname
from typoguard.watch.alerts import Alert

SD_ID = "typoguard@32473"
_SEVERITY = {"critical": 2, "warning": 4, "info": 6}  # RFC 5424 crit, warning, informational


def _sd_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def format_line(alert: Alert, *, facility: int, host: str, pid: int, now: float) -> bytes:
    """One RFC 5424 message (no trailing newline: one datagram is one message)."""
    e = alert.event
    pri = facility * 8 + _SEVERITY.get(e.severity, 5)
    stamp = dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    params = {
        "id": str(e.id),
        "kind": e.kind,
        "subject": e.subject,
        "severity": e.severity,
        "count": str(e.count),
        "state": e.state,
        "reminder": "true" if alert.reminder else "false",
    }
    sd = "[" + SD_ID + "".join(f' {k}="{_sd_value(v)}"' for k, v in params.items()) + "]"
    msgid = e.kind[:32] or "-"
    header = f"<{pri}>1 {stamp} {host[:255] or '-'} typoguard {pid} {msgid} {sd} "
    return header.encode("utf-8") + "\ufeff".encode() + e.summary.encode("utf-8")


class SyslogSender:
    def __init__(self, target: str, facility: int, host: str = "") -> None:
        self.target = target
        self.facility = facility
        self.host = host or hostname()
        self.name = f"syslog {target}"

    @classmethod
    def from_config(cls, settings: AlertConfig) -> SyslogSender:
        sender = cls(settings.socket, SYSLOG_FACILITIES[settings.facility])
        if settings.name:
            sender.name = settings.name
        return sender

    def deliver(self, alerts: Sequence[Alert]) -> None:
        import time

        now = time.time()
        if self.target.startswith("udp:"):
            host, port = parse_host_port(self.target[4:], "[[alert]] socket", min_port=1)
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                for a in alerts:
                    s.sendto(
                        format_line(a, facility=self.facility, host=self.host, pid=os.getpid(), now=now),
                        (host, port),
                    )
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(self.target)
            for a in alerts:
                s.send(format_line(a, facility=self.facility, host=self.host, pid=os.getpid(), now=now))
