"""The JSON API as a mail client and an admin see it: verdicts, decisions, stats, held mail, overrides."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from http_fixtures import Api

from typoguard.guard import Guard


def test_check_gives_the_same_json_as_the_cli(api: Api, guard: Guard, typoguard_exe: str) -> None:
    recipients = ["bob@army.ml", "someone@army.mil", "x@gmial.com"]
    r = api.client.post(
        "/v1/check", json={"sender": "alice@army.mil", "recipients": recipients}, headers=api.headers("check")
    )
    assert r.status_code == 200
    body = r.json()
    assert body["sender"] == "alice@army.mil"
    assert [v["recipient"] for v in body["verdicts"]] == recipients
    assert body["verdicts"][0]["intended"] == "army.mil"
    assert body["verdicts"][0]["action"] != "allow"
    assert body["verdicts"][1]["action"] == "allow"
    assert body["action"] == max(
        (v["action"] for v in body["verdicts"]), key=["allow", "warn", "hold", "reject"].index
    )
    # Exactly the CLI's JSON lines for the same recipients and protected domains.
    protect = [arg for d in guard.config.protect.domains for arg in ("--protect", d)]
    cli = subprocess.run(
        [typoguard_exe, "check", "--format", "json", *protect, *recipients],
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 1, cli.stderr  # 1: something flagged
    assert [json.loads(line) for line in cli.stdout.splitlines()] == body["verdicts"]
    assert body["verdicts"][0] == guard.check("bob@army.ml").to_dict()


ODD_RECIPIENTS = [
    "bob@army.ml",
    "Bob@ARMY.ML.",
    "x@gmial.com",
    "not-an-address",
    "",
    "x@[192.0.2.1]",
    "ü@bücher.de",
    '"quoted local"@army.ml',
    "carol@xn--bcher-kva.de",
]


def test_check_replies_with_exactly_the_verdicts_json_byte_for_byte(api: Api, guard: Guard) -> None:
    """The reply is assembled from verdict JSON serialised once per domain: it must be what serialising
    the verdicts gives, for odd addresses too, the first time and every time after."""
    import orjson

    body = {"sender": "älice@army.mil", "recipients": ODD_RECIPIENTS}
    for _ in range(2):
        r = api.client.post("/v1/check", json=body, headers=api.headers("check"))
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        verdicts = [guard.check(recipient).to_dict() for recipient in ODD_RECIPIENTS]
        expected = {"sender": "älice@army.mil", "action": "invalid", "verdicts": verdicts}
        assert r.content == orjson.dumps(expected)
        assert int(r.headers["content-length"]) == len(r.content)


def test_check_answers_with_the_new_configuration_after_a_reload(
    tmp_path: Path, guard: Guard, protected: tuple[str, ...]
) -> None:
    """``typoguard serve`` swaps in a new Guard on SIGHUP (``HttpCompanion.reloaded``)."""
    import httpx
    from http_fixtures import RunningServer, http_config

    from typoguard.config import Config, ProtectConfig
    from typoguard.store import open_store
    from typoguard.store.tokens import TokenStore
    from typoguard.web.app import create_app

    store = open_store(http_config(tmp_path, protected))
    _, secret = TokenStore(store).create("webmail", "check", by="test")
    app = create_app(http_config(tmp_path, protected), guard=guard, store=store)
    check = {"recipients": ["bob@army.ml", "x@navy.mi"]}
    headers = {"Authorization": f"Bearer {secret}"}
    with RunningServer(app) as base_url:
        before = httpx.post(f"{base_url}/v1/check", json=check, headers=headers).json()
        assert [v["intended"] for v in before["verdicts"]] == ["army.mil", "navy.mil"]
        app.state.api.guard = Guard.from_config(Config(protect=ProtectConfig(domains=("navy.mil",))))
        after = httpx.post(f"{base_url}/v1/check", json=check, headers=headers).json()
        assert [v["intended"] for v in after["verdicts"]] == [None, "navy.mil"]
    store.close()


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"recipients": []},
        {"recipients": "bob@army.ml"},
        {"recipients": [1]},
        {"recipients": ["a"], "sender": 3},
    ],
)
def test_check_rejects_malformed_requests(api: Api, payload: dict[str, object]) -> None:
    r = api.client.post("/v1/check", json=payload, headers=api.headers("check"))
    assert r.status_code == 400
    assert r.json()["error"]


def test_check_rejects_a_body_that_is_not_json(api: Api) -> None:
    r = api.client.post("/v1/check", content=b"not json", headers=api.headers("check"))
    assert r.status_code == 400


def test_decisions_filter_and_paginate(api: Api) -> None:
    h = api.headers("read")
    everything = api.client.get("/v1/decisions", headers=h).json()
    assert len(everything["decisions"]) == 6
    assert everything["next_before"] is None
    held = api.client.get("/v1/decisions", params={"domain": "army.ml"}, headers=h).json()["decisions"]
    assert {d["recipient"] for d in held} == {"bob@army.ml", "carol@army.ml"}
    first = api.client.get("/v1/decisions", params={"limit": 4}, headers=h).json()
    assert len(first["decisions"]) == 4 and first["next_before"] is not None
    rest = api.client.get(
        "/v1/decisions", params={"limit": 4, "before": first["next_before"]}, headers=h
    ).json()
    seen = [d["seq"] for d in first["decisions"] + rest["decisions"]]
    assert len(seen) == 6 == len(set(seen))
    assert api.client.get("/v1/decisions", params={"action": "maybe"}, headers=h).status_code == 400
    assert api.client.get("/v1/decisions", params={"limit": "lots"}, headers=h).status_code == 400


def test_stats_count_per_day_lookalike_and_sender(api: Api) -> None:
    stats = api.client.get("/v1/stats", params={"days": 7}, headers=api.headers("read")).json()
    assert sum(stats["total"].values()) == 6
    assert len(stats["per_day"]) == 3
    top = stats["top_lookalikes"][0]
    assert (top["domain"], top["intended"], top["count"]) == ("army.ml", "army.mil", 2)
    senders = {s["sender"]: s["count"] for s in stats["top_senders"]}
    assert senders["alice@army.mil"] == 2


def test_reads_from_a_failing_store_answer_503_with_the_reason(api: Api) -> None:
    """A database that fails is 503 and says why, for the statistics as for the decisions (the statistics
    gave a bare 500 with no reason)."""
    with api.store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE tg_decisions")
    for path in ("/v1/decisions", "/v1/stats"):
        reply = api.client.get(path, headers=api.headers("read"))
        assert (reply.status_code, reply.headers["content-type"]) == (503, "application/json"), path
        assert "no such table: tg_decisions" in reply.json()["error"]


def test_admin_releases_and_deletes_held_mail_and_who_is_recorded(api: Api) -> None:
    held = api.client.get("/v1/held", headers=api.headers("read")).json()["held"]
    assert [m["queue_id"] for m in held] == ["BBBB2"]
    assert held[0]["decision"]["recipient"] == "frank@navy.mi"
    r = api.client.post("/v1/held/BBBB2/release", headers=api.headers("admin"))
    assert r.status_code == 200
    assert api.queue.released == ["BBBB2"]
    actions = api.store.held_actions("BBBB2")
    assert [(a.action, a.by) for a in actions] == [("release", "token:admin-user")]
    # Gone now: a second release is a conflict, not a success.
    assert api.client.post("/v1/held/BBBB2/release", headers=api.headers("admin")).status_code == 409
    assert api.client.delete("/v1/held/not-an-id!", headers=api.headers("admin")).status_code == 400


def test_overrides_crud_records_who(api: Api) -> None:
    h = api.headers("admin")
    r = api.client.post(
        "/v1/overrides", json={"domain": "army.ml", "action": "allow", "reason": "partner"}, headers=h
    )
    assert r.status_code == 201
    added = r.json()
    assert added["created_by"] == "token:admin-user"
    listed = api.client.get("/v1/overrides", headers=api.headers("read")).json()["overrides"]
    assert [o["domain"] for o in listed] == ["army.ml"]
    assert (
        api.client.post(
            "/v1/overrides", json={"domain": "army.ml", "action": "maybe", "reason": "x"}, headers=h
        ).status_code
        == 400
    )
    assert api.client.delete(f"/v1/overrides/{added['id']}", headers=h).status_code == 200
    assert api.client.get("/v1/overrides", headers=h).json()["overrides"] == []
    everything = api.client.get("/v1/overrides", params={"all": "1"}, headers=h).json()["overrides"]
    assert everything[0]["removed_by"] == "token:admin-user"
    assert api.client.delete(f"/v1/overrides/{added['id'] + 100}", headers=h).status_code == 404


def test_health_metrics_and_openapi(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    for _ in range(3):
        r = api.client.post(
            "/v1/check", json={"recipients": ["bob@army.ml", "a@army.mil"]}, headers=api.headers("check")
        )
        flagged = r.json()["verdicts"][0]["action"]
    metrics = api.client.get("/metrics", headers=api.headers("read"))
    assert metrics.status_code == 200
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['typoguard_http_verdicts_total{action="allow"}'] == 3
    assert samples[f'typoguard_http_verdicts_total{{action="{flagged}"}}'] == 3
    assert samples["typoguard_http_check_seconds_count"] == 3
    assert samples['typoguard_http_check_seconds_bucket{le="+Inf"}'] == 3
    assert 0 < samples["typoguard_http_check_seconds_sum"] < 3
    doc = api.client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.") and "/v1/check" in doc["paths"]


def test_cli_token_create_list_revoke(tmp_path: Path, typoguard_exe: str) -> None:
    config = tmp_path / "typoguard.toml"
    config.write_text(f'[protect]\ndomains = ["army.mil"]\n[store]\ndata_dir = "{tmp_path / "data"}"\n')
    created = subprocess.run(
        [typoguard_exe, "token", "create", "--scope", "read", "--name", "grafana", "--config", str(config)],
        capture_output=True,
        text=True,
        check=True,
    )
    secret = created.stdout.strip()
    assert secret.startswith("tg_") and len(secret) > 40
    assert "shown once" in created.stderr
    listed = subprocess.run(
        [typoguard_exe, "token", "list", "--config", str(config)], capture_output=True, text=True, check=True
    ).stdout
    assert "grafana" in listed and "read" in listed and secret not in listed
    # Only a hash is stored: the secret appears nowhere in the database file.
    db = next((tmp_path / "data").glob("*.db"))
    assert secret.encode() not in db.read_bytes()
    revoked = subprocess.run(
        [typoguard_exe, "token", "revoke", "1", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert revoked.returncode == 0, revoked.stderr
    again = subprocess.run(
        [typoguard_exe, "token", "revoke", "1", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 1
    bad = subprocess.run(
        [typoguard_exe, "token", "create", "--scope", "root", "--name", "x", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2


def test_a_configured_web_page_may_call_check_across_origins(
    tmp_path: Path, guard: Guard, protected: tuple[str, ...]
) -> None:
    from dataclasses import replace

    import httpx
    from http_fixtures import RunningServer, http_config

    from typoguard.store import open_store
    from typoguard.store.tokens import TokenStore
    from typoguard.web.app import create_app

    config = http_config(tmp_path, protected)
    config = replace(config, http=replace(config.http, cors_origins=("https://webmail.army.mil",)))
    store = open_store(config)
    _, secret = TokenStore(store).create("webmail", "check", by="test")
    with RunningServer(create_app(config, guard=guard, store=store)) as base_url:
        preflight = httpx.options(
            f"{base_url}/v1/check",
            headers={
                "Origin": "https://webmail.army.mil",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://webmail.army.mil"
        other = httpx.options(
            f"{base_url}/v1/check",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in other.headers
        r = httpx.post(
            f"{base_url}/v1/check",
            json={"recipients": ["bob@army.ml"]},
            headers={"Origin": "https://webmail.army.mil", "Authorization": f"Bearer {secret}"},
        )
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://webmail.army.mil"
    store.close()
