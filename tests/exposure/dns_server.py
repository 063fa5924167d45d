"""A small authoritative DNS server on loopback for the exposure tests and benchmark (dnspython, asyncio).

It answers from a zone dict ``{name: {rdtype: [rdata text, ...]}}`` over UDP and TCP:

* a name in the dict gets its records, or NOERROR with no answer (NODATA) for a type it lacks;
* a name below a name in the dict that has no records of its own is NODATA too (an empty non-terminal or a
  name the zone owner simply did not create is NXDOMAIN in real life; we keep it simple: only names *in* the
  dict, or below a name with ``NS`` records (a delegated zone, "registered"), exist);
* every other name is NXDOMAIN, as for an unregistered look-alike;
* a name in ``silent`` (or any name, with ``silent_all=True``) is never answered: the client times out;
* a name in ``servfail`` is answered SERVFAIL at once, as by a broken authoritative server: a failed look-up
  that costs no waiting, so a test can have one without a short timeout (a short timeout also fails names
  that *are* answered when the machine is busy);
* after ``fail_after`` queries the server goes bad, as a resolver does mid-scan: every later query gets
  ``fail_with`` (``servfail``, ``refused``, ``nxdomain`` for every name, or ``silent``), up to query
  ``fail_until`` if given (then it recovers);
* the root zone is the key ``"."`` (or ``""``): ``{".": {"SOA": [...]}}`` lets a resolver health check ask
  ``. SOA`` as it would of a real recursive resolver.

Run in a thread (``LocalDnsServer``, for tests) or as a process (``python dns_server.py ZONES.json``, for the
benchmark: it prints the port on the first line and serves until killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import sys
import threading
from collections.abc import Iterable, Mapping

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Zones = Mapping[str, Mapping[str, Iterable[str]]]
FAILURES = ("servfail", "refused", "nxdomain", "silent")


class ZoneAnswers:
    """The answering logic, separate from the sockets."""

    def __init__(
        self,
        zones: Zones,
        silent: Iterable[str] = (),
        silent_all: bool = False,
        *,
        fail_after: int | None = None,
        fail_with: str = "servfail",
        fail_until: int | None = None,
        servfail: Iterable[str] = (),
    ) -> None:
        if fail_with not in FAILURES:
            raise ValueError(f"fail_with must be one of {FAILURES}")
        self.fail_after = fail_after
        self.fail_with = fail_with
        self.fail_until = fail_until
        self.records: dict[str, dict[str, list[str]]] = {
            name.lower().rstrip("."): {t.upper(): list(v) for t, v in types.items()}
            for name, types in zones.items()
        }
        self.silent = {s.lower().rstrip(".") for s in silent}
        self.silent_all = silent_all
        self.servfail = {s.lower().rstrip(".") for s in servfail}
        self.queries = 0

    def _exists(self, name: str) -> bool:
        if name in self.records:
            return True
        labels = name.split(".")
        return any("NS" in self.records.get(".".join(labels[i:]), {}) for i in range(1, len(labels)))

    def answer(self, wire: bytes) -> bytes | None:
        """The response to one query message, or None to stay silent."""
        self.queries += 1
        if self.fail_after is not None and self.fail_after < self.queries <= (
            self.fail_until or self.queries
        ):
            return self._failure(wire)
        fast = self._fast_nxdomain(wire)
        if fast is not None:
            return fast
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # a malformed packet: a real server drops it too
            return None
        if not query.question:
            return None
        q = query.question[0]
        name = q.name.to_text().rstrip(".").lower()  # the root zone is "" (to_text gives ".")
        if self.silent_all or name in self.silent:
            return None
        response = dns.message.make_response(query)
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        response.flags |= dns.flags.AA
        if not self._exists(name):
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response.to_wire()
        rdtype = dns.rdatatype.to_text(q.rdtype)
        values = self.records.get(name, {}).get(rdtype, [])
        if values:
            response.answer.append(
                dns.rrset.from_text_list(q.name, 300, dns.rdataclass.IN, q.rdtype, list(values))
            )
        return response.to_wire()

    def _failure(self, wire: bytes) -> bytes | None:
        """The answer of a server gone bad (``fail_with``)."""
        if self.fail_with == "silent":
            return None
        try:
            query = dns.message.from_wire(wire)
        except Exception:
            return None
        response = dns.message.make_response(query)
        rcode = {"servfail": dns.rcode.SERVFAIL, "refused": dns.rcode.REFUSED, "nxdomain": dns.rcode.NXDOMAIN}
        response.set_rcode(rcode[self.fail_with])
        return response.to_wire()

    def _fast_nxdomain(self, wire: bytes) -> bytes | None:
        """NXDOMAIN without building message objects: most look-alikes are unregistered, and the benchmark
        measures the client, not this server. None: take the full path."""
        if len(wire) < 17 or wire[2] & 0xF8 or wire[4:6] != b"\x00\x01":
            return None
        labels, pos = [], 12
        while pos < len(wire):
            n = wire[pos]
            if n == 0:
                break
            if n > 63:
                return None
            labels.append(wire[pos + 1 : pos + 1 + n].decode("ascii", "replace").lower())
            pos += 1 + n
        end = pos + 5
        if end > len(wire):
            return None
        name = ".".join(labels)
        if self.silent_all or name in self.silent or name in self.servfail or self._exists(name):
            return None
        flags = bytes([0x84 | (wire[2] & 0x01), 0x03])  # QR, AA, RD copied; rcode NXDOMAIN
        return wire[:2] + flags + b"\x00\x01\x00\x00\x00\x00\x00\x00" + wire[12:end]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, answers: ZoneAnswers) -> None:
        self.answers = answers
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram transport, not declared so

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.answers.answer(data)
        if reply is not None and self.transport is not None:
            if len(reply) > 512:  # classic UDP limit: truncate, the client retries over TCP
                msg = dns.message.from_wire(reply)
                msg.answer.clear()
                msg.flags |= dns.flags.TC
                reply = msg.to_wire()
            self.transport.sendto(reply, addr)


async def _tcp(answers: ZoneAnswers, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            reply = answers.answer(await reader.readexactly(size))
            if reply is None:
                continue
            writer.write(struct.pack("!H", len(reply)) + reply)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def start(answers: ZoneAnswers, host: str = "127.0.0.1", port: int = 0) -> tuple[int, list[object]]:
    """Start UDP and TCP listeners on the same port; returns (port, handles to close)."""
    loop = asyncio.get_running_loop()
    for _ in range(20):  # the UDP port picked by the OS may be taken for TCP: try another
        udp, _proto = await loop.create_datagram_endpoint(lambda: _Udp(answers), local_addr=(host, port))
        bound = udp.get_extra_info("sockname")[1]
        try:
            tcp = await asyncio.start_server(lambda r, w: _tcp(answers, r, w), host, bound)
        except OSError:
            udp.close()
            continue
        return bound, [udp, tcp]
    raise OSError("no free port for UDP and TCP")


class LocalDnsServer:
    """The server on 127.0.0.1 in a background thread: ``with LocalDnsServer(zones) as srv: srv.port``."""

    def __init__(
        self,
        zones: Zones,
        silent: Iterable[str] = (),
        silent_all: bool = False,
        *,
        fail_after: int | None = None,
        fail_with: str = "servfail",
        fail_until: int | None = None,
        servfail: Iterable[str] = (),
    ) -> None:
        self.answers = ZoneAnswers(
            zones,
            silent,
            silent_all,
            fail_after=fail_after,
            fail_with=fail_with,
            fail_until=fail_until,
            servfail=servfail,
        )
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._handles: list[object] = []

    def __enter__(self) -> LocalDnsServer:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(start(self.answers), self._loop)
        self.port, self._handles = fut.result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def _close() -> None:
            for h in self._handles:
                h.close()  # type: ignore[attr-defined]
            for h in self._handles:
                if isinstance(h, asyncio.Server):
                    await h.wait_closed()

        asyncio.run_coroutine_threadsafe(_close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def main(argv: list[str]) -> None:
    """``dns_server.py ZONES.json``: serve until killed; print the port first (for the benchmark)."""
    with open(argv[0], encoding="utf-8") as fh:
        spec = json.load(fh)

    async def run() -> None:
        answers = ZoneAnswers(spec["zones"], spec.get("silent", ()), servfail=spec.get("servfail", ()))
        port, _handles = await start(answers)
        print(port, flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main(sys.argv[1:])
