"""``[watch] enabled = true`` in ``typoguard serve``: rounds every ``[watch] every`` (jittered by 10%, so
nodes sharing a store do not align), each in a worker thread so the policy service's event loop never waits
for DNS or the database. Also the loop of ``typoguard watch`` without ``--once``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from typoguard.errors import TypoguardError
from typoguard.store.store import parse_duration
from typoguard.watch.alerts import Dispatcher
from typoguard.watch.round import RoundReport, run_round

if TYPE_CHECKING:
    from typoguard.config import Config
    from typoguard.guard import Guard
    from typoguard.held import HoldQueue
    from typoguard.store import Store

JITTER = 0.1


def next_delay(every: float, rng: Callable[[], float] = random.random) -> float:
    """``every`` seconds give or take 10%."""
    return every * (1 - JITTER + 2 * JITTER * rng())


class Watch:
    """Rounds on a schedule: ``await watch.run_forever()``; ``rounds``, ``failed`` and ``last`` for status.

    Counters for the metrics page (``obs.WatchCollector``): ``results`` (rounds by result: ``ok``,
    ``failed`` (DNS unusable), ``error`` (the store or the configuration failed)), ``new_events`` (events
    raised, by kind), ``last_success`` (UNIX time a round last completed), ``last_seconds``; the alerts'
    own counts are in ``dispatcher``.
    """

    def __init__(
        self,
        config: Config,
        guard: Guard,
        store: Store,
        *,
        queue: HoldQueue | None = None,
        log: Callable[..., None] | None = None,
    ) -> None:
        self.config = config
        self.guard = guard
        self.store = store
        self.queue = queue
        self.log = log or (lambda *a, **k: None)
        self.dispatcher = Dispatcher.from_config(config, guard, on_error=self._alert_failed)
        self.every = parse_duration(config.watch.every)
        self.rounds = 0
        self.failed = 0
        self.last: RoundReport | None = None
        self.results = {"ok": 0, "failed": 0, "error": 0}
        self.new_events: dict[str, int] = {}
        self.last_success = 0.0
        self.last_seconds = 0.0

    def round(self) -> RoundReport:
        """One round now (blocking); raises ``TypoguardError`` when the store or the configuration fails."""
        try:
            report = run_round(
                self.config, self.guard, self.store, dispatcher=self.dispatcher, queue=self.queue
            )
        except TypoguardError:
            self.results["error"] += 1
            raise
        self.rounds += 1
        self.failed += not report.ok
        self.last = report
        self.results["ok" if report.ok else "failed"] += 1
        for event in report.new_events:
            self.new_events[event.kind] = self.new_events.get(event.kind, 0) + 1
        if report.ok:
            self.last_success = time.time()
            self.last_seconds = report.seconds
        return report

    async def run_forever(self) -> None:
        while True:
            try:
                report = await asyncio.to_thread(self.round)
            except TypoguardError as exc:
                delay = next_delay(self.every)
                self.log("error", "watch_round_failed", error=str(exc), next_round_in=round(delay, 1))
            else:
                delay = next_delay(self.every)
                if report.ok:
                    self.log(
                        "info",
                        "watch_round",
                        seconds=round(report.seconds, 2),
                        lookalikes=report.lookalikes,
                        queries=report.queries,
                        new_events=len(report.new_events),
                        alerted=len(report.alerts),
                        alerts=self.dispatcher.stats(),
                        next_round_in=round(delay, 2),
                    )
                else:
                    self.log(
                        "error", "watch_round_failed", error=report.failure, next_round_in=round(delay, 1)
                    )
            await asyncio.sleep(delay)

    def reload(self, config: Config, guard: Guard) -> None:
        """A new configuration (SIGHUP): the next round scans the look-alikes of ``guard``, waits the new
        ``every`` and checks digest recipients with the new Guard. Changed ``[[alert]]`` tables get a new
        dispatcher; the old one is given up to 30 s, in its own thread, to deliver what it has queued.
        Raises ``ConfigError`` (the old configuration stays) when the new one cannot be used."""
        every = parse_duration(config.watch.every)
        old = self.dispatcher
        if config.alert != self.config.alert:
            self.dispatcher = Dispatcher.from_config(config, guard, on_error=self._alert_failed)
            threading.Thread(target=old.close, args=(30.0,), name="alerts closing", daemon=True).start()
        else:
            old.reloaded(guard)
        self.config, self.guard, self.every = config, guard, every

    def _alert_failed(self, name: str, why: str) -> None:
        self.log("warning", "alert_failed", alert=name, error=why)

    def close(self, timeout: float = 5.0) -> None:
        self.dispatcher.close(timeout)


class WatchCompanion:
    """The watch as a companion of the policy server (``start``/``stop``/``reloaded``, as HttpCompanion)."""

    def __init__(self, config: Config, guard: Guard, store: Store, log: Any) -> None:
        self.watch = Watch(config, guard, store, log=log.event)
        self.task: asyncio.Task[None] | None = None

    async def start(self, policy: Any) -> None:
        self.task = asyncio.get_running_loop().create_task(self.watch.run_forever())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        await asyncio.to_thread(self.watch.close, 5.0)

    def reloaded(self, decider: Any) -> None:
        """After ``serve`` reloaded its configuration (or kept the old one: then nothing changes)."""
        if decider.config is self.watch.config:
            return
        try:
            self.watch.reload(decider.config, decider.guard)
        except TypoguardError as exc:
            self.watch.log("error", "watch_reload_failed", error=str(exc), kept="old watch settings")
