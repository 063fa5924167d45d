"""The packaged add-on in Debian's real Thunderbird, headless, with a throw-away profile: an account whose
outgoing server is an SMTP sink on loopback, the typoguard .xpi as ``make clients`` builds it, and a
test-only driver add-on that composes and presses Send (``compose.sendMessage``) for each scenario. In
the review window typoguard opens, a test hook added to a copy of the add-on clicks as a person would.
What the sink receives is what Thunderbird really sent.

Thunderbird from scripts/install-thunderbird.sh; without it this test skips saying so, except under
CI=true, where it fails."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

THUNDERBIRD = Path("/usr/bin/thunderbird")
HERE = Path(__file__).with_name("thunderbird_e2e")
ADDON_ID = "thunderbird-addon@typoguard"
DRIVER_ID = "e2e-driver@typoguard"

SCENARIOS: list[dict[str, Any]] = [
    {"name": "closed", "to": ["Bob <bob@army.ml>"], "ui": "close"},
    {"name": "fixed", "to": ["Ann <ann@army.ml>"], "ui": "fix-send"},
    {"name": "confirmed", "to": ["carl@army.ml"], "ui": "keep-confirm-send"},
    {"name": "back", "to": ["Dana <dana@arrny.mil>"], "ui": "fix-edit"},
    {"name": "allowed", "to": ["eve@army.mil"], "ui": None},
]
SERVER_SCENARIOS: list[dict[str, Any]] = [
    {"name": "server-flagged", "to": ["Fay <fay@navy.ml>"], "ui": "fix-send"},
    {"name": "server-allowed", "to": ["gil@navy.mil"], "ui": None},
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _zip(source: Path, out: Path) -> None:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(source.rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(source).as_posix())


class _Sink:
    def __init__(self) -> None:
        self.received: list[list[str]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd)
        self.received.append(list(envelope.rcpt_tos))
        return "250 OK"


class _Reports(BaseHTTPRequestHandler):
    got: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.got.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _prefs(smtp_port: int) -> dict[str, Any]:
    """A POP3 account that never connects (its identity sends), Local Folders, an SMTP server on the sink;
    profile add-ons enabled without asking; no first-run dialogs, updates or telemetry."""
    return {
        "extensions.autoDisableScopes": 0,
        "extensions.enabledScopes": 15,
        "xpinstall.signatures.required": False,
        "app.update.disabledForTesting": True,
        "mail.shell.checkDefaultClient": False,
        "mail.provider.suppress_dialog_on_startup": True,
        "mailnews.start_page.enabled": False,
        "toolkit.telemetry.reportingpolicy.firstRun": False,
        "datareporting.policy.dataSubmissionEnabled": False,
        "mail.accountmanager.accounts": "account1,account2",
        "mail.accountmanager.defaultaccount": "account1",
        "mail.accountmanager.localfoldersserver": "server2",
        "mail.account.account1.server": "server1",
        "mail.account.account1.identities": "id1",
        "mail.account.account2.server": "server2",
        "mail.server.server1.type": "pop3",
        "mail.server.server1.hostname": "127.0.0.1",
        "mail.server.server1.port": 1,
        "mail.server.server1.userName": "dave",
        "mail.server.server1.name": "dave@army.mil",
        "mail.server.server1.login_at_startup": False,
        "mail.server.server1.check_new_mail": False,
        "mail.server.server2.type": "none",
        "mail.server.server2.hostname": "Local Folders",
        "mail.server.server2.userName": "nobody",
        "mail.server.server2.name": "Local Folders",
        "mail.identity.id1.useremail": "dave@army.mil",
        "mail.identity.id1.fullName": "Dave",
        "mail.identity.id1.smtpServer": "smtp1",
        "mail.identity.id1.valid": True,
        "mail.identity.id1.fcc": False,
        "mail.smtpservers": "smtp1",
        "mail.smtp.defaultserver": "smtp1",
        "mail.smtpserver.smtp1.hostname": "127.0.0.1",
        "mail.smtpserver.smtp1.port": smtp_port,
        "mail.smtpserver.smtp1.authMethod": 1,  # no authentication
        "mail.smtpserver.smtp1.try_ssl": 0,
        "mail.smtpserver.smtp1.username": "",
    }


@pytest.fixture(scope="module")
def thunderbird() -> Path:
    if not THUNDERBIRD.exists():
        reason = "Debian's thunderbird is not installed (run scripts/install-thunderbird.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true the add-on must be tested in Thunderbird")
        print(f"\nskipping the Thunderbird end-to-end test: {reason}")
        pytest.skip(reason)
    return THUNDERBIRD


def run_thunderbird(
    thunderbird: Path, built: Path, tmp: Path, scenarios: list[dict[str, Any]], managed: dict[str, Any] | None
) -> Iterator[dict[str, Any]]:
    """One headless Thunderbird run of ``scenarios`` with the built add-on (and its test hook) and the
    driver in a fresh profile; ``managed``: the add-on's managed storage (a managed-storage manifest in
    the HOME Thunderbird is given). Yields {name: report} and what the SMTP sink received."""
    profile = tmp / "profile"
    (profile / "extensions").mkdir(parents=True)

    addon = tmp / "addon"
    shutil.copytree(built / "thunderbird", addon)
    shutil.copy(HERE / "e2e-hook.mjs", addon)
    page = addon / "background.html"
    page.write_text(
        page.read_text().replace("</body>", '<script type="module" src="e2e-hook.mjs"></script></body>')
    )
    _zip(addon, profile / "extensions" / f"{ADDON_ID}.xpi")
    if managed is not None:
        store = tmp / ".mozilla" / "managed-storage"
        store.mkdir(parents=True)
        manifest = {"name": ADDON_ID, "description": "typoguard test", "type": "storage", "data": managed}
        (store / f"{ADDON_ID}.json").write_text(json.dumps(manifest))

    got: list[dict[str, Any]] = []
    reports = HTTPServer(("127.0.0.1", 0), type("Reports", (_Reports,), {"got": got}))
    threading.Thread(target=reports.serve_forever, daemon=True).start()
    driver = tmp / "driver"
    shutil.copytree(HERE / "driver", driver)
    (driver / "scenarios.json").write_text(
        json.dumps({"port": reports.server_address[1], "scenarios": scenarios})
    )
    _zip(driver, profile / "extensions" / f"{DRIVER_ID}.xpi")

    sink = _Sink()
    smtp = Controller(sink, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    prefs = _prefs(smtp.port)
    (profile / "user.js").write_text(
        "".join(f'user_pref("{k}", {json.dumps(v)});\n' for k, v in prefs.items())
    )

    log = (tmp / "thunderbird.log").open("wb")
    env = {**os.environ, "HOME": str(tmp), "MOZ_HEADLESS": "1"}
    proc = subprocess.Popen(
        [str(thunderbird), "--headless", "--no-remote", "--profile", str(profile)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 150
        while not any(r["name"] == "done" for r in got):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = (tmp / "thunderbird.log").read_text(errors="replace")[-3000:]
                pytest.fail(
                    f"Thunderbird did not finish the scenarios (exit {proc.returncode}): {got}\n{tail}"
                )
            time.sleep(0.2)
        yield {"reports": {r["name"]: r for r in got}, "received": sink.received}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        smtp.stop()
        reports.shutdown()
        reports.server_close()


@pytest.fixture(scope="module")
def session(
    thunderbird: Path, built_clients: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The add-on as installed by default: no managed settings, the packaged bundle decides."""
    yield from run_thunderbird(
        thunderbird, built_clients, tmp_path_factory.mktemp("thunderbird"), SCENARIOS, None
    )


@pytest.fixture(scope="module")
def server_session(
    thunderbird: Path,
    built_clients: Path,
    typoguard_server: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """The organisation's settings in managed storage, naming a real ``typoguard http`` on loopback."""
    tmp = tmp_path_factory.mktemp("thunderbird-server")
    yield from run_thunderbird(thunderbird, built_clients, tmp, SERVER_SCENARIOS, typoguard_server)


def test_the_driver_ran_every_scenario(session: dict[str, Any]) -> None:
    assert set(session["reports"]) == {s["name"] for s in SCENARIOS} | {"done"}, session["reports"]


def test_closing_the_review_window_keeps_the_message_unsent(session: dict[str, Any]) -> None:
    closed = session["reports"]["closed"]
    assert closed["popups"] == 1
    assert closed["result"] == "not sent: compose.sendMessage failed: Send aborted by an onBeforeSend event"
    assert not [r for r in session["received"] if "bob@army.ml" in r]


def test_did_you_mean_fixes_the_recipient_thunderbird_sends(session: dict[str, Any]) -> None:
    fixed = session["reports"]["fixed"]
    assert fixed["result"] == "sent" and fixed["review"]["sendDisabled"] == [True, False]
    assert "Did you mean Ann <ann@army.mil>?" in fixed["review"]["rows"][0]
    assert ["ann@army.mil"] in session["received"] and not [
        r for r in session["received"] if "ann@army.ml" in r
    ]


def test_a_rejected_recipient_goes_only_after_the_explicit_tick(session: dict[str, Any]) -> None:
    confirmed = session["reports"]["confirmed"]
    assert confirmed["review"]["sendDisabled"] == [True, True, False], "Keep alone must not enable Send"
    assert "I am sure: send to army.ml, not army.mil" in confirmed["review"]["rows"][0]
    assert confirmed["result"] == "sent" and ["carl@army.ml"] in session["received"]


def test_back_to_the_message_puts_the_fix_in_the_compose_window(session: dict[str, Any]) -> None:
    back = session["reports"]["back"]
    assert back["result"].startswith("not sent")
    assert back["to"] == ["Dana <dana@army.mil>"]


def test_an_allowed_recipient_is_sent_without_a_review(session: dict[str, Any]) -> None:
    allowed = session["reports"]["allowed"]
    assert (allowed["result"], allowed["popups"]) == ("sent", 0)
    assert ["eve@army.mil"] in session["received"]


def test_with_the_organisations_server_in_managed_storage_the_server_decides(
    server_session: dict[str, Any],
) -> None:
    """navy.mil is protected by the server only: its look-alike is caught, and fixed, only if Thunderbird
    read the managed settings and the add-on reached the server."""
    flagged = server_session["reports"]["server-flagged"]
    assert flagged["popups"] == 1 and "Did you mean Fay <fay@navy.mil>?" in flagged["review"]["rows"][0]
    assert flagged["result"] == "sent" and ["fay@navy.mil"] in server_session["received"]
    assert server_session["reports"]["server-allowed"]["result"] == "sent"
    assert ["gil@navy.mil"] in server_session["received"]
