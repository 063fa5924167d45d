"""Loopback receivers for alerts: an HTTP webhook endpoint that checks the signature, fails the first
``fail_first`` requests with 500 and records the rest; a Unix datagram socket for syslog."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class WebhookReceiver:
    def __init__(self, secret: bytes, fail_first: int = 0) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.requests = 0
        self.received: list[dict[str, Any]] = []  # bodies with a valid signature
        self.received_at: list[float] = []
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests += 1
                if receiver.requests <= receiver.fail_first:
                    self.send_response(500)
                    self.end_headers()
                    return
                stamp = self.headers.get("X-Typoguard-Timestamp", "")
                want = (
                    "sha256="
                    + hmac.new(receiver.secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
                )
                got = self.headers.get("X-Typoguard-Signature", "")
                if not hmac.compare_digest(want, got) or abs(time.time() - int(stamp or 0)) > 300:
                    receiver.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                receiver.received.append(json.loads(body))
                receiver.received_at.append(time.time())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class SyslogReceiver:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(5)

    def lines(self, n: int) -> list[bytes]:
        return [self.sock.recv(65536) for _ in range(n)]

    def close(self) -> None:
        self.sock.close()
