"""Dashboard sessions end on the server: a cookie replayed after logout, token revocation or a new sign-in
is refused at once, on every worker (issue 15 item 9). Real uvicorn on loopback; real processes for the
workers."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
from http_fixtures import Api, csrf_field, log_in, revoke_with_cli

from typoguard.store.tokens import TokenStore


def _login(client: httpx.Client, secret: str) -> httpx.Response:
    r = log_in(client, secret)
    assert r.status_code == 303 and r.headers["location"] == "/dashboard", r.text
    return r


def _add_override(base_url: str, cookie: str, csrf: str, domain: str) -> httpx.Response:
    """What a thief holding a copied cookie (and the page's CSRF token) would send."""
    with httpx.Client(base_url=base_url, cookies={"typoguard_session": cookie}) as thief:
        return thief.post(
            "/dashboard/overrides", data={"domain": domain, "action": "allow", "reason": "x", "csrf": csrf}
        )


def _signed_in(base_url: str, cookie: str) -> bool:
    with httpx.Client(base_url=base_url, cookies={"typoguard_session": cookie}) as c:
        r = c.get("/dashboard/overrides")
        if r.status_code == 303:
            assert r.headers["location"] == "/login"
            return False
        assert r.status_code == 200, r.status_code
        return True


def test_a_cookie_copied_before_logout_is_refused_after_it(api: Api) -> None:
    with httpx.Client(base_url=api.base_url) as browser:
        _login(browser, api.tokens["admin"])
        csrf = csrf_field(browser.get("/dashboard/overrides").text)
        copied = browser.cookies["typoguard_session"]
        assert _signed_in(api.base_url, copied)
        r = browser.post("/logout", data={"csrf": csrf})
        assert r.status_code == 303
        assert browser.get("/dashboard").status_code == 303
    assert not _signed_in(api.base_url, copied)
    r = _add_override(api.base_url, copied, csrf, "army.ml")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert api.store.overrides() == []


def test_signing_in_again_ends_the_session_before(api: Api) -> None:
    with httpx.Client(base_url=api.base_url) as browser:
        _login(browser, api.tokens["admin"])
        first = browser.cookies["typoguard_session"]
        csrf = csrf_field(browser.get("/dashboard/overrides").text)
        _login(browser, api.tokens["read"])
        second = browser.cookies["typoguard_session"]
        assert second != first
        assert _signed_in(api.base_url, second)
    assert not _signed_in(api.base_url, first)
    assert _add_override(api.base_url, first, csrf, "army.ml").status_code == 303
    assert api.store.overrides() == []


def test_revoking_the_token_ends_its_sessions_at_once(api: Api, typoguard_exe: str) -> None:
    record, secret = TokenStore(api.store).create("temp-admin", "admin", by="test")
    with httpx.Client(base_url=api.base_url) as browser:
        _login(browser, secret)
        cookie = browser.cookies["typoguard_session"]
        assert _signed_in(api.base_url, cookie)
        revoke_with_cli(typoguard_exe, api.config, record.id)
        assert browser.get("/dashboard").status_code == 303
    assert not _signed_in(api.base_url, cookie)


def test_sessions_work_on_every_worker_and_logout_ends_them_on_every_worker(
    tmp_path: Path, typoguard_exe: str
) -> None:
    """``typoguard http --workers 2``: a session made on one worker is known to the other, and after
    logout the copied cookie is refused by both, at once (new connections spread over the workers)."""
    from test_http_process import _Workers

    w = _Workers(tmp_path, typoguard_exe, workers=2)
    try:
        admin = subprocess.run(
            [typoguard_exe, "token", "create", "--config", str(w.config), "--scope", "admin", "--name", "a"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        base_url = f"http://127.0.0.1:{w.port}"
        with httpx.Client(base_url=base_url) as browser:
            _login(browser, admin)
            cookie = browser.cookies["typoguard_session"]
            csrf = csrf_field(browser.get("/dashboard/overrides").text)
            # Each _signed_in() is a new connection: the kernel spreads them over both workers.
            assert all(_signed_in(base_url, cookie) for _ in range(12))
            assert browser.post("/logout", data={"csrf": csrf}).status_code == 303
        began = time.monotonic()
        refused = [not _signed_in(base_url, cookie) for _ in range(12)]
        assert all(refused), refused
        assert time.monotonic() - began < 5
    finally:
        w.stop()
