"""policyd/decider.py: what Postfix is told for each verdict, for whom, and in which mode."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from typoguard.config import Config, PolicyConfig, PolicydConfig, ProtectConfig
from typoguard.errors import ConfigError
from typoguard.policyd.decider import PolicyDecider
from typoguard.protocols.postfix_policy import PolicyRequest
from typoguard.protocols.smtp import smtp_text
from typoguard.senders import InternalSenders

CONFIG = Config(
    protect=ProtectConfig(domains=("army.mil", "gmail.com", "comcast.net")),
    policy=PolicyConfig(internal_senders=("army.mil", "*.army.mil"), internal_networks=("10.0.0.0/8",)),
    policyd=PolicydConfig(instance="node-1"),
)


@pytest.fixture(scope="module")
def decider() -> PolicyDecider:
    return PolicyDecider.build(CONFIG)


def decided(d: PolicyDecider, request: PolicyRequest) -> tuple[str, str, dict[str, Any] | None]:
    """(reply action text, verdict action, decision log record as a dict)."""
    reply, action, record = d.decide(request)
    return reply.action, action, json.loads(record) if record is not None else None


def rcpt(recipient: str, sender: str = "alice@army.mil", **extra: str) -> PolicyRequest:
    attrs = {
        "protocol_state": "RCPT",
        "client_address": "192.0.2.7",
        "sender": sender,
        "recipient": recipient,
    }
    attrs.update(extra)
    return PolicyRequest.from_attributes(attrs)


def test_reject_is_550_with_did_you_mean(decider: PolicyDecider) -> None:
    reply, action, record = decided(decider, rcpt("bob@army.ml"))
    assert action == "reject"
    # Postfix puts "<bob@army.ml>: Recipient address rejected: " in front: the text does not repeat it
    assert reply == (
        "550 5.1.2 Not sent: army.ml is not army.mil. Did you mean bob@army.mil?"
        " Nothing was delivered to this address (typoguard)."
    )
    assert record is not None
    assert record["action"] == "reject" and record["reply"] == "550" and record["intended"] == "army.mil"
    assert record["instance"] == "node-1" and record["sender"] == "alice@army.mil"
    assert record["kind"] == "suffix_typo" and record["score"] > 0.9


def test_the_suggestion_keeps_each_recipients_local_part(decider: PolicyDecider) -> None:
    first = decided(decider, rcpt("bob@army.ml"))[0]
    second = decided(decider, rcpt("carol@army.ml"))[0]
    assert "Did you mean bob@army.mil?" in first and "Did you mean carol@army.mil?" in second


def test_hold_and_warn(decider: PolicyDecider) -> None:
    hold = decided(decider, rcpt("bob@arny.mil"))
    assert hold[1] == "hold" and hold[0].startswith("HOLD typoguard: arny.mil looks like army.mil")
    warn = decided(decider, rcpt("x@comcast.com"))
    assert warn[1] == "warn"
    assert warn[0].startswith("PREPEND X-Typoguard-Warning: x@comcast.com may be a typo for x@comcast.net")


@pytest.mark.parametrize(
    "recipient", ["bob@army.mil", "bob@Army.MIL.", "someone@example.org", "x@", "no-at-all"]
)
def test_allowed_and_unparseable_recipients_get_dunno(decider: PolicyDecider, recipient: str) -> None:
    reply, action, _ = decided(decider, rcpt(recipient))
    assert reply == "DUNNO"
    assert action in ("allow", "invalid")


def test_mail_from_outside_is_not_ours_to_judge(decider: PolicyDecider) -> None:
    reply, action, record = decided(decider, rcpt("bob@army.ml", sender="stranger@example.net"))
    assert (reply, action) == ("DUNNO", "skip")
    assert record is not None and record["internal"] is False


@pytest.mark.parametrize(
    ("sender", "extra", "why"),
    [
        ("a@army.mil", {}, "sender"),
        ("a@hq.army.mil", {}, "sender"),
        ("", {"sasl_username": "alice"}, "sasl"),
        ("stranger@example.net", {"client_address": "10.1.2.3"}, "network"),
    ],
)
def test_internal_senders_by_domain_sasl_or_network(
    decider: PolicyDecider, sender: str, extra: dict[str, str], why: str
) -> None:
    reply, action, record = decided(decider, rcpt("bob@army.ml", sender=sender, **extra))
    assert action == "reject" and reply.startswith("550")
    assert record is not None and record["internal"] == why


def test_non_rcpt_requests_are_ignored(decider: PolicyDecider) -> None:
    for state in ("DATA", "END-OF-MESSAGE", "MAIL", "VRFY"):
        reply, action, record = decided(decider, rcpt("bob@army.ml", protocol_state=state))
        assert (reply, action, record) == ("DUNNO", "ignored", None)


def test_audit_mode_decides_and_logs_but_always_answers_dunno() -> None:
    audit = PolicyDecider.build(replace(CONFIG, policy=replace(CONFIG.policy, mode="audit")))
    for recipient, expected in (
        ("bob@army.ml", "reject"),
        ("bob@arny.mil", "hold"),
        ("x@comcast.com", "warn"),
    ):
        reply, action, record = decided(audit, rcpt(recipient))
        assert reply == "DUNNO" and action == expected
        assert record is not None and record["mode"] == "audit" and record["reply"] == "DUNNO"


def test_reject_code_and_templates_are_configurable() -> None:
    config = replace(
        CONFIG,
        policyd=replace(
            CONFIG.policyd,
            reject_code=554,
            reject_template="5.7.1 {recipient} refused by policy; try {suggestion} ({kind}, {score})",
            hold_template="held {{literally}} for {domain}",
            warn_header="X-Lookalike",
        ),
    )
    d = PolicyDecider.build(config)
    assert decided(d, rcpt("bob@army.ml"))[0].startswith(
        "554 5.7.1 bob@army.ml refused by policy; try bob@army.mil (suffix_typo, 0.9"
    )
    assert decided(d, rcpt("bob@arny.mil"))[0] == "HOLD held {literally} for arny.mil"
    assert decided(d, rcpt("x@comcast.com"))[0].startswith("PREPEND X-Lookalike: ")


def test_braces_in_a_recipient_are_not_template_fields(decider: PolicyDecider) -> None:
    reply = decided(decider, rcpt("{domain}@army.ml"))[0]
    assert "Did you mean {domain}@army.mil?" in reply


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reject_template": "5.1.2 {nope}"}, "unknown field"),
        ({"hold_template": "held {"}, "hold_template"),
        ({"warn_header": "X Bad: header"}, "warn_header"),
        ({"reject_template": "line one\nline two"}, "one line"),
    ],
)
def test_bad_templates_are_config_errors(change: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PolicyDecider.build(replace(CONFIG, policyd=replace(CONFIG.policyd, **change)))  # type: ignore[arg-type]


def test_replies_are_printable_ascii_and_bounded() -> None:
    assert smtp_text("bob@ärmy.ml\x00") == "bob@?rmy.ml?"
    assert len(smtp_text("x" * 1000)) == 400


def test_an_smtputf8_recipient_still_gets_an_ascii_reply(decider: PolicyDecider) -> None:
    reply = decided(decider, rcpt("bøb@army.ml"))[0]
    assert reply.isascii() and reply.startswith("550 5.1.2 Not sent: army.ml is not army.mil.")
    assert "Did you mean b?b@army.mil?" in reply


# --------------------------------------------------------------------------- words a sender reads (ADR 0017)
def test_a_homoglyph_is_explained_by_script_in_ascii(decider: PolicyDecider) -> None:
    reply, action, record = decided(decider, rcpt("bob@xn--rmy-5cd.mil"))  # аrmy.mil, Cyrillic а
    assert action == "reject" and reply.isascii()
    assert reply == (
        "550 5.1.2 Not sent: xn--rmy-5cd.mil is not army.mil. It contains a Cyrillic letter (U+0430) that"
        " looks like a Latin 'a'. Did you mean bob@army.mil?"
        " Nothing was delivered to this address (typoguard)."
    )
    assert record is not None  # the log and the store name the domain both ways
    assert record["reason"].startswith("аrmy.mil (xn--rmy-5cd.mil) looks like army.mil")


def test_hold_and_warn_texts_of_a_homoglyph_are_ascii_without_the_opening_twice() -> None:
    d = PolicyDecider.build(replace(CONFIG, policy=replace(CONFIG.policy, reject_at=0.99, hold_at=0.95)))
    hold = decided(d, rcpt("bob@xn--rmy-5cd.mil"))[0]
    assert hold.startswith("HOLD typoguard: xn--rmy-5cd.mil looks like army.mil (look-alike characters")
    assert hold.isascii() and "U+0430" in hold and hold.count("looks like") == 1


def test_help_text_ends_every_refusal() -> None:
    d = PolicyDecider.build(
        replace(CONFIG, policy=replace(CONFIG.policy, help_text="Questions: helpdesk@army.mil"))
    )
    assert decided(d, rcpt("bob@army.ml"))[0].endswith("(typoguard). Questions: helpdesk@army.mil")


def test_a_template_without_its_own_status_code_gets_5_1_2() -> None:
    d = PolicyDecider.build(
        replace(CONFIG, policyd=replace(CONFIG.policyd, reject_template="Sorry: try {suggestion}"))
    )
    assert decided(d, rcpt("bob@army.ml"))[0] == "550 5.1.2 Sorry: try bob@army.mil"


def test_the_relay_names_the_recipient_itself() -> None:
    config = CONFIG
    built = PolicyDecider.build(config)
    relay = PolicyDecider(config, built.guard, built.senders, names_recipient=True)
    assert decided(relay, rcpt("bob@army.ml"))[0].startswith("550 5.1.2 <bob@army.ml>: Not sent: army.ml")


def test_a_long_recipient_keeps_postfixs_reply_line_within_512_octets(decider: PolicyDecider) -> None:
    for local in ("a" * 64, "b" * 200):
        recipient = f"{local}@xn--rmy-5cd.mil"
        reply = decided(decider, rcpt(recipient))[0]
        line = (
            f"{reply[:10]}<{recipient}>: Recipient address rejected: {reply[10:]}\r\n"  # what Postfix sends
        )
        assert len(line.encode()) <= 512, len(line)


# --------------------------------------------------------------------------- senders
def test_sender_patterns() -> None:
    senders = InternalSenders.from_config(
        PolicyConfig(
            internal_senders=("army.mil", "*.navy.mil"), internal_networks=("192.0.2.0/24", "2001:db8::/32")
        )
    )
    assert senders.match("a@ARMY.MIL.") == "sender"
    assert senders.match("a@hq.army.mil") is None  # "army.mil" is exact; "*.army.mil" would be needed
    assert senders.match("a@ship.navy.mil") == "sender"
    assert senders.match("a@navy.mil") is None  # "*.navy.mil" is subdomains only
    assert senders.match("a@notnavy.mil") is None
    assert senders.match("", "", "192.0.2.200") == "network"
    assert senders.match("", "", "::ffff:192.0.2.1") == "network"
    assert senders.match("", "", "2001:db8::5") == "network"
    assert senders.match("", "", "unknown") is None
    assert senders.match("", "alice", "") == "sasl"
    no_sasl = InternalSenders.from_config(PolicyConfig(guard_sasl=False))
    assert no_sasl.match("", "alice", "") is None


@pytest.mark.parametrize(
    "policy",
    [PolicyConfig(internal_senders=("not a domain!",)), PolicyConfig(internal_networks=("10.0.0.0/33",))],
)
def test_bad_sender_patterns_are_config_errors(policy: PolicyConfig) -> None:
    with pytest.raises(ConfigError):
        InternalSenders.from_config(policy)
