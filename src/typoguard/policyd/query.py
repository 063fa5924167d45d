"""Ask a policy service what it would answer, as Postfix's smtpd would (blocking; for people and tests).

    python -m typoguard.policyd.query 127.0.0.1:10040 alice@army.mil bob@army.ml [more recipients]
    python -m typoguard.policyd.query unix:/run/typoguard.sock alice@army.mil bob@army.ml

Prints one ``recipient -> action`` line per recipient. Loopback and UNIX sockets only are intended.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterable, Mapping

from typoguard.config import parse_host_port
from typoguard.errors import ProtocolError
from typoguard.protocols.postfix_policy import NEED_DATA, PolicyClientConnection, PolicyReply


def rcpt_request(sender: str, recipient: str, **extra: str) -> dict[str, str]:
    """The attributes smtpd sends at RCPT TO (the ones typoguard reads, plus a few for realism)."""
    attrs = {
        "request": "smtpd_access_policy",
        "protocol_state": "RCPT",
        "protocol_name": "ESMTP",
        "client_address": "127.0.0.1",
        "client_name": "localhost",
        "helo_name": "client.example.org",
        "sender": sender,
        "recipient": recipient,
        "recipient_count": "0",
        "queue_id": "",
        "instance": "1de0.6b085f58.e11db.0",
        "sasl_username": "",
    }
    attrs.update(extra)
    return attrs


def connect(address: str, timeout: float = 5.0) -> socket.socket:
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address[len("unix:") :])
        return sock
    host, port = parse_host_port(address, "address")
    return socket.create_connection((host, port), timeout=timeout)


def query(address: str, requests: Iterable[Mapping[str, str]], timeout: float = 5.0) -> list[str]:
    """Send each request on one connection, one at a time; the ``action=`` values in order."""
    client = PolicyClientConnection()
    answers: list[str] = []
    with connect(address, timeout) as sock:
        for attrs in requests:
            sock.sendall(client.send(attrs))
            while True:
                event = client.next_event()
                if isinstance(event, PolicyReply):
                    answers.append(event.action)
                    break
                if event is not NEED_DATA:
                    raise ProtocolError("the policy service closed the connection")
                client.receive_data(sock.recv(65536))
    return answers


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    address, sender, recipients = args[0], args[1], args[2:]
    try:
        answers = query(address, [rcpt_request(sender, r) for r in recipients])
    except (OSError, ProtocolError) as exc:
        print(f"policy_query: {address}: {exc}", file=sys.stderr)
        return 1
    for rcpt, action in zip(recipients, answers, strict=True):
        print(f"{rcpt} -> {action}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
