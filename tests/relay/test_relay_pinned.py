"""The relay's decisions byte for byte: RCPT and DATA replies, the decision log lines, the warning headers and
the quarantine sidecar, for each rule (reject, hold, warn, allow, the content rules, audit mode).

``relay_pinned.json`` holds what the relay wrote before its decisions moved to ``typoguard.decide`` (issue
16); a refactor must not change a byte of it. Times and queue ids are masked. After a deliberate change of
behaviour, write the file again: ``TG_PIN_WRITE=1 pytest tests/relay/test_relay_pinned.py``.
"""

from __future__ import annotations

import json
import os
import re
import smtplib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from relay_lab import NextHopSink, RunningRelay

PINNED = Path(__file__).with_name("relay_pinned.json")
SENSITIVE = (
    b"From: alice@army.mil\r\nTo: x@example.org\r\nSubject: forms\r\n\r\n"
    b"CUI//SP-PRVCY\r\nMy SSN is 123-45-6780, card 4111 1111 1111 1111.\r\n"
)
PLAIN = b"From: alice@army.mil\r\nSubject: lunch\r\n\r\nLunch at noon?\r\n"
# the decision records name the node (the host name by default): a fixed one, the same on every machine
NODE = '\n[policyd]\ninstance = "relay-1"\n'
_TIME = re.compile(rb'^\{"time":"[^"]*",')
_QID = re.compile(r"TG[0-9A-Za-z]{10,}")
_ARRIVAL = re.compile(rb'"arrival_time":[0-9.e+-]+')


def _session(relay: RunningRelay, rcpts: list[str], body: bytes) -> list[str]:
    """MAIL from alice@army.mil, each RCPT, DATA when one was accepted: every reply as "code text"."""
    out = []
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
        s.ehlo("client.test")
        s.mail("alice@army.mil")
        accepted = 0
        for rcpt in rcpts:
            code, text = s.rcpt(rcpt)
            out.append(f"{code} {text.decode()}")
            accepted += code == 250
        if accepted:
            code, text = s.data(body)
            out.append(f"{code} {_QID.sub('TG<id>', text.decode())}")
    return out


def _decision_lines(relay: RunningRelay) -> list[str]:
    relay.log_records()  # flushes the log
    lines = relay.log_path.read_bytes().splitlines()
    return [_TIME.sub(b"{", line).decode() for line in lines if b'"event":"decision"' in line]


def _sidecars(relay: RunningRelay) -> list[str]:
    msg_dir = relay.server.quarantine.msg_dir
    return [
        _QID.sub("TG<id>", _ARRIVAL.sub(b'"arrival_time":0', path.read_bytes()).decode())
        for path in sorted(msg_dir.glob("*.json"))
    ]


def _delivered(next_hop: NextHopSink, n: int) -> list[dict[str, Any]]:
    return [
        {
            "rcpt_tos": d.rcpt_tos,
            # the relay's own header lines (the Received line has a date: only its first line)
            "added": [
                line
                for line in d.content.decode().split("\r\n")
                if line.startswith(("X-Typoguard", "Received: from"))
            ],
        }
        for d in next_hop.wait_for(n)[:n]
    ]


def observe(start_relay: Callable[..., RunningRelay], next_hop: NextHopSink) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    # enforce, no store: a refusal, a warning, a hold and an allowed recipient, sensitive content: held
    relay = start_relay(policy=NODE)
    replies = _session(relay, ["bob@army.ml", "joe@gmail.net", "bob@nvy.mil", "carol@army.mil"], SENSITIVE)
    seen["enforce"] = {"replies": replies, "log": _decision_lines(relay), "held": _sidecars(relay)}

    # the flagged rule warns: the header of the RCPT decision goes out (once), and a plain message too
    relay = start_relay(policy=NODE, content_flagged_action="warn")
    replies = _session(relay, ["joe@gmail.net", "carol@army.mil"], SENSITIVE)
    replies += _session(relay, ["joe@gmail.net", "jim@gmail.net"], PLAIN)
    seen["flagged-warn"] = {
        "replies": replies,
        "log": _decision_lines(relay),
        "delivered": _delivered(next_hop, 2),
    }
    next_hop.received.clear()

    # the flagged rule refuses the message
    relay = start_relay(policy=NODE, content_flagged_action="reject")
    replies = _session(relay, ["carol@army.mil", "joe@gmail.net"], SENSITIVE)
    seen["flagged-reject"] = {"replies": replies, "log": _decision_lines(relay)}

    # a store: a first-time external recipient of sensitive content is held
    relay = start_relay(policy=NODE, store=True)
    replies = _session(relay, ["x@example.org", "hr@army.mil"], SENSITIVE)
    seen["first-contact"] = {"replies": replies, "log": _decision_lines(relay), "held": _sidecars(relay)}

    # audit mode with a store: every rule logs, nothing is refused, held or marked
    relay = start_relay(store=True, policy='mode = "audit"' + NODE)
    replies = _session(relay, ["bob@army.ml", "joe@gmail.net", "bob@nvy.mil", "x@example.org"], SENSITIVE)
    seen["audit"] = {"replies": replies, "log": _decision_lines(relay), "delivered": _delivered(next_hop, 1)}
    return seen


def test_the_relays_replies_logs_headers_and_sidecars_are_as_pinned(
    start_relay: Callable[..., RunningRelay], next_hop: NextHopSink
) -> None:
    seen = observe(start_relay, next_hop)
    if os.environ.get("TG_PIN_WRITE") == "1":
        PINNED.write_text(json.dumps(seen, indent=1, ensure_ascii=False) + "\n")
        pytest.skip(f"wrote {PINNED.name}")
    pinned = json.loads(PINNED.read_text())
    for scenario, expected in pinned.items():
        for what, value in expected.items():
            assert seen[scenario][what] == value, (scenario, what)
    assert seen.keys() == pinned.keys()
