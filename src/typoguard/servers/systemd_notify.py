"""sd_notify(3) without libsystemd: tell systemd a ``Type=notify`` service is ready.

systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` for Linux's abstract namespace) to the services it
starts; one datagram ``READY=1`` on that socket says "listening now", so units ordered after ours (Postfix)
start only when mail can be checked. The protocol is one ``sendto`` of newline-separated ``KEY=value``
lines: small enough to write here rather than depend on python-systemd (docs/adr/0020-debian-package.md).

Outside systemd (no ``NOTIFY_SOCKET``) every call does nothing. A failure to notify is logged on standard
error and never stops the service: it is already listening and answering, which matters more than the
unit's state (systemd then reports the start as timed out, loudly, on its side).
"""

from __future__ import annotations

import os
import socket
import sys

ENV = "NOTIFY_SOCKET"


def notify(state: str) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to systemd.

    True if sent; False if not run by systemd, or the send failed (said on standard error).
    """
    address = os.environ.get(ENV, "")
    if not address:
        return False
    # "@name" is the abstract namespace: the kernel wants a leading NUL byte instead of "@".
    target = "\0" + address[1:] if address.startswith("@") else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode("utf-8"), target)
    except OSError as exc:
        why = f"typoguard: cannot notify systemd at {address} ({state!r}): {exc}"
        print(why, file=sys.stderr, flush=True)
        return False
    return True


def ready() -> bool:
    """``READY=1``: call once every address listens."""
    return notify("READY=1")
