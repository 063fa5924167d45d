"""``[watch] enabled = true`` in ``typoguard serve``: rounds every ``[watch] every`` (jittered by 10%, so
nodes sharing a store do not align), each in a worker thread so the policy service's event loop never waits
for DNS or the database. Also the loop of ``typoguard watch`` without ``--once``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
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
    """Rounds on a schedule: ``await watch.run_forever()``; ``rounds``, ``failed`` and ``last`` for status."""

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
        self.dispatcher = Dispatcher.from_config(
            config,
            guard,
            on_error=lambda name, why: self.log("warning", "alert_failed", alert=name, error=why),
        )
        self.every = parse_duration(config.watch.every)
        self.rounds = 0
        self.failed = 0
        self.last: RoundReport | None = None

    def round(self) -> RoundReport:
        report = run_round(self.config, self.guard, self.store, dispatcher=self.dispatcher, queue=self.queue)
        self.rounds += 1
        self.failed += not report.ok
        self.last = report
        return report

    async def run_forever(self) -> None:
        while True:
            try:
                report = await asyncio.to_thread(self.round)
            except TypoguardError as exc:
                self.log("error", "watch_round_failed", error=str(exc))
            else:
                if report.ok:
                    self.log(
                        "info",
                        "watch_round",
                        seconds=round(report.seconds, 2),
                        queries=report.queries,
                        new_events=len(report.new_events),
                        alerted=len(report.alerts),
                        alerts=self.dispatcher.stats(),
                    )
                else:
                    self.log("error", "watch_round_failed", error=report.failure)
            await asyncio.sleep(next_delay(self.every))

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
        self.watch.guard = decider.guard  # the next round scans the look-alikes of the new configuration
