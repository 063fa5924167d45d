"""Held mail: the relay keeps it in its quarantine, `typoguard held` lists, shows, releases (re-injects to
the next hop) and deletes it; sensitive content is recorded as categories and counts, never as text."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from relay_lab import NextHopSink, RunningRelay, hold_one

from typoguard.cli import main
from typoguard.held.quarantine import HoldQueues, Quarantine
from typoguard.relay import server as smtp_proxy
from typoguard.store import DecisionQuery

PLAIN = b"From: alice@army.mil\r\nTo: bob@nvy.mil\r\nSubject: lunch\r\n\r\nLunch at noon?\r\n"
SSN, CARD = "123-45-6780", "4111 1111 1111 1111"
SENSITIVE = (
    "From: alice@army.mil\r\nTo: x@example.org\r\nSubject: forms\r\n\r\n"
    f"CUI//SP-PRVCY\r\nMy SSN is {SSN}, card {CARD}.\r\npassword: Tr0ub4dor&3\r\n"
).encode()


def held_cli(relay: RunningRelay, *args: str) -> Result:
    return CliRunner().invoke(
        main, ["held", *args, "--config", str(relay.config_path)], catch_exceptions=False
    )


def held_json(relay: RunningRelay) -> list[dict[str, Any]]:
    result = held_cli(relay, "list", "--format", "json")
    assert result.exit_code == 0, result.output
    return [orjson.loads(line) for line in result.stdout.splitlines() if line.strip()]


def wait_until(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_hold_quarantine_list_release(
    start_relay: Callable[..., RunningRelay], next_hop: NextHopSink
) -> None:
    relay = start_relay(store=True)
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
        s.ehlo("client.test")
        s.mail("alice@army.mil")
        assert s.rcpt("bob@nvy.mil")[0] == 250  # nvy.mil: held, not refused
        assert s.rcpt("carol@navy.mil")[0] == 250
        code, text = s.data(PLAIN)
    assert code == 250 and b"held for review as TG" in text
    qid = text.decode().rsplit(" ", 1)[1]
    assert next_hop.received == []  # nothing went on

    def listed() -> list[dict[str, Any]]:
        return [h for h in held_json(relay) if h["queue_id"] == qid and h["decision"]]

    (item,) = wait_until(listed)
    assert item["sender"] == "alice@army.mil" and item["recipients"] == ["bob@nvy.mil", "carol@navy.mil"]
    assert item["decision"]["action"] == "hold" and item["decision"]["intended"] == "navy.mil"
    shown = held_cli(relay, "show", qid)
    assert shown.exit_code == 0, shown.output
    assert orjson.loads(shown.stdout)["relay"]["client"] == "127.0.0.1"

    released = held_cli(relay, "release", qid, "--by", "admin", "--reason", "checked with bob")
    assert released.exit_code == 0, released.output
    (got,) = next_hop.wait_for(1)
    assert got.content == PLAIN and got.rcpt_tos == ["bob@nvy.mil", "carol@navy.mil"]
    assert all(h["queue_id"] != qid for h in held_json(relay))
    again = held_cli(relay, "release", qid)
    assert again.exit_code == 1 and "no held message" in again.output


def test_delete_and_concurrent_claims(tmp_path: Path, next_hop: NextHopSink) -> None:
    delivered: list[str] = []
    q = Quarantine(tmp_path / "q", lambda s, r, m, o: delivered.append(s) or {})
    q.ensure()
    a = q.put(b"Subject: a\r\n\r\na\r\n", "a@army.mil", ["b@nvy.mil"])
    b = q.put(b"Subject: b\r\n\r\nb\r\n", "c@army.mil", ["d@nvy.mil"])
    assert [m.queue_id for m in q.held()] == [a, b]
    (q.msg_dir / "TG0000000000000000000000.eml").write_bytes(b"torn")  # a crash before the sidecar
    assert len(q.held()) == 2
    queues = HoldQueues(None, q)
    queues.delete(a)
    queues.release(b)
    assert delivered == ["c@army.mil"] and q.held() == []


def _send_sensitive_and_get_held(relay: RunningRelay, recipient: str) -> dict[str, Any]:
    """Send SENSITIVE from alice@army.mil to ``recipient``; it must be held: the quarantine sidecar."""
    qid = hold_one(relay, recipient, SENSITIVE)
    sidecar: dict[str, Any] = Quarantine(relay.server.quarantine.directory).show(qid)
    return sidecar


def test_sensitive_content_to_first_time_recipient_is_held_counts_only(
    start_relay: Callable[..., RunningRelay], next_hop: NextHopSink
) -> None:
    relay = start_relay(store=True)
    sidecar = _send_sensitive_and_get_held(relay, "x@example.org")
    assert sidecar["content"]["counts"] == {"credential": 1, "cui": 1, "payment_card": 1, "ssn": 1}
    decisions = [r for r in relay.log_records() if r.get("stage") == "DATA"]
    assert decisions and decisions[0]["action"] == "hold" and decisions[0]["content"]["ssn"] == 1
    # ... and in the store, where the dashboard and /v1/decisions show why (categories and counts only)
    assert relay.server.parts is not None
    store = relay.server.parts.store
    stored = wait_until(lambda: store.decisions(DecisionQuery(recipient="x@example.org", action="hold")))
    assert stored, "the content decision reached the store"
    event = stored[0].event
    assert orjson.loads(event.content or "null") == {"credential": 1, "cui": 1, "payment_card": 1, "ssn": 1}
    assert event.reason and "sensitive content" in event.reason
    # the numbers and the password are nowhere but in the held message itself
    data_dir = relay.config_path.parent / "data"
    wait_until((data_dir / "typoguard.db").exists)
    time.sleep(0.5)
    for path in [relay.log_path, *data_dir.rglob("*")]:
        if path.is_file() and path.suffix != ".eml":
            blob = path.read_bytes()
            for secret in (SSN.encode(), CARD.encode(), b"Tr0ub4dor", b"4111111111111111"):
                assert secret not in blob, (path, secret)


def test_sensitive_content_to_own_domain_goes_through(
    start_relay: Callable[..., RunningRelay], next_hop: NextHopSink
) -> None:
    relay = start_relay(store=True)
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
        assert s.sendmail("alice@army.mil", ["hr@army.mil"], SENSITIVE) == {}
    (got,) = next_hop.wait_for(1)
    assert got.content.endswith(SENSITIVE)


def test_held_at_rcpt_sidecar_has_the_content_counts(
    start_relay: Callable[..., RunningRelay], next_hop: NextHopSink
) -> None:
    relay = start_relay()  # content_scan "when-relevant" (the default), no store: scanned because held
    sidecar = _send_sensitive_and_get_held(relay, "bob@nvy.mil")
    assert sidecar["content"]["counts"] == {"credential": 1, "cui": 1, "payment_card": 1, "ssn": 1}


@pytest.mark.parametrize(
    ("scan", "held"), [(True, True), ("always", True), ("when-relevant", True), (False, False)]
)
def test_content_scan_settings_on_first_contact(
    start_relay: Callable[..., RunningRelay], next_hop: NextHopSink, scan: bool | str, held: bool
) -> None:
    relay = start_relay(store=True, content_scan=scan)
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
        s.ehlo("client.test")
        s.mail("alice@army.mil")
        assert s.rcpt("x@example.com")[0] == 250  # external, first contact
        code, text = s.data(SENSITIVE)
    assert code == 250 and (b"held for review" in text) is held
    assert len(next_hop.wait_for(0 if held else 1)) == (0 if held else 1)


def _nested(depth: int) -> bytes:
    """SENSITIVE's text as the innermost part of ``depth`` multiparts, one inside the other."""
    head = b"From: alice@army.mil\r\nTo: x@example.org\r\nSubject: forms\r\nMIME-Version: 1.0\r\n"
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i) for i in range(depth)
    )
    inner = b"Content-Type: text/plain\r\n\r\n" + SENSITIVE.split(b"\r\n\r\n", 1)[1]
    closing = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    return head + opening + inner + closing


@pytest.mark.parametrize("depth", [3, 1_000])
def test_mime_nested_a_thousand_deep_is_scanned_not_deferred_forever(
    start_relay: Callable[..., RunningRelay], next_hop: NextHopSink, depth: int
) -> None:
    # The email package recurses once per nesting level: at 1,000 it raised RecursionError, and the relay's
    # on_error (tempfail) answered 451 to every retry of the same message, until the sender's MTA gave up.
    relay = start_relay(content_scan="always")
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
        s.ehlo("client.test")
        s.mail("alice@army.mil")
        assert s.rcpt("joe@gmail.net")[0] == 250  # a warned look-alike: sensitive content is held
        code, text = s.data(_nested(depth))
    assert (code, b"held for review" in text) == (250, True), text


def test_mail_to_a_known_correspondent_is_not_scanned_once_the_store_knows_it(
    start_relay: Callable[..., RunningRelay], next_hop: NextHopSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first-contact rule cannot fire for a domain people here already wrote to: the scan is skipped
    # for it (when-relevant), but only once the store says so - until then every message is scanned.
    monkeypatch.setattr(smtp_proxy, "NOT_KNOWN_SECONDS", 0.0)  # ask the store again at every message
    relay = start_relay(store=True)
    store = relay.server.parts.store if relay.server.parts is not None else None
    assert store is not None
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
        assert s.sendmail("alice@army.mil", ["x@partner.example"], PLAIN) == {}
        assert relay.server.scans == 1  # unknown yet: scanned
        assert wait_until(lambda: store.is_known("army.mil", "partner.example"))  # the allowed mail: learned
        assert wait_until(lambda: s.sendmail("alice@army.mil", ["y@partner.example"], PLAIN) == {}
                   and relay.server.scans_skipped >= 1)  # fmt: skip
        scanned = relay.server.scans
        assert s.sendmail("alice@army.mil", ["z@partner.example"], SENSITIVE) == {}  # not a first contact
        assert s.sendmail("alice@army.mil", ["w@stranger.example"], PLAIN) == {}  # a first contact: scanned
    assert relay.server.scans == scanned + 1
    assert len(next_hop.wait_for(4)) >= 4


def test_flagged_recipient_with_itinerary_is_held(
    start_relay: Callable[..., RunningRelay], next_hop: NextHopSink
) -> None:
    relay = start_relay()  # no store: first contact unknown, the flagged rule alone
    trip = b"Subject: trip\r\n\r\nItinerary:\r\nDL 4032 IAD-BKO 14:35\r\nRecord locator: X7Y2ZQ\r\n"
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
        s.ehlo("client.test")
        s.mail("alice@army.mil")
        assert s.rcpt("joe@gmail.net")[0] == 250  # warned look-alike
        code, text = s.data(trip)
        assert code == 250 and b"held for review" in text
        assert s.sendmail("alice@army.mil", ["joe@gmail.com"], trip) == {}  # not flagged, no store: passes
    assert [d.rcpt_tos for d in next_hop.wait_for(1)] == [["joe@gmail.com"]]


def test_audit_mode_logs_but_delivers(
    start_relay: Callable[..., RunningRelay], next_hop: NextHopSink
) -> None:
    relay = start_relay(policy='mode = "audit"')
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
        assert s.sendmail("alice@army.mil", ["bob@army.ml", "joe@gmail.net"], SENSITIVE) == {}
    (got,) = next_hop.wait_for(1)
    assert got.rcpt_tos == ["bob@army.ml", "joe@gmail.net"] and b"X-Typoguard" not in got.content
    actions = {
        (r["recipient"], r["action"], r["reply"]) for r in relay.log_records() if r.get("event") == "decision"
    }
    assert ("bob@army.ml", "reject", "DUNNO") in actions
    assert ("joe@gmail.net", "hold", "DUNNO") in actions  # the content rule, logged only


def test_held_first_contact_is_not_learned_as_a_correspondent(
    start_relay: Callable[..., RunningRelay], next_hop: NextHopSink
) -> None:
    relay = start_relay(store=True)

    def send() -> bytes:
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
            s.ehlo("client.test")
            s.mail("alice@army.mil")
            assert s.rcpt("x@example.org")[0] == 250
            return s.data(SENSITIVE)[1]

    assert b"held for review" in send()
    store = relay.server.parts.store  # type: ignore[union-attr]
    decided = wait_until(
        lambda: [d.event.action for d in store.decisions() if d.event.recipient == "x@example.org"]
    )
    time.sleep(0.5)  # the writer has had its chance to learn from whatever it got
    assert decided == ["hold"]  # the DATA decision replaced the RCPT allow: nothing to learn from
    assert not store.is_known("army.mil", "example.org")
    assert b"held for review" in send()  # still a first contact
    assert next_hop.received == []


def test_sensitive_content_to_the_bare_postmaster_is_not_a_first_contact(
    start_relay: Callable[..., RunningRelay], next_hop: NextHopSink
) -> None:
    """``RCPT TO:<postmaster>`` (RFC 5321 4.5.1: the server's own postmaster, no domain) is no external
    recipient: the first-contact rule held such mail, naming "postmaster" as its domain."""
    relay = start_relay(store=True)
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
        assert s.sendmail("alice@army.mil", ["postmaster"], SENSITIVE) == {}
    (got,) = next_hop.wait_for(1)
    assert got.rcpt_tos == ["postmaster"]
    assert not [r for r in relay.log_records() if r.get("stage") == "DATA"]


def test_a_reload_takes_the_new_mode_and_keeps_the_content_settings_it_started_with(
    start_relay: Callable[..., RunningRelay], next_hop: NextHopSink
) -> None:
    """SIGHUP reloads protected domains, thresholds, templates and the mode (docs/relay.md); the [relay]
    settings, the content rules' actions among them, stay as the relay started with them."""
    import asyncio

    relay = start_relay()
    text = relay.config_path.read_text()
    relay.config_path.write_text(
        text.replace("[policy]\n", '[policy]\nmode = "audit"\n').replace(
            "[relay]\n", '[relay]\ncontent_flagged_action = "reject"\n'
        )
    )
    asyncio.run_coroutine_threadsafe(relay.server.reload(), relay._loop).result(30)
    assert relay.server.decider.mode == "audit"
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
        assert s.sendmail("alice@army.mil", ["joe@gmail.net"], SENSITIVE) == {}  # audit: delivered
    next_hop.wait_for(1)
    (content,) = [r for r in relay.log_records() if r.get("stage") == "DATA"]
    assert (content["action"], content["reply"], content["mode"]) == ("hold", "DUNNO", "audit")


def test_a_reload_into_a_config_that_protects_nothing_keeps_the_running_one(
    start_relay: Callable[..., RunningRelay], next_hop: NextHopSink
) -> None:
    """A protected-domain list emptied by a bad deploy: refused at start (exit 2), and refused at a SIGHUP
    too, as the policy service and the milter refuse it; the relay never goes on protecting nothing."""
    import asyncio

    relay = start_relay()
    text = relay.config_path.read_text()
    emptied = text.replace('domains = ["army.mil", "navy.mil", "gmail.com"]', "domains = []")
    assert emptied != text
    relay.config_path.write_text(emptied)
    asyncio.run_coroutine_threadsafe(relay.server.reload(), relay._loop).result(30)
    assert relay.server.decider.protected_domains == 3
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
        s.ehlo("client.test")
        s.mail("alice@army.mil")
        code, reply = s.rcpt("bob@army.ml")
    assert code == 550 and b"army.mil" in reply
    (failed,) = [r for r in relay.log_records() if r.get("event") == "reload_failed"]
    assert "nothing to protect" in failed["error"] and failed["kept"] == "old config"


def test_sighups_that_come_fast_leave_the_last_config_in_place(
    start_relay: Callable[..., RunningRelay], next_hop: NextHopSink, tmp_path: Path
) -> None:
    """Two edits a moment apart, each with its SIGHUP: the first reload's large list outlasted the second's
    small one, the two ran at once, and the relay was left with the older file's config."""
    relay = start_relay()
    text = relay.config_path.read_text()
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
    large = tmp_path / "large.txt"
    large.write_text("\n".join(sorted({f"{a}{b}{c}.com" for a in syllables for b in syllables[:20]
                                       for c in syllables[:2]})[:3000]) + "\n")  # fmt: skip
    relay.config_path.write_text(text.replace("[policy]", f'files = ["{large}"]\n[policy]', 1))
    relay._loop.call_soon_threadsafe(relay.server.request_reload)
    time.sleep(0.3)  # the first reload has read its file and is building
    relay.config_path.write_text(text.replace('"gmail.com"]', '"gmail.com", "outlook.com"]', 1))
    relay._loop.call_soon_threadsafe(relay.server.request_reload)
    assert wait_until(lambda: len([r for r in relay.log_records() if r.get("event") == "reloaded"]) >= 2)
    time.sleep(0.5)  # a reload still running would swap its config in now
    assert relay.server.decider.protected_domains == 4
