"""Plumbing the server roles share: the event loop (uvloop), the aiosmtpd base both SMTP servers use
(admission, one checked reply writer), and systemd readiness (``sd_notify``).

May import: ``obs``, ``errors`` (and the standard library). Nothing here knows what a decision is.
"""

from typing import Any


def print_banner(text: str) -> None:
    """A service's "listening on ..." line on standard output, for a person starting it by hand. Standard
    output closed (``>&-``) or its reader gone (``| head -1``) never stops a service that is listening and
    answering: the same fact is in its log (the ``listening`` event)."""
    import contextlib
    import sys

    with contextlib.suppress(OSError, ValueError):
        print(text, flush=True)
        return
    with contextlib.suppress(OSError, ValueError):  # a broken pipe: what is still buffered is dropped
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


async def stop_writer_and_metrics(feed: Any, metrics_http: Any, log: Any) -> None:
    """The end of a server that stores decisions and serves a metrics page (the policy service, the
    milter on its own): the store's writer process stopped once every decision is stored or spooled
    (``decision_writer_stopped``, with whether that was clean), then the metrics page's HTTP server."""
    import asyncio

    loop = asyncio.get_running_loop()
    if feed is not None:
        clean = await loop.run_in_executor(None, feed.close)
        log.event("info" if clean else "warning", "decision_writer_stopped", clean=clean)
    if metrics_http is not None:
        httpd, thread = metrics_http
        await loop.run_in_executor(None, httpd.shutdown)
        httpd.server_close()
        thread.join(5)
