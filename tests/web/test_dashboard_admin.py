"""What an admin does in the dashboard is done as through the API (web/admin.py), and recorded alike: who
did it, and where. Real uvicorn on loopback, signed in with a session as a browser is."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
from http_fixtures import Api, csrf_field, log_in
from sqlalchemy import select

from typoguard.store.schema import overrides as overrides_table


def _said(reply: httpx.Response) -> str:
    """The message a dashboard action shows on the page it goes back to."""
    assert reply.status_code == 303, reply.text
    return parse_qs(urlsplit(reply.headers["location"]).query)["msg"][0]


def test_held_mail_released_in_the_dashboard_is_recorded_with_who_and_where(api: Api) -> None:
    with httpx.Client(base_url=api.base_url) as browser:
        log_in(browser, api.tokens["admin"])
        form = {"csrf": csrf_field(browser.get("/dashboard/held").text)}
        assert _said(browser.post("/dashboard/held/BBBB2/hide", data=form)) == "unknown action hide"
        assert _said(browser.post("/dashboard/held/BB!B2/release", data=form)) == (
            "not a Postfix queue id: 'BB!B2'"
        )
        assert _said(browser.post("/dashboard/held/BBBB2/release", data=form)) == (
            "BBBB2: released, delivery attempted: no longer queued "
            "(delivered, or bounced to the sender: the mail log says which)"
        )
        assert _said(browser.post("/dashboard/held/BBBB2/delete", data=form)) == (
            "no held message with queue id BBBB2"
        )
    assert api.queue.released == ["BBBB2"]
    recorded = [(a.action, a.by, a.reason) for a in api.store.held_actions("BBBB2")]
    assert recorded == [("release", "token:admin-user", "released in dashboard")]


def test_held_mail_deleted_through_the_api_is_recorded_with_who_and_where(api: Api) -> None:
    r = api.client.delete("/v1/held/BBBB2", headers=api.headers("admin"))
    assert r.json() == {"queue_id": "BBBB2", "action": "delete", "by": "token:admin-user"}
    assert api.queue.deleted == ["BBBB2"]
    recorded = [(a.action, a.by, a.reason) for a in api.store.held_actions("BBBB2")]
    assert recorded == [("delete", "token:admin-user", "deleted via HTTP API")]


def _removal(api: Api, override_id: int) -> tuple[str | None, str | None]:
    c = overrides_table.c
    with api.store.engine.connect() as conn:
        row = conn.execute(select(c.removed_by, c.removed_reason).where(c.id == override_id)).one()
    return row.removed_by, row.removed_reason


def test_an_override_removed_in_the_dashboard_or_the_api_is_recorded_with_who_and_where(api: Api) -> None:
    first = api.store.add_override("army.ml", "allow", reason="partner", by="test")
    second = api.store.add_override("navy.mi", "block", reason="squatted", by="test")
    with httpx.Client(base_url=api.base_url) as browser:
        log_in(browser, api.tokens["admin"])
        form = {"csrf": csrf_field(browser.get("/dashboard/overrides").text)}
        for missing in (str(second.id + 100), "first"):
            reply = browser.post(f"/dashboard/overrides/{missing}/remove", data=form)
            assert _said(reply) == "no such override"
        assert _said(browser.post(f"/dashboard/overrides/{first.id}/remove", data=form)) == "removed"
        reply = browser.post(f"/dashboard/overrides/{first.id}/remove", data=form)
        assert _said(reply) == "no such override"  # removed already
    h = api.headers("admin")
    assert api.client.delete("/v1/overrides/second", headers=h).json() == {"error": "no such override"}
    assert api.client.delete(f"/v1/overrides/{second.id}", headers=h).json() == {"removed": 1}
    assert _removal(api, first.id) == ("token:admin-user", "removed in dashboard")
    assert _removal(api, second.id) == ("token:admin-user", "removed via HTTP API")
    assert api.store.overrides() == []


def test_a_release_through_the_api_answers_as_before_and_adds_what_became_of_the_delivery(api: Api) -> None:
    r = api.client.post("/v1/held/BBBB2/release", headers=api.headers("admin"))
    assert r.json() == {
        "queue_id": "BBBB2",
        "action": "release",
        "by": "token:admin-user",
        "delivery": {
            "attempted": True,
            "queue_state": "gone",
            "detail": "",
            "summary": "released, delivery attempted: no longer queued "
            "(delivered, or bounced to the sender: the mail log says which)",
        },
    }
