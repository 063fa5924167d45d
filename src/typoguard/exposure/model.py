"""Values of the exposure scan: what DNS said about a look-alike, and what that means for mail.

Frozen, slotted dataclasses with plain fields, so a result survives a JSON round trip (``to_dict`` /
``from_dict``) for the history file and ``typoguard export --exposure``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Status(enum.Enum):
    """Whether a look-alike can receive mail, from the most to the least alarming."""

    ACCEPTS_MAIL = "accepts-mail"  # MX records, or no MX but an address (RFC 5321 5.1 implicit MX)
    UNKNOWN = "unknown"  # the DNS did not answer (timeout, SERVFAIL): it may accept mail
    NULL_MX = "null-mx"  # "MX 0 ." (RFC 7505): registered and declares it takes no mail
    NO_MAIL = "no-mail"  # registered (the name exists) but neither MX nor address
    UNREGISTERED = "unregistered"  # NXDOMAIN: nobody owns it (yet)

    @property
    def rank(self) -> int:
        return list(Status).index(self)


@dataclass(frozen=True, slots=True)
class DnsAnswers:
    """What the resolver found for one name; empty tuples where nothing was asked or nothing exists."""

    name: str
    nxdomain: bool = False
    mx: tuple[tuple[int, str], ...] = ()  # (preference, exchange) with exchange "." for a null MX
    addresses: tuple[str, ...] = ()  # A then AAAA
    ns: tuple[str, ...] = ()  # of the registrable domain
    error: str = ""  # why an answer is missing ("timeout after 3 attempts", "SERVFAIL")
    queries: int = 0


@dataclass(frozen=True, slots=True)
class Exposure:
    """One look-alike of a protected domain and whether it can receive mail."""

    protected: str
    lookalike: str
    kind: str
    score: float
    status: Status
    mail_hosts: tuple[str, ...] = ()  # MX exchanges by preference, or the look-alike itself (implicit MX)
    provider: str = ""  # who receives the mail: registrable domains of the MX hosts, or "A 192.0.2.7"
    addresses: tuple[str, ...] = ()
    ns: tuple[str, ...] = ()
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "protected": self.protected,
            "lookalike": self.lookalike,
            "kind": self.kind,
            "score": self.score,
            "status": self.status.value,
            "mail_hosts": list(self.mail_hosts),
            "provider": self.provider,
            "addresses": list(self.addresses),
            "ns": list(self.ns),
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Exposure:
        """The inverse of ``to_dict``; raises ``KeyError``/``ValueError``/``TypeError`` on a bad record."""
        return cls(
            protected=str(data["protected"]),
            lookalike=str(data["lookalike"]),
            kind=str(data["kind"]),
            score=float(data["score"]),
            status=Status(data["status"]),
            mail_hosts=tuple(str(h) for h in data.get("mail_hosts", ())),
            provider=str(data.get("provider", "")),
            addresses=tuple(str(a) for a in data.get("addresses", ())),
            ns=tuple(str(n) for n in data.get("ns", ())),
            error=str(data.get("error", "")),
        )


@dataclass(frozen=True, slots=True)
class ProviderGroup:
    """Look-alikes whose mail ends at the same provider: one catch-all behind many is a finding."""

    provider: str
    mail_hosts: tuple[str, ...]
    lookalikes: tuple[Exposure, ...]

    @property
    def protected(self) -> tuple[str, ...]:
        return tuple(sorted({e.protected for e in self.lookalikes}))


@dataclass(frozen=True, slots=True)
class Change:
    """A look-alike whose status moved between two runs."""

    lookalike: str
    protected: str
    before: Status | None  # None: not scanned last time
    after: Status
    mail_hosts: tuple[str, ...] = ()

    @property
    def newly_accepts_mail(self) -> bool:
        return self.after is Status.ACCEPTS_MAIL and self.before is not Status.ACCEPTS_MAIL


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One run of the scan, as the history keeps it."""

    taken_at: str  # ISO 8601, UTC
    results: tuple[Exposure, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"taken_at": self.taken_at, "results": [r.to_dict() for r in self.results]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snapshot:
        return cls(str(data["taken_at"]), tuple(Exposure.from_dict(r) for r in data["results"]))
