"""STARTTLS both ways with trustme certificates, SMTP AUTH from a users file, and the CLI process."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from click.testing import CliRunner
from relay_lab import NextHopSink, RunningRelay, free_port, write_config

from typoguard.cli import main
from typoguard.relay.server import hash_password, verify_password

MESSAGE = b"Subject: tls\r\n\r\nover TLS\r\n"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def certs(ca: trustme.CA, tmp_path: Path) -> dict[str, Path]:
    cert = ca.issue_cert("relay.test", "127.0.0.1", "nexthop.test")
    out = {"cert": tmp_path / "cert.pem", "key": tmp_path / "key.pem", "ca": tmp_path / "ca.pem"}
    cert.cert_chain_pems[0].write_to_path(out["cert"])
    cert.private_key_pem.write_to_path(out["key"])
    ca.cert_pem.write_to_path(out["ca"])
    return out


@pytest.fixture
def tls_hop(ca: trustme.CA) -> Iterator[NextHopSink]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    hop = NextHopSink(tls=ctx).start()
    yield hop
    hop.stop()


def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def test_starttls_to_client_and_required_to_next_hop(
    start_relay: Callable[..., RunningRelay], certs: dict[str, Path], ca: trustme.CA, tls_hop: NextHopSink
) -> None:
    relay = start_relay(
        next_hop_port=tls_hop.port, tls_cert=str(certs["cert"]), tls_key=str(certs["key"]), require_tls=True,
        next_hop_tls="required", next_hop_ca_file=str(certs["ca"]),
    )  # fmt: skip
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
        s.ehlo("client.test")
        assert s.has_extn("starttls")
        assert s.mail("alice@army.mil")[0] == 530  # TLS first
        s.starttls(context=client_tls(ca))
        s.ehlo("client.test")
        assert s.sock.version() is not None  # type: ignore[union-attr]
        assert s.sendmail("alice@army.mil", ["bob@navy.mil"], MESSAGE) == {}
    (got,) = tls_hop.wait_for(1)
    assert got.tls and got.content.endswith(MESSAGE)
    assert b"with ESMTPS;" in got.content


def test_next_hop_without_starttls_when_required_is_4xx(
    start_relay: Callable[..., RunningRelay], next_hop: NextHopSink
) -> None:
    relay = start_relay(next_hop_tls="required")
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
        s.ehlo("client.test")
        code, _ = s.mail("alice@army.mil")
    assert code == 451 and next_hop.received == []


def test_opportunistic_tls_to_next_hop(
    start_relay: Callable[..., RunningRelay], tls_hop: NextHopSink
) -> None:
    relay = start_relay(next_hop_port=tls_hop.port, next_hop_tls="opportunistic")
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
        assert s.sendmail("alice@army.mil", ["bob@navy.mil"], MESSAGE) == {}
    assert tls_hop.wait_for(1)[0].tls


def test_a_tls_next_hop_that_goes_down_drops_its_open_connections(
    ca: trustme.CA, tls_hop: NextHopSink
) -> None:
    """A peer still connected after STARTTLS and QUIT (the relay between its last reply and its close) is cut
    off when the next hop stops, as on a plain connection: no socket is left open behind a closed event loop
    (it surfaced as an 'unclosed transport' warning in whichever test the garbage collector next ran in)."""
    raw = socket.create_connection(("127.0.0.1", tls_hop.port), timeout=10)
    with raw.makefile("rb") as plain:
        plain.readline()
        raw.sendall(b"EHLO client.test\r\n")
        while plain.readline()[3:4] != b" ":
            pass
        raw.sendall(b"STARTTLS\r\n")
        assert plain.readline().startswith(b"220")
    with client_tls(ca).wrap_socket(raw, server_hostname="127.0.0.1") as tls, tls.makefile("rb") as lines:
        tls.sendall(b"QUIT\r\n")
        assert lines.readline().startswith(b"221")
        tls_hop.stop()  # the client never closes nor answers the TLS close
        tls.settimeout(5)
        assert tls.recv(1) == b""  # the next hop's TLS close (sent on QUIT)...
        with socket.socket(fileno=os.dup(tls.fileno())) as tcp:  # ...and under it, the TCP connection
            tcp.settimeout(5)
            try:
                left = tcp.recv(1)
            except ConnectionError:
                left = b""  # reset: also gone
            except TimeoutError:
                pytest.fail("the next hop stopped but its TCP connection stayed open")
        assert left == b""


def test_smtp_auth_from_users_file(
    start_relay: Callable[..., RunningRelay], certs: dict[str, Path], ca: trustme.CA, next_hop: NextHopSink,
    tmp_path: Path,
) -> None:  # fmt: skip
    result = CliRunner().invoke(main, ["relay", "hash-password", "exchange", "--password", "s3cret pass"])
    assert result.exit_code == 0, result.output
    line = result.stdout.strip()
    assert line.startswith("exchange:scrypt$") and verify_password(b"s3cret pass", line.split(":", 1)[1])
    users = tmp_path / "users"
    users.write_text(f"# smart host logins\n{line}\n")
    relay = start_relay(
        allowed_networks=["10.0.0.0/8"], auth_users_file=str(users),
        tls_cert=str(certs["cert"]), tls_key=str(certs["key"]),
    )  # fmt: skip
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
        s.ehlo("client.test")
        assert "auth" not in s.esmtp_features  # never offered in clear text
        assert s.mail("alice@army.mil")[0] == 530
        s.rset()
        s.starttls(context=client_tls(ca))
        s.ehlo("client.test")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("exchange", "wrong")
        s.login("exchange", "s3cret pass")
        assert s.sendmail("alice@army.mil", ["bob@navy.mil"], MESSAGE) == {}
    (got,) = next_hop.wait_for(1)
    assert b"with ESMTPSA;" in got.content
    decisions = [r for r in relay.log_records() if r.get("event") == "decision"]
    assert decisions[-1]["internal"] == "sasl"


def test_hash_password_round_trip() -> None:
    stored = hash_password("pw", salt=b"0" * 16)
    assert verify_password(b"pw", stored) and not verify_password(b"pW", stored)
    assert not verify_password(b"pw", "garbage")


def test_relay_command_runs_and_stops_on_sigterm(
    typoguard_exe: str, tmp_path: Path, next_hop: NextHopSink
) -> None:
    port = free_port()
    path = write_config(tmp_path, next_hop.port, relay={"listen": f"127.0.0.1:{port}"})
    proc = subprocess.Popen(
        [typoguard_exe, "relay", "--config", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert b"typoguard relay: 127.0.0.1:" in banner
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            assert s.sendmail("alice@army.mil", ["bob@navy.mil"], MESSAGE) == {}
        assert len(next_hop.wait_for(1)) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()


def test_bad_config_exits_2(typoguard_exe: str, tmp_path: Path) -> None:
    path = write_config(tmp_path, 25, relay={"next_hop_tls": "sometimes"})
    done = subprocess.run(
        [typoguard_exe, "relay", "--config", str(path)], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 2 and b"next_hop_tls" in done.stderr


def _served_certificate(port: int, ca: trustme.CA) -> bytes:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo("client.test")
        s.starttls(context=client_tls(ca))
        der = s.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
    assert der is not None
    return der


def test_a_reload_serves_a_renewed_certificate_and_keeps_the_old_one_when_the_new_is_broken(
    start_relay: Callable[..., RunningRelay], certs: dict[str, Path], ca: trustme.CA
) -> None:
    """certbot renews the certificate every 60 days and reloads the service (`systemctl reload`): new
    sessions must get the new certificate, not the one read at start (which then expires: Exchange Online
    and Google fail the handshake). A key that does not match (a renewal half written) keeps the old pair,
    loudly."""
    import asyncio

    relay = start_relay(tls_cert=str(certs["cert"]), tls_key=str(certs["key"]))
    first = _served_certificate(relay.port, ca)
    renewed = ca.issue_cert("relay.test", "127.0.0.1")
    renewed.cert_chain_pems[0].write_to_path(certs["cert"])
    renewed.private_key_pem.write_to_path(certs["key"])
    asyncio.run_coroutine_threadsafe(relay.server.reload(), relay._loop).result(30)
    second = _served_certificate(relay.port, ca)
    assert second != first
    assert second == ssl.PEM_cert_to_DER_cert(renewed.cert_chain_pems[0].bytes().decode())

    ca.issue_cert("relay.test").private_key_pem.write_to_path(certs["key"])  # not the certificate's key
    asyncio.run_coroutine_threadsafe(relay.server.reload(), relay._loop).result(30)
    assert _served_certificate(relay.port, ca) == second
    (failed,) = [r for r in relay.log_records() if r.get("event") == "tls_reload_failed"]
    assert failed["level"] == "error" and "tls_key" in failed["error"]


def test_a_reload_reads_the_users_file_again_and_a_removed_login_stops_working(
    start_relay: Callable[..., RunningRelay], certs: dict[str, Path], ca: trustme.CA, tmp_path: Path
) -> None:
    """An admin removes a leaked login from auth_users_file and reloads: it must stop working at once (it
    worked until a restart, its success even remembered), and a login added must work."""
    import asyncio

    from typoguard.relay.server import hash_password

    users = tmp_path / "users"
    users.write_text(f"exchange:{hash_password('old pass')}\n")
    relay = start_relay(
        allowed_networks=["10.0.0.0/8"], auth_users_file=str(users),
        tls_cert=str(certs["cert"]), tls_key=str(certs["key"]),
    )  # fmt: skip

    def login(name: str, password: str) -> bool:
        with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
            s.ehlo("client.test")
            s.starttls(context=client_tls(ca))
            s.ehlo("client.test")
            try:
                s.login(name, password)
            except smtplib.SMTPAuthenticationError:
                return False
            return True

    assert login("exchange", "old pass")
    users.write_text(f"google:{hash_password('new pass')}\n")
    asyncio.run_coroutine_threadsafe(relay.server.reload(), relay._loop).result(30)
    assert not login("exchange", "old pass")
    assert login("google", "new pass")
    users.write_text("google:not-a-hash\n")  # broken: the logins in use stay
    asyncio.run_coroutine_threadsafe(relay.server.reload(), relay._loop).result(30)
    assert login("google", "new pass")
    (failed,) = [r for r in relay.log_records() if r.get("event") == "auth_reload_failed"]
    assert failed["level"] == "error"
