"""The command's contract: options, exit codes, usage errors; and the installed console script."""

from __future__ import annotations

import gc
import subprocess
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner, Result

from typoguard.cli import main


def test_exit_0_when_nothing_went_to_a_look_alike(run_audit: Callable[..., Result], tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(
        "Nov 20 09:00:02 mx1 postfix/smtp[104]: AB12: to=<carol@army.mil>, relay=mx.army.mil[192.0.2.20]:25,"
        " delay=1, dsn=2.0.0, status=sent (250 ok)\n"
    )
    result = run_audit("--no-progress", log)
    assert result.exit_code == 0
    assert "0 mail(s) to look-alike domains" in result.stdout


def test_the_cycle_collector_is_back_on_after_an_audit_run_in_process(
    run_audit: Callable[..., Result], fixtures: Path
) -> None:
    # The command turns it off while it runs (a speed-up, ADR 0018 addendum 4); a program that runs it
    # in-process (a test runner, a script) must get it back, also when the command ends in an error.
    assert gc.isenabled()
    assert run_audit(fixtures / "postfix-syslog.log").exit_code == 1
    assert gc.isenabled()
    assert run_audit("--json", "--csv", fixtures / "postfix-syslog.log").exit_code == 2
    assert gc.isenabled()


def test_usage_errors_exit_2(run_audit: Callable[..., Result], fixtures: Path, tmp_path: Path) -> None:
    assert run_audit().exit_code == 2
    assert run_audit("--json", "--csv", fixtures / "sent.eml").exit_code == 2
    missing = run_audit(tmp_path / "nope.log")
    assert missing.exit_code == 2 and "nope.log" in missing.output
    nothing = CliRunner().invoke(main, ["audit", str(fixtures / "sent.eml")])
    assert nothing.exit_code == 2 and "nothing to protect" in nothing.output
    unreadable = tmp_path / "notes.txt"
    unreadable.write_text("hello\n")
    only_bad = run_audit(unreadable)
    assert only_bad.exit_code == 2 and "format" in only_bad.output


def test_protect_file_and_config(fixtures: Path, tmp_path: Path) -> None:
    domains = tmp_path / "protected.txt"
    domains.write_text("navy.mil\n")
    config = tmp_path / "typoguard.toml"
    config.write_text('[protect]\ndomains = ["gmail.com"]\n')
    result = CliRunner().invoke(
        main,
        [
            "audit",
            "--config",
            str(config),
            "--protect-file",
            str(domains),
            "--csv",
            str(fixtures / "exim-mainlog"),
        ],
    )
    assert result.exit_code == 1
    assert [line.split(",")[2] for line in result.stdout.splitlines()[1:]] == [
        "eve@navy.ml",
        "frank@gmial.com",
    ]


def test_console_script(typoguard_exe: str, fixtures: Path) -> None:
    proc = subprocess.run(
        [typoguard_exe, "audit", "--protect", "army.mil", "--csv", str(fixtures / "sent.eml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "bob@armymil.com" in proc.stdout


def test_progress_bar_can_be_forced_and_does_not_change_the_output(
    run_audit: Callable[..., Result], fixtures: Path
) -> None:
    plain = run_audit("--csv", "--no-progress", fixtures / "exim-mainlog")
    with_bar = run_audit("--csv", "--progress", fixtures / "exim-mainlog")
    assert with_bar.exit_code == plain.exit_code == 1
    assert with_bar.stdout == plain.stdout
