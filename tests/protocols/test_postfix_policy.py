"""protocols/postfix_policy.py: the policy delegation codec, fed bytes split at every possible point."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from typoguard.errors import ProtocolError, TypoguardError
from typoguard.protocols.postfix_policy import (
    NEED_DATA,
    ConnectionClosed,
    PolicyClientConnection,
    PolicyReply,
    PolicyRequest,
    PolicyServerConnection,
    encode_request,
)

# What Postfix 3.7 sends at RCPT TO (captured from a real smtpd), 29 attributes.
POSTFIX_RCPT = (
    b"request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=127.0.0.1\n"
    b"client_name=unknown\nclient_port=59906\nreverse_client_name=unknown\nserver_address=127.0.0.1\n"
    b"server_port=2525\nhelo_name=client.example.org\nsender=alice@example.org\nrecipient=bob@army.ml\n"
    b"recipient_count=0\nqueue_id=\ninstance=1de0.6b085f58.e11db.0\nsize=0\netrn_domain=\nstress=\n"
    b"sasl_method=\nsasl_username=\nsasl_sender=\nccert_subject=\nccert_issuer=\nccert_fingerprint=\n"
    b"ccert_pubkey_fingerprint=\nencryption_protocol=\nencryption_cipher=\nencryption_keysize=0\n"
    b"policy_context=\n\n"
)


def drain(conn: PolicyServerConnection) -> list[object]:
    events: list[object] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)
        if isinstance(event, ConnectionClosed):
            return events


def feed_in_chunks(data: bytes, cuts: list[int], **limits: int) -> list[object]:
    conn = PolicyServerConnection(**limits)
    events: list[object] = []
    last = 0
    for cut in [*sorted(cuts), len(data)]:
        if cut > last:  # an empty chunk would mean end of connection
            conn.receive_data(data[last:cut])
            events.extend(drain(conn))
            last = cut
    conn.receive_data(b"")
    events.extend(drain(conn))
    return events


def test_a_real_postfix_request_gives_every_attribute() -> None:
    conn = PolicyServerConnection()
    conn.receive_data(POSTFIX_RCPT)
    event = conn.next_event()
    assert isinstance(event, PolicyRequest)
    assert event.recipient == "bob@army.ml"
    assert event.sender == "alice@example.org"
    assert event.protocol_state == "RCPT"
    assert event.get("queue_id") == "" and event.get("no_such_attribute", "x") == "x"
    assert len(event.attributes) == 29
    assert event.attributes["instance"] == "1de0.6b085f58.e11db.0"
    assert conn.next_event() is NEED_DATA


def test_every_split_point_of_two_requests_gives_the_same_events() -> None:
    two = POSTFIX_RCPT + POSTFIX_RCPT.replace(b"bob@army.ml", b"carol@army.mil")
    for cut in range(len(two) + 1):
        events = feed_in_chunks(two, [cut])
        assert [e.recipient for e in events if isinstance(e, PolicyRequest)] == [
            "bob@army.ml",
            "carol@army.mil",
        ], cut
        assert isinstance(events[-1], ConnectionClosed)


@given(st.lists(st.integers(min_value=0, max_value=len(POSTFIX_RCPT) * 3), max_size=20))
def test_arbitrary_chunking_never_changes_the_requests(cuts: list[int]) -> None:
    three = POSTFIX_RCPT * 3
    events = feed_in_chunks(three, cuts)
    requests = [e for e in events if isinstance(e, PolicyRequest)]
    assert len(requests) == 3
    assert all(r.attributes == requests[0].attributes for r in requests)


def test_one_byte_at_a_time() -> None:
    events = feed_in_chunks(POSTFIX_RCPT * 2, list(range(len(POSTFIX_RCPT) * 2)))
    assert sum(isinstance(e, PolicyRequest) for e in events) == 2


def test_values_may_contain_equals_signs_and_unknown_attributes_are_kept() -> None:
    conn = PolicyServerConnection()
    conn.receive_data(b"request=smtpd_access_policy\nccert_subject=CN=a=b\nfuture_attr=1\n\n")
    event = conn.next_event()
    assert isinstance(event, PolicyRequest)
    assert event.get("ccert_subject") == "CN=a=b"
    assert event.attributes["future_attr"] == "1"


def test_a_repeated_attribute_the_last_one_wins() -> None:
    conn = PolicyServerConnection()
    conn.receive_data(b"request=smtpd_access_policy\nrecipient=a@x.org\nrecipient=b@y.org\n\n")
    event = conn.next_event()
    assert isinstance(event, PolicyRequest)
    assert event.recipient == "b@y.org" == event.attributes["recipient"]


def test_crlf_from_a_person_typing_is_accepted_even_split_between_cr_and_lf() -> None:
    data = POSTFIX_RCPT.replace(b"\n", b"\r\n")
    for cut in range(len(data)):
        events = feed_in_chunks(data, [cut])
        requests = [e for e in events if isinstance(e, PolicyRequest)]
        assert len(requests) == 1 and requests[0].recipient == "bob@army.ml", cut


def test_invalid_utf8_is_kept_not_fatal() -> None:
    conn = PolicyServerConnection()
    conn.receive_data(b"request=smtpd_access_policy\nhelo_name=\xff\xfe\nrecipient=bob@army.ml\n\n")
    event = conn.next_event()
    assert isinstance(event, PolicyRequest)
    assert event.recipient == "bob@army.ml"
    assert event.get("helo_name").encode("utf-8", "surrogateescape") == b"\xff\xfe"


def test_replies_are_action_lines_and_answer_requests_in_order() -> None:
    conn = PolicyServerConnection()
    conn.receive_data(POSTFIX_RCPT * 2)
    assert len(drain(conn)) == 2 and conn.pending == 2
    assert conn.send(PolicyReply("DUNNO")) == b"action=DUNNO\n\n"
    assert conn.send(PolicyReply("550 5.1.2 no")) == b"action=550 5.1.2 no\n\n"
    with pytest.raises(ProtocolError, match="without an outstanding request"):
        conn.send(PolicyReply("DUNNO"))


@pytest.mark.parametrize("bad", ["", "DUNNO\nX-Injected: yes", "HOLD\r"])
def test_a_reply_cannot_smuggle_a_second_line(bad: str) -> None:
    with pytest.raises(ProtocolError):
        PolicyReply(bad)


def test_eof_between_requests_is_a_clean_close() -> None:
    events = feed_in_chunks(POSTFIX_RCPT, [])
    assert isinstance(events[0], PolicyRequest) and isinstance(events[1], ConnectionClosed)


# --------------------------------------------------------------------------- hostile and broken input
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\xff\xfegarbage\x01\n\n", "without '='"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "without '='"),
        (b"\n", "empty request"),
        (b"recipient=bob@army.ml\nsender=a@b.c\n\n", "without a request="),
        (b"request=junk\nrecipient=x@y.z\n\n", "unknown request type"),
        (b"request=smtpd_access_policy\n=value\n\n", "empty name"),
        (b"=smtpd_access_policy\n\n", "empty name"),
        (b"request=smtpd_access_policy\nno equals sign here\n\n", "without '='"),
        (POSTFIX_RCPT[:-1] + b"trailing\n\n", "without '='"),
    ],
)
def test_broken_requests_are_protocol_errors(data: bytes, message: str) -> None:
    conn = PolicyServerConnection()
    conn.receive_data(data)
    with pytest.raises(ProtocolError, match=message):
        drain(conn)
    # Once broken, always broken: the caller must disconnect, not try to resynchronise.
    with pytest.raises(ProtocolError):
        conn.next_event()
    with pytest.raises(ProtocolError):
        conn.receive_data(POSTFIX_RCPT)


def test_protocol_errors_are_typoguard_errors() -> None:
    assert issubclass(ProtocolError, TypoguardError)


def test_a_line_over_the_limit_is_refused_before_it_ends() -> None:
    conn = PolicyServerConnection(max_line=8192)
    conn.receive_data(b"request=smtpd_access_policy\nhelo_name=")
    assert conn.next_event() is NEED_DATA
    with pytest.raises(ProtocolError, match="longer than 8192"):
        for _ in range(10):  # 10 KiB without a newline: refused without waiting for the rest
            conn.receive_data(b"x" * 1024)
            drain(conn)


def test_a_long_line_inside_a_complete_request_is_refused() -> None:
    conn = PolicyServerConnection(max_line=8192)
    conn.receive_data(b"request=smtpd_access_policy\nhelo_name=" + b"x" * 9000 + b"\n\n")
    with pytest.raises(ProtocolError, match="longer than 8192"):
        conn.next_event()


def test_a_line_at_the_limit_is_fine() -> None:
    line = b"helo_name=" + b"x" * (8192 - len(b"helo_name="))
    conn = PolicyServerConnection(max_line=8192)
    conn.receive_data(b"request=smtpd_access_policy\n" + line + b"\n\n")
    assert isinstance(conn.next_event(), PolicyRequest)


def test_more_than_100_attributes_is_refused_complete_or_not() -> None:
    many = b"request=smtpd_access_policy\n" + b"".join(b"a%d=1\n" % i for i in range(100))
    complete = PolicyServerConnection(max_attributes=100)
    complete.receive_data(many + b"\n")
    with pytest.raises(ProtocolError, match="more than 100 attributes"):
        complete.next_event()
    streaming = PolicyServerConnection(max_attributes=100)
    with pytest.raises(ProtocolError, match="more than 100 attributes"):
        for i in range(0, len(many), 7):
            streaming.receive_data(many[i : i + 7])
            drain(streaming)


def test_exactly_100_attributes_is_fine() -> None:
    hundred = b"request=smtpd_access_policy\n" + b"".join(b"a%d=1\n" % i for i in range(99)) + b"\n"
    conn = PolicyServerConnection(max_attributes=100)
    conn.receive_data(hundred)
    assert isinstance(conn.next_event(), PolicyRequest)


def test_eof_in_the_middle_of_a_request_is_an_error() -> None:
    conn = PolicyServerConnection()
    conn.receive_data(POSTFIX_RCPT[:100])
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    with pytest.raises(ProtocolError, match="middle of a request"):
        conn.next_event()


@given(st.binary(max_size=400))
def test_random_bytes_never_raise_anything_but_protocol_error(data: bytes) -> None:
    conn = PolicyServerConnection(max_line=64, max_attributes=8)
    try:
        conn.receive_data(data)
        events = drain(conn)
        conn.receive_data(b"")
        events += drain(conn)
    except ProtocolError:
        return
    for event in events:
        assert isinstance(event, PolicyRequest | ConnectionClosed)
        if isinstance(event, PolicyRequest):
            assert event.get("request") == "smtpd_access_policy"


# --------------------------------------------------------------------------- the client side
def test_client_and_server_round_trip() -> None:
    client, server = PolicyClientConnection(), PolicyServerConnection()
    wire = client.send({"protocol_state": "RCPT", "recipient": "bob@army.ml", "ccert_subject": "CN=x"})
    server.receive_data(wire)
    request = server.next_event()
    assert isinstance(request, PolicyRequest)
    assert request == PolicyRequest.from_attributes(
        {
            "request": "smtpd_access_policy",
            "protocol_state": "RCPT",
            "recipient": "bob@army.ml",
            "ccert_subject": "CN=x",
        }
    )
    reply_bytes = server.send(PolicyReply("HOLD look-alike"))
    for i in range(len(reply_bytes)):
        client.receive_data(reply_bytes[i : i + 1])
    reply = client.next_event()
    assert isinstance(reply, PolicyReply) and reply.action == "HOLD look-alike"
    assert client.next_event() is NEED_DATA


def test_encode_request_refuses_newlines() -> None:
    with pytest.raises(ProtocolError):
        encode_request({"recipient": "a@b.c\nrecipient=x@y.z"})
