"""Overrides: an admin's "allow" or "block" for a domain, with who, when, why and an optional expiry.

Rows are never deleted. Removing an override, or adding a newer one for the same domain, records who did it,
when and why on the old row, which is the audit trail. If two nodes add overrides for one domain at the same
moment both rows stay active for a while; every reader then takes the one with the highest id, so all nodes
agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, or_, select, update

from typoguard.store.schema import overrides

ACTIONS = ("allow", "block")


@dataclass(frozen=True, slots=True)
class Override:
    id: int
    domain: str
    action: str  # "allow" or "block"
    reason: str
    created_by: str
    created_at: float
    expires_at: float | None = None
    node: str = ""
    removed_by: str | None = None
    removed_at: float | None = None
    removed_reason: str | None = None

    def active_at(self, now: float) -> bool:
        return self.removed_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def summary(self) -> str:
        """``who, why`` for verdict reasons."""
        return f"{self.created_by}, {self.reason}"


def _from_row(m: Any) -> Override:
    return Override(**{k: m[k] for k in Override.__slots__})


def add(
    conn: Connection,
    domain: str,
    action: str,
    *,
    reason: str,
    by: str,
    now: float,
    expires_at: float | None,
    node: str,
) -> Override:
    """Insert an override and retire older active ones for the same domain (inside a write transaction)."""
    if action not in ACTIONS:
        raise ValueError(f"override action must be one of {ACTIONS}, got {action!r}")
    new_id: int = conn.execute(
        overrides.insert()
        .values(
            domain=domain,
            action=action,
            reason=reason,
            created_by=by,
            created_at=now,
            expires_at=expires_at,
            node=node,
        )
        .returning(overrides.c.id)
    ).scalar_one()
    c = overrides.c
    conn.execute(
        update(overrides)
        .where(c.domain == domain, c.id < new_id, c.removed_at.is_(None))
        .values(removed_by=by, removed_at=now, removed_reason=f"superseded by override #{new_id}")
    )
    return Override(int(new_id), domain, action, reason, by, now, expires_at, node)


def remove(
    conn: Connection, *, domain: str | None, override_id: int | None, by: str, reason: str, now: float
) -> int:
    """Retire the active override(s) of ``domain``, or the one with ``override_id``; returns how many."""
    c = overrides.c
    stmt = update(overrides).where(c.removed_at.is_(None))
    if override_id is not None:
        stmt = stmt.where(c.id == override_id)
    if domain is not None:
        stmt = stmt.where(c.domain == domain)
    result = conn.execute(stmt.values(removed_by=by, removed_at=now, removed_reason=reason))
    return int(result.rowcount or 0)


def list_overrides(
    conn: Connection, *, now: float, include_inactive: bool = False, domain: str | None = None
) -> list[Override]:
    c = overrides.c
    stmt = select(overrides)
    if not include_inactive:
        stmt = stmt.where(c.removed_at.is_(None), or_(c.expires_at.is_(None), c.expires_at > now))
    if domain is not None:
        stmt = stmt.where(c.domain == domain)
    return [_from_row(r._mapping) for r in conn.execute(stmt.order_by(c.id))]


def active_by_domain(conn: Connection, now: float) -> dict[str, Override]:
    """The one effective override per domain: the newest active row."""
    out: dict[str, Override] = {}
    for o in list_overrides(conn, now=now):
        out[o.domain] = o  # ordered by id: the newest wins
    return out
