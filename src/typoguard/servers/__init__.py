"""Plumbing the server roles share: the event loop (uvloop), the aiosmtpd base both SMTP servers use
(admission, one checked reply writer), and systemd readiness (``sd_notify``).

May import: ``obs``, ``errors`` (and the standard library). Nothing here knows what a decision is.
"""


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
