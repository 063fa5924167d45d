"""``GET /v1/events``, ``POST /v1/events/{id}/ack`` and the dashboard's alerts page and "to do" panel."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
from http_fixtures import Api, csrf_field, log_in

from typoguard.store.events import Observation


def _seed(api: Api) -> list[int]:
    new = api.store.observe_events(
        [
            Observation(
                "lookalike-accepts-mail", "army.ml", "critical", "mx.squat.example", "army.ml accepts mail"
            ),
            Observation(
                "repeat-sender", "alice@army.mil", "warning", "", "alice wrote to look-alikes 4 times"
            ),
        ]
    )
    return [e.id for e in new]


def test_events_are_listed_and_acknowledged_by_an_admin_only(api: Api) -> None:
    alive, repeat = _seed(api)
    reply = api.client.get("/v1/events", headers=api.headers("read"))
    assert reply.status_code == 200
    assert [(e["id"], e["state"]) for e in reply.json()["events"]] == [(repeat, "open"), (alive, "open")]
    assert api.client.get("/v1/events?state=closed", headers=api.headers("read")).status_code == 400
    assert api.client.get("/v1/events").status_code == 401

    ack = f"/v1/events/{alive}/ack"
    assert api.client.post(ack, json={"reason": "ours"}, headers=api.headers("read")).status_code == 403
    assert api.client.post(ack, json={"reason": ""}, headers=api.headers("admin")).status_code == 400
    assert (
        api.client.post("/v1/events/9999/ack", json={"reason": "x"}, headers=api.headers("admin")).status_code
        == 404
    )
    reply = api.client.post(ack, json={"reason": "registered by us"}, headers=api.headers("admin"))
    assert reply.status_code == 200
    body = reply.json()
    assert (body["state"], body["ack_by"], body["ack_reason"]) == (
        "acknowledged",
        "token:admin-user",
        "registered by us",
    )
    listed = api.client.get("/v1/events?state=open", headers=api.headers("read")).json()["events"]
    assert [e["id"] for e in listed] == [repeat]


def test_the_dashboard_alerts_page_and_the_todo_panel(api: Api) -> None:
    alive, _ = _seed(api)
    with httpx.Client(base_url=api.base_url) as browser:
        log_in(browser, api.tokens["admin"])
        overview = browser.get("/dashboard").text
        assert "1 held message(s)</a> waiting for a person, the oldest for 1 min" in overview
        assert "2 open alert(s)" in overview and "1 look-alike(s) came alive this week" in overview
        page = browser.get("/dashboard/alerts")
        assert "army.ml accepts mail" in page.text and "Open (2)" in page.text
        reply = browser.post(
            f"/dashboard/alerts/{alive}/ack", data={"csrf": csrf_field(page.text), "reason": "ours"}
        )
        assert reply.status_code == 303
        assert (
            parse_qs(urlsplit(reply.headers["location"]).query)["msg"][0] == f"#{alive} army.ml: acknowledged"
        )
        done = browser.get("/dashboard/alerts?state=acknowledged").text
        assert "token:admin-user" in done and "ours" in done
    with httpx.Client(base_url=api.base_url) as reader:
        log_in(reader, api.tokens["read"])
        page = reader.get("/dashboard/alerts").text
        assert "Acknowledge</button>" not in page  # read scope: no acknowledge form
        refused = reader.post("/dashboard/alerts/2/ack", data={"csrf": csrf_field(page), "reason": "x"})
        assert refused.status_code == 403  # and nothing acknowledged
    assert api.store.event_counts() == {"open": 1, "acknowledged": 1}
