"""The relay as Exchange Online's and Google Workspace's smart host, from a client that behaves like them.

Neither service can be run here (docs/relay.md says how to set them up); what they do on the wire can:
they connect to port 25 of the relay's public name and say EHLO with their own host names
(``*.outbound.protection.outlook.com``, ``mail-*.google.com``), require STARTTLS with TLS 1.2 or later
(an Exchange Online connector with ``TlsSettings DomainValidation``, a Gmail host with "Require CA signed
certificate" and "Validate certificate hostname") and validate the chain the relay presents against public
roots (so the relay must send its intermediate certificate) and the name against the configured one; then
EHLO again, and pipeline MAIL FROM with SIZE= and BODY=8BITMIME, several RCPT TO and DATA when PIPELINING
is offered.
"""

from __future__ import annotations

import socket
import ssl
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from relay_lab import NextHopSink, RunningRelay

RELAY_NAME = "relay.army.mil"
EXCHANGE_ONLINE_EHLO = "DB8EUR05HT123.outbound.protection.outlook.com"
GOOGLE_EHLO = "mail-sor-f41.google.com"
MAX_SIZE = 10_000_000


@pytest.fixture(scope="module")
def root_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def hosted_relay(
    start_relay: Callable[..., RunningRelay], root_ca: trustme.CA, tmp_path: Path
) -> Iterator[RunningRelay]:
    """The relay with a certificate for RELAY_NAME issued by an intermediate CA, TLS required."""
    leaf = root_ca.create_child_ca().issue_cert(RELAY_NAME)
    pem = tmp_path / "relay.pem"  # key, leaf, intermediate: what a public CA's bundle looks like
    leaf.private_key_and_cert_chain_pem.write_to_path(pem)
    yield start_relay(tls_cert=str(pem), tls_key=str(pem), require_tls=True, max_message_size=MAX_SIZE)


def hosted_tls(root_ca: trustme.CA, server_name: str = RELAY_NAME) -> ssl.SSLContext:
    """What the hosted services demand: TLS 1.2+, the chain to a root they trust, the name checked."""
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    root_ca.configure_trust(ctx)  # the root only: the relay must send the intermediate
    return ctx


class Wire:
    """A line-level SMTP client that can pipeline (smtplib cannot)."""

    def __init__(self, port: int) -> None:
        self.sock: socket.socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, *lines: str | bytes) -> None:
        """Send all ``lines`` in one write: pipelining as the hosted services do it."""
        self.sock.sendall(b"".join((x.encode() if isinstance(x, str) else x) + b"\r\n" for x in lines))

    def reply(self) -> tuple[int, list[str]]:
        """One (possibly multi-line) reply: its code and its text lines."""
        texts: list[str] = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                assert chunk, f"connection closed; got so far: {texts}"
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            text = line.decode()
            texts.append(text[4:])
            if text[3:4] != "-":
                return int(text[:3]), texts

    def starttls(self, ctx: ssl.SSLContext, server_name: str = RELAY_NAME) -> None:
        self.send("STARTTLS")
        assert self.reply()[0] == 220
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_name)

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("ehlo", [EXCHANGE_ONLINE_EHLO, GOOGLE_EHLO])
def test_a_hosted_service_session_over_required_tls_with_pipelining(
    hosted_relay: RunningRelay, next_hop: NextHopSink, root_ca: trustme.CA, ehlo: str
) -> None:
    wire = Wire(hosted_relay.port)
    try:
        assert wire.reply()[0] == 220
        wire.send(f"EHLO {ehlo}")
        code, lines = wire.reply()
        assert code == 250 and "STARTTLS" in lines
        wire.send("MAIL FROM:<alice@army.mil>")
        assert wire.reply()[0] == 530  # nothing before TLS: require_tls
        wire.starttls(hosted_tls(root_ca))
        assert isinstance(wire.sock, ssl.SSLSocket)
        assert wire.sock.version() in ("TLSv1.2", "TLSv1.3")
        wire.send(f"EHLO {ehlo}")
        code, lines = wire.reply()
        assert code == 250
        assert f"SIZE {MAX_SIZE}" in lines and "8BITMIME" in lines and "PIPELINING" in lines
        body = "Subject: Grüße\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGrüße, Büro\r\n".encode()
        wire.send(
            f"MAIL FROM:<alice@army.mil> SIZE={len(body)} BODY=8BITMIME",
            "RCPT TO:<bob@army.ml>",
            "RCPT TO:<carol@army.mil>",
            "DATA",
        )
        assert wire.reply()[0] == 250
        code, lines = wire.reply()
        assert code == 550 and " ".join(lines).startswith(
            "5.1.2 <bob@army.ml>: Not sent: army.ml is not army.mil. Did you mean bob@army.mil?"
        )
        assert wire.reply()[0] == 250
        assert wire.reply()[0] == 354
        wire.send(body + b".")
        assert wire.reply()[0] == 250
        wire.send("QUIT")
        assert wire.reply()[0] == 221
    finally:
        wire.close()
    (got,) = next_hop.wait_for(1)
    assert got.rcpt_tos == ["carol@army.mil"]
    assert got.content.endswith(body)  # 8-bit text passed on untouched


def test_a_message_over_the_advertised_size_is_refused_at_mail_from(
    hosted_relay: RunningRelay, root_ca: trustme.CA
) -> None:
    wire = Wire(hosted_relay.port)
    try:
        wire.reply()
        wire.send(f"EHLO {EXCHANGE_ONLINE_EHLO}")
        wire.reply()
        wire.starttls(hosted_tls(root_ca))
        wire.send(f"EHLO {EXCHANGE_ONLINE_EHLO}")
        wire.reply()
        wire.send(f"MAIL FROM:<alice@army.mil> SIZE={MAX_SIZE + 1}")
        assert wire.reply()[0] == 552  # the sending service bounces at once instead of sending it all
    finally:
        wire.close()


def test_tls_below_1_2_is_refused(hosted_relay: RunningRelay, root_ca: trustme.CA) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    root_ca.configure_trust(ctx)
    try:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 offers TLS 1.1 only at security level 0
        with warnings.catch_warnings():  # the old versions are deprecated: offering them is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError) as exc:  # pragma: no cover - an OpenSSL built without TLS 1.1
        pytest.skip(f"this OpenSSL cannot even offer TLS 1.1: {exc}")
    wire = Wire(hosted_relay.port)
    try:
        wire.reply()
        wire.send(f"EHLO {GOOGLE_EHLO}")
        wire.reply()
        with pytest.raises(ssl.SSLError):
            wire.starttls(ctx)
    finally:
        wire.close()


def test_the_certificate_name_is_what_the_connector_validates(
    hosted_relay: RunningRelay, root_ca: trustme.CA
) -> None:
    """A connector whose TlsDomain (Exchange Online) or host name (Gmail) is not the certificate's name
    fails the handshake: the relay's certificate must carry the name the service is configured with."""
    wire = Wire(hosted_relay.port)
    try:
        wire.reply()
        wire.send(f"EHLO {EXCHANGE_ONLINE_EHLO}")
        wire.reply()
        with pytest.raises(ssl.SSLCertVerificationError):
            wire.starttls(hosted_tls(root_ca), server_name="smtp.army.mil")
    finally:
        wire.close()
