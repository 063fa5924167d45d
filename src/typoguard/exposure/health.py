"""Is the resolver telling the truth? Checked before a scan and again after it (issue 15).

A resolver that answers NXDOMAIN for every name (a sinkhole, a filtering or authoritative-only server, a
captive portal) or none at all would make every look-alike look "unregistered" or "unknown": a false
all-clear. The protected domains exist by definition, so they are the control:

* **before the scan** each protected domain is asked (``MX``; any answer but NXDOMAIN shows it exists).
  If one does not resolve, the root zone (``. SOA``) and its top-level domain (``mil. SOA``) are asked
  through the same resolver, to tell "the DNS is unusable" (``DnsUnusable``: timeouts, SERVFAIL, or
  NXDOMAIN even for the root) from "this protected domain does not exist" (``ProtectedDomainMissing``:
  the resolver answers the root and the TLD, so the name is probably a typo in the configuration).
* **during the scan** one protected domain is asked after every few hundred look-alikes (a canary,
  ``ExposureResolver.resolve_many``): NXDOMAIN for it stops the scan (``DnsUnusable``);
* **after the scan** the protected domains are asked again: NXDOMAIN now for a name that existed before
  means the resolver started lying during the scan, and none of its NXDOMAIN answers can be trusted
  (``DnsUnusable``). A timeout or SERVFAIL then is not a lie: the names it hit are already "unknown".
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import dns.rdatatype

from typoguard.errors import TypoguardError
from typoguard.exposure.resolve import ExposureResolver, Reply

SHOWN = 5  # names quoted in a message at most


class DnsUnusable(TypoguardError):
    """The resolver cannot be trusted: nothing it says about look-alikes would mean anything."""


class ProtectedDomainMissing(TypoguardError):
    """A protected domain does not exist, while the resolver answers other names correctly."""


def _listing(names: Sequence[str]) -> str:
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def _why(name: str, rdtype: str, reply: Reply) -> str:
    """``army.mil MX: NXDOMAIN``, ``army.mil MX: SERVFAIL``, ``army.mil: no answer to MX within 2 s ...``."""
    if reply.nxdomain:
        return f"{name} {rdtype}: NXDOMAIN"
    if reply.error.startswith(rdtype):
        return f"{name} {reply.error}"
    if rdtype in reply.error:
        return f"{name}: {reply.error}"
    return f"{name} {rdtype}: {reply.error}"


async def _ask_all(resolver: ExposureResolver, names: Sequence[str], rdtype: str) -> dict[str, Reply]:
    kind = dns.rdatatype.from_text(rdtype)
    replies = await asyncio.gather(*(resolver.ask(n, kind) for n in names))
    return dict(zip(names, replies, strict=True))


async def check_before(resolver: ExposureResolver, protected: Sequence[str]) -> None:
    """Raise ``DnsUnusable`` or ``ProtectedDomainMissing`` unless every protected domain resolves."""
    protected = list(dict.fromkeys(protected))
    replies = await _ask_all(resolver, protected, "MX")
    bad = [d for d in protected if replies[d].nxdomain or replies[d].error]
    if not bad:
        return
    where = resolver.describe()
    tlds = list(dict.fromkeys(d.rsplit(".", 1)[-1] + "." for d in bad))
    probes = await _ask_all(resolver, [".", *tlds], "SOA")
    root = probes["."]
    failed = [d for d in bad if replies[d].error]
    missing = [d for d in bad if replies[d].nxdomain]
    if root.error or root.nxdomain or not root.values:
        reasons = "; ".join(_why(d, "MX", replies[d]) for d in bad[:SHOWN])
        if root.nxdomain and not failed:
            why = (
                f"{where} answers NXDOMAIN for {_listing(bad)} and for the root zone itself (. SOA): it is "
                "not a working recursive resolver (a sinkhole, a filtering or an authoritative-only server?)"
            )
        elif root.error:
            why = f"no answer from {where} ({reasons}; {_why('.', 'SOA', root)})"
        else:
            why = f"{where}: {reasons}; . SOA: {'NXDOMAIN' if root.nxdomain else 'no SOA record'}"
        raise DnsUnusable(
            f"{why}. Nothing was scanned: every look-alike would look unregistered or unknown. Check the "
            "resolver, or give one that answers for the Internet with --resolver ADDRESS."
        )
    if failed:
        reasons = "; ".join(_why(d, "MX", replies[d]) for d in failed[:SHOWN])
        raise DnsUnusable(
            f"{where} answers the root zone but not the protected domain{'s' if len(failed) > 1 else ''} "
            f"({reasons}): {'their' if len(failed) > 1 else 'its'} own name servers may be failing, or the "
            "resolver is overloaded. "
            "Nothing was scanned: answers about look-alikes from this resolver now would not be trustworthy."
        )
    # Every bad one is NXDOMAIN, and the root answers: the resolver works, the names do not exist.
    tld_gone = [t.rstrip(".") for t in tlds if probes[t].nxdomain]
    tld_error = [t for t in tlds if probes[t].error]
    if tld_error:
        raise DnsUnusable(
            f"{where} answers NXDOMAIN for {_listing(missing)} and fails for its top-level domain "
            f"({'; '.join(_why(t, 'SOA', probes[t]) for t in tld_error[:SHOWN])}). Nothing was scanned."
        )
    note = f" (the top-level domain {', '.join(tld_gone)} does not exist either)" if tld_gone else ""
    raise ProtectedDomainMissing(
        f"protected domain {_listing(missing)} does not exist{note}: NXDOMAIN from {where}, which answers "
        "the root zone (. SOA) correctly. A typo in the configuration? Nothing was scanned; "
        "fix the name, or name the domains to scan as arguments."
        if len(missing) == 1
        else f"protected domains {_listing(missing)} do not exist{note}: NXDOMAIN from {where}, which "
        "answers the root zone (. SOA) correctly. Typos in the configuration? Nothing was "
        "scanned; fix the names, or name the domains to scan as arguments."
    )


def check_during(resolver: ExposureResolver) -> None:
    """Raise ``DnsUnusable`` if a canary (a protected domain asked between look-alikes) got NXDOMAIN."""
    if resolver.lie:
        raise DnsUnusable(
            f"{resolver.describe()} answered a protected domain with NXDOMAIN during the scan "
            f"({resolver.lie}), though it answered before: the resolver started to fail during the scan, "
            'so none of its NXDOMAIN ("unregistered") answers can be trusted. Nothing was written; run '
            "again with a working resolver."
        )


async def check_after(resolver: ExposureResolver, protected: Sequence[str]) -> None:
    """Raise ``DnsUnusable`` if a protected domain, which resolved before the scan, is NXDOMAIN now."""
    protected = list(dict.fromkeys(protected))
    replies = await _ask_all(resolver, protected, "MX")
    gone = [d for d in protected if replies[d].nxdomain]
    if gone:
        raise DnsUnusable(
            f"{resolver.describe()} answered NXDOMAIN for {_listing(gone)} after the scan, though it "
            "answered before: the resolver started to fail during the scan, so none of its NXDOMAIN "
            '("unregistered") answers can be trusted. Nothing was written; run again with a working resolver.'
        )
