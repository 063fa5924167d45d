"""End to end: real Postfix (smtpd on loopback) asks ``typoguard serve`` at every RCPT TO; swaks sends.

What a sender and an operator see: the 5xx with the did-you-mean text, delivery of the good recipient only,
the hold queue, audit mode, Postfix's default action while the service is down, and a SIGHUP reload that
changes decisions without a restart.

Needs Postfix, swaks and root. Elsewhere these tests skip with the reason; under CI=true they must run
(scripts/test.sh installs the packages there first), so a missing tool is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from postfix_lab import PostfixLab, missing_tools  # tests/e2e is on sys.path (no __init__.py here)

pytestmark = pytest.mark.e2e

_MISSING = missing_tools()
if _MISSING:
    _REASON = f"needs {', '.join(_MISSING)}; run scripts/install-system-deps.sh as root"
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true: Postfix end-to-end tests must run, but: {_REASON}")
    print(f"\nSKIP tests/e2e/test_postfix_e2e.py: {_REASON}")
    pytest.skip(_REASON, allow_module_level=True)

CONFIG = """
[protect]
domains = [{domains}]
[policy]
mode = "{mode}"
internal_senders = ["army.mil", "*.army.mil"]
{policy_extra}
[policyd]
listen = "127.0.0.1:{port}"
{policyd_extra}
[log]
file = "{log}"
[store]
data_dir = "{data}"
refresh_interval = 0.2
{postfix}
"""
SENDER = "alice@army.mil"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """``typoguard serve`` as an operator runs it: a process, a config file, signals, JSON log lines."""

    def __init__(self, exe: str, workdir: Path) -> None:
        self.exe = exe
        self.config = workdir / "typoguard.toml"
        self.log = workdir / "typoguard.jsonl"
        self.stdout = workdir / "serve.out"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.postfix_conf: Path | None = None  # the lab's config_directory, for `typoguard held`

    def write_config(
        self,
        domains: tuple[str, ...] = ("army.mil", "gmail.com"),
        mode: str = "enforce",
        policy_extra: str = "",
        policyd_extra: str = "",
    ) -> None:
        """The base config; ``*_extra``: TOML lines added to ``[policy]`` / ``[policyd]``."""
        quoted = ", ".join(f'"{d}"' for d in domains)
        self.config.write_text(
            CONFIG.format(
                domains=quoted,
                mode=mode,
                port=self.port,
                log=self.log,
                data=self.config.parent / "data",
                policy_extra=policy_extra,
                policyd_extra=policyd_extra,
                postfix=f'[postfix]\nconfig_directory = "{self.postfix_conf}"' if self.postfix_conf else "",
            )
        )

    def start(self) -> None:
        self.write_config()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")}
        with self.stdout.open("wb") as out:
            self.proc = subprocess.Popen(
                [self.exe, "serve", "--config", str(self.config), "--only", "policyd"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            m = re.search(r"policy service: 127\.0\.0\.1:(\d+)", self.stdout.read_text())
            if m:
                self.port = int(m.group(1))
                self.write_config()  # pin the port: a restart must come back on the same one
                return
            assert self.proc.poll() is None, self.stdout.read_text()
            time.sleep(0.05)
        raise AssertionError("typoguard serve did not start:\n" + self.stdout.read_text())

    def records(self, event: str | None = None) -> list[dict[str, object]]:
        time.sleep(0.05)  # the service writes its log at most LOG_FLUSH_SECONDS (5 ms) after a decision
        if not self.log.exists():
            return []
        out = [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]
        return [r for r in out if event is None or r.get("event") == event]

    def reload(self, **config: object) -> None:
        """Rewrite the config, SIGHUP, wait for the "reloaded" log line."""
        assert self.proc is not None
        before = len(self.records("reloaded"))
        self.write_config(**config)  # type: ignore[arg-type]
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while len(self.records("reloaded")) == before:
            assert time.monotonic() < deadline, "no reload logged:\n" + self.log.read_text()[-2000:]
            time.sleep(0.05)

    def cli(self, *args: str, json_out: bool = True) -> list[dict[str, Any]]:
        """Run ``typoguard ARGS --config <the service's config>``; JSON lines parsed (or [] if not)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")}
        done = subprocess.run(
            [self.exe, *args, "--config", str(self.config)],
            capture_output=True, text=True, timeout=60, check=False, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()] if json_out else []

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(15)


@pytest.fixture(scope="module")
def service(typoguard_exe: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = Service(typoguard_exe, tmp_path_factory.mktemp("typoguard-e2e"))
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def lab(service: Service) -> Iterator[PostfixLab]:
    # A second listener where an admin put the check under the DATA restrictions by mistake.
    misplaced = (
        "smtpd_recipient_restrictions=permit_mynetworks,reject",
        f"smtpd_data_restrictions=check_policy_service,inet:127.0.0.1:{service.port}",
    )
    postfix = PostfixLab(
        smtp_port=free_port(),
        policy_service=f"inet:127.0.0.1:{service.port}",
        listeners={free_port(): misplaced},
    )
    service.postfix_conf = postfix.conf  # `typoguard held` reads this private instance ([postfix])
    service.write_config()
    postfix.start()
    postfix.purge()
    yield postfix
    postfix.purge()
    postfix.stop()


@pytest.fixture
def enforcing(service: Service, lab: PostfixLab) -> Iterator[PostfixLab]:
    """The lab with the base config; tests that reconfigure put it back afterwards."""
    yield lab
    if service.proc is not None and service.proc.poll() is None:
        last = service.records("reloaded")[-1:] or service.records("listening")
        if last and (last[-1].get("mode") != "enforce" or last[-1].get("protected") != 2):
            service.reload()


def decisions_for(service: Service, recipient: str, at_least: int = 1) -> list[dict[str, object]]:
    """The decisions logged for ``recipient``, once there are ``at_least`` (or after 10 s): the service
    writes its log a few ms after it answers, later when the machine is busy, so a fixed pause could miss
    the line of a decision Postfix already has."""
    deadline = time.monotonic() + 10
    while True:  # records() pauses 50 ms a call
        found = [r for r in service.records("decision") if r.get("recipient") == recipient]
        if len(found) >= at_least or time.monotonic() > deadline:
            return found


def test_a_look_alike_is_refused_during_the_smtp_dialogue(enforcing: PostfixLab, service: Service) -> None:
    result = enforcing.swaks(SENDER, ["bob@army.ml"])
    assert result.exit_code == 24, result.transcript  # swaks: every recipient refused
    reply = result.reply_to("RCPT TO:<bob@army.ml>")
    assert reply.startswith("550 5.1.2 <bob@army.ml>:"), reply
    assert "army.ml is not army.mil" in reply and "Did you mean bob@army.mil?" in reply
    (decision,) = decisions_for(service, "bob@army.ml")
    assert decision["action"] == "reject" and decision["intended"] == "army.mil"
    assert decision["sender"] == SENDER and decision["kind"] == "suffix_typo"
    assert enforcing.queue() == []  # nothing left the building, nothing is waiting


def test_the_intended_domain_is_accepted_and_delivered(enforcing: PostfixLab) -> None:
    result = enforcing.swaks(SENDER, ["bob@army.mil"])
    assert result.exit_code == 0, result.transcript
    assert result.reply_to("RCPT TO:<bob@army.mil>").startswith("250")
    assert result.queue_id
    enforcing.wait_delivered("bob@army.mil", result.queue_id)


def test_one_good_and_one_look_alike_recipient_only_the_good_one_gets_it(enforcing: PostfixLab) -> None:
    result = enforcing.swaks(SENDER, ["carol@army.ml", "carol@army.mil"])
    assert result.exit_code == 0, result.transcript
    assert result.reply_to("RCPT TO:<carol@army.ml>").startswith("550 5.1.2")
    assert result.reply_to("RCPT TO:<carol@army.mil>").startswith("250")
    assert result.queue_id
    enforcing.wait_delivered("carol@army.mil", result.queue_id)
    time.sleep(0.3)
    assert enforcing.delivered_to(result.queue_id) == {"carol@army.mil"}


def test_a_hold_verdict_puts_the_message_in_the_hold_queue(enforcing: PostfixLab, service: Service) -> None:
    enforcing.purge()
    result = enforcing.swaks(SENDER, ["dave@arny.mil"])
    assert result.exit_code == 0, result.transcript  # accepted at SMTP time ...
    (message,) = enforcing.queue()  # ... but held, not delivered
    assert message["queue_name"] == "hold"
    assert [r["address"] for r in message["recipients"]] == ["dave@arny.mil"]  # type: ignore[union-attr]
    assert any("hold:" in line and "arny.mil looks like army.mil" in line for line in enforcing.log_lines())
    assert decisions_for(service, "dave@arny.mil")[0]["action"] == "hold"
    # The decision reached the store through the writer process, and `typoguard held list` joins the
    # held message with it (by envelope: the first recipient's policy request carries no queue id).
    deadline = time.monotonic() + 10
    while True:
        held = service.cli("held", "list", "--format", "json")
        if held and held[0].get("decision"):
            break
        assert time.monotonic() < deadline, f"held message not joined with its decision: {held}"
        time.sleep(0.2)
    assert held[0]["queue_id"] == message["queue_id"]
    assert held[0]["decision"]["action"] == "hold"
    assert held[0]["decision"]["intended"] == "army.mil"
    enforcing.purge()


def test_an_admin_override_changes_what_postfix_is_told_within_seconds(
    enforcing: PostfixLab, service: Service
) -> None:
    """`typoguard allow` on the command line; the running service picks it up with no restart."""
    enforcing.purge()
    first = enforcing.swaks(SENDER, ["fay@arnmy.mil"])
    assert first.exit_code == 0, first.transcript
    assert [m["queue_name"] for m in enforcing.queue()] == ["hold"]  # held before the override
    enforcing.purge()
    service.cli("allow", "arnmy.mil", "--reason", "e2e: a partner really is called this", json_out=False)
    deadline = time.monotonic() + 10
    while True:
        # Until the override arrives the answer is hold, or reject once the store said this sender domain
        # never wrote there (the first-contact bump); after it, the mail is accepted and delivered.
        result = enforcing.swaks(SENDER, ["fay@arnmy.mil"])
        if result.exit_code == 0 and not any(m["queue_name"] == "hold" for m in enforcing.queue()):
            break
        enforcing.purge()
        assert time.monotonic() < deadline, "the allow override was not picked up within 10 s"
        time.sleep(0.3)
    enforcing.wait_delivered("fay@arnmy.mil", result.queue_id)
    allowed = [d for d in decisions_for(service, "fay@arnmy.mil") if d["action"] == "allow"]
    assert allowed and "allowed by override" in str(allowed[-1].get("reason", ""))
    service.cli("overrides", "remove", "arnmy.mil", "--reason", "e2e done", json_out=False)
    enforcing.purge()


def test_mail_from_outside_senders_is_not_judged(enforcing: PostfixLab, service: Service) -> None:
    before = len(decisions_for(service, "bob@army.ml", at_least=0))
    result = enforcing.swaks("stranger@example.net", ["bob@army.ml"])
    assert result.exit_code == 0, result.transcript
    assert result.reply_to("RCPT TO:<bob@army.ml>").startswith("250")
    assert [d["action"] for d in decisions_for(service, "bob@army.ml", at_least=before + 1)][-1] == "skip"
    assert result.queue_id
    enforcing.wait_delivered("bob@army.ml", result.queue_id)


def test_audit_mode_lets_everything_through_and_logs_it(enforcing: PostfixLab, service: Service) -> None:
    service.reload(mode="audit")
    result = enforcing.swaks(SENDER, ["erin@army.ml", "erin@arny.mil"])
    assert result.exit_code == 0, result.transcript
    assert result.reply_to("RCPT TO:<erin@army.ml>").startswith("250")
    assert result.queue_id
    enforcing.wait_delivered("erin@army.ml", result.queue_id)
    assert [m for m in enforcing.queue() if m["queue_name"] == "hold"] == []
    (logged,) = decisions_for(service, "erin@army.ml")
    assert (logged["action"], logged["reply"], logged["mode"]) == ("reject", "DUNNO", "audit")
    # hold, or reject once the store has said this sender domain never wrote there (first-contact bump)
    (arny,) = decisions_for(service, "erin@arny.mil")
    assert (arny["action"], arny["reply"]) in {("hold", "DUNNO"), ("reject", "DUNNO")}


def test_sighup_with_a_new_protected_domain_changes_decisions_without_a_restart(
    enforcing: PostfixLab, service: Service
) -> None:
    assert service.proc is not None
    pid = service.proc.pid
    before = enforcing.swaks(SENDER, ["frank@exmaple.com"])
    assert before.reply_to("RCPT TO:<frank@exmaple.com>").startswith("250")
    service.reload(domains=("army.mil", "gmail.com", "example.com"))
    after = enforcing.swaks(SENDER, ["frank@exmaple.com"])
    reply = after.reply_to("RCPT TO:<frank@exmaple.com>")
    assert reply.startswith("550 5.1.2") and "Did you mean frank@example.com?" in reply
    assert service.proc.pid == pid and service.proc.poll() is None
    assert service.records("reload_failed") == []
    # a broken config is refused and the running one stays
    service.config.write_text("[protect\n")
    service.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while not service.records("reload_failed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    again = enforcing.swaks(SENDER, ["frank@exmaple.com"])
    assert again.reply_to("RCPT TO:<frank@exmaple.com>").startswith("550 5.1.2")
    service.reload()  # back to the base config


def test_service_down_postfix_applies_its_default_action(enforcing: PostfixLab, service: Service) -> None:
    assert service.stop() == 0  # SIGTERM: drains and exits cleanly
    assert service.records("stopped")
    result = enforcing.swaks(SENDER, ["bob@army.mil"])
    assert result.exit_code != 0, result.transcript
    # main.cf: smtpd_policy_service_default_action = 451 4.3.5 ... (fail closed, temporarily)
    assert result.reply_to("RCPT TO:<bob@army.mil>").startswith("451 4.3.5")
    service.start()  # same port: Postfix reconnects on its own
    back = enforcing.swaks(SENDER, ["bob@army.ml"])
    assert back.reply_to("RCPT TO:<bob@army.ml>").startswith("550 5.1.2")


# --------------------------------------------------------------- what a sender reads (issue 15 item 13)
POSTFIX_SAYS = "Recipient address rejected: "


def test_the_refusal_names_the_recipient_once_in_plain_words(enforcing: PostfixLab) -> None:
    reply = enforcing.swaks(SENDER, ["bob@army.ml"]).reply_to("RCPT TO:<bob@army.ml>")
    assert reply == (
        "550 5.1.2 <bob@army.ml>: Recipient address rejected: Not sent: army.ml is not army.mil."
        " Did you mean bob@army.mil? Nothing was delivered to this address (typoguard)."
    ), reply
    assert reply.count("bob@army.ml") == 1


def test_a_homoglyph_refusal_names_the_script_in_ascii(enforcing: PostfixLab) -> None:
    """аrmy.mil with a Cyrillic а, sent as its A-label: the sender reads what is wrong, in ASCII."""
    reply = enforcing.swaks(SENDER, ["bob@xn--rmy-5cd.mil"]).reply_to("RCPT TO:<bob@xn--rmy-5cd.mil>")
    assert reply.startswith(f"550 5.1.2 <bob@xn--rmy-5cd.mil>: {POSTFIX_SAYS}Not sent: "), reply
    text = reply.split(POSTFIX_SAYS, 1)[1]
    assert text == (
        "Not sent: xn--rmy-5cd.mil is not army.mil. It contains a Cyrillic letter (U+0430) that looks like"
        " a Latin 'a'. Did you mean bob@army.mil? Nothing was delivered to this address (typoguard)."
    ), reply
    assert reply.isascii() and "?rmy" not in reply and "looks like army.mil (" not in reply
    assert reply.count("xn--rmy-5cd.mil") == 2  # the recipient once (Postfix's), the domain once (ours)


def test_help_text_ends_the_refusal_and_the_line_stays_within_512_octets(
    enforcing: PostfixLab, service: Service
) -> None:
    helpdesk = "Questions: helpdesk@army.mil or call +1 555 0100 (24/7). " * 3
    local = "a" * 64  # the longest local part RFC 5321 allows
    try:
        service.reload(policy_extra=f'help_text = "{helpdesk.strip()}"')
        reply = enforcing.swaks(SENDER, [f"{local}@army.ml"]).reply_to(f"RCPT TO:<{local}@army.ml>")
        assert reply.startswith(f"550 5.1.2 <{local}@army.ml>: {POSTFIX_SAYS}Not sent: army.ml"), reply
        assert "(typoguard). Questions: helpdesk@army.mil" in reply and reply.count(f"{local}@army.ml") == 1
        assert len(reply.encode()) + 2 <= 512, len(reply)  # RFC 5321 4.5.3.1.5, CRLF included
    finally:
        service.reload()


def test_a_custom_template_keeps_5_1_2(enforcing: PostfixLab, service: Service) -> None:
    """Postfix adds 5.7.1 to a reply without an enhanced status code; typoguard sends 5.1.2 itself."""
    custom = "Sorry, {domain} is not {intended}; try {suggestion}."
    try:
        service.reload(policyd_extra=f'reject_template = "{custom}"')
        reply = enforcing.swaks(SENDER, ["bob@army.ml"]).reply_to("RCPT TO:<bob@army.ml>")
        assert (
            reply
            == f"550 5.1.2 <bob@army.ml>: {POSTFIX_SAYS}Sorry, army.ml is not army.mil; try bob@army.mil."
        )
    finally:
        service.reload()


# ------------------------------------------------------------ idle connections (issue 15 item 7, ADR 0017)
def _hold_idle(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.002)
    time.sleep(0.2)
    return socks


@pytest.mark.parametrize(
    ("cap", "attackers"), [("max_connections = 20", 40), ("max_connections_per_client = 10", 30)]
)
def test_postfix_gets_answers_while_an_attacker_holds_idle_connections(
    enforcing: PostfixLab, service: Service, cap: str, attackers: int
) -> None:
    """The attacker connects from 127.0.0.1 like Postfix and keeps the service full. Postfix must get
    typoguard's answer (not its default action, 451 4.3.5 here): with the connection it kept (the oldest
    idle one, so the first closed: Postfix reconnects) and with new smtpd processes after a reload."""
    held: list[socket.socket] = []

    def asks(recipient: str) -> None:
        started = time.monotonic()
        result = enforcing.swaks(SENDER, [recipient])
        reply = result.reply_to(f"RCPT TO:<{recipient}>")
        assert reply.startswith("550 5.1.2 <" if recipient.endswith(".ml") else "250"), result.transcript
        assert time.monotonic() - started < 5, result.transcript

    try:
        service.reload(policyd_extra=cap)
        asks("bob@army.ml")  # smtpd keeps its policy connection open
        held = _hold_idle(service.port, attackers)
        asks("carl@army.ml")
        enforcing.start()  # postfix reload: new smtpd processes, new policy connections ...
        time.sleep(0.5)
        held += _hold_idle(service.port, 10)  # ... and the attacker takes what the old ones freed
        asks("dina@army.ml")
        asks("ed@army.mil")
        assert service.records("connection_shed")
    finally:
        for sock in held:
            sock.close()
        service.reload()


def test_a_block_override_reads_plainly_and_names_the_recipient_once(
    enforcing: PostfixLab, service: Service
) -> None:
    service.cli("block", "spam.example", "--reason", "e2e: phishing", json_out=False)
    try:
        deadline = time.monotonic() + 10
        while True:
            reply = enforcing.swaks(SENDER, ["x@spam.example"]).reply_to("RCPT TO:<x@spam.example>")
            if not reply.startswith("250"):
                break
            assert time.monotonic() < deadline, "the block override was not picked up within 10 s"
            time.sleep(0.3)
        assert reply == (
            "550 5.7.1 <x@spam.example>: Recipient address rejected: Not sent: mail to spam.example"
            " is blocked by this organisation's policy (typoguard)."
        ), reply
    finally:
        service.cli("overrides", "remove", "spam.example", "--reason", "e2e done", json_out=False)


def test_a_check_put_under_the_data_restrictions_is_said_in_the_log(
    enforcing: PostfixLab, service: Service
) -> None:
    """The misplaced check: Postfix asks at DATA, where no recipient is judged; the mail goes through (the
    answer is DUNNO, as it must be) and typoguard's log says why nothing was checked and what to change."""
    (port,) = enforcing.listeners
    result = enforcing.swaks(SENDER, ["bob@army.ml"], port=port)
    assert result.exit_code == 0, result.transcript
    deadline = time.monotonic() + 10
    while not (warned := service.records("policy_request_not_at_rcpt")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert warned and warned[-1]["protocol_state"] == "DATA", service.log.read_text()[-2000:]
    assert "smtpd_recipient_restrictions" in str(warned[-1]["fix"])
