"""The milter codec (protocols/milter.py): frames in any chunking, negotiation, replies, hostile input."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from typoguard.errors import ProtocolError
from typoguard.protocols import milter as m


def frame(cmd: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">I", len(data) + 1) + cmd + data


OFFER = m.encode_optneg(6, 0x1FF, 0x1FFFFF)  # Postfix 3.x offers every action and every protocol step
SESSION = (
    OFFER
    + m.encode_macros(b"M", {"i": "4Q1", "{auth_authen}": "alice", "{client_addr}": "192.0.2.7"})
    + m.encode_command(b"M", b"<alice@army.mil>\0SIZE=100\0")
    + m.encode_command(b"R", b"<bob@army.ml>\0")
    + m.encode_command(b"E")
    + m.encode_command(b"A")
    + m.encode_command(b"Q")
)


def events_of(conn: m.MilterServerConnection, data: bytes, chunk: int) -> list[object]:
    out: list[object] = []
    for i in range(0, len(data), chunk):
        conn.receive_data(data[i : i + chunk])
        while (ev := conn.next_event()) is not m.NEED_DATA:
            out.append(ev)
            if isinstance(ev, m.OptionNegotiation):
                conn.negotiate(ev)
    conn.receive_data(b"")
    out.append(conn.next_event())
    return out


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 13, 4096])
def test_a_session_in_any_chunking_gives_the_same_events(chunk: int) -> None:
    events = events_of(m.MilterServerConnection(), SESSION, chunk)
    assert events == [
        m.OptionNegotiation(6, 0x1FF, 0x1FFFFF),
        m.Macros(b"M", {"i": "4Q1", "{auth_authen}": "alice", "{client_addr}": "192.0.2.7"}),
        m.MailFrom("<alice@army.mil>", ("SIZE=100",)),
        m.RcptTo("<bob@army.ml>", ()),
        m.EndOfMessage(b""),
        m.Abort(),
        m.Quit(),
        m.ConnectionClosed(),
    ]


def test_negotiation_asks_only_for_what_it_needs_and_what_was_offered() -> None:
    conn = m.MilterServerConnection()
    conn.receive_data(OFFER)
    offer = conn.next_event()
    assert isinstance(offer, m.OptionNegotiation)
    wire = conn.negotiate(offer)
    cmd, data = m.split_frame(wire)
    assert cmd == b"O"
    version, actions, protocol = struct.unpack(">III", data[:12])
    assert version == 6
    assert actions == m.SMFIF_ADDHDRS | m.SMFIF_QUARANTINE | m.SMFIF_SETSYMLIST
    # every step but MAIL and RCPT is skipped (end of message always comes)
    assert protocol & m.SMFIP_NOMAIL == 0 and protocol & m.SMFIP_NORCPT == 0
    for step in (m.SMFIP_NOCONNECT, m.SMFIP_NOHELO, m.SMFIP_NOHDRS, m.SMFIP_NOEOH, m.SMFIP_NOBODY):
        assert protocol & step
    # the macros it needs, asked for at MAIL and RCPT (and end of message, for the queue id)
    lists = data[12:]
    assert struct.pack(">I", m.SMFIM_ENVFROM) + b"i {auth_authen} {daemon_name} {client_addr}\0" in lists
    assert struct.pack(">I", m.SMFIM_EOM) + b"i\0" in lists


def test_negotiation_with_an_old_mta_stays_within_its_offer() -> None:
    conn = m.MilterServerConnection()
    conn.receive_data(m.encode_optneg(2, m.SMFIF_ADDHDRS, m.SMFIP_NOCONNECT | m.SMFIP_NOHELO))
    offer = conn.next_event()
    assert isinstance(offer, m.OptionNegotiation)
    _, data = m.split_frame(conn.negotiate(offer))
    assert struct.unpack(">III", data) == (2, m.SMFIF_ADDHDRS, m.SMFIP_NOCONNECT | m.SMFIP_NOHELO)
    assert conn.agreed is not None and not conn.agreed.can_quarantine


def test_replies_as_bytes() -> None:
    assert frame(b"c") == m.CONTINUE
    assert m.reply_code(550, "5.1.2", "Not sent: army.ml is not army.mil") == frame(
        b"y", b"550 5.1.2 Not sent: army.ml is not army.mil\0"
    )
    assert m.reply_code(550, "5.1.2", "100% sure") == frame(b"y", b"550 5.1.2 100%% sure\0")
    assert m.add_header("X-Typoguard-Warning", "bob@army.ml may be a typo") == frame(
        b"h", b"X-Typoguard-Warning\0bob@army.ml may be a typo\0"
    )
    assert m.quarantine("typoguard: army.ml") == frame(b"q", b"typoguard: army.ml\0")
    with pytest.raises(ProtocolError):
        m.reply_code(250, "2.0.0", "ok")
    with pytest.raises(ProtocolError):
        m.reply_code(550, "5.1.2", "two\r\nlines")
    with pytest.raises(ProtocolError):
        m.add_header("Bad: name", "x")


def test_connect_and_helo_parse() -> None:
    conn = m.MilterServerConnection()
    data = (
        OFFER
        + m.encode_command(b"C", b"client.example\x004" + struct.pack(">H", 4321) + b"192.0.2.7\0")
        + m.encode_command(b"C", b"[unix]\0U")
        + m.encode_command(b"H", b"client.example\0")
    )
    events = events_of(conn, data, 5)
    assert events[1:4] == [
        m.Connect("client.example", "4", 4321, "192.0.2.7"),
        m.Connect("[unix]", "U", 0, ""),
        m.Helo("client.example"),
    ]


HOSTILE = {
    "1 GB length prefix": OFFER + struct.pack(">I", 1 << 30) + b"R",
    "zero length": OFFER + struct.pack(">I", 0),
    "unknown command": OFFER + frame(b"Z", b"x"),
    "command before negotiation": frame(b"R", b"<bob@army.ml>\0"),
    "rcpt without NUL": OFFER + frame(b"R", b"<bob@army.ml>"),
    "short optneg": frame(b"O", b"\0\0\0\6"),
    "macro name without value": OFFER + frame(b"D", b"Mi"),
    "connect with a bad family": OFFER + frame(b"C", b"h\0X"),
    "connect with a short port": OFFER + frame(b"C", b"h\x004\1"),
}


@pytest.mark.parametrize("data", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_input_is_a_protocol_error_and_stays_one(data: bytes) -> None:
    conn = m.MilterServerConnection()
    conn.receive_data(data)
    with pytest.raises(ProtocolError):
        while (ev := conn.next_event()) is not m.NEED_DATA:
            if isinstance(ev, m.OptionNegotiation):
                conn.negotiate(ev)
    with pytest.raises(ProtocolError):  # the caller must close: the codec never resynchronises
        conn.next_event()


def test_a_huge_length_prefix_is_refused_before_its_data_arrives() -> None:
    conn = m.MilterServerConnection()
    conn.receive_data(struct.pack(">I", 1 << 30))
    with pytest.raises(ProtocolError, match="frame of 1073741824"):
        conn.next_event()


def test_truncated_frame_at_eof_is_an_error_a_clean_eof_is_not() -> None:
    conn = m.MilterServerConnection()
    conn.receive_data(OFFER[:7])
    assert conn.next_event() is m.NEED_DATA
    conn.receive_data(b"")
    with pytest.raises(ProtocolError, match="truncated"):
        conn.next_event()


def test_buffering_is_bounded_even_when_nobody_reads_events() -> None:
    conn = m.MilterServerConnection(max_frame=1024)
    with pytest.raises(ProtocolError):
        for _ in range(100):
            conn.receive_data(b"\0\0\0\x05D" * 200)  # valid small frames, never drained
    assert conn.buffered <= 4 * 1024


def test_data_after_quit_is_an_error() -> None:
    conn = m.MilterServerConnection()
    conn.receive_data(OFFER + frame(b"Q") + frame(b"Q"))
    ev = conn.next_event()
    assert isinstance(ev, m.OptionNegotiation)
    conn.negotiate(ev)
    assert conn.next_event() == m.Quit()
    with pytest.raises(ProtocolError):
        conn.next_event()


def test_quit_new_connection_starts_a_new_negotiation() -> None:
    events = events_of(m.MilterServerConnection(), OFFER + frame(b"K") + OFFER + frame(b"Q"), 3)
    assert [type(e) for e in events] == [
        m.OptionNegotiation,
        m.QuitNewConnection,
        m.OptionNegotiation,
        m.Quit,
        m.ConnectionClosed,
    ]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 64))
def test_any_bytes_give_events_or_a_protocol_error_never_a_crash(data: bytes, chunk: int) -> None:
    conn = m.MilterServerConnection(max_frame=256)
    with contextlib.suppress(ProtocolError):
        events_of(conn, OFFER + data, chunk)
    assert conn.buffered <= 4 * 256 + 64


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([b"M", b"R"]), st.text(max_size=40).filter(lambda s: "\0" not in s)),
        max_size=10,
    ),
    st.integers(1, 40),
)
def test_any_envelope_round_trips(commands: list[tuple[bytes, str]], chunk: int) -> None:
    data = OFFER + b"".join(m.encode_command(c, a.encode() + b"\0") for c, a in commands)
    events = events_of(m.MilterServerConnection(), data, chunk)[1:-1]
    assert [(type(e), e.address) for e in events if isinstance(e, m.MailFrom | m.RcptTo)] == [
        (m.MailFrom if c == b"M" else m.RcptTo, a) for c, a in commands
    ]
