"""The OpenAPI 3.0 document of the JSON API (``GET /openapi.json``), written out by hand.

Kept next to the handlers' contract rather than generated: schemathesis (tests/http) fuzzes the running app
against this document, so a handler and its description cannot drift apart unnoticed.
"""

from __future__ import annotations

from typing import Any

ACTIONS = ["allow", "warn", "hold", "reject", "invalid"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERR = {"401": _json(_ref("Error"), "no valid token"), "403": _json(_ref("Error"), "scope too small")}
_BAD = {"400": _json(_ref("Error"), "invalid request")}
_TOO_LARGE = {"413": _json(_ref("Error"), "request body larger than [http] max_body_bytes")}


def _q(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _p(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string"}}


QUEUE_ID = {"type": "string", "pattern": "^[0-9A-Za-z]{5,32}$"}


def _op(summary: str, scope: str | None, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": responses, **extra}
    if scope is None:
        op["security"] = []
    else:
        op["description"] = f"Needs a token of scope `{scope}` (or higher)."
        responses.update(_ERR)
    return op


def _held_op(summary: str, done: str) -> dict[str, Any]:
    """Release or delete: the same answers, by queue id."""
    return _op(
        summary,
        "admin",
        {
            "200": _json({"type": "object"}, done),
            "400": _json(_ref("Error"), "bad id"),
            "409": _json(_ref("Error"), "not held"),
            "502": _json(_ref("Error"), "Postfix failed"),
        },
        parameters=[_p("queue_id", QUEUE_ID)],
    )


def document() -> dict[str, Any]:
    """The OpenAPI document."""
    nullable_str = {"type": "string", "nullable": True}
    schemas: dict[str, Any] = {
        "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
        "Event": {
            "type": "object",
            "description": "What `typoguard watch` noticed (docs/watch.md); the webhook sends the same.",
            "properties": {
                "id": {"type": "integer"},
                "kind": {"type": "string"},
                "subject": {"type": "string"},
                "fact": {"type": "string"},
                "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
                "summary": {"type": "string"},
                "first_seen": {"type": "number"},
                "last_seen": {"type": "number"},
                "count": {"type": "integer"},
                "state": {"type": "string", "enum": ["open", "acknowledged"]},
                "ack_by": nullable_str,
                "ack_at": {"type": "number", "nullable": True},
                "ack_reason": nullable_str,
                "details": {"type": "object"},
            },
            "required": ["id", "kind", "subject", "severity", "state", "first_seen", "last_seen", "count"],
        },
        "Verdict": {
            "type": "object",
            "description": "Exactly the JSON of `typoguard check --format json`.",
            "properties": {
                "recipient": {"type": "string"},
                "domain": nullable_str,
                "action": {"type": "string", "enum": ACTIONS},
                "intended": nullable_str,
                "kind": nullable_str,
                "score": {"type": "number"},
                "reason": {"type": "string"},
                "error": {"type": "string"},
            },
            "required": ["recipient", "domain", "action", "intended", "kind", "score", "reason"],
        },
        "CheckRequest": {
            "type": "object",
            "properties": {
                "sender": {"type": "string"},
                "recipients": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 1000},
            },
            "required": ["recipients"],
        },
        "CheckResponse": {
            "type": "object",
            "properties": {
                "sender": {"type": "string"},
                "action": {"type": "string", "enum": ACTIONS},
                "verdicts": {"type": "array", "items": _ref("Verdict")},
            },
            "required": ["sender", "action", "verdicts"],
        },
        "Decision": {
            "type": "object",
            "properties": {
                "seq": {"type": "integer"},
                "time": {"type": "number"},
                "node": {"type": "string"},
                "queue_id": {"type": "string"},
                "sender": {"type": "string"},
                "recipient": {"type": "string"},
                "domain": {"type": "string"},
                "action": {"type": "string"},
                "intended": nullable_str,
                "kind": nullable_str,
                "score": {"type": "number"},
                "mode": {"type": "string"},
                "reason": nullable_str,
                "content": {
                    "type": "object",
                    "nullable": True,
                    "additionalProperties": {"type": "integer"},
                    "description": "the relay's content findings: category -> count (never the text)",
                },
            },
        },
        "Override": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "domain": {"type": "string"},
                "action": {"type": "string", "enum": ["allow", "block"]},
                "reason": {"type": "string"},
                "created_by": {"type": "string"},
                "created_at": {"type": "number"},
                "expires_at": {"type": "number", "nullable": True},
                "removed_by": nullable_str,
                "removed_at": {"type": "number", "nullable": True},
            },
        },
        "OverrideRequest": {
            "type": "object",
            "properties": {
                "domain": {
                    "type": "string",
                    "description": "a domain name (IDN allowed); a name that is not one gets 400",
                    "minLength": 1,
                },
                "action": {"type": "string", "enum": ["allow", "block"]},
                "reason": {"type": "string", "pattern": "\\S"},
                "expires_in": {"type": "number", "exclusiveMinimum": True, "minimum": 0},
            },
            "required": ["domain", "action", "reason"],
        },
    }
    paths: dict[str, Any] = {
        "/healthz": {
            "get": _op(
                "Liveness",
                None,
                {"200": _json({"type": "object"}, "ok"), "503": _json({"type": "object"}, "degraded")},
            )
        },
        "/v1/check": {
            "post": _op(
                "Verdicts for a message's recipients, before send",
                "check",
                {"200": _json(_ref("CheckResponse"), "verdicts"), **_BAD, **_TOO_LARGE},
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": _ref("CheckRequest")}},
                },
            )
        },
        "/v1/decisions": {
            "get": _op(
                "Decisions, newest first",
                "read",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "decisions": {"type": "array", "items": _ref("Decision")},
                                "next_before": {"type": "integer", "nullable": True},
                            },
                        },
                        "a page of decisions",
                    ),
                    **_BAD,
                },
                parameters=[
                    _q("since", {"type": "number", "minimum": 0, "maximum": 1e11}, "UNIX seconds"),
                    _q("until", {"type": "number", "minimum": 0, "maximum": 1e11}, "UNIX seconds"),
                    _q("domain", {"type": "string"}),
                    _q("recipient", {"type": "string"}),
                    _q("sender", {"type": "string"}),
                    _q("action", {"type": "string", "enum": ACTIONS}),
                    _q(
                        "before",
                        {"type": "integer", "minimum": 1, "maximum": 2**62},
                        "next page: the last page's next_before",
                    ),
                    _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                ],
            )
        },
        "/v1/stats": {
            "get": _op(
                "Counts per day and action; top look-alike domains and senders",
                "read",
                {"200": _json({"type": "object"}, "statistics"), **_BAD},
                parameters=[_q("days", {"type": "integer", "minimum": 1, "maximum": 3660})],
            )
        },
        "/v1/held": {
            "get": _op(
                "Held mail",
                "read",
                {
                    "200": _json({"type": "object"}, "held messages"),
                    "502": _json(_ref("Error"), "Postfix failed"),
                },
            )
        },
        "/v1/held/{queue_id}/release": {"post": _held_op("Release a held message", "released")},
        "/v1/held/{queue_id}": {"delete": _held_op("Delete a held message", "deleted")},
        "/v1/overrides": {
            "get": _op(
                "Overrides",
                "read",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"overrides": {"type": "array", "items": _ref("Override")}},
                        },
                        "overrides",
                    ),
                    **_BAD,
                },
                parameters=[_q("all", {"type": "string", "enum": ["0", "1", "true", "false"]})],
            ),
            "post": _op(
                "Allow or block a domain",
                "admin",
                {"201": _json(_ref("Override"), "added"), **_BAD, **_TOO_LARGE},
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": _ref("OverrideRequest")}},
                },
            ),
        },
        "/v1/overrides/{override_id}": {
            "delete": _op(
                "Remove an override",
                "admin",
                {
                    "200": _json({"type": "object"}, "removed"),
                    "404": _json(_ref("Error"), "no such override"),
                },
                parameters=[_p("override_id")],
            )
        },
        "/metrics": {"get": _op("Prometheus metrics", "read", {"200": {"description": "text exposition"}})},
        "/v1/events": {
            "get": _op(
                "Events of typoguard watch (look-alikes coming alive, leak patterns), newest first",
                "read",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"events": {"type": "array", "items": _ref("Event")}},
                        },
                        "events",
                    ),
                    **_BAD,
                },
                parameters=[
                    _q("state", {"type": "string", "enum": ["open", "acknowledged"]}),
                    _q("kind", {"type": "string", "minLength": 1, "maxLength": 64}),
                    _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                ],
            )
        },
        "/v1/events/{event_id}/ack": {
            "post": _op(
                "Acknowledge an event, with a reason",
                "admin",
                {
                    "200": _json(_ref("Event"), "acknowledged (acknowledging twice keeps the first)"),
                    "404": _json(_ref("Error"), "no such event"),
                    **_BAD,
                    **_TOO_LARGE,
                },
                parameters=[_p("event_id")],
                requestBody={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "reason": {"type": "string", "minLength": 1, "maxLength": 1000}
                                },
                                "required": ["reason"],
                            }
                        }
                    },
                },
            )
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "typoguard HTTP API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"token": []}],
    }
