"""The event loop the servers run on: uvloop's when it is installed (a dependency on Linux).

uvloop (libuv under asyncio's API) costs about half of asyncio's own loop per readiness event and per
socket write. For a policy service answering one short request per wake-up that is most of the work
outside typoguard's own code: measured with ``python -m benchmarks --only policyd`` (docs/postfix.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's ``new_event_loop``, or None (asyncio's default loop) where uvloop is not installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - not on this platform
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop :func:`loop_factory` picks."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
