"""Real Exim with examples/exim/typoguard.acl, asking a real ``typoguard serve`` at every RCPT TO.

What a sender and an Exim postmaster see: the 550 with the did-you-mean text, delivery of the good
recipient only, the warning header in the delivered copy, the held message frozen in ``exim -bp``, and
both fail-open and fail-closed behaviour while the service is down. The ACL file under test is the one
shipped in examples/exim/, included unchanged (only its macros are set).

Needs the unpacked Exim (scripts/install-exim-unpacked.sh), swaks and root. Elsewhere these tests skip
with the reason; under CI=true they must run, so a missing piece is a failure, not a skip.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from exim_lab import EximLab, missing_tools  # tests/exim is on sys.path (no __init__.py here)

pytestmark = pytest.mark.e2e

_MISSING = missing_tools()
if _MISSING:
    _REASON = f"needs {', '.join(_MISSING)}; run scripts/install-system-deps.sh as root"
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true: Exim tests must run, but: {_REASON}")
    print(f"\nSKIP tests/exim/test_exim.py: {_REASON}")
    pytest.skip(_REASON, allow_module_level=True)

ACL = Path(__file__).resolve().parents[2] / "examples" / "exim" / "typoguard.acl"
SENDER = "alice@army.mil"
CONFIG = """
[protect]
domains = ["army.mil", "gmail.com", "comcast.net"]
[policy]
internal_senders = ["army.mil", "*.army.mil"]
help_text = "Questions: helpdesk@army.mil"
[policyd]
listen = "127.0.0.1:0"
[log]
file = "{log}"
[store]
enabled = false
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """``typoguard serve --only policyd`` as an operator runs it, on an ephemeral loopback port."""

    def __init__(self, exe: str, workdir: Path) -> None:
        self.config = workdir / "typoguard.toml"
        self.log = workdir / "typoguard.jsonl"
        self.out = workdir / "serve.out"
        self.config.write_text(CONFIG.format(log=self.log))
        with self.out.open("wb") as out:
            env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")}
            self.proc = subprocess.Popen(
                [exe, "serve", "--config", str(self.config), "--only", "policyd"],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if m := re.search(r"policy service: 127\.0\.0\.1:(\d+)", self.out.read_text()):
                self.port = int(m.group(1))
                return
            assert self.proc.poll() is None, self.out.read_text()
            time.sleep(0.05)
        raise AssertionError("typoguard serve did not start:\n" + self.out.read_text())

    def decisions(self) -> list[dict[str, object]]:
        time.sleep(0.05)  # the service flushes its log within milliseconds of a decision
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [r for r in map(json.loads, lines) if r.get("event") == "decision"]

    def decision(self, recipient: str) -> dict[str, object]:
        """The last decision logged for ``recipient``, waiting up to 10 s for it: the log is written a few ms
        after the answer, later when the machine is busy, so one fixed pause could miss it."""
        deadline = time.monotonic() + 10
        while not (found := [r for r in self.decisions() if r.get("recipient") == recipient]):
            assert time.monotonic() < deadline, f"no decision for {recipient} logged"
        return found[-1]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


@pytest.fixture(scope="module")
def service(typoguard_exe: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = Service(typoguard_exe, tmp_path_factory.mktemp("typoguard"))
    yield svc
    svc.stop()


def _lab(macros: dict[str, str]) -> Iterator[EximLab]:
    lab = EximLab(free_port(), ACL, macros)
    try:
        lab.start()
        yield lab
    finally:
        lab.stop(remove=os.environ.get("TYPOGUARD_KEEP_LAB") != "1")


@pytest.fixture(scope="module")
def exim(service: Service) -> Iterator[EximLab]:
    """Exim asking the running service (the shipped defaults, only the port changed)."""
    yield from _lab({"TYPOGUARD_SOCKET": f"inet:127.0.0.1:{service.port}"})


@pytest.fixture(scope="module")
def exim_service_down() -> Iterator[EximLab]:
    """Exim pointed at a port nobody listens on: the shipped default, fail-open."""
    yield from _lab({"TYPOGUARD_SOCKET": f"inet:127.0.0.1:{free_port()}"})


@pytest.fixture(scope="module")
def exim_fail_closed() -> Iterator[EximLab]:
    """The same, with TYPOGUARD_FAIL_CLOSED defined."""
    yield from _lab({"TYPOGUARD_SOCKET": f"inet:127.0.0.1:{free_port()}", "TYPOGUARD_FAIL_CLOSED": "yes"})


def test_a_typo_is_refused_with_the_did_you_mean_text_and_the_good_recipient_delivered(
    exim: EximLab, service: Service
) -> None:
    sent = exim.swaks(SENDER, ["bob@army.ml", "carol@army.mil"])
    assert sent.exit_code == 0, sent.transcript
    assert sent.reply_to("RCPT TO:<bob@army.ml>") == (
        "550 5.1.2 <bob@army.ml>: Not sent: army.ml is not army.mil. Did you mean bob@army.mil? "
        "Nothing was delivered to this address (typoguard). Questions: helpdesk@army.mil"
    )
    assert sent.reply_to("RCPT TO:<carol@army.mil>").startswith("250")
    copy = exim.wait_delivered("carol@army.mil")
    assert "X-Typoguard-Warning" not in copy
    assert all(m["Envelope-to"].strip() != "bob@army.ml" for m in exim.delivered())
    # Exim's own reject log names the recipient and the service's text
    assert any(
        "rejected RCPT <bob@army.ml>: typoguard: 550 5.1.2 Not sent" in line for line in exim.log_lines()
    )


def test_the_request_carries_sender_recipient_and_client(exim: EximLab, service: Service) -> None:
    exim.swaks(SENDER, ["dave@army.ml"])
    record = service.decision("dave@army.ml")
    assert record["sender"] == SENDER
    assert record["client"] == "127.0.0.1"
    assert record["action"] == "reject"


def test_a_warning_adds_the_header_to_the_delivered_message(exim: EximLab) -> None:
    sent = exim.swaks(SENDER, ["x@comcast.com"])
    assert sent.exit_code == 0, sent.transcript
    copy = exim.wait_delivered("x@comcast.com")
    assert copy["X-Typoguard-Warning"] == (
        "x@comcast.com may be a typo for x@comcast.net: comcast.com looks like comcast.net "
        "(with the suffix .com in place of .net)"
    )


def test_a_hold_freezes_the_whole_message_with_the_reason_logged(exim: EximLab, typoguard_exe: str) -> None:
    sent = exim.swaks(SENDER, ["erin@army.mil", "bob@arny.mil"])
    assert sent.exit_code == 0, sent.transcript
    assert sent.reply_to("RCPT TO:<bob@arny.mil>").startswith("250")
    queue_id = sent.queue_id
    assert queue_id
    deadline = time.monotonic() + 10
    while f"{queue_id} <{SENDER}> *** frozen ***" not in (queue := exim.queue()):
        assert time.monotonic() < deadline, queue
        time.sleep(0.1)
    assert "erin@army.mil" in queue and "bob@arny.mil" in queue  # nobody got it: a person decides
    assert all(m["Envelope-to"].strip() != "erin@army.mil" for m in exim.delivered())
    log = exim.log_lines()
    assert any(f"{queue_id} frozen by ACL" in line for line in log)
    assert any(
        "Warning: typoguard: hold <bob@arny.mil>: typoguard: arny.mil looks like army.mil" in line
        for line in log
    )
    # ... and `typoguard audit` over the main log counts it: held, with its message id and sender.
    assert _audit(exim, typoguard_exe, queue_id) == [("bob@arny.mil", "held", SENDER)]


def test_a_non_smtp_hold_freezes_the_message_and_the_audit_counts_it(
    exim: EximLab, typoguard_exe: str
) -> None:
    done = exim.submit(SENDER, ["olga@army.mil", "dave@amry.mil"])
    assert done.returncode == 0, (done.stdout, done.stderr)
    deadline = time.monotonic() + 10
    while not (frozen := re.findall(rf"(\S+) <{SENDER}> \*\*\* frozen \*\*\*", exim.queue())):
        assert time.monotonic() < deadline, exim.log_tail()
        time.sleep(0.1)
    log = exim.log_lines()
    assert any(
        "Warning: typoguard: hold <olga@army.mil, dave@amry.mil>: typoguard: amry.mil looks like army.mil"
        in line
        for line in log
    ), exim.log_tail()
    assert _audit(exim, typoguard_exe, frozen[-1]) == [("dave@amry.mil", "held", SENDER)]


def _audit(lab: EximLab, typoguard_exe: str, queue_id: str) -> list[tuple[str, str, str]]:
    """(recipient, outcome, sender) of the events of ``typoguard audit --json`` over the lab's main log
    that carry ``queue_id``."""
    proc = subprocess.run(
        [typoguard_exe, "audit", "--protect", "army.mil", "--json", str(lab.logdir / "mainlog")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    events = json.loads(proc.stdout)["events"]
    return [(e["recipient"], e["outcome"], e["sender"]) for e in events if e["queue_id"] == queue_id]


def test_service_down_fail_open_by_default_delivers_unchecked_and_logs_it(exim_service_down: EximLab) -> None:
    lab = exim_service_down
    sent = lab.swaks(SENDER, ["bob@army.ml"])
    assert sent.exit_code == 0, sent.transcript
    lab.wait_delivered("bob@army.ml")
    assert any(
        "typoguard: no answer from inet:127.0.0.1:" in line
        and "<bob@army.ml> not checked (fail-open)" in line
        for line in lab.log_lines()
    )


def test_service_down_fail_closed_defers_with_451(exim_fail_closed: EximLab) -> None:
    sent = exim_fail_closed.swaks(SENDER, ["carol@army.mil"])
    assert sent.exit_code != 0, sent.transcript
    assert sent.reply_to("RCPT TO:<carol@army.mil>") == (
        "451 4.3.5 Recipient check unavailable, please try again later (typoguard)"
    )
    assert exim_fail_closed.delivered() == []


def test_an_authenticated_client_is_judged_by_its_login(exim: EximLab, service: Service) -> None:
    """$authenticated_id reaches the service as sasl_username: a sender whose domain is not internal
    is judged because it logged in ([policy] guard_sasl), and the decision log says why."""
    sent = exim.swaks("ext@example.org", ["kim@army.ml"], login=True)
    assert sent.reply_to("RCPT TO:<kim@army.ml>").startswith("550 5.1.2 <kim@army.ml>: Not sent:")
    record = service.decision("kim@army.ml")
    assert (record["sender"], record["internal"], record["action"]) == ("ext@example.org", "sasl", "reject")
    # the same sender without logging in is not ours to judge
    sent = exim.swaks("ext@example.org", ["lee@army.ml"])
    assert sent.exit_code == 0, sent.transcript
    record = service.decision("lee@army.ml")
    assert (record["internal"], record["action"]) == (False, "skip")


@pytest.mark.parametrize("mode", ["-t", "-bm"])
def test_non_smtp_mail_with_a_typo_is_refused_and_bounced_with_the_text(
    exim: EximLab, service: Service, mode: str
) -> None:
    """``exim -t`` / ``-bm`` (acl_not_smtp): one look-alike refuses the whole message; the sender gets
    Exim's bounce carrying the did-you-mean text; every recipient was decided and logged."""
    bad, good = f"max{mode[1:]}@army.ml", f"nina{mode[1:]}@army.mil"
    done = exim.submit(SENDER, [bad, good], mode=mode)
    assert done.returncode != 0, (done.stdout, done.stderr)
    deadline = time.monotonic() + 15
    while not (bounces := [m for m in exim.delivered() if bad in m.get_body().get_content()]):
        assert time.monotonic() < deadline, exim.log_tail()
        time.sleep(0.1)
    assert bounces[0]["Envelope-to"].strip() == SENDER
    assert "Not sent: army.ml is not army.mil. Did you mean " + bad.replace(".ml", ".mil") in " ".join(
        bounces[0].get_body().get_content().split()
    )
    assert all(m["Envelope-to"].strip() != good for m in exim.delivered())
    actions = {r["recipient"]: r["action"] for r in service.decisions() if r.get("recipient") in (bad, good)}
    assert actions == {bad: "reject", good: "allow"}


def test_non_smtp_mail_to_good_recipients_is_delivered(exim: EximLab) -> None:
    done = exim.submit(SENDER, ["olga@army.mil"], mode="-t")
    assert done.returncode == 0, (done.stdout, done.stderr)
    exim.wait_delivered("olga@army.mil")


def test_non_smtp_mail_with_the_service_down(exim_service_down: EximLab, exim_fail_closed: EximLab) -> None:
    """Fail-open by default (delivered, logged); TYPOGUARD_FAIL_CLOSED refuses it (a non-SMTP message
    cannot be deferred)."""
    assert exim_service_down.submit(SENDER, ["pat@army.ml"]).returncode == 0
    exim_service_down.wait_delivered("pat@army.ml")
    assert any("<pat@army.ml> not all checked (fail-open)" in line for line in exim_service_down.log_lines())
    assert exim_fail_closed.submit(SENDER, ["quinn@army.mil"]).returncode != 0
    assert any(
        "rejected by non-SMTP ACL: typoguard: no answer from" in line for line in exim_fail_closed.log_lines()
    ), exim_fail_closed.log_tail()
    assert all(m["Envelope-to"].strip() != "quinn@army.mil" for m in exim_fail_closed.delivered())
