"""What the sink answers at RCPT: the reply line and what is counted, decided per domain.

A recipient domain is *answered for* when it is in ``[sink] domains`` (or under one of them) or when the
look-alike index says it is a look-alike, scoring at least ``[sink] min_score``, of one of the domains in
``[sink] lookalikes_of`` (default: the ``[protect]`` domains). Nothing is enumerated: the index is asked
once per domain and the answer cached, so a registry can point thousands of names at one sink.

The reply depends on the domain only, never on the local part, except that the local part is echoed
back (``bob@army.ml`` -> ``you probably meant bob@army.mil``): a dictionary attack learns nothing, since
every local part gets the same code and the same sentence.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from typoguard.config import Config, SinkConfig
from typoguard.core.names import normalise_domain
from typoguard.core.verdict import Action
from typoguard.errors import ConfigError, InvalidAddress
from typoguard.guard import Guard
from typoguard.protocols.smtp import printable_ascii as _ascii_line  # one reply line whatever the peer sent

# A domain the sink does not answer for: refuse plainly, as any MX refuses to relay. No echo.
NOT_OURS = "550 5.7.1 Relaying denied: this server accepts no mail"
INVALID = "501 5.1.3 Bad recipient address syntax"
_CACHE_SIZE = 1 << 16


@dataclass(frozen=True, slots=True)
class DomainAnswer:
    """The decision for one recipient domain. ``lookalike`` is None when the sink does not answer for it."""

    lookalike: str | None
    intended: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """One RCPT's reply, and the counting key (``lookalike`` None: not counted)."""

    reply: str
    lookalike: str | None
    intended: str | None


_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def _local_form(local: str) -> str:
    """The local part as written in an address (the SMTP parser may have unquoted it; quoted stays quoted)."""
    if _DOT_ATOM.fullmatch(local) or (len(local) >= 2 and local[0] == local[-1] == '"'):
        return local
    return '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_explicit(entries: Iterable[str]) -> dict[str, str | None]:
    """``["army-mil.com", "gmial.com=gmail.com"]`` -> {look-alike: intended or None}. Raises ConfigError."""
    out: dict[str, str | None] = {}
    for entry in entries:
        name, sep, intended = entry.partition("=")
        try:
            lookalike = normalise_domain(name.strip()).ascii
            target = normalise_domain(intended.strip()).ascii if sep else None
        except InvalidAddress as exc:
            raise ConfigError(f"[sink] domains: {entry!r}: {exc}") from None
        out[lookalike] = target
    return out


class Answerer:
    """Recipient address -> ``Answer``; per-domain results are cached (bounded, generational)."""

    def __init__(self, config: SinkConfig, guard: Guard) -> None:
        self.config = config
        self.guard = guard
        self.explicit = parse_explicit(config.domains)
        if config.lookalikes_of is None:
            self.targets = frozenset(p.domain for p in guard.index.protected)
        else:
            names = []
            for name in config.lookalikes_of:
                try:
                    names.append(normalise_domain(name.strip()).ascii)
                except InvalidAddress as exc:
                    raise ConfigError(f"[sink] lookalikes_of: {exc}") from None
            self.targets = frozenset(names)
        self._cache: dict[str, DomainAnswer] = {}
        self._reject = config.reject_template
        self._neutral = config.neutral_template

    @classmethod
    def from_config(cls, config: Config) -> Answerer:
        """Build the guard with the sink's own target domains added to ``[protect]``."""
        sink = config.sink
        extra = list(sink.lookalikes_of or ()) + [t for t in parse_explicit(sink.domains).values() if t]
        return cls(sink, Guard.from_config(config, extra_domains=extra))

    def answers_for_anything(self) -> bool:
        return bool(self.explicit) or bool(self.targets)

    def domain(self, name: str) -> DomainAnswer:
        """The (cached) decision for a recipient domain as typed."""
        found = self._cache.get(name)
        if found is None:
            found = self._decide(name)
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[name] = found
        return found

    def _decide(self, text: str) -> DomainAnswer:
        try:
            name = normalise_domain(text).ascii
        except InvalidAddress:
            return DomainAnswer(None)
        explicit_hit = self._explicit(name)
        if explicit_hit is not None:
            _, intended = explicit_hit
            return DomainAnswer(name, intended or self._intended(name, listed=True))
        if self.targets:
            intended = self._intended(name, listed=False)
            if intended is not None:
                return DomainAnswer(name, intended)
        return DomainAnswer(None)

    def _explicit(self, name: str) -> tuple[str, str | None] | None:
        """The listed domain ``name`` is or is under, with its configured intended domain."""
        labels = name.split(".")
        for i in range(len(labels) - 1):
            parent = ".".join(labels[i:])
            if parent in self.explicit:
                return parent, self.explicit[parent]
        return None

    def _intended(self, name: str, *, listed: bool) -> str | None:
        """The protected domain ``name`` probably stands for, per the index; None if none qualifies.

        A listed domain takes the index's best target among ``lookalikes_of`` at any score (the operator
        said it is a look-alike); an unlisted one must be a flagged look-alike scoring at least min_score.
        """
        assessment = self.guard.assess_domain(name)
        if not listed and assessment.action in (Action.ALLOW, Action.INVALID):
            return None  # protected, trusted, well-known legitimate, or no look-alike at all
        targets = self.targets or self.guard.index.domains
        for finding in assessment.findings:
            if _under(finding.intended, targets) and (listed or finding.score >= self.config.min_score):
                return finding.intended  # (for a host under a look-alike: the same host under the target)
        return None

    def answer(self, address: str) -> Answer:
        """The reply to ``RCPT TO:<address>`` (``address`` as the SMTP parser returned it)."""
        local, at, domain = address.rpartition("@")
        if not at or not local or not domain:
            return Answer(INVALID, None, None)
        decided = self.domain(domain)
        if decided.lookalike is None:
            return Answer(NOT_OURS, None, None)
        local = _local_form(local)
        recipient = _ascii_line(f"{local}@{decided.lookalike}")
        if decided.intended is None:
            text = self._neutral.format(recipient=recipient, domain=decided.lookalike)
        else:
            text = self._reject.format(
                recipient=recipient,
                intended_address=_ascii_line(f"{local}@{decided.intended}"),
                domain=decided.lookalike,
                intended=decided.intended,
            )
        return Answer("550 5.1.2 " + text, decided.lookalike, decided.intended)


def _under(intended: str | None, targets: Collection[str]) -> bool:
    """``intended`` is one of ``targets`` or a host under one (``us.army.mil`` under ``army.mil``)."""
    if intended is None:
        return False
    labels = intended.split(".")
    return any(".".join(labels[i:]) in targets for i in range(len(labels) - 1))
