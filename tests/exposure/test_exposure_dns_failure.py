"""A resolver that lies or fails must never make look-alikes look safe (issue 15, item 15).

Every test runs ``typoguard exposure`` / ``export`` as a user does, against a real DNS server on 127.0.0.1
(``dns_server.py``) that answers NXDOMAIN for everything, is not there at all, goes bad in the middle of
the scan, or answers correctly while a protected domain simply does not exist.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from dns_server import LocalDnsServer
from lab_zones import ZONES

from typoguard.cli import main

EXIT_DNS_UNUSABLE, EXIT_INCOMPLETE = 3, 4
# Every server here answers at once or not at all. Where a test needs answers, the timeout is long: a short
# one also fails answered names when the machine is busy. Only where nothing is answered is it short.
ANSWERED = ["--timeout", "10"]
SILENT = ["--timeout", "0.3"]
FAST = ["--limit", "100", "--retries", "0", "--no-progress"]
ROOT = {".": {"SOA": ["a.root.test. hostmaster.root.test. 1 1800 900 604800 86400"]}}
MIL = {"mil": {"SOA": ["ns.mil.test. hostmaster.mil.test. 1 1800 900 604800 86400"]}}


def _run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _exposure(
    port: int, *extra: str, protect: str = "army.mil", timeout: list[str] = ANSWERED
) -> tuple[int, str, str]:
    return _run(
        ["exposure", "--protect", protect, *FAST, *timeout, "--resolver", f"127.0.0.1:{port}", *extra]
    )


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port where nothing listens (UDP and TCP): no DNS server at all."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        port = int(udp.getsockname()[1])
    yield port


# --------------------------------------------------------------------------- DNS unusable from the start
def test_a_resolver_answering_nxdomain_for_everything_is_dns_unusable(tmp_path: Path) -> None:
    out_file = tmp_path / "exposure.json"
    with LocalDnsServer({}) as nx:  # NXDOMAIN for every name, the root zone and army.mil included
        code, _out, err = _exposure(nx.port, "--json", "-o", str(out_file))
        table_code, table, table_err = _exposure(nx.port)
        history = tmp_path / "history.json"
        watch_code, _, _ = _exposure(nx.port, "--watch", "--history", str(history))
    assert code == EXIT_DNS_UNUSABLE
    assert "DNS unusable:" in err and "NXDOMAIN" in err and "army.mil" in err
    assert not out_file.exists()  # no result document that export could take for an all-clear
    assert table_code == EXIT_DNS_UNUSABLE
    assert "unregistered" not in table and "DNS unusable:" in table_err
    assert watch_code == EXIT_DNS_UNUSABLE
    assert not history.exists()  # an all-"unregistered" run kept would hide the next real change


def test_no_dns_server_at_all_is_dns_unusable(closed_port: int, tmp_path: Path) -> None:
    out_file = tmp_path / "exposure.json"
    code, out, err = _exposure(closed_port, "--json", "-o", str(out_file), timeout=SILENT)
    assert code == EXIT_DNS_UNUSABLE
    assert "DNS unusable:" in err and f"127.0.0.1:{closed_port}" in err and "no answer" in err
    assert not out_file.exists()
    assert out == ""


def test_a_protected_domain_that_does_not_exist_is_told_apart_from_dns_unusable() -> None:
    # The resolver answers the root zone and .mil correctly: it works; armyy.mil (a typo) does not exist.
    with LocalDnsServer({**ZONES, **ROOT, **MIL}) as dns:
        code, out, err = _exposure(dns.port, protect="armyy.mil")
    assert code == 2  # a configuration error
    assert "protected domain armyy.mil does not exist" in err
    assert "DNS unusable" not in err
    assert "unregistered" not in out


# --------------------------------------------------------------------------- a resolver going bad mid-scan
@pytest.mark.parametrize("fail_with", ["servfail", "silent"])
def test_lookups_failing_mid_scan_are_unknown_counted_and_exit_non_zero(
    fail_with: str, tmp_path: Path
) -> None:
    # The first query (army.mil, the protected domain) is answered; every query after it fails. Silence
    # costs a timeout per attempt: 1 s, short enough for a test, long enough for army.mil's answer.
    out_file = tmp_path / "exposure.json"
    timeout = ["--timeout", "1"] if fail_with == "silent" else ANSWERED
    with LocalDnsServer(ZONES, fail_after=1, fail_with=fail_with) as dns:
        code, _out, err = _exposure(dns.port, "--json", "-o", str(out_file), timeout=timeout)
    assert code == EXIT_INCOMPLETE
    doc = json.loads(out_file.read_text())
    statuses = {r["status"] for r in doc["results"]}
    assert statuses == {"unknown"}  # never "unregistered" for a name nobody answered
    assert all(r["error"] for r in doc["results"])
    assert doc["lookups_failed"] == 100 and doc["complete"] is False
    assert "100 of 100 look-ups failed" in err


def test_partly_failed_scan_marks_only_the_failed_names_unknown() -> None:
    with LocalDnsServer(ZONES, fail_after=40, fail_with="servfail") as dns:
        code, out, err = _exposure(dns.port, "--json")
    doc = json.loads(out)
    failed = [r for r in doc["results"] if r["error"]]
    assert code == EXIT_INCOMPLETE
    assert failed and all(r["status"] == "unknown" for r in failed)
    assert doc["lookups_failed"] == len({r["lookalike"] for r in failed})
    assert f"{doc['lookups_failed']} of 100 look-ups failed" in err
    # a registered look-alike is either seen as registered or unknown: never unregistered
    for r in doc["results"]:
        if r["lookalike"] in ZONES:
            assert r["status"] != "unregistered"


def test_a_table_run_says_how_many_lookups_failed() -> None:
    with LocalDnsServer(ZONES, fail_after=1, fail_with="servfail") as dns:
        code, out, err = _exposure(dns.port, "--all")
    assert code == EXIT_INCOMPLETE
    assert "unknown / lookup failed" in out
    assert out.count("unknown / lookup failed") == 100  # one row per look-alike
    assert "│ unregistered" not in out  # no row says unregistered (the summary's header is drawn with ┃)
    assert "100 of 100 look-ups failed" in err


def test_a_resolver_that_turns_to_nxdomain_mid_scan_is_caught_and_nothing_is_written(tmp_path: Path) -> None:
    # army.mil is answered before the scan; then the server says NXDOMAIN for everything, army.mil too:
    # every "unregistered" of the scan may be that lie, so the run is refused, not reported.
    out_file = tmp_path / "exposure.json"
    with LocalDnsServer(ZONES, fail_after=1, fail_with="nxdomain") as dns:
        code, _out, err = _exposure(dns.port, "--json", "-o", str(out_file))
    assert code == EXIT_DNS_UNUSABLE
    assert "DNS unusable:" in err and "during the scan" in err
    assert not out_file.exists()


# --------------------------------------------------------------------------- export of incomplete results
def test_export_refuses_incomplete_results_and_leaves_the_old_list(tmp_path: Path) -> None:
    results = tmp_path / "exposure.json"
    with LocalDnsServer(ZONES, fail_after=40, fail_with="servfail") as dns:
        assert _exposure(dns.port, "--json", "-o", str(results))[0] == EXIT_INCOMPLETE
    block = tmp_path / "access"
    block.write_text("army.ml REJECT 5.1.2 did you mean army.mil?\n")  # last night's complete list
    code, out, err = _run(
        ["export", "--format", "postfix-access", "--exposure", str(results), "-o", str(block)]
    )
    assert code == EXIT_INCOMPLETE
    assert "incomplete" in err and "--allow-incomplete" in err
    assert block.read_text() == "army.ml REJECT 5.1.2 did you mean army.mil?\n"

    code, out, err = _run(
        ["export", "--format", "postfix-access", "--exposure", str(results), "--allow-incomplete"]
    )
    doc = json.loads(results.read_text())
    assert code == 0
    assert out.splitlines()[0].startswith(f"# INCOMPLETE: {doc['lookups_failed']} of 100 look-ups failed")
    failed = {r["lookalike"] for r in doc["results"] if r["status"] == "unknown"}
    assert failed <= {line.split()[0] for line in out.splitlines() if not line.startswith("#")}

    code, out, err = _run(["export", "--format", "list", "--exposure", str(results), "--allow-incomplete"])
    assert code == 0
    assert all(not line.startswith("#") for line in out.splitlines())  # a bare list stays bare
    assert "INCOMPLETE" in err


def test_a_resolver_lying_for_a_while_mid_scan_is_caught_by_the_canaries(tmp_path: Path) -> None:
    # Queries 11-60 get NXDOMAIN for every name, then the server is fine again: the check after the scan
    # passes, but a protected domain asked between look-alikes (a canary) got NXDOMAIN in the window.
    out_file = tmp_path / "exposure.json"
    with LocalDnsServer(ZONES, fail_after=10, fail_with="nxdomain", fail_until=60) as dns:
        code, _out, err = _exposure(dns.port, "--concurrency", "1", "--json", "-o", str(out_file))
    assert code == EXIT_DNS_UNUSABLE
    assert "DNS unusable:" in err and "army.mil MX: NXDOMAIN" in err and "during the scan" in err
    assert not out_file.exists()
