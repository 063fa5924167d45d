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


def test_a_pipe_or_a_device_found_in_a_directory_is_skipped_with_a_warning_not_waited_on(
    typoguard_exe: str, fixtures: Path, tmp_path: Path
) -> None:
    # A directory walk met a FIFO (a syslog daemon's pipe next to the logs) and waited on it for ever. What a
    # walk finds that is not a file is named in a warning and not opened; the regular files beside it are
    # audited.
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


def _csv_rows(text: str) -> list[dict[str, str]]:
    import csv
    import io

    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("compressed", [False, True, "zstd"])
def test_standard_input_is_audited_whole_plain_or_compressed(
    typoguard_exe: str, fixtures: Path, compressed: bool | str
) -> None:
    # Debian 12 keeps Postfix's log in the journal only (no rsyslog, no /var/log/mail.log):
    # `journalctl -u 'postfix*' | typoguard audit -`, or a rotated log: `cat mail.log.2.gz | typoguard
    # audit -`, `cat mail.log.2.zst | typoguard audit -`.
    import gzip

    import zstandard

    log = (fixtures / "postfix-syslog.log").read_bytes()
    pack = zstandard.ZstdCompressor().compress if compressed == "zstd" else gzip.compress
    expected = subprocess.run(
        [typoguard_exe, "audit", "--protect", "army.mil", "--csv", str(fixtures / "postfix-syslog.log")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    piped = subprocess.run(
        [typoguard_exe, "audit", "--protect", "army.mil", "--csv", "-"],
        input=pack(log) if compressed else log, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert piped.returncode == expected.returncode == 1, piped.stderr
    rows, want = _csv_rows(piped.stdout.decode()), _csv_rows(expected.stdout)
    assert len(rows) == len(want) > 0
    assert {r["source"] for r in rows} == {"(standard input)"}
    drop = ("source",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in rows] == [
        {k: v for k, v in r.items() if k not in drop} for r in want
    ]


@pytest.mark.timeout(60)
def test_a_pipe_named_on_the_command_line_is_read_whole(typoguard_exe: str, fixtures: Path) -> None:
    # `typoguard audit <(zcat mail.log.1.gz)`: the pipe was skipped ("save it to a file first"); before
    # that, format detection ate its head and the audit said "0 mail(s)", exit 0.
    log = fixtures / "postfix-syslog.log"
    audit = f"{typoguard_exe} audit --protect army.mil --csv"
    piped = subprocess.run(
        ["bash", "-c", f"{audit} <(gzip -c {log} | gzip -dc)"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    plain = subprocess.run(
        ["bash", "-c", f"{audit} {log}"], capture_output=True, text=True, timeout=60, check=False
    )
    assert piped.returncode == plain.returncode == 1, piped.stderr
    rows, want = _csv_rows(piped.stdout), _csv_rows(plain.stdout)
    assert all(r.pop("source").startswith("/dev/fd/") for r in rows)
    assert all(r.pop("source") == str(log) for r in want)
    assert rows == want and rows


@pytest.mark.timeout(60)
def test_a_fifo_named_on_the_command_line_without_a_writer_is_empty_not_waited_on(
    typoguard_exe: str, tmp_path: Path
) -> None:
    import os

    fifo = tmp_path / "xconsole"
    os.mkfifo(fifo)
    done = subprocess.run(
        [typoguard_exe, "audit", "--protect", "army.mil", str(fifo)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"{fifo}: nothing to read (empty)" in done.stderr


def test_standard_input_that_is_a_terminal_is_a_usage_error(typoguard_exe: str) -> None:
    import os
    import pty

    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [typoguard_exe, "audit", "--protect", "army.mil", "-"],
            stdin=follower, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    finally:
        os.close(leader)
        os.close(follower)
    assert done.returncode == 2
    assert "standard input, which is a terminal" in done.stderr


def test_standard_input_that_cannot_be_saved_is_named_in_an_error(
    typoguard_exe: str, fixtures: Path, tmp_path: Path
) -> None:
    # The piped log is saved to a private temporary file (so that workers can read it in parallel); a full
    # disk there must be said, never audited as half a log.
    import resource
    import signal

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    log = (fixtures / "postfix-syslog.log").read_bytes() * 20
    done = subprocess.run(
        [typoguard_exe, "audit", "--protect", "army.mil", "--csv", "-"],
        input=log, capture_output=True, timeout=60, check=False, preexec_fn=small_files,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert b"(standard input): cannot save it to a temporary file" in done.stderr


@pytest.mark.parametrize("command", ["audit", "learn"])
def test_a_closed_standard_input_is_an_error_not_a_traceback(
    typoguard_exe: str, tmp_path: Path, command: str
) -> None:
    # `typoguard audit - <&-` (a cron job, a supervisor without stdin) raised AttributeError and exited 1,
    # which for audit means "mail to look-alikes was found".
    import os

    cfg = tmp_path / "typoguard.toml"
    cfg.write_text(f'[protect]\ndomains = ["army.mil"]\n[store]\ndata_dir = "{tmp_path / "data"}"\n')
    done = subprocess.run(
        [typoguard_exe, command, "--config", str(cfg), "-"],
        capture_output=True, text=True, timeout=60, check=False, preexec_fn=lambda: os.close(0),
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == (2 if command == "audit" else 1), done.stderr  # learn: "it failed"
    assert "(standard input): " in done.stderr and "Bad file descriptor" in done.stderr
