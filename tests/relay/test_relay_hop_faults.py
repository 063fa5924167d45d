"""A client pipelining one message (MAIL, three RCPTs, DATA) through the relay to a next hop that fails at
each stage (tests/relay/fault_hop.py): every line the relay writes is a well-formed reply, every command
gets exactly one reply, in order, and no recipient is refused unless the next hop itself refused it.

The same faults through a real Postfix: test_relay_postfix_faults.py.
"""

from __future__ import annotations

import gc
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_hop import FAULTS, HOP_NO, FaultHop, outcome
from relay_lab import RunningRelay, write_config

RECIPIENTS = ["one@navy.mil", "two@navy.mil", "three@navy.mil"]
# RFC 5321 4.2: a reply line is a code (2xx-5xx), then a space or hyphen and printable text, or nothing.
REPLY_LINE = re.compile(rb"[2-5][0-5][0-9](?:[ -][\x20-\x7e]*)?\r\n\Z")
HOP_TIMEOUT = 0.5


class RawClient:
    """A plain socket: what was written is exactly what is read, empty lines included."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.lines: list[bytes] = []  # every line read
        self.bad: list[bytes] = []  # those that are no reply line

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> bytes:
        """One reply (its lines joined); a malformed line counts as a whole reply, as a client would."""
        got = b""
        while True:
            line = self.file.readline(4096)
            if not line:
                raise AssertionError(f"connection closed; lines so far {self.lines!r}")
            self.lines.append(line)
            if REPLY_LINE.match(line) is None:
                self.bad.append(line)
                return got + line
            got += line
            if line[3:4] != b"-":
                return got

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def decisive(mail: bytes, rcpts: list[bytes], final: bytes | None) -> list[bytes]:
    """The reply that decides each recipient's fate for a pipelining client (Postfix): MAIL's if it failed
    (the rest answer "need MAIL"), else RCPT's if it failed, else the one after the message."""
    if mail[:1] != b"2":
        return [mail] * len(rcpts)
    return [r if r[:1] != b"2" else final or b"" for r in rcpts]


def fate(reply: bytes) -> str:
    return "sent" if reply[:1] == b"2" else "bounced" if reply[:1] == b"5" else "deferred"


def send_one(port: int) -> tuple[RawClient, list[bytes], list[bytes]]:
    """One message to RECIPIENTS, MAIL to DATA in one write; (client, every reply, the decisive ones)."""
    c = RawClient(port)
    replies = [c.reply()]
    c.send(b"EHLO client.test\r\n")
    replies.append(c.reply())
    commands = [b"MAIL FROM:<alice@army.mil>", *(b"RCPT TO:<%s>" % r.encode() for r in RECIPIENTS), b"DATA"]
    c.send(b"".join(cmd + b"\r\n" for cmd in commands))
    mail, *rcpts, data = (c.reply() for _ in commands)
    replies += [mail, *rcpts, data]
    final = None
    if data.startswith(b"354"):
        c.send(b"Subject: fault test\r\n\r\nhello\r\n.\r\n")
        final = c.reply()
        replies.append(final)
    c.send(b"QUIT\r\n")
    bye = c.reply()
    replies.append(bye)
    assert bye.startswith(b"221"), f"out of step: QUIT answered {bye!r}; replies {replies!r}"
    return c, replies, decisive(mail, rcpts, final)


@pytest.fixture(scope="module", params=[True, False], ids=["hop-pipelining", "hop-plain"])
def hop(request: pytest.FixtureRequest) -> Iterator[FaultHop]:
    """A next hop offering PIPELINING (RCPT sent before MAIL's reply is in) and one that does not."""
    h = FaultHop(pipelining=request.param).start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def relay(hop: FaultHop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRelay]:
    root: Path = tmp_path_factory.mktemp("relay-faults")
    r = RunningRelay(write_config(root, hop.port, relay={"next_hop_timeout": HOP_TIMEOUT}))
    yield r
    r.stop()


@pytest.mark.parametrize("fault", FAULTS)
def test_every_reply_line_is_well_formed_and_only_the_hop_refuses(
    hop: FaultHop, relay: RunningRelay, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    hop.set_fault(fault)
    before = len(hop.delivered)
    c, replies, decided = send_one(relay.port)
    c.close()
    assert c.bad == [], f"{fault}: malformed reply lines {c.bad!r} in {replies!r}"
    got = [fate(r) for r in decided]
    assert dict(zip(RECIPIENTS, got, strict=True)) == outcome(fault, RECIPIENTS), replies
    for reply in decided:  # a refusal is the next hop's own, passed back
        if reply.startswith(b"5"):
            assert HOP_NO.encode() in reply, replies
    delivered = hop.delivered[before:]
    sent = [r for r, f in zip(RECIPIENTS, got, strict=True) if f == "sent"]
    assert [sorted(m.rcpt_tos) for m in delivered] == ([sorted(sent)] if sent else [])
    errors = [r for r in relay.log_records() if r.get("level") == "error"]  # no bad_reply, no session_error
    assert errors == []
    gc.collect()  # a task whose failure nobody read says so when it is collected
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
