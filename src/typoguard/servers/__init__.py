"""Plumbing the server roles share: the event loop (uvloop), the aiosmtpd base both SMTP servers use
(admission, one checked reply writer), and systemd readiness (``sd_notify``).

May import: ``obs``, ``errors`` (and the standard library). Nothing here knows what a decision is.
"""

import asyncio
import contextlib
import gc
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final

RELOAD_SWITCH_INTERVAL: Final = 0.001  # seconds; see building_beside_the_loop


class ListenError(OSError):
    """A listener of a server's companion could not be opened: ``listen`` names it the way the config does
    (``[milter] listen 127.0.0.1:10045``), so the message points at the right key and port."""

    def __init__(self, listen: str, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.listen = listen


def print_banner(text: str) -> None:
    """A service's "listening on ..." line on standard output, for a person starting it by hand. Standard
    output closed (``>&-``) or its reader gone (``| head -1``) never stops a service that is listening and
    answering: the same fact is in its log (the ``listening`` event)."""
    with contextlib.suppress(OSError, ValueError):
        print(text, flush=True)
        return
    with contextlib.suppress(OSError, ValueError):  # a broken pipe: what is still buffered is dropped
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


class Reloads:
    """A server's SIGHUPs: one reload at a time, and a SIGHUP that arrives during one runs exactly one more
    after it (the file may have changed after the running reload read it; any number of SIGHUPs meanwhile
    make one). Two reloads at once could finish out of order and leave the older file's config in place
    (a large list's build outlasts a small one's); a SIGHUP dropped during a reload left the edit unread.

    ``reload`` is the server's coroutine: it reports its own failures (``reload_failed`` and the like) and
    keeps the running config; an exception it lets out is re-raised by ``done``'s task, after any queued
    reload has run."""

    def __init__(self, reload: Callable[[], Awaitable[object]]) -> None:
        self._reload = reload
        self.task: asyncio.Task[None] | None = None
        self._again = False

    def request(self) -> None:
        """From the SIGHUP handler (on the event loop's thread)."""
        if self.task is not None and not self.task.done():
            self._again = True
            return
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        failed: BaseException | None = None
        while True:
            self._again = False
            try:
                await self._reload()
            except Exception as exc:  # the next one still runs; the task then ends with this error
                failed = exc
            if not self._again:
                break
        if failed is not None:
            raise failed


# The switch interval and collector state saved by the outermost build under way: two servers of one process
# (the policy service and a companion) may reload at once, and only the last one out puts them back.
_building: list[tuple[float, bool]] = []


@contextlib.contextmanager
def building_beside_the_loop() -> Iterator[None]:
    """While a reload builds a new index in a worker thread beside the event loop that answers the MTA.

    The build holds the GIL, and the loop waits for it at every request: up to the switch interval (5 ms by
    default) each time, so the service answered in ~5 ms instead of ~0.5 for the 7 s that 10,000 protected
    domains take to compile (measured with SIGHUP under a probe every 5 ms). Meanwhile the interval is 1 ms.
    And no automatic collection runs: the collector's full passes walked the half-built index as it grew,
    each holding the GIL for up to 90 ms; the caller freezes the new index afterwards, as at start. Both
    settings are the process's; they are put back as they were when the last build under way ends."""
    saved = _building[0] if _building else (sys.getswitchinterval(), gc.isenabled())
    _building.append(saved)
    sys.setswitchinterval(min(saved[0], RELOAD_SWITCH_INTERVAL))
    gc.disable()
    try:
        yield
    finally:
        _building.pop()
        if not _building:
            sys.setswitchinterval(saved[0])
            if saved[1]:
                gc.enable()


async def stop_writer_and_metrics(feed: Any, metrics_http: Any, log: Any) -> None:
    """The end of a server that stores decisions and serves a metrics page (the policy service, the
    milter on its own): the store's writer process stopped once every decision is stored or spooled
    (``decision_writer_stopped``, with whether that was clean), then the metrics page's HTTP server."""
    loop = asyncio.get_running_loop()
    if feed is not None:
        clean = await loop.run_in_executor(None, feed.close)
        log.event("info" if clean else "warning", "decision_writer_stopped", clean=clean)
    if metrics_http is not None:
        httpd, thread = metrics_http
        await loop.run_in_executor(None, httpd.shutdown)
        httpd.server_close()
        thread.join(5)
