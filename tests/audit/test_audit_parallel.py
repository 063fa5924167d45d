"""Large inputs are cut into byte ranges read by worker processes; the answer must not change."""

from __future__ import annotations

import gzip
import itertools
import os
import tempfile
from pathlib import Path

import pytest

from typoguard.audit import runner
from typoguard.audit.sources import Format, plan
from typoguard.guard import Guard


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~3 MB: 6,000 messages of 5 lines, every 20th to a look-alike, some deferred first."""
    path = tmp_path_factory.mktemp("audit") / "mail.log"
    out = []
    for i in range(6000):
        qid, ts = f"{0x100000 + i:X}", f"Nov 20 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
        domain = ("army.ml", "navy.ml", "gmial.com")[i % 3] if i % 20 == 0 else "example.org"
        rcpt = f"user{i % 97}@{domain}"
        out.append(f"{ts} mx postfix/smtpd[1]: {qid}: client=unknown[10.0.0.{i % 250}]\n")
        out.append(
            f"{ts} mx postfix/qmgr[2]: {qid}: from=<sender{i % 13}@army.mil>, size=100, nrcpt=1"
            " (queue active)\n"
        )
        if i % 7 == 0:
            out.append(
                f"{ts} mx postfix/smtp[3]: {qid}: to=<{rcpt}>, relay=none, delay=1, delays=0/0/1/0,"
                " dsn=4.4.1, status=deferred (connect to mx[192.0.2.1]:25: Connection timed out)\n"
            )
        out.append(
            f"{ts} mx postfix/smtp[3]: {qid}: to=<{rcpt}>, relay=mx[192.0.2.1]:25, delay=1, delays=0/0/0/1,"
            f" dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {i}) {'x' * 300}\n"
        )
        out.append(f"{ts} mx postfix/qmgr[2]: {qid}: removed\n")
    path.write_text("".join(out))
    return path


def test_chunks_end_on_line_boundaries(big_log: Path) -> None:
    tasks, problems = plan([big_log], Format.AUTO, chunk_bytes=256 << 10)
    assert problems == []
    assert len(tasks) > 8
    assert tasks[0].start == 0 and tasks[-1].end == big_log.stat().st_size
    data = big_log.read_bytes()
    for a, b in itertools.pairwise(tasks):
        assert a.end == b.start and data[b.start - 1 : b.start] == b"\n"


def test_parallel_chunks_give_the_serial_answer(
    big_log: Path, guard: Guard, monkeypatch: pytest.MonkeyPatch
) -> None:
    serial = runner.audit([big_log], guard, jobs=1)
    monkeypatch.setattr(runner, "PARALLEL_MIN_BYTES", 0)
    parallel = runner.audit([big_log], guard, jobs=2, chunk_bytes=256 << 10)
    assert len(serial.events) > 50
    assert parallel.events == serial.events
    assert parallel.stats.lines == serial.stats.lines
    # Senders whose qmgr line sits in the previous chunk are found by looking back.
    assert all(e.sender != "?" for e in parallel.events)


@pytest.mark.parametrize("parallel", [False, True])
def test_progress_counts_every_byte_on_disk(
    big_log: Path, guard: Guard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: bool
) -> None:
    packed = tmp_path / "mail.log.1.gz"
    packed.write_bytes(gzip.compress(big_log.read_bytes()[: 1 << 20]))
    if parallel:
        monkeypatch.setattr(runner, "PARALLEL_MIN_BYTES", 0)
    planned: list[int] = []
    done: list[int] = []
    runner.audit(
        [big_log, packed], guard, jobs=2, chunk_bytes=1 << 20, on_plan=planned.append, on_progress=done.append
    )
    assert planned == [big_log.stat().st_size + packed.stat().st_size]
    assert sum(done) == planned[0]


def test_worker_results_pass_through_a_private_directory_that_is_removed(
    big_log: Path, guard: Guard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers hand their results back as files (not through the pool's pipe): the parent's private
    directory holds them only while the audit runs, readable by nobody else, and is gone afterwards."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setattr(runner, "PARALLEL_MIN_BYTES", 0)
    seen: list[tuple[str, int]] = []

    def on_progress(_nbytes: int) -> None:
        for spool in temp.iterdir():
            seen.append((spool.name, spool.stat().st_mode & 0o777))

    result = runner.audit([big_log], guard, jobs=2, chunk_bytes=256 << 10, on_progress=on_progress)
    assert result.events == runner.audit([big_log], guard, jobs=1).events
    assert seen and {name.split("-")[0] for name, _ in seen} == {"typoguard"}
    assert {mode for _, mode in seen} == {0o700}
    assert list(temp.iterdir()) == []


def test_without_a_writable_temporary_directory_results_come_through_the_pipe(
    big_log: Path, guard: Guard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    monkeypatch.setattr(runner, "PARALLEL_MIN_BYTES", 0)
    parallel = runner.audit([big_log], guard, jobs=2, chunk_bytes=256 << 10)
    assert parallel.events == runner.audit([big_log], guard, jobs=1).events


def test_a_full_disk_under_the_temporary_directory_sends_results_through_the_pipe(
    big_log: Path, guard: Guard, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every result file a worker writes lands on /dev/full (ENOSPC from the kernel): nothing is lost."""
    made: list[str] = []

    def mkstemp_on_a_full_disk(dir: str, suffix: str) -> tuple[int, str]:  # mkstemp names it "dir"
        path = f"{dir}/full{len(made)}{suffix}"
        Path(path).touch()
        made.append(path)
        return os.open("/dev/full", os.O_WRONLY), path

    monkeypatch.setattr(runner.tempfile, "mkstemp", mkstemp_on_a_full_disk)
    monkeypatch.setattr(runner, "PARALLEL_MIN_BYTES", 0)
    parallel = runner.audit([big_log], guard, jobs=2, chunk_bytes=256 << 10)
    assert parallel.events == runner.audit([big_log], guard, jobs=1).events
