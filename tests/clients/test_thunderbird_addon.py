"""The Thunderbird add-on's logic as packaged by ``scripts/build-clients.sh`` (its addon.mjs, the detector's
modules and a bundle exported by typoguard from a config), run in Node with Thunderbird's APIs faked at the
boundary (``thunderbird_fake.mjs``: compose, storage.managed, windows, runtime messages, contacts). What a
person sees: a flagged recipient holds the message until fixed or confirmed (a rejected one explicitly),
an allowed one sends at once, and nothing leaves the computer unless the organisation set a server; with
one set, a real ``typoguard http`` on loopback decides, and the packaged bundle does when it cannot."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from client_build import build_clients

ROOT = Path(__file__).resolve().parents[2]
FAKE = Path(__file__).with_name("thunderbird_fake.mjs")

Run = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def addons(
    built_clients: Path, typoguard_exe: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The packaged add-on (its bundle protects army.mil), and in audit mode: the same built for a config
    with ``mode = "audit"``."""
    base = tmp_path_factory.mktemp("tb-audit")
    config = base / "typoguard.toml"
    config.write_text('[protect]\ndomains = ["army.mil"]\n[policy]\nmode = "audit"\n')
    done = build_clients(typoguard_exe, config, base / "clients", clients="thunderbird")
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return {"enforce": built_clients / "thunderbird", "audit": base / "clients" / "thunderbird"}


@pytest.fixture
def run(node: str, addons: dict[str, Path], child_env: dict[str, str]) -> Run:
    """``run(to=[...], user=[...], managed=..., mode=...)``: one Send through the add-on; what happened."""

    def send(
        to: list[Any],
        *,
        cc: list[Any] | None = None,
        bcc: list[Any] | None = None,
        user: list[Any] | None = None,
        managed: dict[str, Any] | None = None,
        mode: str = "enforce",
        **extra: Any,
    ) -> dict[str, Any]:
        details = {"from": "Dave <dave@army.mil>", "to": to, "cc": cc or [], "bcc": bcc or []}
        scenario = {"details": details, "user": user or [], "managed": managed, **extra}
        done = subprocess.run(
            [node, str(FAKE), str(addons[mode])],
            input=json.dumps(scenario).encode(),
            capture_output=True,
            env=child_env,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (done.stdout + done.stderr).decode(errors="replace")
        out: dict[str, Any] = json.loads(done.stdout)
        return out

    return send


def flagged(review: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["address"]: row for row in review["rows"] if row["flagged"]}


# ------------------------------------------------------------------------------------------- local only
def test_allowed_recipients_send_at_once_and_nothing_leaves_the_computer(run: Run) -> None:
    seen = run(to=["Alice <alice@army.mil>", "carol@example.org"], cc=["ops@army.mil"])
    assert seen["result"] == {}
    assert seen["windows"] == [] and seen["fetches"] == []


def test_a_rejected_recipient_holds_the_message_until_explicitly_confirmed(run: Run) -> None:
    keep = {"action": "send", "choices": {"0": "keep"}}
    seen = run(to=["Bob <bob@army.ml>"], user=[{"decide": keep}, "close"])
    assert seen["result"] == {"cancel": True}, "closing the review window must not send"
    (review,) = seen["reviews"]
    row = flagged(review)["bob@army.ml"]
    assert (row["action"], row["domain"], row["intended"], row["mustConfirm"]) == (
        "reject",
        "army.ml",
        "army.mil",
        True,
    )
    assert row["fix"] == "Bob <bob@army.mil>" and "'i' of .mil dropped" in row["reason"]
    assert "explicit confirmation" in seen["answers"][0]["error"], (
        "keeping a reject without confirming was taken"
    )
    assert seen["fetches"] == []

    confirmed = run(to=["Bob <bob@army.ml>"], user=[{"decide": {**keep, "confirmReject": ["0"]}}])
    assert confirmed["result"] == {}, "explicitly confirmed: the message goes as written"
    assert confirmed["answers"] == [{"ok": True}] and confirmed["removedWindows"] == [100]


def test_fix_and_send_sends_the_corrected_recipients(run: Run) -> None:
    seen = run(
        to=["Bob <bob@army.ml>", "alice@army.mil"],
        cc=["carol@army.co"],
        bcc=["x@arrny.mil"],
        user=[{"decide": {"action": "send", "choices": {"0": "fix", "2": "keep", "3": "fix"}}}],
    )
    assert set(flagged(seen["reviews"][0])) == {"bob@army.ml", "carol@army.co", "x@arrny.mil"}
    assert flagged(seen["reviews"][0])["carol@army.co"]["action"] == "warn"
    assert seen["result"] == {
        "details": {
            "to": ["Bob <bob@army.mil>", "alice@army.mil"],
            "cc": ["carol@army.co"],
            "bcc": ["x@army.mil"],
        }
    }


def test_back_to_the_message_applies_the_fixes_and_does_not_send(run: Run) -> None:
    seen = run(to=["bob@amry.mil"], user=[{"decide": {"action": "edit", "choices": {"0": "fix"}}}])
    assert seen["result"] == {"cancel": True}
    assert [c["details"]["to"] for c in seen["setComposeDetails"]] == [["bob@army.mil"]]


def test_a_warning_is_kept_by_choosing_keep_without_further_confirmation(run: Run) -> None:
    seen = run(to=["carol@army.co"], user=[{"decide": {"action": "send", "choices": {"0": "keep"}}}])
    assert seen["result"] == {} and seen["answers"] == [{"ok": True}]


def test_send_needs_a_choice_for_every_flagged_recipient(run: Run) -> None:
    seen = run(
        to=["a@army.ml", "b@army.co"],
        user=[{"decide": {"action": "send", "choices": {"1": "keep"}}}, "close"],
    )
    assert "a@army.ml: fix or keep it" in seen["answers"][0]["error"]
    assert seen["result"] == {"cancel": True}


def test_in_audit_mode_a_reject_is_kept_without_the_extra_confirmation(run: Run) -> None:
    seen = run(
        mode="audit", to=["bob@army.ml"], user=[{"decide": {"action": "send", "choices": {"0": "keep"}}}]
    )
    assert flagged(seen["reviews"][0])["bob@army.ml"]["mustConfirm"] is False
    assert seen["result"] == {}


def test_address_book_contacts_and_mailing_list_members_are_checked(run: Run) -> None:
    seen = run(
        to=[{"id": "c1", "type": "contact"}],
        cc=[{"id": "l1", "type": "mailingList"}],
        contacts={"c1": {"id": "c1", "properties": {"PrimaryEmail": "bob@army.ml", "DisplayName": "Bob"}}},
        mailingLists={
            "l1": {
                "name": "ops",
                "members": [
                    {"id": "m1", "vCard": "BEGIN:VCARD\r\nFN:Eve\r\nEMAIL;PREF=1:eve@arrny.mil\r\nEND:VCARD"},
                    {"id": "m2", "properties": {"PrimaryEmail": "ok@army.mil"}},
                ],
            }
        },
        user=[{"decide": {"action": "send", "choices": {"0": "fix", "1": "keep"}, "confirmReject": ["1"]}}],
    )
    rows = flagged(seen["reviews"][0])
    assert rows["bob@army.ml"]["fix"] == "Bob <bob@army.mil>"
    assert rows["eve@arrny.mil"]["fix"] is None and rows["eve@arrny.mil"]["list"] == "ops"
    assert seen["result"] == {
        "details": {"to": ["Bob <bob@army.mil>"], "cc": [{"id": "l1", "type": "mailingList"}], "bcc": []}
    }


def test_when_the_review_window_cannot_open_the_message_is_not_sent(run: Run) -> None:
    seen = run(to=["bob@army.ml"], windowCreateFails=True)
    assert seen["result"] == {"cancel": True}
    assert any("review window could not be opened" in line for line in seen["logs"])


def test_a_plain_http_server_off_loopback_is_refused_and_checks_stay_local(run: Run) -> None:
    seen = run(to=["alice@army.mil"], managed={"serverUrl": "http://typoguard.example.org", "token": "tg_x"})
    assert seen["result"] == {} and seen["fetches"] == []
    assert any("https://" in p for p in seen["status"]["settingsProblems"])


# ---------------------------------------------------------------------------- the organisation's server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(typoguard_server: dict[str, str]) -> dict[str, str]:
    """The organisation's settings for a real ``typoguard http`` protecting army.mil AND navy.mil (the
    add-on's bundle protects army.mil only, so a navy.ml verdict shows who decided)."""
    return typoguard_server


def test_with_a_server_configured_the_server_decides(run: Run, server: dict[str, str]) -> None:
    seen = run(to=["x@navy.ml", "alice@army.mil"], managed=server, user=["close"])
    assert seen["fetches"] == [f"{server['serverUrl']}/v1/check"]
    (review,) = seen["reviews"]
    assert review["source"] == "server" and review["note"] is None
    row = flagged(review)["x@navy.ml"]
    assert (row["action"], row["intended"]) == ("reject", "navy.mil"), (
        "the bundle alone does not protect navy.mil"
    )
    assert seen["result"] == {"cancel": True}

    allowed = run(to=["alice@army.mil"], managed=server)
    assert allowed["result"] == {} and len(allowed["fetches"]) == 1


def test_when_the_server_is_down_the_packaged_bundle_decides(run: Run) -> None:
    down = {"serverUrl": f"http://127.0.0.1:{_free_port()}", "token": "tg_whatever"}
    seen = run(to=["x@navy.ml", "bob@army.ml"], managed=down, user=["close"])
    (review,) = seen["reviews"]
    assert review["source"] == "bundle" and "checked on this computer" in review["note"]
    assert set(flagged(review)) == {"bob@army.ml"}, "navy.ml is not in the bundle: allowed by it"
    assert seen["status"]["lastServerProblem"]["problem"] == review["note"]

    only_allowed = run(to=["x@navy.ml"], managed=down)
    assert only_allowed["result"] == {}, "the fallback must not hold a message the bundle allows"


def test_a_server_that_does_not_answer_costs_at_most_the_timeout(run: Run) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        seen = run(
            to=["bob@army.ml"], managed={"serverUrl": url, "token": "tg_x", "timeoutMs": 400}, user=["close"]
        )
    assert "no answer within 400 ms" in seen["reviews"][0]["note"]
    assert seen["elapsedMs"] < 400 + 1500, seen["elapsedMs"]


def test_a_refused_token_falls_back_to_the_bundle_and_says_so(run: Run, server: dict[str, str]) -> None:
    seen = run(to=["bob@army.ml"], managed={**server, "token": "tg_not-a-token"}, user=["close"])
    note = seen["reviews"][0]["note"]
    assert "HTTP 401, check the token" in note and seen["reviews"][0]["source"] == "bundle"


def test_when_the_add_on_cannot_check_it_asks_and_never_sends_in_silence(run: Run) -> None:
    contacts = {"c1": {"id": "c1", "properties": {"DisplayName": "No Address"}}}
    unchecked = {"action": "send"}
    seen = run(to=[{"id": "c1", "type": "contact"}], contacts=contacts, user=[{"decide": unchecked}, "close"])
    assert "has no e-mail address" in seen["reviews"][0]["error"]
    assert "confirmUnchecked" in seen["answers"][0]["error"] and seen["result"] == {"cancel": True}

    sure = run(
        to=[{"id": "c1", "type": "contact"}],
        contacts=contacts,
        user=[{"decide": {**unchecked, "confirmUnchecked": True}}],
    )
    assert sure["result"] == {}
