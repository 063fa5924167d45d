"""What the policy service answers and logs, byte for byte, for every kind of decision.

``policyd_pinned.json`` holds the reply and the decision log record written before the decision moved to
``typoguard.decide`` (issue 16): for Postfix (Postfix names the recipient), for the relay (it names the
recipient itself) and in audit mode; allowed, flagged, blocked by an admin, invalid, long and undecodable
recipients, senders found internal by domain, SASL login or network, and outside ones. After a deliberate
change of behaviour, write the file again:
``TG_PIN_WRITE=1 pytest tests/policyd/test_policy_decider_pinned.py``.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from typoguard.config import Config, PolicyConfig, PolicydConfig, ProtectConfig
from typoguard.core.context import LiveContext
from typoguard.policyd.decider import PolicyDecider
from typoguard.protocols.postfix_policy import PolicyRequest
from typoguard.store import Override

PINNED = Path(__file__).with_name("policyd_pinned.json")
CONFIG = Config(
    protect=ProtectConfig(domains=("army.mil", "gmail.com", "comcast.net")),
    policy=PolicyConfig(internal_senders=("army.mil", "*.army.mil"), internal_networks=("10.0.0.0/8",)),
    policyd=PolicydConfig(instance="node-1"),
)
HELP = "Questions? Call the service desk on extension 4357 or write to helpdesk@army.mil; " + "x" * 100
CASES: list[tuple[str, str, dict[str, str]]] = [
    ("bob@army.ml", "alice@army.mil", {}),  # reject
    ("bob@arny.mil", "alice@army.mil", {}),  # hold
    ("x@comcast.com", "alice@army.mil", {}),  # warn
    ("bob@army.mil", "alice@army.mil", {}),  # allow, protected
    ("x@ymail.com", "alice@army.mil", {}),  # allow despite a finding (a well-known mail domain)
    ("x@", "alice@army.mil", {}),  # invalid
    ("bob@xn--rmy-5cd.mil", "alice@army.mil", {}),  # a homoglyph
    ("bob@example.org", "alice@army.mil", {}),  # an admin's block of a domain that looks like nothing
    ("{domain}@army.ml", "alice@army.mil", {}),  # braces are not template fields
    ("bob@army.ml", "stranger@example.net", {}),  # skip: not an internal sender
    ("bob@army.ml", "", {"sasl_username": "alice"}),
    ("bob@army.ml", "stranger@example.net", {"client_address": "10.1.2.3"}),
    ("b\udcffb@army.ml", "al\udcfeice@army.mil", {}),  # invalid UTF-8 from the wire
    ("b" * 300 + "@army.ml", "alice@army.mil", {}),  # too long to be an address: clipped in the log
    ("a" * 64 + "@xn--rmy-5cd.mil", "alice@army.mil", {}),  # with help_text: cut to fit Postfix's line
    ("bob@army.ml", "alice@army.mil", {"protocol_state": "DATA"}),  # ignored
]


class _Snapshot:
    def __init__(self, entries: dict[str, Any]) -> None:
        self.snapshot = entries

    def lookup(self, domain: str) -> Any:
        return self.snapshot.get(domain)


def _deciders() -> dict[str, PolicyDecider]:
    block = Override(1, "example.org", "block", "phishing", "alice", 0.0)
    context = LiveContext(_Snapshot({"example.org": block}), _Snapshot({}))
    built = PolicyDecider.build(CONFIG)
    audit = replace(CONFIG, policy=replace(CONFIG.policy, mode="audit"))
    helped = replace(CONFIG, policy=replace(CONFIG.policy, help_text=HELP))
    return {
        "postfix": PolicyDecider(CONFIG, built.guard, built.senders, context=context),
        "relay": PolicyDecider(CONFIG, built.guard, built.senders, context=context, names_recipient=True),
        "audit": PolicyDecider(audit, built.guard, built.senders, context=context),
        "help": PolicyDecider(helped, built.guard, built.senders, context=context),
        "help-relay": PolicyDecider(
            helped, built.guard, built.senders, context=context, names_recipient=True
        ),
    }


def observe() -> dict[str, list[list[str | None]]]:
    seen: dict[str, list[list[str | None]]] = {}
    for name, decider in _deciders().items():
        rows: list[list[str | None]] = []
        for _ in range(2):  # the second time from the prepared (cached) pieces
            for recipient, sender, extra in CASES:
                attrs = {"protocol_state": "RCPT", "client_address": "192.0.2.7", "sender": sender,
                         "recipient": recipient, "queue_id": "4F9D3C1A2B", **extra}  # fmt: skip
                reply, action, record = decider.decide(PolicyRequest.from_attributes(attrs))
                rows.append([reply.action, action, record.decode() if record is not None else None])
        seen[name] = rows
    return seen


def test_replies_and_log_records_are_as_pinned() -> None:
    seen = observe()
    if os.environ.get("TG_PIN_WRITE") == "1":
        PINNED.write_text(json.dumps(seen, indent=1) + "\n")
        pytest.skip(f"wrote {PINNED.name}")
    pinned = json.loads(PINNED.read_text())
    assert seen.keys() == pinned.keys()
    for name, rows in pinned.items():
        for i, row in enumerate(rows):
            assert seen[name][i] == row, (name, CASES[i % len(CASES)])
