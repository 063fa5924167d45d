"""Postfix-like load on a real policy service, counting what it answered (for the store's crash tests and
the kill -9 measurements in ``benchmarks/bench_store.py``).

``conns`` connections, each with one request in flight at a time (as smtpd asks), every request for a
different recipient of an internal sender, so every answer is one guarded decision the store must keep: the
set of recipients answered is compared with the set stored. Runs in a thread with its own event loop; a
connection the service drops (killed) just ends.
"""

from __future__ import annotations

import asyncio
import threading
import time

from typoguard.policyd.query import rcpt_request
from typoguard.protocols.postfix_policy import PolicyClientConnection


def _request(recipient: str) -> bytes:
    return PolicyClientConnection().send(rcpt_request("alice@army.mil", recipient))


class PolicyLoad:
    """Saturating (``rate`` None) or paced load; ``answered`` holds the recipients whose reply arrived."""

    def __init__(self, address: str, *, conns: int = 8, tag: str = "u", rate: float | None = None) -> None:
        host, _, port = address.rpartition(":")
        self.host, self.port = host, int(port)
        self.conns, self.tag, self.rate = conns, tag, rate
        self.answered: list[str] = []
        self.answered_at: list[float] = []  # time.monotonic() of each answer, in the same order
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> PolicyLoad:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10) -> list[str]:
        self._stop.set()
        self._thread.join(timeout)
        return list(self.answered)

    def wait_for(self, n: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.answered) < n:
            assert time.monotonic() < deadline, f"only {len(self.answered)} of {n} answered"
            time.sleep(0.01)

    async def _main(self) -> None:
        await asyncio.gather(*(self._client(i) for i in range(self.conns)), return_exceptions=True)

    async def _client(self, i: int) -> None:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            self.errors += 1
            return
        n = 0
        pause = self.conns / self.rate if self.rate else 0.0
        try:
            while not self._stop.is_set():
                recipient = f"{self.tag}{i}x{n}@army.mil" if n % 4 else f"{self.tag}{i}x{n}@arny.mil"
                writer.write(_request(recipient))
                reply = await reader.readuntil(b"\n\n")
                if not reply.startswith(b"action="):
                    self.errors += 1
                self.answered.append(recipient)
                self.answered_at.append(time.monotonic())
                n += 1
                if pause:
                    await asyncio.sleep(pause)
        except (OSError, asyncio.IncompleteReadError):
            pass  # the service went away (killed): what was answered is counted
        finally:
            writer.close()
