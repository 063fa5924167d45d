"""The dashboard's alerts page in a real browser (Debian's chromium under Playwright; see conftest's
``browser``: skips without it, fails under CI=true): an admin sees the open alerts and the "to do" panel,
acknowledges one with a reason, the event shows acknowledged (who, why) and the API agrees; a read-only user
sees no acknowledge form, and a POST made from their session anyway is refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from http_fixtures import Api

from typoguard.store.events import Observation

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

pytestmark = pytest.mark.e2e


def _shot(page: object, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def _sign_in(browser: object, api: Api, scope: str) -> tuple[object, object]:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=api.base_url)  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto("/dashboard")
    page.fill("input[name=token]", api.tokens[scope])
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    return context, page


def test_an_admin_acknowledges_an_alert_a_reader_cannot(browser: object, api: Api) -> None:
    from playwright.sync_api import expect

    alive, repeat = (
        e.id
        for e in api.store.observe_events(
            [
                Observation("lookalike-accepts-mail", "army.ml", "critical", "mx.squat.example",
                            "army.ml (look-alike of army.mil) accepts mail at mx.squat.example"),
                Observation("repeat-sender", "alice@army.mil", "warning", "",
                            "alice@army.mil wrote to look-alikes 4 times"),
            ]
        )
    )  # fmt: skip

    context, page = _sign_in(browser, api, "admin")
    expect(page.locator("main")).to_contain_text("2 open alert(s)")  # the overview's "to do" panel
    page.click("nav >> text=Alerts")
    expect(page).to_have_url(re.compile(r"/dashboard/alerts$"))
    expect(page.locator("#alerts tbody tr")).to_have_count(2)
    row = page.locator(f"#event-{alive}")
    expect(row).to_contain_text("army.ml (look-alike of army.mil) accepts mail at mx.squat.example")
    expect(row).to_contain_text("critical")
    # severity is seen at a glance: critical in red and bold, as in the e-mail digest
    expect(row.locator("td.severity")).to_have_css("color", "rgb(176, 0, 32)")
    expect(row.locator("td.severity")).to_have_css("font-weight", "700")
    expect(page.locator(f"#event-{repeat} td.severity")).to_have_css("color", "rgb(178, 106, 0)")
    expect(page.locator(".filters")).to_contain_text("Open (2)")
    _shot(page, "20-alerts-open")

    row.locator("button[type=submit]").click()  # no reason: the browser refuses to submit (required)
    expect(page).to_have_url(re.compile(r"/dashboard/alerts$"))
    assert api.store.event_counts()["acknowledged"] == 0

    row.locator("input[name=reason]").fill("registered by us, defensively")
    row.locator("button[type=submit]").click()
    expect(page.locator(".flash")).to_have_text(f"#{alive} army.ml: acknowledged")
    expect(page.locator("#alerts tbody tr")).to_have_count(1)  # only the other one is open
    expect(page.locator(f"#event-{repeat}")).to_be_visible()
    expect(page.locator(".filters")).to_contain_text("Acknowledged (1)")

    page.click("text=Acknowledged (1)")
    done = page.locator(f"#event-{alive}")
    expect(done).to_contain_text("token:admin-user")
    expect(done).to_contain_text("registered by us, defensively")
    _shot(page, "21-alerts-acknowledged")
    context.close()  # type: ignore[attr-defined]

    reply = api.client.get("/v1/events?state=acknowledged", headers=api.headers("read")).json()["events"]
    assert [(e["id"], e["state"], e["ack_by"], e["ack_reason"]) for e in reply] == [
        (alive, "acknowledged", "token:admin-user", "registered by us, defensively")
    ]

    # read scope: the page, no acknowledge form; a POST from that session anyway is refused
    context, page = _sign_in(browser, api, "read")
    page.goto("/dashboard/alerts")
    expect(page.locator(f"#event-{repeat}")).to_contain_text("alice@army.mil wrote to look-alikes")
    expect(page.locator("#alerts form")).to_have_count(0)
    status = page.evaluate(
        """async (id) => {
            const csrf = document.querySelector("input[name=csrf]").value;  // the sign-out form's
            const body = new URLSearchParams({csrf, reason: "not mine to close"});
            const r = await fetch(`/dashboard/alerts/${id}/ack`, {method: "POST", body, redirect: "manual"});
            return r.status;
        }""",
        repeat,
    )
    assert status == 403
    context.close()  # type: ignore[attr-defined]
    assert api.store.event(repeat).state == "open"  # type: ignore[union-attr]
    assert api.store.event_counts() == {"open": 1, "acknowledged": 1}
