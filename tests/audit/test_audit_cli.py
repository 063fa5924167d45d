"""The command's contract: options, exit codes, usage errors; and the installed console script."""

from __future__ import annotations

import gc
import subprocess
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
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


def _many_leaks(path: Path, count: int) -> Path:
    """A Postfix log of ``count`` deliveries to army.ml (~200 bytes of JSON each)."""
    lines = []
    for i in range(count):
        qid = f"{i:010X}"
        lines.append(f"Nov 30 10:00:01 mx postfix/qmgr[2]: {qid}: from=<alice@army.mil>, size=9, nrcpt=1")
        lines.append(
            f"Nov 30 10:00:02 mx postfix/smtp[3]: {qid}: to=<bob{i}@army.ml>, relay=mx.army.ml[192.0.2.1]:25,"
            " delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 1F2E3D)"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("report", ["--json", "--csv", "--text"])
def test_a_report_that_cannot_be_written_is_a_clear_error_not_a_traceback(
    typoguard_exe: str, tmp_path: Path, report: str
) -> None:
    # Standard output on a full disk: the audit says so in one line and exits 2 (not 1, "some leaked").
    log = _many_leaks(tmp_path / "mail.log", 2000)
    args = [] if report == "--text" else [report]
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            [typoguard_exe, "audit", "--protect", "army.mil", *args, str(log)],
            stdout=full, stderr=subprocess.PIPE, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "cannot write the report to standard output: No space left on device" in proc.stderr


def test_a_reader_that_stops_early_ends_the_audit_quietly(typoguard_exe: str, tmp_path: Path) -> None:
    # `typoguard audit --json ... | head`: the closed pipe ends the audit as it ends other tools (SIGPIPE's
    # status, 141), with nothing on standard error.
    log = _many_leaks(tmp_path / "mail.log", 2000)
    audit = subprocess.Popen(
        [typoguard_exe, "audit", "--protect", "army.mil", "--json", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert audit.stdout is not None and audit.stderr is not None
    audit.stdout.read(100)
    audit.stdout.close()
    err = audit.stderr.read().decode()
    audit.stderr.close()
    assert audit.wait(timeout=60) == 141, err
    assert err == ""


def test_the_whole_document_is_written_before_the_command_ends(typoguard_exe: str, tmp_path: Path) -> None:
    # The command's own process ends without the interpreter's tear-down: its output must be complete.
    log = _many_leaks(tmp_path / "mail.log", 5000)
    proc = subprocess.run(
        [typoguard_exe, "audit", "--protect", "army.mil", "--json", str(log)],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert len(orjson.loads(proc.stdout)["events"]) == 5000


def test_a_pipe_or_a_device_is_skipped_with_a_warning_not_waited_on(
    typoguard_exe: str, fixtures: Path, tmp_path: Path
) -> None:
    # A directory walk met a FIFO (a syslog daemon's pipe next to the logs) and waited on it for ever; a
    # pipe named on the command line (`<(zcat mail.log.gz)`) was half eaten by format detection and the
    # audit reported "0 mail(s)", exit 0. Neither is read: each is named in a warning (exit 2 when
    # nothing else could be read), and the regular files beside them are audited.
    import os

    logs = tmp_path / "log"
    logs.mkdir()
    (logs / "mail.log").write_bytes((fixtures / "postfix-syslog.log").read_bytes())
    os.mkfifo(logs / "xconsole")
    (logs / "zero").symlink_to("/dev/zero")
    walked = subprocess.run(
        [typoguard_exe, "audit", "--protect", "army.mil", "--csv", str(logs)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert walked.returncode == 1, walked.stderr
    assert "bob@army.ml" in walked.stdout
    assert f"{logs / 'xconsole'}: a pipe, not a file; skipped" in walked.stderr
    assert f"{logs / 'zero'}: a device, not a file; skipped" in walked.stderr
    piped = subprocess.run(
        [typoguard_exe, "audit", "--protect", "army.mil", "--format", "postfix", str(logs / "xconsole")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert piped.returncode == 2, piped.stderr
    assert "a pipe, not a file; skipped (save it to a file first)" in piped.stderr
