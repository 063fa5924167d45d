"""``typoguard milter`` answers each recipient with its own words: the refusals, warning headers and hold
reasons it has encoded once (kept per text, bounded) are never another recipient's or another message's."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from milter_labs import MilterClient, MilterProcess

from typoguard.milter.server import FRAME_CACHE_ENTRIES


@pytest.fixture(scope="module")
def milter(typoguard_exe: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilterProcess]:
    m = MilterProcess(typoguard_exe, tmp_path_factory.mktemp("milter-answers"))
    m.start()
    yield m
    m.stop()


def test_every_refusal_names_its_own_recipient_beyond_the_kept_frames(milter: MilterProcess) -> None:
    client = MilterClient(milter.port)
    wire = client.wire
    client.sock.sendall(wire.encode_command(b"M", b"<alice@army.mil>\0"))
    client.read()
    for n in [*range(FRAME_CACHE_ENTRIES + 200), *range(50), *range(FRAME_CACHE_ENTRIES + 150, 1300)]:
        client.sock.sendall(wire.encode_command(b"R", f"<user{n}@army.ml>\0".encode()))
        cmd, data = client.read()
        assert cmd == b"y"
        assert data.startswith(f"550 5.1.2 <user{n}@army.ml>: Not sent:".encode()), data
        assert f"Did you mean user{n}@army.mil?".encode() in data
    client.close()


def test_headers_and_hold_reasons_belong_to_their_message(milter: MilterProcess) -> None:
    client = MilterClient(milter.port)
    wire = client.wire

    def message(*recipients: str) -> list[tuple[bytes, bytes]]:
        client.sock.sendall(wire.encode_command(b"M", b"<alice@army.mil>\0"))
        client.read()
        for rcpt in recipients:
            client.sock.sendall(wire.encode_command(b"R", f"<{rcpt}>\0".encode()))
            assert client.read()[0] == b"c"
        client.sock.sendall(wire.encode_command(b"E"))
        frames = []
        while (frame := client.read())[0] != b"c":
            frames.append(frame)
        return frames

    for _ in range(2):  # the second time from the kept frames
        held = message("bob@army.mil", "dave@amry.mil")
        assert [cmd for cmd, _ in held] == [b"q"] and b"amry.mil looks like army.mil" in held[0][1]
        warned = message("erin@arny.mil")
        assert [cmd for cmd, _ in warned] == [b"h"]
        assert b"erin@arny.mil may be a typo for erin@army.mil" in warned[0][1]
        assert message("bob@army.mil") == []
        both = message("frank@arny.mil", "dave@amry.mil", "erin@arny.mil")
        headers = [data for cmd, data in both if cmd == b"h"]
        assert [b"frank@arny.mil may" in headers[0], b"erin@arny.mil may" in headers[1]] == [True, True]
        assert [cmd for cmd, _ in both] == [b"h", b"h", b"q"]
    client.close()


def test_a_hold_the_mta_does_not_let_the_milter_apply_is_not_delivered_in_silence(
    milter: MilterProcess,
) -> None:
    """An MTA that does not grant quarantine in the option negotiation (SMFIF_QUARANTINE): a hold could not
    be applied at the end of the message, and the mail was delivered as if allowed. It follows
    ``[milter] on_error`` (default tempfail: 451 at RCPT, the sender's server retries) and says so."""
    wire_quarantine = 0x20
    client = MilterClient(milter.port, actions=0x1FF & ~wire_quarantine)
    cmd, data = client.rcpt("alice@army.mil", "dave@amry.mil")  # a hold
    assert cmd == b"y" and data.startswith(b"451 4.7.1 "), data
    assert b"hold" in data
    assert client.rcpt("alice@army.mil", "bob@army.ml")[0] == b"y"  # a refusal needs no quarantine
    assert client.rcpt("alice@army.mil", "bob@army.mil")[0] == b"c"
    client.close()
    held = MilterClient(milter.port)  # an MTA that grants it: held as before
    assert held.rcpt("alice@army.mil", "dave@amry.mil")[0] == b"c"
    held.close()
    deadline = time.monotonic() + 10
    while '"milter_cannot_hold"' not in milter.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    (said,) = [line for line in milter.log.read_text().splitlines() if '"milter_cannot_hold"' in line]
    assert '"level":"error"' in said and "SMFIF_QUARANTINE" in said


def test_a_warning_header_the_mta_does_not_let_the_milter_add_is_said(milter: MilterProcess) -> None:
    """No SMFIF_ADDHDRS granted: a warning is no reason to stop the mail; it goes on, but not in silence."""
    wire_addhdrs = 0x01
    client = MilterClient(milter.port, actions=0x1FF & ~wire_addhdrs)
    wire = client.wire
    client.sock.sendall(wire.encode_command(b"M", b"<alice@army.mil>\0"))
    client.read()
    client.sock.sendall(wire.encode_command(b"R", b"<erin@arny.mil>\0"))  # a warning
    assert client.read()[0] == b"c"
    client.sock.sendall(wire.encode_command(b"E"))
    assert client.read()[0] == b"c"  # no header frame: straight to CONTINUE
    client.close()
    deadline = time.monotonic() + 10
    while '"milter_cannot_add_header"' not in milter.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert '"milter_cannot_add_header"' in milter.log.read_text()
