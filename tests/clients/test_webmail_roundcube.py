"""The webmail extension against a real webmail: Debian's Roundcube 1.6 on this machine (roundcube_lab.py:
PHP's built-in server, a private Dovecot for IMAP, a private Postfix that delivers into a Maildir we read),
in Debian's Chromium under Playwright with the unpacked test build of clients/webmail loaded.

A person logs in and writes to ``bob@army.ml`` (army.mil protected): the recipient is marked, Send is held -
Roundcube makes no send request and Postfix receives nothing - until the person ticks "I understand" and
confirms; then Roundcube sends it, once. One click on the mark's fix sends to ``bob@army.mil`` instead. Mail
to ``bob@army.mil`` sends with no dialog and Postfix delivers it as written.

Needs root (the Postfix lab), Postfix and swaks, scripts/install-roundcube.sh, Chromium and Node: skips with
the reason elsewhere; under CI=true it must run.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from roundcube_lab import RoundcubeLab, missing_tools

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")  # Debian's: Playwright drives it, never a downloaded browser
TIMEOUT_MS = 15_000
TO_INPUT = "#compose_to ul.recipient-input li.input input"  # Roundcube 1.6 elastic: the To widget's input
SEND = "button.btn.send"  # the compose form's own Send button (rcmail.command('send'))
SYSTEM_CONFIG = (Path("/etc/roundcube"), Path("/etc/dovecot"), Path("/etc/postfix"))
SYSTEM_DOVECOT_PID = Path("/run/dovecot/master.pid")
QUIET_S = 1.0  # a Send that gets through posts at once and reaches Postfix in about 0.3 s here


def _missing() -> list[str]:
    missing = missing_tools()
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (scripts/install-chromium.sh)")
    return missing


def _machines_own() -> dict[str, bytes]:
    """Every file of the machine's Roundcube, Dovecot and Postfix config, and whether its Dovecot runs."""
    files = {
        str(path): path.read_bytes()
        for top in SYSTEM_CONFIG
        if top.is_dir()
        for path in sorted(top.rglob("*"))
        if path.is_file()
    }
    files["system dovecot running"] = str(SYSTEM_DOVECOT_PID.exists()).encode()
    return files


@pytest.fixture(scope="module")
def machine_before() -> dict[str, bytes]:
    """The machine's own config before the lab starts."""
    return _machines_own()


@pytest.fixture(scope="module")
def lab(machine_before: dict[str, bytes]) -> Iterator[RoundcubeLab]:
    """Roundcube + Dovecot + Postfix, started once for the module and always stopped."""
    if missing := _missing():
        reason = f"needs {', '.join(missing)}; run scripts/install-roundcube.sh (and the others) as root"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true the Roundcube end-to-end test must run")
        print(f"\nskipping the Roundcube end-to-end test: {reason}")
        pytest.skip(reason)
    started = time.monotonic()
    lab = RoundcubeLab()
    lab.start()
    print(f"\nRoundcube lab started in {time.monotonic() - started:.1f}s at {lab.url}")
    yield lab
    lab.stop()
    assert _machines_own() == machine_before, "the lab changed the machine's own config"


@dataclass
class Webmail:
    """A logged-in Roundcube session in Chromium with the extension loaded."""

    lab: RoundcubeLab
    context: Any
    sha256: str
    send_requests: list[str] = field(default_factory=list)  # the To field of every send Roundcube posted

    def compose(self) -> Any:
        """A new compose page, once the extension has attached to it."""
        page = self.context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("request", self._seen)
        page.goto(f"{self.lab.url}?_task=mail&_action=compose")
        page.wait_for_function(
            f"document.documentElement.dataset.typoguardReady === {self.sha256!r}", timeout=TIMEOUT_MS
        )
        return page

    def _seen(self, request: Any) -> None:
        # Roundcube's Send posts the form (urlencoded) with _action=send to a hidden frame
        form = parse_qs(request.post_data or "") if request.method == "POST" else {}
        if form.get("_action") == ["send"]:
            self.send_requests.append(form.get("_to", [""])[0])


@pytest.fixture(scope="module")
def webmail(
    lab: RoundcubeLab, extension: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Webmail]:
    """Chromium (persistent profile, new headless mode, only our extension), logged in to the lab."""
    from playwright.sync_api import sync_playwright

    ext_dir, sha256 = extension
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")),
            executable_path=str(CHROMIUM),
            headless=False,  # "--headless=new" below: the old headless mode loads no extensions
            ignore_default_args=["--disable-extensions"],
            viewport={"width": 1280, "height": 900},  # Roundcube's desktop layout
            args=[
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--disable-extensions-except={ext_dir}",
                f"--load-extension={ext_dir}",
            ],
        )
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(lab.url)
            page.fill("#rcmloginuser", lab.user)
            page.fill("#rcmloginpwd", lab.password)
            page.click("#rcmloginsubmit")
            page.wait_for_url("**_task=mail**")
            page.close()
            yield Webmail(lab, context, sha256)
        finally:
            context.close()


def _write(page: Any, to: str, subject: str, body: str) -> None:
    field_ = page.locator(TO_INPUT)
    field_.click()
    field_.press_sequentially(to)
    page.fill("#compose-subject", subject)
    page.fill("#composebody", body)  # leaving the To field makes the typed address a recipient chip
    page.locator(f'#compose_to li.recipient:has-text("{to}")').wait_for()


def _subject() -> str:
    return f"typoguard e2e {uuid.uuid4().hex[:8]}"


def _delivered_with(lab: RoundcubeLab, subject: str) -> list[Any]:
    """The messages Postfix delivered (to anyone) with this subject."""
    return [m for m in lab.delivered() if m["Subject"] == subject]


def _wait_delivered(lab: RoundcubeLab, subject: str, timeout: float = 15) -> Any:
    """The message with this subject, once Postfix has delivered it."""
    deadline = time.monotonic() + timeout
    while not (found := _delivered_with(lab, subject)):
        if time.monotonic() > deadline:
            raise AssertionError(f"{subject!r} not delivered; Postfix log:\n{lab.postfix.log_tail()}")
        time.sleep(0.1)
    return found[0]


def _wait_sent(page: Any) -> None:
    """Roundcube has finished sending: it says so and leaves the compose screen."""
    page.wait_for_url(lambda url: "_action=compose" not in url)


def test_lookalike_recipient_is_held_until_confirmed_then_sent_once(webmail: Webmail) -> None:
    lab, page, subject = webmail.lab, webmail.compose(), _subject()
    _write(page, "bob@army.ml", subject, "Held until I say so.")
    flag = page.locator("[data-typoguard-flag]")
    flag.wait_for()
    assert flag.get_attribute("data-typoguard-flag") == "reject"
    assert "Did you mean bob@army.mil?" in flag.inner_text()

    before = len(webmail.send_requests)
    page.locator(SEND).click()
    dialog = page.locator('[data-typoguard-dialog][role="dialog"]')
    dialog.wait_for()
    assert "bob@army.ml" in dialog.inner_text()
    assert dialog.locator("[data-typoguard-confirm]").is_disabled()  # reject: only after "I understand"
    time.sleep(QUIET_S)
    assert webmail.send_requests[before:] == [], "Roundcube sent while the dialog was open"
    assert _delivered_with(lab, subject) == [], "Postfix received the held message"
    assert not any("to=<bob@army.ml>" in line for line in lab.postfix.log_lines())

    dialog.locator("[data-typoguard-cancel]").click()  # Go back: still nothing sent, compose untouched
    dialog.wait_for(state="detached")
    time.sleep(QUIET_S)
    assert webmail.send_requests[before:] == []
    assert _delivered_with(lab, subject) == []
    assert "_action=compose" in page.url
    assert page.locator('#compose_to li.recipient:has-text("bob@army.ml")').count() == 1

    page.locator(SEND).click()
    dialog.wait_for()
    dialog.locator("[data-typoguard-understand]").check()
    dialog.locator("[data-typoguard-confirm]").click()
    message = _wait_delivered(lab, subject)
    _wait_sent(page)
    assert message["Delivered-To"] == "bob@army.ml"  # as the person confirmed
    assert "Held until I say so." in message.get_content()
    time.sleep(QUIET_S)
    assert len(_delivered_with(lab, subject)) == 1, "confirm sent the message more than once"
    assert webmail.send_requests[before:] == ["bob@army.ml,"]
    page.close()


def test_fix_in_one_click_sends_to_the_intended_address(webmail: Webmail) -> None:
    lab, page, subject = webmail.lab, webmail.compose(), _subject()
    _write(page, "bob@army.ml", subject, "Fixed before sending.")
    flag = page.locator("[data-typoguard-flag]")
    flag.wait_for()
    flag.locator("[data-typoguard-fix]").click()
    flag.wait_for(state="detached")
    page.locator('#compose_to li.recipient:has-text("bob@army.mil")').wait_for()
    before = len(webmail.send_requests)
    page.locator(SEND).click()
    _wait_sent(page)  # no dialog: it went straight out
    assert webmail.send_requests[before:] == ["bob@army.mil,"]  # only the corrected address
    message = _wait_delivered(lab, subject)
    assert (message["Delivered-To"], message["To"]) == ("bob@army.mil", "bob@army.mil")
    page.close()


def test_allowed_recipient_sends_normally_and_postfix_delivers_it(webmail: Webmail) -> None:
    lab, page, subject = webmail.lab, webmail.compose(), _subject()
    _write(page, "bob@army.mil", subject, "Hello Bob,\nsee you at the range.\nAlice")
    assert page.locator("[data-typoguard-flag]").count() == 0
    before = len(webmail.send_requests)
    page.locator(SEND).click()
    _wait_sent(page)
    assert webmail.send_requests[before:] == ["bob@army.mil,"]
    message = _wait_delivered(lab, subject)
    assert message["Delivered-To"] == "bob@army.mil"
    assert message["To"] == "bob@army.mil"
    assert message["From"] == lab.user
    assert "see you at the range." in message.get_content()


def test_the_machines_own_mail_setup_is_untouched(webmail: Webmail, machine_before: dict[str, bytes]) -> None:
    now = _machines_own()  # with the lab running (and again in the lab's finalizer, after it stopped)
    changed = sorted(k for k in machine_before.keys() | now.keys() if machine_before.get(k) != now.get(k))
    assert not changed, f"the running lab changed the machine's own files: {changed}"
