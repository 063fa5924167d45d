"""Where events go: one ``Outbox`` per ``[[alert]]`` table, each with its own thread and bounded backlog, so
a slow or failing endpoint never blocks a round, the policy service, or another alert.

``Dispatcher.send(events)`` filters each outbox by ``min_severity`` and ``kinds`` and queues a batch; the
outbox delivers batches in order with retries (exponential backoff from ``backoff`` seconds, at most 60 s
between attempts, ``retries`` further attempts); a batch that still fails is counted in ``failed`` and
dropped. When more than ``backlog`` events wait, the oldest are dropped and counted in ``dropped``.
``close(timeout)`` lets the queued batches go out for up to ``timeout`` seconds (``watch --once``).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from typoguard.config import AlertConfig, Config
from typoguard.errors import TypoguardError
from typoguard.store.events import Event, severity_rank

MAX_BACKOFF = 60.0


class AlertError(TypoguardError):
    """An alert could not be delivered (this attempt)."""


@dataclass(frozen=True, slots=True)
class Alert:
    """An event as it is sent: ``reminder`` when it was alerted before and is still open."""

    event: Event
    reminder: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {**self.event.to_dict(), "reminder": self.reminder}


class Sender(Protocol):
    """Delivers one batch (raises ``AlertError`` or ``OSError`` on failure: the outbox retries)."""

    name: str

    def deliver(self, alerts: Sequence[Alert]) -> None: ...


class Outbox:
    """A sender's queue and thread."""

    def __init__(
        self,
        sender: Sender,
        settings: AlertConfig,
        *,
        backoff: float = 1.0,
        on_error: Callable[[str, str], None] | None = None,
    ) -> None:
        self.sender = sender
        self.settings = settings
        self.backoff = backoff
        self.on_error = on_error
        self.sent = 0  # events delivered
        self.failed = 0  # events given up after every retry
        self.dropped = 0  # events dropped because the backlog was full
        self.attempts = 0
        self._queue: collections.deque[list[Alert]] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._busy = False
        self._in_flight = 0  # events of the batch being delivered (between its attempts, too)
        self._thread = threading.Thread(target=self._run, name=f"alert {sender.name}", daemon=True)
        self._thread.start()

    @property
    def name(self) -> str:
        return self.sender.name

    @property
    def backlog(self) -> int:
        """Events waiting: queued, and the batch being delivered or waiting for its next attempt."""
        with self._cond:
            return sum(len(b) for b in self._queue) + self._in_flight

    def wants(self, event: Event) -> bool:
        s = self.settings
        if s.kinds and event.kind not in s.kinds:
            return False
        return severity_rank(event.severity) >= severity_rank(s.min_severity)

    def put(self, alerts: Sequence[Alert]) -> None:
        batch = [a for a in alerts if self.wants(a.event)]
        if not batch:
            return
        with self._cond:
            self._queue.append(batch)
            waiting = sum(len(b) for b in self._queue)
            while waiting > self.settings.backlog and self._queue:
                oldest = self._queue[0]
                excess = waiting - self.settings.backlog
                if len(oldest) <= excess:
                    self._queue.popleft()
                    self.dropped += len(oldest)
                    waiting -= len(oldest)
                else:
                    del oldest[:excess]
                    self.dropped += excess
                    waiting -= excess
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                batch = self._queue.popleft()
                self._busy = True
                self._in_flight = len(batch)
            try:
                self._deliver(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._in_flight = 0
                    self._cond.notify_all()

    def _deliver(self, batch: list[Alert]) -> None:
        delay = self.backoff
        for attempt in range(self.settings.retries + 1):
            self.attempts += 1
            try:
                self.sender.deliver(batch)
            except (AlertError, OSError) as exc:
                if self.on_error is not None:
                    self.on_error(self.name, f"attempt {attempt + 1}: {exc}")
                if attempt < self.settings.retries:
                    with self._cond:
                        if self._cond.wait_for(
                            lambda: self._closing and self._drain_by < time.monotonic(), delay
                        ):
                            break
                    delay = min(delay * 2, MAX_BACKOFF)
                continue
            self.sent += len(batch)
            return
        self.failed += len(batch)

    _drain_by = float("inf")

    def close(self, timeout: float = 0.0) -> None:
        """Deliver what is queued for up to ``timeout`` seconds, then stop (what is left is dropped)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closing = True
            self._drain_by = deadline
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._queue and not self._busy, max(0.0, timeout))
            left = sum(len(b) for b in self._queue)
            self.dropped += left
            self._queue.clear()
            self._cond.notify_all()
        self._thread.join(timeout=max(0.1, deadline - time.monotonic()))

    def stats(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.settings.type,
            "sent": self.sent,
            "failed": self.failed,
            "dropped": self.dropped,
            "backlog": self.backlog,
            "attempts": self.attempts,
        }


def build_sender(settings: AlertConfig, config: Config, guard: Any = None) -> Sender:
    """The sender of one ``[[alert]]`` table (``ConfigError`` for what cannot be used)."""
    if settings.type == "webhook":
        from typoguard.watch.webhook import WebhookSender

        return WebhookSender.from_config(settings, config)
    if settings.type == "syslog":
        from typoguard.watch.syslog import SyslogSender

        return SyslogSender.from_config(settings)
    from typoguard.watch.digest import EmailDigestSender

    return EmailDigestSender.from_config(settings, guard)


class Dispatcher:
    """Every configured alert, fed by ``send``."""

    def __init__(self, outboxes: Sequence[Outbox]) -> None:
        self.outboxes = list(outboxes)

    @classmethod
    def from_config(
        cls, config: Config, guard: Any = None, *, on_error: Callable[[str, str], None] | None = None
    ) -> Dispatcher:
        return cls([Outbox(build_sender(a, config, guard), a, on_error=on_error) for a in config.alert])

    def send(self, alerts: Sequence[Alert]) -> None:
        if alerts:
            for box in self.outboxes:
                box.put(alerts)

    def reloaded(self, guard: Any) -> None:
        """A new Guard (SIGHUP): e-mail digests check their recipients with it from the next delivery."""
        for box in self.outboxes:
            if hasattr(box.sender, "guard"):
                box.sender.guard = guard

    def close(self, timeout: float = 0.0) -> None:
        deadline = time.monotonic() + timeout
        for box in self.outboxes:
            box.close(max(0.0, deadline - time.monotonic()))

    def stats(self) -> list[dict[str, Any]]:
        return [b.stats() for b in self.outboxes]
