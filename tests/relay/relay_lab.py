"""A relay and its next hop on loopback, for the relay tests and the benchmark.

``NextHopSink``: an aiosmtpd server in a thread that keeps what it is given (envelope and bytes), can be
stopped and started again on the same port (the next hop going down and coming back) and can offer
STARTTLS. ``RunningRelay``: ``RelayServer`` from a real config file, in its own thread and event loop.
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from typoguard.config import load_config
from typoguard.obs import JsonLog
from typoguard.relay.server import RelayServer
from typoguard.servers.event_loop import loop_factory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Delivered:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: bool


class _Keep:
    def __init__(self, sink: NextHopSink) -> None:
        self.sink = sink

    async def handle_RCPT(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower().startswith("nosuch"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.sink.received.append(
            Delivered(
                envelope.mail_from or "", list(envelope.rcpt_tos), envelope.original_content or b"",
                session.ssl is not None,
            )
        )  # fmt: skip
        return "250 2.0.0 Ok: queued by next hop"


class _SinkSMTP(SMTP):
    """aiosmtpd's session, remembering its TCP transport: after STARTTLS ``transport`` is the TLS layer,
    whose ``abort()`` does nothing once it was closed (on QUIT), even while the TCP connection stays open."""

    tcp: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.tcp is None:  # called again with the TLS layer once STARTTLS's handshake is done
            self.tcp = transport
        super().connection_made(transport)


class NextHopSink:
    """An SMTP server that accepts everything (RCPT ``nosuch*@`` refused) and keeps it in ``received``."""

    def __init__(self, port: int | None = None, tls: ssl.SSLContext | None = None, keep: bool = True) -> None:
        self.port = port or free_port()
        self.tls = tls
        self.keep = keep
        self.received: list[Delivered] = []
        self.count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._sessions: list[_SinkSMTP] = []

    def start(self) -> NextHopSink:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        handler = _Keep(self)

        def factory() -> SMTP:
            session = _SinkSMTP(handler, hostname="nexthop.test", tls_context=self.tls, decode_data=False,
                           data_size_limit=None, enable_SMTPUTF8=True, loop=self._loop)  # fmt: skip
            self._sessions.append(session)
            return session

        async def listen() -> asyncio.Server:
            return await asyncio.get_running_loop().create_server(
                factory, "127.0.0.1", self.port, reuse_address=True
            )

        self._server = asyncio.run_coroutine_threadsafe(listen(), self._loop).result(10)
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for session in self._sessions:  # the host goes down: its open connections drop too
                if isinstance(session.tcp, asyncio.Transport):
                    session.tcp.abort()
            self._sessions.clear()
            if self._server is not None:
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        loop.close()
        self._loop = None

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Delivered]:
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.received


def write_config(root: Path, next_hop_port: int, *, relay: dict[str, Any] | None = None,
                 policy: str = "", store: bool = False) -> Path:  # fmt: skip
    """A config protecting army.mil, navy.mil and gmail.com; ``relay`` keys override ``[relay]``."""
    keys = {"listen": "127.0.0.1:0", "next_hop": f"127.0.0.1:{next_hop_port}", "hostname": "relay.test",
            "next_hop_tls": "none", **(relay or {})}  # fmt: skip

    def toml(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list | tuple):
            return "[" + ", ".join(toml(x) for x in v) + "]"
        return str(v)

    text = (
        '[protect]\ndomains = ["army.mil", "navy.mil", "gmail.com"]\n'
        f"[policy]\n{policy}\n"
        f'[store]\nenabled = {toml(store)}\ndata_dir = "{root / "data"}"\nrefresh_interval = 0.2\n'
        "[relay]\n" + "".join(f"{k} = {toml(v)}\n" for k, v in keys.items())
    )
    path = root / "typoguard.toml"
    path.write_text(text)
    return path


class RunningRelay:
    """``RelayServer`` in a thread with its own loop; ``port`` is where it listens."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.config = load_config(config_path)
        self.log_path = config_path.parent / "relay.log"
        self.log = JsonLog(level="info", path=str(self.log_path))
        self.server = RelayServer.build(self.config, self.log, config_path=config_path)
        factory = loop_factory()  # the loop `typoguard relay` itself runs on (uvloop where installed)
        self._loop = factory() if factory is not None else asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the relay did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self.server.run(on_ready=lambda _: self._ready.set()))

    @property
    def port(self) -> int:
        return self.server.port

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self.server.stop)
        self._thread.join(60)
        self.server.close()
        self.log.close()
        self._loop.close()

    def log_records(self) -> list[dict[str, Any]]:
        import orjson

        self._loop.call_soon_threadsafe(self.log.flush)
        time.sleep(0.05)
        return [orjson.loads(line) for line in self.log_path.read_bytes().splitlines() if line.strip()]


def hold_one(relay: RunningRelay, rcpt: str, body: bytes) -> str:
    """Send ``body`` from alice@army.mil to ``rcpt`` through ``relay``; it must be held: its quarantine id."""
    with smtplib.SMTP("127.0.0.1", relay.port, timeout=10) as s:
        s.ehlo("client.test")
        s.mail("alice@army.mil")
        assert s.rcpt(rcpt)[0] == 250
        code, text = s.data(body)
    assert code == 250 and b"held for review" in text
    return text.decode().rsplit(" ", 1)[1]
