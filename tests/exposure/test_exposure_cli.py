"""``typoguard exposure`` and ``typoguard export`` as a user runs them, against the local DNS server."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from dns_server import LocalDnsServer

from typoguard.cli import main

# army.mil's look-alikes, limited to the best 100 (army.ml, army.il, army.mit, army.ril, armymil.com and
# arny.mil are among them) so each run takes well under a second. army.ril's servers answer SERVFAIL: its
# look-up fails, so every run through the lab is incomplete (exit 4, ADR 0019) and says so. Every other name
# is answered at once, so the timeout is long: a short one fails answered names too when the machine is busy
# (CI once saw army.ml "unknown: no answer to MX within 0.3 s" with a 0.3 s timeout and no retry).
EXIT_INCOMPLETE = 4
BASE = ["--protect", "army.mil", "--limit", "100", "--timeout", "10", "--retries", "0", "--no-progress"]


def _run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return result.exit_code, result.stdout


def _lab(server: LocalDnsServer) -> list[str]:
    return ["exposure", *BASE, "--resolver", f"127.0.0.1:{server.port}"]


def test_table_shows_what_accepts_mail_and_who_receives_it(dns_lab: LocalDnsServer) -> None:
    code, out = _run(_lab(dns_lab))
    assert code == EXIT_INCOMPLETE
    assert "catchall.example" in out  # one provider behind army.ml and arny.mil
    for name, status in [
        ("army.ml", "accepts-mail"),
        ("army.mit", "null-mx"),
        ("army.ril", "unknown / lookup failed"),
        ("armymil.com", "no-mail"),
    ]:
        line = next(row for row in out.splitlines() if f" {name} " in row)
        assert status in line


def test_json_csv_and_html(dns_lab: LocalDnsServer, tmp_path: Path) -> None:
    code, out = _run([*_lab(dns_lab), "--json"])
    doc = json.loads(out)
    assert code == EXIT_INCOMPLETE
    assert (doc["complete"], doc["lookups_failed"], doc["lookalikes"]) == (False, 1, 100)
    by_name = {r["lookalike"]: r for r in doc["results"]}
    assert by_name["army.ml"]["status"] == "accepts-mail"
    assert by_name["army.il"]["mail_hosts"] == ["army.il"]
    assert doc["providers"][0] == {
        "provider": "catchall.example",
        "mail_hosts": ["mx1.catchall.example", "mx2.catchall.example"],
        "protected": ["army.mil"],
        "lookalikes": ["army.ml", "arny.mil"],
    }
    assert doc["summary"]["unregistered"] == 100 - 6

    code, out = _run([*_lab(dns_lab), "--csv"])
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["lookalike"]: r["status"] for r in rows}["army.mit"] == "null-mx"

    page = tmp_path / "report.html"
    code, _ = _run([*_lab(dns_lab), "--html", "-o", str(page)])
    html = page.read_text()
    assert code == EXIT_INCOMPLETE and "<svg" in html and "army.ml" in html
    assert "Incomplete: 1 of 100 look-ups failed" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing to fetch
    assert "<script" not in html


def test_watch_reports_a_newly_registered_lookalike_with_mx(dns_lab: LocalDnsServer, tmp_path: Path) -> None:
    history = tmp_path / "history.json"
    first, _ = _run([*_lab(dns_lab), "--watch", "--history", str(history)])
    assert first == 1  # the first run: everything that accepts mail is new
    code, out = _run([*_lab(dns_lab), "--watch", "--history", str(history)])
    assert code == EXIT_INCOMPLETE and "no change since the last run" in out  # army.ril still fails

    zones = dict(dns_lab.answers.records)
    zones["amry.mil"] = {"NS": ["ns1.parking.example."], "MX": ["10 mx.newcomer.example."]}
    with LocalDnsServer(zones, servfail=["army.ril"]) as later:
        code, out = _run([*_lab(later), "--watch", "--history", str(history), "--json"])
    doc = json.loads(out)
    assert code == 1  # a newly mail-accepting look-alike wins over the failed look-up of army.ril
    assert doc["changes"] == [
        {
            "lookalike": "amry.mil",
            "protected": "army.mil",
            "before": "unregistered",
            "after": "accepts-mail",
            "mail_hosts": ["mx.newcomer.example"],
        }
    ]


def test_usage_errors_exit_2(dns_lab: LocalDnsServer) -> None:
    assert _run([*_lab(dns_lab), "--json", "--csv"])[0] == 2
    assert _run(["exposure", "--protect", "army.mil", "--resolver", "dns.example"])[0] == 2
    assert _run(["exposure", "--no-progress"])[0] == 2  # nothing to protect
    assert _run(["export", "--format", "list"])[0] == 2
    assert _run(["export", "--format", "list", "--protect", "army.mil", "--status", "null-mx"])[0] == 2


def test_export_from_exposure_results(dns_lab: LocalDnsServer, tmp_path: Path) -> None:
    results = tmp_path / "exposure.json"
    _run([*_lab(dns_lab), "--json", "-o", str(results)])
    args = ["export", "--format", "list", "--exposure", str(results), "--status", "accepts-mail"]
    assert _run(args)[0] == EXIT_INCOMPLETE  # army.ril's look-up failed: refused by default
    code, out = _run([*args, "--allow-incomplete"])
    assert code == 0
    assert out.splitlines() == ["army.il", "army.ml", "arny.mil"]


def test_export_from_the_index_follows_the_policy() -> None:
    code, out = _run(["export", "--format", "postfix-access", "--protect", "army.mil"])
    assert code == 0
    assert "army.ml REJECT 5.1.2 did you mean army.mil?" in out.splitlines()
    code, more = _run(["export", "--format", "list", "--protect", "army.mil", "--min-action", "hold"])
    assert len(more.splitlines()) > len([row for row in out.splitlines() if not row.startswith("#")])


# --------------------------------------------------------------------------- the real consumer: postmap
def _postmap() -> str:
    exe = shutil.which("postmap") or ("/usr/sbin/postmap" if os.path.exists("/usr/sbin/postmap") else None)
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("postmap is missing under CI=true: scripts/install-system-deps.sh installs postfix")
        pytest.skip("postmap not installed (Debian package postfix; scripts/install-system-deps.sh)")
    return exe


@pytest.mark.parametrize(
    ("fmt", "key", "value"),
    [
        ("postfix-access", "army.ml", "REJECT 5.1.2 did you mean army.mil?"),
        ("postfix-transport", "army.ml", "error:5.1.2 did you mean army.mil?"),
        ("postfix-transport", ".army.ml", "error:5.1.2 did you mean army.mil?"),
    ],
)
def test_postmap_builds_and_answers_from_the_exported_map(
    fmt: str, key: str, value: str, tmp_path: Path
) -> None:
    exe = _postmap()
    code, out = _run(["export", "--format", fmt, "--protect", "army.mil", "--protect", "gmail.com"])
    assert code == 0
    table = tmp_path / "typoguard"
    table.write_text(out)
    (tmp_path / "main.cf").write_text(
        "compatibility_level = 3.6\n"
    )  # a private config: /etc/postfix untouched
    postmap = [exe, "-c", str(tmp_path)]
    built = subprocess.run([*postmap, f"hash:{table}"], capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    assert built.stderr == ""  # no "duplicate entry" or syntax warnings
    got = subprocess.run([*postmap, "-q", key, f"hash:{table}"], capture_output=True, text=True, check=False)
    assert got.stdout.strip() == value
    miss = subprocess.run(
        [*postmap, "-q", "army.mil", f"hash:{table}"], capture_output=True, text=True, check=False
    )
    assert miss.returncode == 1  # the real domain is not in the block list


def test_progress_goes_to_stderr_so_json_stays_parseable(dns_lab: LocalDnsServer, typoguard_exe: str) -> None:
    args = [a for a in _lab(dns_lab) if a != "--no-progress"]
    proc = subprocess.run(
        [typoguard_exe, *args, "--json", "--progress"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == EXIT_INCOMPLETE, proc.stderr
    assert "1 of 100 look-ups failed" in proc.stderr
    assert json.loads(proc.stdout)["format"] == "typoguard-exposure/1"
