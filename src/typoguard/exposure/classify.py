"""From DNS answers to what they mean for mail. Pure: no sockets, files or clock.

* NXDOMAIN: **unregistered**.
* An MX set that is exactly one ``MX 0 .``: **null MX** (RFC 7505): the owner declares it takes no mail.
* Any other MX records: **accepts mail** at those hosts, unless every one is the sender's own machine
  (``MX 10 localhost.``, as parked names refuse mail): **registered, no mail**.
* No MX but an A or AAAA record: **accepts mail** at the name itself (RFC 5321 section 5.1, "implicit MX").
* The name exists but has neither: **registered, no mail**.
* No answer (timeout, SERVFAIL): **unknown** - never reported as safe.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Callable, Iterable

from typoguard.exposure.model import Change, DnsAnswers, Exposure, ProviderGroup, Snapshot, Status

Registrable = Callable[[str], str | None]


def status_of(answers: DnsAnswers) -> tuple[Status, tuple[str, ...]]:
    """The mail status of one name and the hosts that would receive its mail (by MX preference)."""
    if answers.nxdomain:
        return Status.UNREGISTERED, ()
    if answers.mx:
        if len(answers.mx) == 1 and answers.mx[0][1] in (".", ""):
            return Status.NULL_MX, ()
        hosts = tuple(dict.fromkeys(h for _, h in sorted(answers.mx) if h not in (".", "")))
        reachable = tuple(h for h in hosts if not _senders_own(h))
        if not reachable:  # MX localhost: parked or defensive; a sender's MTA would deliver to itself
            return Status.NO_MAIL, ()
        return Status.ACCEPTS_MAIL, reachable
    if answers.error:
        return Status.UNKNOWN, ()
    if answers.addresses:
        return Status.ACCEPTS_MAIL, (answers.name,)
    return Status.NO_MAIL, ()


def _senders_own(host: str) -> bool:
    """An MX host that is the sending machine itself: ``localhost`` (and its ``.localdomain``), a loopback
    or unspecified address written as a name."""
    name = host.lower().rstrip(".")
    if name in ("localhost", "localhost.localdomain"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def provider_of(hosts: Iterable[str], registrable: Registrable) -> str:
    """Who receives the mail: the registrable domains of the MX hosts, so ``mx1.mailhost.example`` and
    ``mx2.mailhost.example`` are one provider."""
    return "+".join(sorted({registrable(h) or h for h in hosts}))


def assess(
    protected: str, lookalike: str, kind: str, score: float, *, answers: DnsAnswers, registrable: Registrable
) -> Exposure:
    """One look-alike's ``Exposure`` from its DNS answers."""
    status, hosts = status_of(answers)
    if status is Status.ACCEPTS_MAIL and not answers.mx:
        provider = "A " + answers.addresses[0]  # implicit MX: group by the address that takes the mail
    elif status is Status.ACCEPTS_MAIL:
        provider = provider_of(hosts, registrable)
    else:
        provider = ""
    return Exposure(
        protected=protected,
        lookalike=lookalike,
        kind=kind,
        score=score,
        status=status,
        mail_hosts=hosts,
        provider=provider,
        addresses=answers.addresses,
        ns=answers.ns,
        error=answers.error,
    )


def group_by_provider(results: Iterable[Exposure]) -> list[ProviderGroup]:
    """Look-alikes that accept mail, grouped by the provider receiving it; biggest group first."""
    groups: dict[str, list[Exposure]] = defaultdict(list)
    for r in results:
        if r.status is Status.ACCEPTS_MAIL:
            groups[r.provider].append(r)
    out = [
        ProviderGroup(
            provider,
            tuple(sorted({h for e in members for h in e.mail_hosts})),
            tuple(sorted(members, key=lambda e: (-e.score, e.lookalike))),
        )
        for provider, members in groups.items()
    ]
    out.sort(key=lambda g: (-len(g.lookalikes), g.provider))
    return out


def count_by_status(results: Iterable[Exposure]) -> dict[Status, int]:
    """How many look-alikes are in each status (every status present, zero or not)."""
    counts = dict.fromkeys(Status, 0)
    for r in results:
        counts[r.status] += 1
    return counts


def failed_lookups(results: Iterable[Exposure]) -> tuple[int, int]:
    """How many distinct look-alikes had no answer (``unknown``: timeout, SERVFAIL, REFUSED), of how many."""
    seen: dict[str, bool] = {}
    for r in results:
        seen[r.lookalike] = seen.get(r.lookalike, False) or r.status is Status.UNKNOWN
    return sum(seen.values()), len(seen)


def compare(before: Snapshot | None, after: Snapshot) -> list[Change]:
    """What changed between two runs: every look-alike whose status differs, most alarming first.

    A look-alike not scanned last time counts as a change only if it is now registered (a new protected
    domain would otherwise report hundreds of unregistered names as "changed"). With no previous run,
    everything that accepts mail is new.
    """
    old = {(r.protected, r.lookalike): r for r in before.results} if before else {}
    changes = []
    for r in after.results:
        prev = old.get((r.protected, r.lookalike))
        if prev is None:
            if r.status is Status.UNREGISTERED:
                continue
            changes.append(Change(r.lookalike, r.protected, None, r.status, r.mail_hosts))
        elif prev.status is not r.status or (
            r.status is Status.ACCEPTS_MAIL and prev.mail_hosts != r.mail_hosts
        ):
            changes.append(Change(r.lookalike, r.protected, prev.status, r.status, r.mail_hosts))
    changes.sort(key=lambda c: (c.after.rank, c.protected, c.lookalike))
    return changes
