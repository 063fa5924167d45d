"""smtplib client -> typoguard relay -> next hop (an aiosmtpd sink on loopback), all real sockets."""

from __future__ import annotations

import smtplib
import socket
import time
from typing import Any

import pytest
from relay_lab import NextHopSink, RunningRelay

MESSAGE = (
    b"From: Alice <alice@army.mil>\r\nTo: bob@navy.mil\r\nSubject: plans\r\nMessage-ID: <1@army.mil>\r\n\r\n"
    b"Hello Bob,\r\n.leading dot line\r\n..two dots\r\n\r\nsee you\r\n"
)


def client(relay: RunningRelay) -> smtplib.SMTP:
    s = smtplib.SMTP("127.0.0.1", relay.port, timeout=10)
    s.ehlo("client.test")
    return s


def strip_added(content: bytes) -> bytes:
    """The message without the headers the relay puts on top (Received, X-Typoguard-Warning)."""
    out = content
    while True:
        if out.startswith(b"Received: ") or out.startswith(b"X-Typoguard-Warning: "):
            end = out.index(b"\r\n")
            while out[end + 2 : end + 3] in (b" ", b"\t"):
                end = out.index(b"\r\n", end + 2)
            out = out[end + 2 :]
        else:
            return out


def test_lookalike_refused_at_rcpt_with_did_you_mean(relay: RunningRelay, next_hop: NextHopSink) -> None:
    with client(relay) as s:
        s.mail("alice@army.mil")
        code, text = s.rcpt("bob@army.ml")
        assert code == 550
        assert text.startswith(b"5.1.2 <bob@army.ml>: Not sent: army.ml is not army.mil.")
        assert b"Did you mean bob@army.mil?" in text and text.count(b"bob@army.ml") == 1
        assert s.rcpt("bob@navy.mil")[0] == 250
        assert s.data(MESSAGE)[0] == 250
    got = next_hop.wait_for(1)
    assert [d.rcpt_tos for d in got] == [["bob@navy.mil"]]
    decisions = [r for r in relay.log_records() if r.get("event") == "decision"]
    assert {(r["recipient"], r["action"]) for r in decisions} >= {
        ("bob@army.ml", "reject"),
        ("bob@navy.mil", "allow"),
    }


def test_good_mail_delivered_byte_identical(relay: RunningRelay, next_hop: NextHopSink) -> None:
    body = (
        MESSAGE + bytes(range(32, 127)) + b"\r\n" + "Grüße, ça va\r\n".encode() + (b"x" * 900 + b"\r\n") * 6
    )
    with client(relay) as s:
        s.sendmail("alice@army.mil", ["bob@navy.mil", "carol@gmail.com"], body)
    (got,) = next_hop.wait_for(1)
    assert got.mail_from == "alice@army.mil"
    assert got.rcpt_tos == ["bob@navy.mil", "carol@gmail.com"]
    assert got.content.startswith(
        b"Received: from client.test ([127.0.0.1])\r\n\tby relay.test (typoguard relay)"
    )
    assert strip_added(got.content) == body


def test_warned_recipient_gets_the_warning_header(relay: RunningRelay, next_hop: NextHopSink) -> None:
    with client(relay) as s:
        s.mail("alice@army.mil")
        assert s.rcpt("joe@gmail.net")[0] == 250  # a suffix swap of gmail.com: warned about only
        s.data(MESSAGE)
    (got,) = next_hop.wait_for(1)
    assert b"\r\nX-Typoguard-Warning: " in got.content.split(b"\r\n\r\n")[0] + b"\r\n"
    assert strip_added(got.content) == MESSAGE


def test_next_hop_refusal_is_passed_back(relay: RunningRelay, next_hop: NextHopSink) -> None:
    with client(relay) as s:
        s.mail("alice@army.mil")
        assert s.rcpt("nosuch@navy.mil") == (550, b"5.1.1 No such user here")
        assert s.rcpt("bob@navy.mil")[0] == 250
        assert s.data(MESSAGE)[0] == 250
    assert [d.rcpt_tos for d in next_hop.wait_for(1)] == [["bob@navy.mil"]]


def test_next_hop_down_is_4xx_and_the_retry_arrives(start_relay, tmp_path) -> None:  # type: ignore[no-untyped-def]
    hop = NextHopSink()  # not started: nothing listens on its port
    relay = start_relay(next_hop_port=hop.port)
    with client(relay) as s:
        code, text = s.mail("alice@army.mil")
        assert code == 451 and text.startswith(b"4.4.1")
        s.rset()
    with pytest.raises(smtplib.SMTPSenderRefused) as refused, client(relay) as s:
        s.sendmail("alice@army.mil", ["bob@navy.mil"], MESSAGE)
    assert refused.value.smtp_code == 451
    hop.start()
    try:
        with client(relay) as s:  # the sender's retry
            assert s.sendmail("alice@army.mil", ["bob@navy.mil"], MESSAGE) == {}
        (got,) = hop.wait_for(1)
        assert strip_added(got.content) == MESSAGE
    finally:
        hop.stop()


def test_next_hop_dies_mid_transaction_no_250(start_relay) -> None:  # type: ignore[no-untyped-def]
    hop = NextHopSink().start()
    relay = start_relay(next_hop_port=hop.port)
    with client(relay) as s:
        s.mail("alice@army.mil")
        assert s.rcpt("bob@navy.mil")[0] == 250
        hop.stop()  # the next hop goes away before DATA
        try:
            code, _ = s.data(MESSAGE)
        except smtplib.SMTPDataError as exc:  # refused at DATA already (the relay saw it go): no body sent
            code = exc.smtp_code
        assert 400 <= code < 500
    assert hop.received == []


def test_oversized_message_refused(start_relay, next_hop: NextHopSink) -> None:  # type: ignore[no-untyped-def]
    relay = start_relay(max_message_size=20_000)
    with client(relay) as s:
        assert s.has_extn("size") and s.esmtp_features["size"] == "20000"
        code, _ = s.mail("alice@army.mil", options=["SIZE=50000"])
        assert code == 552
        s.rset()
        s.mail("alice@army.mil")
        s.rcpt("bob@navy.mil")
        code, _ = s.data(MESSAGE + (b"y" * 900 + b"\r\n") * 40)
        assert code == 552
        assert s.noop()[0] == 250  # the session goes on
        assert s.sendmail("alice@army.mil", ["bob@navy.mil"], MESSAGE) == {}
    assert len(next_hop.wait_for(1)) == 1


def test_malformed_input_refused_cleanly(relay: RunningRelay, next_hop: NextHopSink) -> None:
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as raw:
        f = raw.makefile("rb")
        assert f.readline().startswith(b"220 ")

        def say(line: bytes) -> bytes:
            raw.sendall(line + b"\r\n")
            return f.readline()

        assert say(b"\xff\xfe garbage \x00").startswith(b"5")
        assert say(b"EHLO").startswith(b"501")
        assert say(b"HELO client.test").startswith(b"250")
        assert say(b"RCPT TO:<bob@navy.mil>").startswith(b"503")  # no MAIL yet
        assert say(b"MAIL FROM:alice@army.mil with junk").startswith(b"501")
        assert say(b"DATA").startswith(b"503")
        assert say(b"A" * 3000).startswith(b"500")  # over-long command line
        assert say(b"NOOP").startswith(b"250")
    with client(relay) as s:  # the server is still fine
        assert s.sendmail("alice@army.mil", ["bob@navy.mil"], MESSAGE) == {}
    assert len(next_hop.wait_for(1)) == 1


def test_relay_access_denied_outside_allowed_networks(start_relay, next_hop: NextHopSink) -> None:  # type: ignore[no-untyped-def]
    relay = start_relay(allowed_networks=["10.0.0.0/8"])
    with client(relay) as s:
        code, text = s.mail("alice@army.mil")
        assert (code, text[:5]) == (554, b"5.7.1")
    assert next_hop.received == []


def test_many_recipients_and_sessions(relay: RunningRelay, next_hop: NextHopSink) -> None:
    rcpts = [f"user{i}@navy.mil" for i in range(50)]
    started = time.monotonic()
    with client(relay) as s:
        for _ in range(5):
            assert s.sendmail("alice@army.mil", rcpts, MESSAGE) == {}
    got = next_hop.wait_for(5)
    assert len(got) == 5 and all(d.rcpt_tos == rcpts for d in got)
    assert time.monotonic() - started < 10


def test_client_gone_mid_data_nothing_delivered(relay: RunningRelay, next_hop: NextHopSink) -> None:
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as raw:
        f = raw.makefile("rb")
        f.readline()
        for line in (b"EHLO client.test", b"MAIL FROM:<alice@army.mil>", b"RCPT TO:<bob@navy.mil>", b"DATA"):
            raw.sendall(line + b"\r\n")
            while (reply := f.readline())[3:4] == b"-":
                pass
            assert reply[:1] in (b"2", b"3"), reply
        raw.sendall(b"Subject: half\r\n\r\nthe first half of a message")
    time.sleep(0.3)
    with client(relay) as s:
        assert s.sendmail("alice@army.mil", ["bob@navy.mil"], MESSAGE) == {}
    got = next_hop.wait_for(1)
    time.sleep(0.2)
    assert len(got) == 1 and strip_added(got[0].content) == MESSAGE


def test_a_pipelining_client_gets_every_reply_in_order(relay: RunningRelay, next_hop: NextHopSink) -> None:
    """The relay offers PIPELINING: MAIL, the RCPTs (one a look-alike) and DATA in one write get their
    replies in order, and the message goes to the good recipient only."""
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as sock:
        f = sock.makefile("rb")

        def reply() -> bytes:
            lines = [f.readline()]
            while lines[-1][3:4] == b"-":
                lines.append(f.readline())
            return b"".join(lines)

        assert reply().startswith(b"220")
        sock.sendall(b"EHLO client.test\r\n")
        assert b"250-PIPELINING\r\n" in reply()
        sock.sendall(
            b"MAIL FROM:<alice@army.mil>\r\nRCPT TO:<bob@army.ml>\r\nRCPT TO:<bob@navy.mil>\r\nDATA\r\n"
        )
        assert reply().startswith(b"250")
        assert reply().startswith(b"550 5.1.2 <bob@army.ml>")
        assert reply().startswith(b"250")
        assert reply().startswith(b"354")
        sock.sendall(MESSAGE.replace(b"\r\n.", b"\r\n..") + b".\r\nQUIT\r\n")  # dot-stuffed on the wire
        assert reply().startswith(b"250")
        assert reply().startswith(b"221")
    got = next_hop.wait_for(1)
    assert [d.rcpt_tos for d in got] == [["bob@navy.mil"]] and strip_added(got[0].content) == MESSAGE


def up_to_data(sock: socket.socket) -> Any:
    """EHLO, MAIL, RCPT (a good recipient) and DATA on a raw connection; its reader, after the 354."""
    f = sock.makefile("rb")
    assert f.readline().startswith(b"220")
    for line in (b"EHLO client.test", b"MAIL FROM:<alice@army.mil>", b"RCPT TO:<bob@navy.mil>", b"DATA"):
        sock.sendall(line + b"\r\n")
        while (reply := f.readline())[3:4] == b"-":
            pass
    assert reply.startswith(b"354")
    return f


@pytest.mark.parametrize("end", [b"\n.\n", b"\r\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\r"])
def test_a_smuggled_second_message_is_refused(relay: RunningRelay, next_hop: NextHopSink, end: bytes) -> None:
    """SMTP smuggling: a lone dot between non-CRLF line ends, then commands for a second message whose
    recipients the relay would never check (a next hop that also ends DATA there would send it)."""
    smuggled = b"MAIL FROM:<alice@army.mil>\r\nRCPT TO:<bob@army.ml>\r\nDATA\r\nleak\r\n"
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as sock:
        f = up_to_data(sock)
        sock.sendall(b"Subject: x\r\n\r\nhello" + end + smuggled + b".\r\n")
        assert f.readline().startswith(b"554 5.6.0")
        sock.sendall(b"MAIL FROM:<alice@army.mil>\r\n")  # the session goes on
        assert f.readline().startswith(b"250")
    time.sleep(0.3)
    assert next_hop.received == []
    assert any(r.get("event") == "smuggling_refused" for r in relay.log_records())


@pytest.mark.parametrize(
    ("pieces", "first"),
    [
        ([b"Subject: x\r\n\r\nhello\r\n.\r", b"\n"], b"250"),  # the end mark split after "\n.\r"
        ([b"Subject: x\r\n\r\nhello\r\n", b".\r\n"], b"250"),
        ([b"Subject: x\r\n\r\nhello\n.", b"\nleak\r\n.\r\n"], b"554"),  # a smuggled end split
        ([b"Subject: x\r\n\r\nhello\n", b".\r\nleak\r\n.\r\n"], b"554"),
    ],
)
def test_the_end_of_data_split_across_packets(
    relay: RunningRelay, next_hop: NextHopSink, pieces: list[bytes], first: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as sock:
        f = up_to_data(sock)
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(0.2)  # each its own read
        assert f.readline().startswith(first)


def test_dots_that_are_not_an_end_are_delivered(relay: RunningRelay, next_hop: NextHopSink) -> None:
    body = b"Subject: x\r\n\r\n.\r\n..\r\na.b\r\n.x\r\n. \r\n.\r\nend\r\n"  # smtplib stuffs them
    with client(relay) as s:
        assert s.sendmail("alice@army.mil", ["bob@navy.mil"], body) == {}
    assert strip_added(next_hop.wait_for(1)[0].content) == body
