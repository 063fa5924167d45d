"""``[milter] listen`` in ``typoguard serve``: the milter in the policy service's event loop, deciding with
the policy service's decider (its store context: overrides, correspondents) and reloaded with it (SIGHUP).
``[milter] listen`` itself needs a restart, as ``[policyd] listen`` does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from typoguard.decide import Decider
from typoguard.milter.server import MilterServer
from typoguard.servers import ListenError

if TYPE_CHECKING:
    from typoguard.config import Config
    from typoguard.core.context import LiveContext
    from typoguard.guard import Guard
    from typoguard.obs import JsonLog, PolicydMetrics
    from typoguard.senders import InternalSenders


class PolicyService(Protocol):
    """What the milter takes from the policy service it runs beside (``policyd.server.PolicyServer``)."""

    record_decision: Callable[[bytes], None] | None  # the decision log and the store's feed, or None
    metrics: PolicydMetrics  # its metrics page shows the milter's counters too


class SharedDecider(Protocol):
    """What the milter takes from the policy service's decider (``policyd.decider.PolicyDecider``)."""

    config: Config
    guard: Guard
    senders: InternalSenders
    context: LiveContext | None


def milter_decider(decider: SharedDecider) -> Decider:
    """The policy service's decision with its store context, naming the recipient in refusals (no MTA adds
    ``<rcpt>:`` to a milter's reply)."""
    return Decider(
        decider.config, decider.guard, decider.senders, context=decider.context, names_recipient=True
    )


class MilterCompanion:
    def __init__(self, decider: SharedDecider, log: JsonLog) -> None:
        self.server = MilterServer(decider.config, milter_decider(decider), log)

    async def start(self, policy: PolicyService) -> None:
        # Decisions go where the policy service's go: the decision log and the store (its writer process).
        record = policy.record_decision
        self.server.log_record = record if record is not None else _not_recorded
        policy.metrics.milter = self.server
        try:
            await self.server.start()
        except OSError as exc:  # the policy service's start fails, naming this listener, not its own
            raise ListenError(f"[milter] listen {self.server.config.milter.listen}", exc) from exc
        self.server.log.event("info", "listening", service="milter", addresses=self.server.addresses)

    async def stop(self) -> None:
        await self.server.close()

    def reloaded(self, decider: SharedDecider) -> None:
        server = self.server
        milter = replace(decider.config.milter, listen=server.config.milter.listen)
        server.reconfigure(replace(decider.config, milter=milter), milter_decider(decider))


def _not_recorded(record: bytes) -> None:
    """The policy service logs no decisions ([log] level above info) and has no store."""
