"""Correspondents: who the organisation really writes to, learned from allowed (or delivered) mail.

Counts and first/last seen are kept per (sender domain, recipient domain), per recipient domain and per
recipient address. A suffix typo of a protected domain (``army.ml`` for ``army.mil``) is never learned,
however often it is used: the caller passes ``kind`` and ``learnable`` refuses it.

Upserts sort their keys, so two nodes updating the same rows lock them in the same order (no deadlock).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, case, func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite

from typoguard.core import names
from typoguard.core.verdict import SUFFIX_TYPO, is_suffix_typo
from typoguard.store.db import executemany_compiled
from typoguard.store.decisions import ACTION as _ACTION
from typoguard.store.decisions import DOMAIN as _DOMAIN
from typoguard.store.decisions import KIND as _KIND
from typoguard.store.decisions import RECIPIENT as _RECIPIENT
from typoguard.store.decisions import SENDER as _SENDER
from typoguard.store.decisions import TIME as _TIME
from typoguard.store.decisions import staged
from typoguard.store.schema import (
    correspondent_addresses,
    correspondent_domains,
    correspondent_pairs,
    decisions,
)


@dataclass(frozen=True, slots=True)
class Sighting:
    """One message from ``sender`` to ``recipient`` that was allowed or delivered at ``time``."""

    sender: str
    recipient: str
    time: float


@dataclass(frozen=True, slots=True)
class CorrespondentDomain:
    domain: str
    count: int
    first_seen: float
    last_seen: float
    confirmed_by: str | None = None
    confirmed_at: float | None = None
    confirmed_reason: str | None = None

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None


domain_of = names.domain_of  # address -> domain key (one function, core.names; audit.learn imports it here)


def learnable(action: str, kind: str | None) -> bool:
    """May a decision with this action and finding kind teach us a correspondent?"""
    return action == "allow" and not is_suffix_typo(kind)


class _Tally:
    """Counts and first/last times per key, folded in memory before one upsert per key."""

    def __init__(self) -> None:
        self.data: dict[Any, list[float]] = {}

    def add(self, key: Any, when: float, n: int = 1) -> None:
        entry = self.data.get(key)
        if entry is None:
            self.data[key] = [n, when, when]
        else:
            entry[0] += n
            if when < entry[1]:
                entry[1] = when
            elif when > entry[2]:
                entry[2] = when


@dataclass
class Tallies:
    pairs: _Tally
    domains: _Tally
    addresses: _Tally

    @classmethod
    def new(cls) -> Tallies:
        return cls(_Tally(), _Tally(), _Tally())

    def add(self, sender: str, recipient: str, when: float, recipient_domain: str = "") -> None:
        rdomain = recipient_domain or domain_of(recipient)
        if not rdomain:
            return
        sdomain = domain_of(sender)
        if sdomain:
            self.pairs.add((sdomain, rdomain), when)
        self.domains.add(rdomain, when)
        self.addresses.add(recipient.lower(), when)

    def __len__(self) -> int:
        return len(self.pairs.data) + len(self.domains.data) + len(self.addresses.data)


def _upsert_statement(conn: Connection, table: Table, keys: tuple[str, ...]) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    ex = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={
            "count": table.c.count + ex.count,
            "first_seen": case((table.c.first_seen < ex.first_seen, table.c.first_seen), else_=ex.first_seen),
            "last_seen": case((table.c.last_seen > ex.last_seen, table.c.last_seen), else_=ex.last_seen),
        },
    )


def _upsert(conn: Connection, table: Table, keys: tuple[str, ...], tally: _Tally) -> None:
    if not tally.data:
        return
    rows = []
    for key in sorted(tally.data):  # one lock order on every node: no deadlocks between them
        count, first, last = tally.data[key]
        rows.append((*(key if isinstance(key, tuple) else (key,)), int(count), first, last))
    columns = (*keys, "count", "first_seen", "last_seen")
    executemany_compiled(
        conn, f"upsert_{table.name}", lambda: _upsert_statement(conn, table, keys), columns, rows
    )


def record(conn: Connection, tallies: Tallies) -> None:
    """Add folded sightings to the tables (inside the caller's transaction)."""
    _upsert(conn, correspondent_pairs, ("sender_domain", "recipient_domain"), tallies.pairs)
    _upsert(conn, correspondent_domains, ("domain",), tallies.domains)
    _upsert(conn, correspondent_addresses, ("address",), tallies.addresses)


def tally_rows(rows: Iterable[Sequence[Any]], into: Tallies | None = None) -> Tallies:
    """Fold decision rows (tuples in ``decisions.ROW_FIELDS`` order) into tallies, learnable ones only."""
    t = Tallies.new() if into is None else into
    add = t.add
    for r in rows:
        if r[_ACTION] == "allow":
            if is_suffix_typo(r[_KIND]):
                continue
            add(r[_SENDER], r[_RECIPIENT], r[_TIME], r[_DOMAIN])
    return t


def _learn_statements(dialect_name: str) -> list[Any]:
    """INSERT ... SELECT ... GROUP BY ... ON CONFLICT upserts that fold the just-inserted decisions into the
    three tables inside the database (no per-row Python work). Which rows: on SQLite ``seq > :after`` (the
    writer holds SQLite's one write lock, so those are exactly this transaction's rows); on PostgreSQL,
    whose writers run concurrently, the rows staged by this transaction's ``COPY`` (see
    ``decisions.insert_rows``), read from the stage itself. The sender's domain is what follows its first '@'.
    """
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    d: Any
    if dialect_name == "sqlite":
        d = decisions.c
        which = d.seq > bindparam("after")
        at = func.instr(d.sender, "@")
    else:
        d = staged.c  # exactly the rows this transaction inserted (see decisions.insert_rows)
        which = true()
        at = func.strpos(d.sender, "@")
    learnable_rows = and_(
        which, d.action == "allow", d.domain != "", or_(d.kind.is_(None), ~d.kind.contains(SUFFIX_TYPO))
    )
    sender_domain = func.lower(func.substr(d.sender, at + 1))
    # lower(domain) (domain is lower case already), not the bare column: grouping by the bare column lets
    # SQLite walk all of ix_tg_decisions_domain in order instead of the batch's rowid range, a cost that
    # grows with the table.
    recipient_domain = func.lower(d.domain)
    stats = (func.count().label("count"), func.min(d.time).label("first"), func.max(d.time).label("last"))
    sources = (
        (
            correspondent_pairs,
            ("sender_domain", "recipient_domain"),
            (sender_domain, recipient_domain),
            at > 0,
        ),
        (correspondent_domains, ("domain",), (recipient_domain,), None),
        (correspondent_addresses, ("address",), (func.lower(d.recipient),), None),
    )
    out = []
    for table, keys, exprs, extra in sources:
        cond = learnable_rows if extra is None else and_(learnable_rows, extra)
        grouped = select(*exprs, *stats).where(cond).group_by(*exprs).order_by(*exprs)
        stmt = dialect.insert(table).from_select([*keys, "count", "first_seen", "last_seen"], grouped)
        ex = stmt.excluded
        out.append(
            stmt.on_conflict_do_update(
                index_elements=list(keys),
                set_={
                    "count": table.c.count + ex.count,
                    "first_seen": case(
                        (table.c.first_seen < ex.first_seen, table.c.first_seen), else_=ex.first_seen
                    ),
                    "last_seen": case(
                        (table.c.last_seen > ex.last_seen, table.c.last_seen), else_=ex.last_seen
                    ),
                },
            )
        )
    return out


_LEARN: dict[str, list[Any]] = {}


def last_seq(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(decisions.c.seq), 0))).scalar_one())


def learn_from_decisions(conn: Connection, *, after_seq: int) -> None:
    """Count the learnable decisions inserted in this transaction as correspondents (SQLite: those with
    ``seq > after_seq``; PostgreSQL: those staged by ``decisions.insert_rows``)."""
    name = conn.dialect.name
    stmts = _LEARN.get(name)
    if stmts is None:
        stmts = _LEARN[name] = _learn_statements(name)
    for stmt in stmts:
        conn.execute(stmt, {"after": after_seq} if name == "sqlite" else {})


def pair_count(conn: Connection, sender_domain: str, recipient_domain: str) -> int:
    c = correspondent_pairs.c
    found = conn.execute(
        select(c.count).where(c.sender_domain == sender_domain, c.recipient_domain == recipient_domain)
    ).scalar()
    return int(found or 0)


def pairs_to(conn: Connection, recipient_domains: Iterable[str]) -> set[tuple[str, str]]:
    """Every (sender domain, recipient domain) pair seen, for these recipient domains."""
    c = correspondent_pairs.c
    wanted = sorted(set(recipient_domains))
    found: set[tuple[str, str]] = set()
    for i in range(0, len(wanted), 500):
        stmt = select(c.sender_domain, c.recipient_domain).where(
            c.recipient_domain.in_(wanted[i : i + 500]), c.count > 0
        )
        found.update((str(s), str(r)) for s, r in conn.execute(stmt))
    return found


def address_count(conn: Connection, address: str) -> int:
    c = correspondent_addresses.c
    return int(conn.execute(select(c.count).where(c.address == address.lower())).scalar() or 0)


def domain_info(conn: Connection, domain: str) -> CorrespondentDomain | None:
    c = correspondent_domains.c
    row = conn.execute(select(correspondent_domains).where(c.domain == domain)).first()
    return CorrespondentDomain(**row._mapping) if row else None


def list_domains(
    conn: Connection, *, confirmed_only: bool = False, limit: int = 100
) -> list[CorrespondentDomain]:
    c = correspondent_domains.c
    stmt = select(correspondent_domains)
    if confirmed_only:
        stmt = stmt.where(c.confirmed_at.is_not(None))
    stmt = stmt.order_by(c.count.desc(), c.domain).limit(limit)
    return [CorrespondentDomain(**r._mapping) for r in conn.execute(stmt)]


def confirm(conn: Connection, domain: str, by: str, reason: str, when: float) -> None:
    """Mark ``domain`` as a correspondent an admin vouched for (kept even before any mail was seen)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(correspondent_domains).values(
        domain=domain,
        count=0,
        first_seen=when,
        last_seen=when,
        confirmed_by=by,
        confirmed_at=when,
        confirmed_reason=reason,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["domain"],
        set_={"confirmed_by": by, "confirmed_at": when, "confirmed_reason": reason},
    )
    conn.execute(stmt)


def unconfirm(conn: Connection, domain: str) -> bool:
    c = correspondent_domains.c
    result = conn.execute(
        update(correspondent_domains)
        .where(c.domain == domain, c.confirmed_at.is_not(None))
        .values(confirmed_by=None, confirmed_at=None, confirmed_reason=None)
    )
    return bool(result.rowcount)


def confirmed_domains(conn: Connection, min_count: int) -> dict[str, CorrespondentDomain]:
    """Confirmed correspondents written to at least ``min_count`` times (for the hot-path snapshot)."""
    c = correspondent_domains.c
    stmt = select(correspondent_domains).where(c.confirmed_at.is_not(None), c.count >= min_count)
    return {r.domain: CorrespondentDomain(**r._mapping) for r in conn.execute(stmt)}
