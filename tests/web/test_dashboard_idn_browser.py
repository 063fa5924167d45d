"""The dashboard shows a homoglyph domain as what it reads as *and* what it is (issue 15 item 13, ADR 0017).

``аrmy.mil`` (Cyrillic а) renders exactly like ``army.mil``: a page saying "аrmy.mil looks like army.mil"
reads as "army.mil looks like army.mil". Every place the dashboard names such a domain puts its A-label
(``xn--rmy-5cd.mil``) next to it. Driven in Debian's chromium like tests/web/test_http_browser.py; skips
without it, except under CI=true.
"""

from __future__ import annotations

import re
import time

import pytest

from typoguard.store import DecisionEvent

HOMOGLYPH = "xn--rmy-5cd.mil"  # аrmy.mil with a Cyrillic а
READS_AS = "\u0430rmy.mil"
BOTH = f"{READS_AS} ({HOMOGLYPH})"

pytestmark = pytest.mark.e2e


def test_a_homoglyph_decision_shows_unicode_next_to_punycode(browser: object, api: object) -> None:
    from http_fixtures import Api
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser) and isinstance(api, Api)
    # A decision as an earlier version stored it: its reason names the Unicode form only.
    api.store.write_decision_rows(
        [
            DecisionEvent(
                time.time(), f"zoe@{HOMOGLYPH}", "reject", HOMOGLYPH, "army.mil", "homoglyph", 0.98,
                "alice@army.mil", "", "test-node", "enforce",
                f"{READS_AS} looks like army.mil (look-alike characters '\u0430' (cyrillic small letter a)"
                " in place of army's own)",
            ).row("idn-1")
        ]
    )  # fmt: skip
    page = browser.new_page(base_url=api.base_url)
    try:
        page.goto("/login")
        page.fill("input[name=token]", api.tokens["admin"])
        page.click("button[type=submit]")
        expect(page).to_have_url(re.compile(r"/dashboard$"))

        page.goto(f"/dashboard/decisions?domain={HOMOGLYPH}")
        row = page.locator("tbody tr").filter(has_text=HOMOGLYPH)
        expect(row).to_have_count(1)
        expect(row).to_contain_text(f"zoe@{READS_AS} (zoe@{HOMOGLYPH})")
        expect(row).to_contain_text(f"{BOTH} looks like army.mil")
        assert f"{READS_AS} looks like" not in row.inner_text()  # would read "army.mil looks like army.mil"

        page.goto("/dashboard/try")
        page.fill("input[name=address]", f"bob@{HOMOGLYPH}")
        page.click("form.filters button[type=submit]")
        verdict = page.locator("#verdict")
        expect(verdict).to_contain_text(f"bob@{READS_AS} (bob@{HOMOGLYPH})")
        expect(verdict).to_contain_text(f"{BOTH} looks like army.mil")
        assert f"{READS_AS} looks like" not in verdict.inner_text()
    finally:
        page.close()
