"""The sink over real SMTP (smtplib and raw sockets) on loopback: replies, no DATA, counts, no local parts."""

from __future__ import annotations

import smtplib
import socket
import sqlite3
import time
from pathlib import Path

import pytest
from running_sink import RunningSink


def _session(port: int) -> smtplib.SMTP:
    s = smtplib.SMTP("127.0.0.1", port, timeout=5)
    s.ehlo("client.example.org")
    return s


def _db_text(sink: RunningSink) -> str:
    db = Path(sink.config.base_dir) / "data" / "sink.db"
    con = sqlite3.connect(db)
    try:
        rows = [
            repr(row)
            for table in ("tg_sink_counts", "tg_sink_senders")
            for row in con.execute(f"SELECT * FROM {table}")
        ]
    finally:
        con.close()
    return "\n".join(rows)


def _raw(port: int, payload: bytes, *, wait: float = 10) -> bytes:
    """Send ``payload`` at once (pipelined), read until the server is quiet for ``wait`` s or closes.

    Where every reply is expected the payload makes the server close (QUIT, a 421), so the long default
    costs no waiting: a short quiet window cut the replies short whenever the sink (a thread of this
    process) paused, e.g. for a garbage collection on a busy machine. Short ones only where nothing
    more is expected."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.recv(4096)  # greeting
        sock.sendall(payload)
        sock.settimeout(wait)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except TimeoutError:
            pass
        return out


def test_lookalike_is_refused_with_the_intended_address(sink: RunningSink) -> None:
    s = _session(sink.port)
    assert s.mail("alice@example.org")[0] == 250
    code, text = s.rcpt("bob@army.ml")
    assert code == 550
    assert text.startswith(b"5.1.2 <bob@army.ml>")
    assert b"<bob@army.mil>" in text
    code, text = s.rcpt("Bob.Smith@Gmial.com")  # case and a dotted local part
    assert code == 550 and b"<Bob.Smith@gmail.com>" in text
    code, text = s.rcpt("carol@army-mil.com")  # explicitly listed, target from the index
    assert code == 550 and b"<carol@army.mil>" in text
    code, text = s.rcpt("x@weird.example")  # listed, no known target: the neutral refusal
    assert code == 550 and text.startswith(b"5.1.2 <x@weird.example>") and b"does not receive mail" in text
    code, text = s.rcpt("x@mail.weird.example")  # under a listed domain
    assert code == 550 and b"does not receive mail" in text
    code, text = s.rcpt("bob@us.army.ml")  # a host under a look-alike: the same host was meant
    assert code == 550 and text.startswith(b"5.1.2 <bob@us.army.ml>") and b"<bob@us.army.mil>" in text
    assert s.docmd("DATA")[0] == 503  # no recipient was accepted: no content can follow
    s.quit()


def test_domains_it_does_not_answer_for_get_a_plain_refusal(sink: RunningSink) -> None:
    s = _session(sink.port)
    s.mail("alice@example.org")
    for rcpt in ("bob@army.mil", "bob@example.com", "bob@ymail.com", "bob@[192.0.2.1]"):
        code, text = s.rcpt(rcpt)
        assert code == 550, rcpt
        assert b"bob" not in text and text.startswith(b"5.7.1"), (rcpt, text)
    s.quit()


def test_every_local_part_gets_the_same_answer(sink: RunningSink) -> None:
    """A dictionary attack learns nothing: the reply differs only by the echoed local part."""
    s = _session(sink.port)
    s.mail("probe@attacker.example")
    shapes = set()
    for local in (
        "postmaster",
        "root",
        "admin",
        "bob",
        "no.such.person.ever",
        "x" * 64,
        '"john smith"',
        '"a\\"b"',
    ):
        code, text = s.rcpt(f"{local}@army.ml")
        shapes.add((code, text.replace(local.encode(), b"LOCAL")))
    assert len(shapes) == 1, shapes
    assert s.verify("bob@army.ml") == s.verify("nobody@army.ml")
    s.quit()


def test_data_is_never_accepted(sink: RunningSink) -> None:
    s = _session(sink.port)
    assert s.docmd("DATA")[0] == 503
    s.mail("alice@example.org")
    s.rcpt("bob@army.ml")
    assert s.docmd("DATA")[0] == 503
    s.rset()
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        s.sendmail("alice@example.org", ["bob@army.ml", "carol@gmial.com"], b"Subject: x\r\n\r\nsecret\r\n")
    s.quit()


def test_counts_only_no_local_parts_in_database_or_log(sink: RunningSink) -> None:
    s = _session(sink.port)
    for _ in range(3):
        s.mail("Zebediah.Sender@Sender.Example")
        s.rcpt("bob@army.ml")
        s.rcpt("alice@gmial.com")
        s.rset()
    s.mail("<>")
    s.rcpt("bob@army.ml")
    s.quit()
    sink.flush()
    text = _db_text(sink)
    assert "army.ml" in text and "army.mil" in text and "sender.example" in text and "<>" in text
    log = sink.log_path.read_text()
    for secret in ("bob", "alice", "zebediah", "Zebediah"):
        assert secret not in text
        assert secret not in log.lower()
    rows = {r.lookalike: r for r in sink.server.store.rows()}  # type: ignore[union-attr]
    assert sum(r.count for r in sink.server.store.rows() if r.lookalike == "army.ml") == 4  # type: ignore[union-attr]
    assert rows["gmial.com"].intended == "gmail.com"


def test_sender_hashing_counts_repeat_senders_without_identities(start_sink: type, tmp_path: Path) -> None:
    key_file = tmp_path / "sender.key"
    key_file.write_bytes(b"k" * 32)
    sink: RunningSink = start_sink(sender_hash_key_file=str(key_file))
    s = _session(sink.port)
    for sender in ("one@example.org", "ONE@example.org", "two@example.org"):
        s.mail(sender)
        s.rcpt("bob@army.ml")
        s.rset()
    s.quit()
    sink.flush()
    assert sink.server.store.sender_stats() == {"army.ml": (2, 1)}  # type: ignore[union-attr]
    text = _db_text(sink)
    assert "one" not in text and "two" not in text


def test_pipelined_commands_get_every_reply_in_order(sink: RunningSink) -> None:
    out = _raw(
        sink.port,
        b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<bob@army.ml>\r\nRCPT TO:<bob@army.mil>\r\n"
        b"DATA\r\nQUIT\r\n",
    )
    codes = [line[:3] for line in out.split(b"\r\n") if line[:3].isdigit() and line[3:4] == b" "]
    assert codes == [b"250", b"250", b"550", b"550", b"503", b"221"], out


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\xff\xfe garbage \x80\r\n" * 3,
        b"A" * 20000 + b"\r\n",
        b"RCPT TO:<" + b"x" * 5000 + b"@army.ml>\r\n",
        b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<\xc3\xa9t\xc3\xa9@army.ml>\r\nRCPT TO:<bob@army.ml\r\n",
        b"\r\n\r\n\r\nHELO\r\nMAIL\r\nRCPT\r\nRCPT TO:\r\nRCPT TO:<>\r\nAUTH PLAIN AGFhAGI=\r\nSTARTTLS\r\n",
        bytes(range(256)) * 8,
    ],
)
def test_garbage_does_not_hurt(sink: RunningSink, garbage: bytes) -> None:
    out = _raw(sink.port, garbage, wait=0.3)
    assert b"250 2.0.0" not in out and b"354" not in out  # nothing accepted
    s = _session(sink.port)  # the server is alive and answers as before
    s.mail("alice@example.org")
    assert s.rcpt("bob@army.ml")[0] == 550
    s.quit()


def test_saturated_server_says_421(start_sink: type) -> None:
    sink: RunningSink = start_sink(max_sessions=2)
    first, second = _session(sink.port), _session(sink.port)
    with socket.create_connection(("127.0.0.1", sink.port), timeout=5) as third:
        assert third.recv(200).startswith(b"421 4.3.2")
    first.quit()
    deadline = time.monotonic() + 5
    while sink.server.limits.sessions >= 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    _session(sink.port).quit()  # a place is free again
    second.quit()


def test_per_network_connection_limit(start_sink: type) -> None:
    sink: RunningSink = start_sink(max_connections_per_network=1)
    first = _session(sink.port)
    with socket.create_connection(("127.0.0.1", sink.port), timeout=5) as second:
        assert second.recv(200).startswith(b"421 4.7.0 Too many connections")
    first.quit()


def test_connection_rate_limit(start_sink: type) -> None:
    sink: RunningSink = start_sink(connections_per_minute_per_network=2)
    _session(sink.port).quit()
    _session(sink.port).quit()
    with socket.create_connection(("127.0.0.1", sink.port), timeout=5) as third:
        assert third.recv(200).startswith(b"421 4.7.0")


def test_rcpt_rate_limit_is_a_temporary_refusal(start_sink: type) -> None:
    sink: RunningSink = start_sink(rcpt_per_minute_per_network=3)
    s = _session(sink.port)
    s.mail("alice@example.org")
    codes = [s.rcpt(f"u{i}@army.ml")[0] for i in range(5)]
    assert codes == [550, 550, 550, 450, 450]
    s.quit()


def test_rcpts_per_session_limit_closes_with_421(start_sink: type) -> None:
    sink: RunningSink = start_sink(max_rcpt_per_session=3)
    out = _raw(sink.port, b"EHLO c\r\nMAIL FROM:<a@example.org>\r\n" + b"RCPT TO:<bob@army.ml>\r\n" * 5)
    assert out.count(b"550 5.1.2") == 3
    assert b"421 4.7.0" in out


def test_idle_and_session_timeouts(start_sink: type) -> None:
    sink: RunningSink = start_sink(command_timeout=0.3)
    with socket.create_connection(("127.0.0.1", sink.port), timeout=5) as sock:
        sock.recv(200)
        time.sleep(0.6)
        assert sock.recv(200) == b""  # closed by the server
    sink2: RunningSink = start_sink(session_timeout=0.4)
    s = _session(sink2.port)
    time.sleep(0.2)
    s.noop()
    time.sleep(0.4)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        s.noop()
        s.noop()


def test_starttls(start_sink: type, tmp_path: Path) -> None:
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=sink.test"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    sink: RunningSink = start_sink(tls_cert=str(cert), tls_key=str(key))
    s = _session(sink.port)
    assert s.has_extn("starttls")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s.starttls(context=ctx)
    s.ehlo("client.example.org")
    assert not s.has_extn("auth")
    s.mail("alice@example.org")
    code, text = s.rcpt("bob@army.ml")
    assert code == 550 and b"<bob@army.mil>" in text
    s.quit()
    deadline = time.monotonic() + 5
    while sink.server.limits.sessions and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sink.server.limits.sessions == 0  # released once, not twice


def test_reload_changes_the_answers_and_keeps_sessions(sink: RunningSink) -> None:
    s = _session(sink.port)
    s.mail("alice@example.org")
    assert s.rcpt("x@new.example")[1].startswith(b"5.7.1")
    path = Path(sink.config.base_dir) / "typoguard.toml"
    path.write_text(path.read_text().replace('"weird.example"', '"weird.example", "new.example"'))
    sink.loop.call_soon_threadsafe(sink.server.request_reload)
    deadline = time.monotonic() + 10
    while b"does not receive mail" not in s.rcpt("x@new.example")[1] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b"does not receive mail" in s.rcpt("x@new.example")[1]  # same session, new answers
    path.write_text("[sink]\nmin_score = 7\n")  # broken: the running configuration stays
    sink.loop.call_soon_threadsafe(sink.server.request_reload)
    time.sleep(0.5)
    assert b"does not receive mail" in s.rcpt("x@new.example")[1]
    assert "sink_reload_failed" in sink.log_path.read_text()
    s.quit()


def test_refuses_while_the_database_is_down_and_keeps_the_counts(start_sink: type) -> None:
    sink: RunningSink = start_sink(database="sqlite:////nonexistent/typoguard/sink.db")
    s = _session(sink.port)
    s.mail("alice@example.org")
    assert b"<bob@army.mil>" in s.rcpt("bob@army.ml")[1]
    s.quit()
    sink.flush()
    assert sink.server.flush_errors >= 1 and sink.server.tally.attempts == 1  # kept for the next round
    log = sink.log_path.read_text()
    assert "sink_database_unavailable" in log and "sink_flush_failed" in log


def test_random_garbage_sessions_leave_nothing_behind(sink: RunningSink) -> None:
    """Mixed valid verbs, random bytes and cut-off lines, pipelined; every session's place is released."""
    import random

    rng = random.Random(9)
    verbs = [b"EHLO x", b"HELO", b"MAIL FROM:<a@b.example>", b"RCPT TO:<bob@army.ml>", b"DATA", b"RSET",
             b"NOOP", b"VRFY bob@army.ml", b"STARTTLS", b"BDAT 10 LAST", b"QUIT", b".", b""]  # fmt: skip
    for _ in range(30):
        lines = [
            rng.choice(verbs) if rng.random() < 0.6 else rng.randbytes(rng.randint(1, 300)) for _ in range(20)
        ]
        payload = b"\r\n".join(lines)
        if rng.random() < 0.5:
            payload = payload[: rng.randint(1, len(payload))]  # cut mid-line
        out = _raw(sink.port, payload, wait=0.05)
        assert b"354" not in out and b"250 2.0.0" not in out
    deadline = time.monotonic() + 5
    while sink.server.limits.sessions and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sink.server.limits.sessions == 0 and not sink.server.sessions
    s = _session(sink.port)
    s.mail("alice@example.org")
    assert s.rcpt("bob@army.ml")[0] == 550
    s.quit()


def test_a_sighup_during_a_reload_is_not_lost(sink: RunningSink) -> None:
    """An edit and its SIGHUP while a reload of a large list is still building: that SIGHUP was dropped
    (a reload was under way), and the edit stayed unread until the next one."""
    path = Path(sink.config.base_dir) / "typoguard.toml"
    text = path.read_text()
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
    large = path.with_name("large.txt")
    large.write_text("\n".join(sorted({f"{a}{b}{c}.com" for a in syllables for b in syllables[:20]
                                       for c in syllables[:2]})[:3000]) + "\n")  # fmt: skip
    path.write_text(text.replace('"gmail.com"]', f'"gmail.com"]\nfiles = ["{large}"]', 1))
    sink.loop.call_soon_threadsafe(sink.server.request_reload)
    time.sleep(0.3)  # the first reload has read its file and is building
    path.write_text(text.replace('"weird.example"', '"weird.example", "new.example"'))
    sink.loop.call_soon_threadsafe(sink.server.request_reload)
    s = _session(sink.port)
    s.mail("alice@example.org")
    deadline = time.monotonic() + 20
    while sink.log_path.read_text().count('"sink_reloaded"') < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b"does not receive mail" in s.rcpt("x@new.example")[1], sink.log_path.read_text()
    s.quit()


def test_a_reload_serves_a_renewed_certificate(start_sink: type, tmp_path: Path) -> None:
    """The sink's certificate, renewed in place and the service reloaded: new sessions get the new one."""
    import ssl

    import trustme

    ca = trustme.CA()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued = ca.issue_cert("sink.test", "127.0.0.1")
    issued.cert_chain_pems[0].write_to_path(cert)
    issued.private_key_pem.write_to_path(key)
    sink: RunningSink = start_sink(tls_cert=str(cert), tls_key=str(key))

    def served() -> bytes:
        s = _session(sink.port)
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        s.starttls(context=ctx)
        der = s.sock.getpeercert(binary_form=True)
        s.quit()
        assert der is not None
        return der

    assert served() == ssl.PEM_cert_to_DER_cert(issued.cert_chain_pems[0].bytes().decode())
    renewed = ca.issue_cert("sink.test", "127.0.0.1")
    renewed.cert_chain_pems[0].write_to_path(cert)
    renewed.private_key_pem.write_to_path(key)
    sink.loop.call_soon_threadsafe(sink.server.request_reload)
    deadline = time.monotonic() + 10
    while "tls_reloaded" not in sink.log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served() == ssl.PEM_cert_to_DER_cert(renewed.cert_chain_pems[0].bytes().decode())
