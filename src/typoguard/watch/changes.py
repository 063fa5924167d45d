"""Exposure changes as events: the last known state of each look-alike against this round's scan. Pure.

A look-alike is an event when it
* **comes alive**: accepts mail now (gained an MX or an address) and did not before
  (``lookalike-accepts-mail``, critical); on the first round (no history) every look-alike accepting mail
  is reported once, so the team starts from the whole picture;
* **drops a null MX**: was ``MX 0 .`` (RFC 7505: "takes no mail") and is not any more (``null-mx-dropped``;
  critical if it now accepts mail);
* **changes mail host**: accepted mail before, at other hosts (``mail-host-changed``, warning);
* **joins a squatter cluster**: one of the above, at a provider that receives the mail of ``squatter_min``
  or more look-alikes: the event is critical, its summary says so and ``details.cluster`` lists them (one
  event per look-alike and round: a first round over 2,800 live look-alikes gives 2,800 events, not twice
  as many).

A look-alike whose look-up failed this round (``unknown``) is neither an event nor "safe": it keeps its last
known state (``carry_unknown``), so a resolver hiccup never turns into "came alive" the round after.
The fact (part of an event's identity) is the new mail hosts or provider: the same change seen again is the
same event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from typoguard.exposure.classify import group_by_provider
from typoguard.exposure.model import Exposure, Snapshot, Status
from typoguard.store.events import Observation


def carry_unknown(before: Snapshot | None, results: Sequence[Exposure]) -> tuple[Exposure, ...]:
    """``results`` with every ``unknown`` replaced by the previous run's result for the same look-alike."""
    old = {(r.protected, r.lookalike): r for r in before.results} if before else {}
    return tuple(old.get((r.protected, r.lookalike), r) if r.status is Status.UNKNOWN else r for r in results)


def _details(r: Exposure, before: Exposure | None) -> dict[str, Any]:
    return {
        "lookalike": r.lookalike,
        "protected": r.protected,
        "kind": r.kind,
        "score": round(r.score, 4),
        "status": r.status.value,
        "before": before.status.value if before else None,
        "mail_hosts": list(r.mail_hosts),
        "before_mail_hosts": list(before.mail_hosts) if before else [],
        "provider": r.provider,
        "addresses": list(r.addresses),
        "ns": list(r.ns),
    }


def exposure_observations(
    before: Snapshot | None, results: Iterable[Exposure], *, squatter_min: int
) -> list[Observation]:
    """The events between the last known state (``before``) and this round's ``results``."""
    results = list(results)
    old = {(r.protected, r.lookalike): r for r in before.results} if before else {}
    old_provider = {r.lookalike: r.provider for r in old.values() if r.status is Status.ACCEPTS_MAIL}
    clusters = {g.provider: g for g in group_by_provider(results) if len(g.lookalikes) >= squatter_min}
    out: list[Observation] = []
    seen: set[str] = set()  # a look-alike imitating two protected domains is one event
    for r in results:
        if r.lookalike in seen or r.status is Status.UNKNOWN:
            continue
        seen.add(r.lookalike)
        prev = old.get((r.protected, r.lookalike))
        hosts = ", ".join(r.mail_hosts)
        of = f"{r.lookalike} (look-alike of {r.protected})"
        if prev is not None and prev.status is Status.NULL_MX and r.status is not Status.NULL_MX:
            kind = "null-mx-dropped"
            severity = "critical" if r.status is Status.ACCEPTS_MAIL else "warning"
            now = f"accepts mail at {hosts}" if r.status is Status.ACCEPTS_MAIL else f"is {r.status.value}"
            summary = f"{of} dropped its null MX and {now}"
        elif r.status is Status.ACCEPTS_MAIL and (prev is None or prev.status is not Status.ACCEPTS_MAIL):
            kind, severity = "lookalike-accepts-mail", "critical"
            summary = f"{of} accepts mail at {hosts}" + (f" (was {prev.status.value})" if prev else "")
        elif r.status is Status.ACCEPTS_MAIL and prev is not None and prev.mail_hosts != r.mail_hosts:
            kind, severity = "mail-host-changed", "warning"
            summary = f"{of} changed mail host: {', '.join(prev.mail_hosts)} -> {hosts}"
        else:
            continue
        details = _details(r, prev)
        cluster = clusters.get(r.provider) if r.status is Status.ACCEPTS_MAIL else None
        if cluster is not None and old_provider.get(r.lookalike) != r.provider:
            # joins a squatter's catch-all: the same event, marked (one event per look-alike and round)
            severity = "critical"
            details["cluster"] = [e.lookalike for e in cluster.lookalikes]
            summary += (
                f"; joins a squatter cluster: {r.provider} receives the mail of {len(cluster.lookalikes)} "
                "look-alikes"
            )
        out.append(Observation(kind, r.lookalike, severity, "+".join(r.mail_hosts), summary, details))
    return out
