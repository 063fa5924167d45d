"""The exposure scan: the look-alikes of each protected domain, resolved once each, then classified.

The resolver is checked first and again at the end against the protected domains (``health``): a resolver
that is missing, failing or answering NXDOMAIN for everything raises ``DnsUnusable`` instead of giving a
scan full of "unregistered" look-alikes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from typoguard.core.index import LookalikeIndex
from typoguard.core.names import Domain
from typoguard.exposure.classify import Registrable, assess
from typoguard.exposure.health import check_after, check_before, check_during
from typoguard.exposure.model import DnsAnswers, Exposure
from typoguard.exposure.resolve import ExposureResolver, ResolverSettings


@dataclass(frozen=True, slots=True)
class Candidate:
    """A look-alike to resolve, and the protected domain it imitates."""

    protected: str
    lookalike: str
    kind: str
    score: float


def candidates(
    index: LookalikeIndex, domains: Iterable[Domain], *, min_score: float = 0.0, limit: int | None = None
) -> list[Candidate]:
    """Every ranked look-alike of each domain (all typo models), minus protected domains themselves."""
    out = []
    for d in domains:
        n = 0
        for name, kind, score in index.variants_of(d):
            if score < min_score or index.is_protected(name):
                continue
            out.append(Candidate(d.ascii, name, kind, score))
            n += 1
            if limit is not None and n >= limit:
                break
    return out


async def scan(
    todo: Sequence[Candidate],
    settings: ResolverSettings,
    registrable: Registrable,
    on_progress: Callable[[DnsAnswers], None] | None = None,
) -> tuple[list[Exposure], int]:
    """Resolve every distinct look-alike once and classify it for each protected domain it imitates.

    Returns the results (in the order of ``todo``) and the number of DNS queries sent. Raises
    ``DnsUnusable`` when the protected domains do not resolve before the scan (or turn NXDOMAIN after it),
    ``ProtectedDomainMissing`` when the resolver works but a protected domain does not exist.
    """
    resolver = ExposureResolver(settings, registrable)
    protected = list(dict.fromkeys(c.protected for c in todo))
    if protected:
        await check_before(resolver, protected)
    answers = await resolver.resolve_many((c.lookalike for c in todo), on_progress, canaries=protected)
    check_during(resolver)
    if protected:
        await check_after(resolver, protected)
    results = [
        assess(
            c.protected, c.lookalike, c.kind, c.score, answers=answers[c.lookalike], registrable=registrable
        )
        for c in todo
    ]
    return results, resolver.queries
