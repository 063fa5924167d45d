"""The dashboard in a real browser: Playwright driving Debian's chromium (scripts/install-chromium.sh).

Without /usr/bin/chromium these tests skip with the reason, except under CI=true, where they fail: CI must
run them. Screenshots go to artifacts/screenshots/.

Held mail here comes from the fake hold queue of the ``api`` fixture, not a real Postfix: the release goes
through the dashboard, the API layer and the store's action record, but not ``postsuper`` (the store's
``PostfixQueue`` is tested against a real Postfix in tests/store).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_fixtures import Api

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        reason = "Debian's chromium is not installed (run scripts/install-chromium.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true the browser tests must run")
        print(f"\nskipping browser tests: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


def _shot(page: object, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_sign_in_overview_override_try_and_held_mail(browser: object, api: Api) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=api.base_url)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))

    # Sign in with an admin token.
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.fill("input[name=token]", api.tokens["admin"])
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/dashboard$"))

    # The overview's charts render with the seeded data.
    expect(page.locator("#per-day svg rect.bar")).not_to_have_count(0)
    expect(page.locator("#top-lookalikes")).to_contain_text("army.ml → army.mil")
    expect(page.locator("#top-senders")).to_contain_text("alice@army.mil")
    box = page.locator("#per-day svg").bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    _shot(page, "01-overview")

    # Held mail: release the held message (fake Postfix queue, see conftest), recorded with who did it.
    page.click("text=Held mail")
    expect(page.locator("#held-BBBB2")).to_contain_text("navy.mi looks like navy.mil")
    _shot(page, "02-held")
    page.locator("#held-BBBB2").get_by_role("button", name="Release").click()
    expect(page.locator(".flash")).to_contain_text("BBBB2: released")
    expect(page.locator("#held-BBBB2")).to_have_count(0)
    assert api.queue.released == ["BBBB2"]
    assert [(a.action, a.by) for a in api.store.held_actions("BBBB2")] == [("release", "token:admin-user")]

    # Add an override.
    page.click("text=Overrides")
    page.fill("#add-override input[name=domain]", "army.ml")
    page.select_option("#add-override select[name=action]", "allow")
    page.fill("#add-override input[name=reason]", "partner in Mali")
    page.click("#add-override button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("allow army.ml: added")
    expect(page.locator("table")).to_contain_text("partner in Mali")
    _shot(page, "03-overrides")
    assert [(o.domain, o.created_by) for o in api.store.overrides()] == [("army.ml", "token:admin-user")]

    # Try an address: the verdict and why.
    page.click("text=Try an address")
    page.fill("input[name=address]", "bob@army.ml")
    page.click("form.filters button[type=submit]")
    expect(page.locator("#verdict")).to_contain_text("army.ml looks like army.mil")
    expect(page.locator("#verdict .action")).to_have_text(re.compile("reject|hold|warn"))
    _shot(page, "04-try")

    # Decisions table with a filter.
    page.goto("/dashboard/decisions?domain=army.ml")
    expect(page.locator("tbody tr")).to_have_count(2)
    _shot(page, "05-decisions")

    # Every asset came from this server: no CDN.
    assert requested and all(u.startswith(api.base_url) for u in requested), requested
    context.close()


def test_the_mail_client_example_warns_before_send(
    browser: object, tmp_path: Path, guard: object, protected: tuple[str, ...]
) -> None:
    import functools
    import threading
    from dataclasses import replace
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from http_fixtures import RunningServer, http_config
    from playwright.sync_api import Browser, expect

    from typoguard.adapters.http_api import create_app
    from typoguard.service import Guard
    from typoguard.store import open_store
    from typoguard.store.tokens import TokenStore

    assert isinstance(browser, Browser) and isinstance(guard, Guard)
    example = Path(__file__).resolve().parents[2] / "examples" / "mail-client"

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    pages = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(example)))
    threading.Thread(target=pages.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{pages.server_address[1]}"
    config = http_config(tmp_path, protected)
    config = replace(config, http=replace(config.http, cors_origins=(origin,)))
    store = open_store(config)
    _, secret = TokenStore(store).create("webmail", "check", by="test")
    try:
        with RunningServer(create_app(config, guard=guard, store=store)) as api_url:
            page = browser.new_page()
            page.goto(f"{origin}/index.html")
            page.fill("#server", api_url)
            page.fill("#token", secret)
            page.fill("#to", "bob@army.ml, carol@army.mil")
            page.click("#compose > button[type=submit]")
            expect(page.locator("#warning")).to_be_visible()
            expect(page.locator("#findings li")).to_have_count(1)
            expect(page.locator("#findings")).to_contain_text("army.ml looks like army.mil")
            expect(page.locator("#findings")).to_contain_text("bob@army.mil")
            _shot(page, "06-mail-client-warning")
            page.click("#fix")
            expect(page.locator("#status")).to_have_text("Not sent.")
            page.fill("#to", "bob@army.mil")
            page.click("#compose > button[type=submit]")
            expect(page.locator("#status")).to_contain_text("Sent")
            page.close()
    finally:
        pages.shutdown()
        pages.server_close()
        store.close()
