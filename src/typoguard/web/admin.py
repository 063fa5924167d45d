"""What the JSON API and the dashboard both let a reader see and an admin do, written once for both.

    decision_query(params), decision_page(store, query)   GET /v1/decisions          /dashboard/decisions
    store.stats.decision_stats(store, days=...)            GET /v1/stats              /dashboard
    held_list(store, queue)                                GET /v1/held               /dashboard/held
    act_on_held(store, queue, queue_id, action, ...)       POST /v1/held/{id}/release, DELETE /v1/held/{id},
                                                           POST /dashboard/held/{id}/{release|delete}
    Store.add_override (it checks domain, action, reason)  POST /v1/overrides         /dashboard/overrides
    remove_override(store, override_id, ...)               DELETE /v1/overrides/{id},
                                                           POST /dashboard/overrides/{id}/remove

A change is recorded with who made it (``who(token)``: ``token:<name>``) and where: the recorded reason reads
"released via HTTP API" (``VIA_API``) or "removed in dashboard" (``VIA_DASHBOARD``). A request that cannot
be done as asked raises ``RequestError``: the API answers its status with ``{"error": message}``, the
dashboard shows the message. These functions block (database, ``postsuper``): call them in a thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from typoguard.errors import MailQueueError
from typoguard.held import HoldQueue, Released, held_with_decisions
from typoguard.store import DecisionQuery, DecisionRecord, Override, Store
from typoguard.store.store import check_queue_id
from typoguard.store.tokens import ApiToken
from typoguard.web.check import ACTION_ORDER

MAX_PAGE = 1000  # decisions per page at most
VIA_API = "via HTTP API"
VIA_DASHBOARD = "in dashboard"
HELD_ACTIONS = ("release", "delete")


class RequestError(Exception):
    """A request that cannot be done as asked: the API answers ``status``; both show ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def who(token: ApiToken) -> str:
    """How a change made with ``token`` (an API token, or the one a dashboard session signed in with) is
    recorded."""
    return f"token:{token.name}"


def text_param(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    return value if value else None


def number_param(
    params: Mapping[str, str], name: str, kind: type[int] | type[float], low: float, high: float
) -> Any:
    """Query parameter ``name`` as a ``kind`` between ``low`` and ``high``; ``None`` if absent,
    ``RequestError`` 400 if it is not such a number."""
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = kind(raw)
    except ValueError as exc:
        raise RequestError(400, f"{name} must be a number") from exc
    if not low <= value <= high:
        raise RequestError(400, f"{name} must be between {low} and {high}")
    return value


# ---------------------------------------------------------------------------------------------- decisions
def decision_query(params: Mapping[str, str]) -> DecisionQuery:
    """The query for the decision log's filters (``GET /v1/decisions``'s parameters); ``RequestError`` 400
    when one is malformed."""
    action = params.get("action")
    if action is not None and action not in ACTION_ORDER:
        raise RequestError(400, f"action must be one of {', '.join(ACTION_ORDER)}")
    return DecisionQuery(
        since=number_param(params, "since", float, 0, 1e11),
        until=number_param(params, "until", float, 0, 1e11),
        domain=text_param(params, "domain"),
        recipient=text_param(params, "recipient"),
        sender=text_param(params, "sender"),
        action=action,
        before_seq=number_param(params, "before", int, 1, 2**62),
        limit=number_param(params, "limit", int, 1, MAX_PAGE) or 100,
    )


def decision_dict(record: DecisionRecord) -> dict[str, Any]:
    """A decision as the API sends it (and the dashboard shows it)."""
    e = record.event
    return {
        "seq": record.seq,
        "time": e.time,
        "node": e.node,
        "queue_id": e.queue_id,
        "sender": e.sender,
        "recipient": e.recipient,
        "domain": e.domain,
        "action": e.action,
        "intended": e.intended,
        "kind": e.kind,
        "score": e.score,
        "mode": e.mode,
        "reason": e.reason,
        "content": orjson.loads(e.content) if e.content else None,
    }


def decision_page(store: Store, query: DecisionQuery) -> tuple[list[dict[str, Any]], int | None]:
    """One page of decisions, newest first, and the ``before`` of the next page (``None``: the last)."""
    records = store.decisions(query)
    next_before = records[-1].seq if len(records) == query.limit else None
    return [decision_dict(r) for r in records], next_before


# ---------------------------------------------------------------------------------------------- held mail
def held_list(store: Store, queue: HoldQueue) -> list[dict[str, Any]]:
    """The held messages, each with the decision that held it (``MailQueueError``: the queue cannot be
    read)."""
    out = []
    for held in held_with_decisions(store, queue):
        m = held.message
        out.append(
            {
                "queue_id": m.queue_id,
                "arrival_time": m.arrival_time,
                "size": m.size,
                "sender": m.sender,
                "recipients": list(m.recipients),
                "decision": decision_dict(held.decision) if held.decision else None,
            }
        )
    return out


def act_on_held(
    store: Store, queue: HoldQueue, queue_id: str, action: str, *, by: str, via: str
) -> Released | None:
    """Release or delete a held message and record who did it, and where; for a release, what became of the
    delivery attempt. ``RequestError`` 400 for an action other than ``release``/``delete`` or a malformed
    id; ``MailQueueError`` from the queue."""
    if action not in HELD_ACTIONS:
        raise RequestError(400, f"unknown action {action}")
    try:
        check_queue_id(queue_id)
    except MailQueueError as exc:
        raise RequestError(400, str(exc)) from exc
    released = None
    if action == "release":
        released = queue.release(queue_id)
    else:
        queue.delete(queue_id)
    store.record_held_action(queue_id, action, by=by, reason=f"{action}d {via}")
    return released


# ---------------------------------------------------------------------------------------------- overrides
def override_dict(o: Override) -> dict[str, Any]:
    """An override as the API sends it."""
    return {
        "id": o.id,
        "domain": o.domain,
        "action": o.action,
        "reason": o.reason,
        "created_by": o.created_by,
        "created_at": o.created_at,
        "expires_at": o.expires_at,
        "removed_by": o.removed_by,
        "removed_at": o.removed_at,
    }


def remove_override(store: Store, override_id: str, *, by: str, via: str) -> int:
    """Remove the override with id ``override_id`` (as it came in the path) and record who did it, and
    where; how many were removed. ``RequestError`` 404 if there is no such override."""
    try:
        ident = int(override_id)
    except ValueError:
        raise RequestError(404, "no such override") from None
    n = store.remove_override(override_id=ident, by=by, reason=f"removed {via}")
    if n == 0:
        raise RequestError(404, "no such override")
    return n


# ---------------------------------------------------------------------------------------------- events
EVENT_STATES = ("open", "acknowledged")


def event_list(store: Store, params: Mapping[str, str]) -> list[dict[str, Any]]:
    """``GET /v1/events``: events, newest activity first (``state``, ``kind``, ``limit`` filters)."""
    state = params.get("state")
    if state is not None and state not in EVENT_STATES:
        raise RequestError(400, "state must be open or acknowledged")
    kind = params.get("kind")
    if kind is not None and not (0 < len(kind) <= 64):
        raise RequestError(400, "kind must be 1 to 64 characters")
    limit = number_param(params, "limit", int, 1, 1000) or 100
    return [e.to_dict() for e in store.events(state=state, kind=kind, limit=limit)]


def acknowledge_event(store: Store, event_id: str, reason: Any, *, by: str) -> dict[str, Any]:
    """Acknowledge event ``event_id`` (as it came in the path) with a reason, recorded with who; 404 if
    there is no such event, 400 without a reason."""
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 1000:
        raise RequestError(400, "reason must be a non-empty string (at most 1000 characters)")
    try:
        ident = int(event_id)
    except ValueError:
        raise RequestError(404, "no such event") from None
    if not 0 < ident < 2**63:
        raise RequestError(404, "no such event")
    event = store.acknowledge_event(ident, by=by, reason=reason.strip())
    if event is None:
        raise RequestError(404, "no such event")
    return event.to_dict()
