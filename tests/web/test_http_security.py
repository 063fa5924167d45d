"""No endpoint reveals more than its scope allows; the dashboard's session, CSRF and login rate limit."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from http_fixtures import Api, csrf_field, log_in, revoke_with_cli, served

from typoguard.guard import Guard

# (method, path, json body, scope needed)
ENDPOINTS = [
    ("POST", "/v1/check", {"recipients": ["bob@army.ml"]}, "check"),
    ("GET", "/v1/decisions", None, "read"),
    ("GET", "/v1/stats", None, "read"),
    ("GET", "/v1/held", None, "read"),
    ("GET", "/v1/overrides", None, "read"),
    ("GET", "/metrics", None, "read"),
    ("POST", "/v1/held/BBBB2/release", None, "admin"),
    ("DELETE", "/v1/held/BBBB2", None, "admin"),
    ("POST", "/v1/overrides", {"domain": "army.ml", "action": "allow", "reason": "x"}, "admin"),
    ("DELETE", "/v1/overrides/1", None, "admin"),
]
SCOPES = ["check", "read", "admin"]


@pytest.mark.parametrize(("method", "path", "body", "needed"), ENDPOINTS)
def test_each_endpoint_refuses_missing_bad_and_too_small_tokens(
    api: Api, method: str, path: str, body: object, needed: str
) -> None:
    for headers in ({}, {"Authorization": "Bearer tg_not-a-token"}, {"Authorization": "Basic abc"}):
        r = api.client.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, (path, headers)
        assert set(r.json()) == {"error"}
    for scope in SCOPES[: SCOPES.index(needed)]:
        r = api.client.request(method, path, json=body, headers=api.headers(scope))
        assert r.status_code == 403, (path, scope)
        assert set(r.json()) == {"error"}  # nothing of what the endpoint guards
    r = api.client.request(method, path, json=body, headers=api.headers(needed))
    assert r.status_code < 400 or r.status_code == 404, (path, r.text)


def test_refused_requests_change_nothing(api: Api) -> None:
    api.client.post("/v1/held/BBBB2/release", headers=api.headers("read"))
    api.client.post(
        "/v1/overrides",
        json={"domain": "army.ml", "action": "allow", "reason": "x"},
        headers=api.headers("read"),
    )
    assert api.queue.released == [] and api.store.held_actions() == []
    assert api.store.overrides() == []


@pytest.mark.parametrize(
    ("scope", "method", "path", "body"),
    [("read", "GET", "/v1/stats", None), ("check", "POST", "/v1/check", {"recipients": ["bob@army.ml"]})],
)
def test_a_revoked_token_stops_working_within_the_cache_time(
    api: Api, scope: str, method: str, path: str, body: object
) -> None:
    import time

    from typoguard.store.tokens import TokenStore
    from typoguard.web.state import TOKEN_CACHE_SECONDS

    tokens = TokenStore(api.store)
    record, secret = tokens.create("temp", scope, by="test")
    h = {"Authorization": f"Bearer {secret}"}
    assert api.client.request(method, path, json=body, headers=h).status_code == 200
    tokens.revoke(record.id)
    time.sleep(TOKEN_CACHE_SECONDS + 0.1)
    r = api.client.request(method, path, json=body, headers=h)
    assert r.status_code == 401 and set(r.json()) == {"error"}


def test_dashboard_needs_sign_in_and_the_cookie_is_strict(api: Api) -> None:
    with httpx.Client(base_url=api.base_url) as browser:
        r = browser.get("/dashboard")
        assert r.status_code == 303 and r.headers["location"] == "/login"
        page = browser.get("/login")
        cookie = page.headers["set-cookie"].lower()
        assert "samesite=strict" in cookie and "httponly" in cookie
        r = log_in(browser, api.tokens["admin"])
        assert r.status_code == 303 and r.headers["location"] == "/dashboard"
        overview = browser.get("/dashboard")
        assert overview.status_code == 200
        assert "army.ml → army.mil" in overview.text
        assert api.tokens["admin"] not in overview.text


def test_a_check_token_cannot_sign_in(api: Api) -> None:
    with httpx.Client(base_url=api.base_url) as browser:
        r = log_in(browser, api.tokens["check"])
        assert r.status_code == 401
        assert browser.get("/dashboard").status_code == 303


def test_dashboard_forms_need_the_csrf_token(api: Api) -> None:
    with httpx.Client(base_url=api.base_url) as browser:
        log_in(browser, api.tokens["admin"])
        r = browser.post("/dashboard/overrides", data={"domain": "army.ml", "action": "allow", "reason": "x"})
        assert r.status_code == 403
        r = browser.post(
            "/dashboard/overrides",
            data={"domain": "army.ml", "action": "allow", "reason": "x", "csrf": "forged"},
        )
        assert r.status_code == 403
        assert api.store.overrides() == []
        csrf = csrf_field(browser.get("/dashboard/overrides").text)
        r = browser.post(
            "/dashboard/overrides", data={"domain": "army.ml", "action": "allow", "reason": "x", "csrf": csrf}
        )
        assert r.status_code == 303
        assert [(o.domain, o.created_by) for o in api.store.overrides()] == [("army.ml", "token:admin-user")]


def test_a_read_token_sees_but_cannot_act_in_the_dashboard(api: Api) -> None:
    with httpx.Client(base_url=api.base_url) as browser:
        log_in(browser, api.tokens["read"])
        page = browser.get("/dashboard/held")
        assert "BBBB2" in page.text and "Release" not in page.text
        r = browser.post("/dashboard/held/BBBB2/release", data={"csrf": csrf_field(page.text)})
        assert r.status_code == 403
        assert api.queue.released == []


def test_login_is_rate_limited_per_client(api: Api) -> None:
    with httpx.Client(base_url=api.base_url) as browser:
        statuses = [log_in(browser, "tg_wrong").status_code for _ in range(5)]
        assert statuses == [401] * 5
        # The sixth attempt within a minute is refused even with the right token.
        assert log_in(browser, api.tokens["admin"]).status_code == 429
        assert browser.get("/dashboard").status_code == 303


def test_behind_a_configured_proxy_the_login_limit_counts_each_forwarded_client(
    tmp_path: Path, guard: Guard, protected: tuple[str, ...]
) -> None:
    """A reverse proxy named in ``[http] trusted_proxies`` passes X-Forwarded-For: one client's failures
    must not lock out the others (and /v1/check, answered before the proxy-header pass, still works)."""
    with served(tmp_path, guard, protected, trusted_proxies=("127.0.0.1",)) as (base_url, secrets):
        with httpx.Client(base_url=base_url, headers={"X-Forwarded-For": "198.51.100.7"}) as mallory:
            assert [log_in(mallory, "tg_wrong").status_code for _ in range(5)] == [401] * 5
            assert log_in(mallory, secrets["admin"]).status_code == 429
        with httpx.Client(base_url=base_url, headers={"X-Forwarded-For": "198.51.100.8"}) as alice:
            assert log_in(alice, secrets["admin"]).status_code in (200, 303)
            h = {"Authorization": f"Bearer {secrets['check']}"}
            r = alice.post("/v1/check", json={"recipients": ["bob@army.ml"]}, headers=h)
            assert r.status_code == 200 and r.json()["verdicts"][0]["intended"] == "army.mil"


def test_forwarded_for_is_not_trusted_unless_a_proxy_is_configured(api: Api) -> None:
    """Issue 15 item 10: rotating X-Forwarded-For from loopback bypassed the login rate limit, as
    loopback was trusted by default. With ``trusted_proxies = []`` (the default) the header is ignored."""
    statuses = []
    for n in range(8):
        with httpx.Client(base_url=api.base_url, headers={"X-Forwarded-For": f"198.51.100.{n}"}) as c:
            statuses.append(log_in(c, "tg_wrong").status_code)
    assert statuses == [401] * 5 + [429] * 3
    with httpx.Client(base_url=api.base_url, headers={"X-Forwarded-For": "203.0.113.9"}) as c:
        assert log_in(c, api.tokens["admin"]).status_code == 429


def test_a_revoked_token_stops_at_once_on_this_node(api: Api, typoguard_exe: str) -> None:
    """Issue 15 item 10: a revoked token kept working for up to the cache time (1.1 s measured).
    Revoked with ``typoguard token revoke`` (another process), the very next request is refused."""
    from typoguard.store.tokens import TokenStore

    record, secret = TokenStore(api.store).create("temp", "check", by="test")
    h = {"Authorization": f"Bearer {secret}"}
    body = {"recipients": ["bob@army.ml"]}
    for _ in range(3):
        assert api.client.post("/v1/check", json=body, headers=h).status_code == 200
    revoke_with_cli(typoguard_exe, api.config, record.id)
    r = api.client.post("/v1/check", json=body, headers=h)
    assert r.status_code == 401 and set(r.json()) == {"error"}


@pytest.mark.parametrize("path", ["/static/%00", "/static/a%00b.css", "/static/%00/x"])
def test_a_static_path_with_a_nul_byte_is_not_found(api: Api, path: str) -> None:
    """Issue 15 item 10: ``/static/%00`` answered 500 (the file system refuses NUL in a path)."""
    r = api.client.get(path)
    assert r.status_code == 404
    assert api.client.get("/static/style.css").status_code == 200


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('trusted_proxies = ["nginx"]', "trusted_proxies"),
        ('trusted_proxies = ["10.0.0.1/8"]', "trusted_proxies"),
        ("max_body_bytes = 0", "max_body_bytes"),
        ("max_recipients = 0", "max_recipients"),
    ],
)
def test_bad_http_limits_and_proxies_are_config_errors(tmp_path: Path, toml: str, message: str) -> None:
    from typoguard.config import load_config
    from typoguard.errors import ConfigError

    path = tmp_path / "t.toml"
    path.write_text(f'[protect]\ndomains = ["army.mil"]\n[http]\n{toml}\n')
    with pytest.raises(ConfigError, match=message):
        load_config(path)
