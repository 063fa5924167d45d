"""``[milter] listen`` in ``typoguard serve``: the milter in the policy service's event loop, deciding with
the policy service's decider (its store context: overrides, correspondents) and reloaded with it (SIGHUP).
``[milter] listen`` itself needs a restart, as ``[policyd] listen`` does."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from typoguard.milter.server import MilterServer

if TYPE_CHECKING:
    from typoguard.obs import JsonLog
    from typoguard.policyd.decider import PolicyDecider


def milter_decider(decider: PolicyDecider) -> PolicyDecider:
    """The policy service's decider, naming the recipient in refusals (no MTA adds ``<rcpt>:`` to a
    milter's reply)."""
    return type(decider)(
        decider.config, decider.guard, decider.senders, context=decider.context, names_recipient=True
    )


class MilterCompanion:
    def __init__(self, decider: PolicyDecider, log: JsonLog) -> None:
        self.server = MilterServer(decider.config, milter_decider(decider), log)

    async def start(self, policy: object) -> None:
        await self.server.start()
        self.server.log.event("info", "listening", service="milter", addresses=self.server.addresses)

    async def stop(self) -> None:
        await self.server.close()

    def reloaded(self, decider: PolicyDecider) -> None:
        server = self.server
        milter = replace(decider.config.milter, listen=server.config.milter.listen)
        server.reconfigure(replace(decider.config, milter=milter), milter_decider(decider))
