"""``[log] target``: standard error, a file, the local syslog daemon, journald (obs.py, ADR 0023).

Syslog and journal records are checked as the daemons receive them: on a private UNIX datagram socket
read here (the exact bytes), in a private ``rsyslogd`` (imuxsock, facility routing to a file), and in a
private ``systemd-journald`` namespace instance read back with ``journalctl`` (native protocol and its
syslog socket). The servers are the real ``typoguard serve`` command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from typoguard.config import Config, LogConfig, load_config
from typoguard.errors import ConfigError
from typoguard.obs import JsonLog, journal_field, level_and_event
from typoguard.policyd.query import query, rcpt_request

ROOT = Path(__file__).resolve().parent.parent
CI = os.environ.get("CI") == "true"
NO_ENV: dict[str, str] = {}
MAIL = 2  # syslog facility
SYSLOG_LINE = re.compile(
    rb"<(\d+)>([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) ([\w.-]+)\[(\d+)\]: (.*)", re.DOTALL
)


def need(tool: str) -> str:
    found = shutil.which(tool) or (tool if os.access(tool, os.X_OK) else None)
    if found is None:
        why = f"{tool} is not installed (scripts/install-system-deps.sh installs it)"
        if CI:
            pytest.fail(f"CI=true: this test must run, but {why}")
        pytest.skip(why)
    return found


def wait_until(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: a UNIX socket's path has at most 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="tg-log-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Receiver:
    """A syslog daemon's (or journald's) socket: a UNIX datagram socket bound at ``path``, read here."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.got: list[bytes] = []

    def take(self) -> list[bytes]:
        with contextlib.suppress(TimeoutError):
            while True:
                self.got.append(self.sock.recv(1 << 20))
        return self.got

    def wait_for(self, what: str, match: Callable[[bytes], bool], timeout: float = 20.0) -> bytes:
        return wait_until(what, lambda: next((m for m in self.take() if match(m)), None), timeout)

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def syslog_parts(message: bytes) -> tuple[int, str, int, dict[str, Any]]:
    """(PRI, identifier, pid, the JSON record) of one syslog datagram."""
    m = SYSLOG_LINE.fullmatch(message)
    assert m, message
    time.strptime(m[2].decode(), "%b %d %H:%M:%S")  # an RFC 3164 timestamp
    return int(m[1]), m[3].decode(), int(m[4]), json.loads(m[5])


def journal_fields(data: bytes) -> dict[str, bytes]:
    """A datagram of journald's native protocol: ``KEY=value`` lines, or ``KEY``, a 64-bit little-endian
    length, the value and a newline (any value, binary-safe)."""
    fields: dict[str, bytes] = {}
    while data:
        end = data.index(b"\n")
        line = data[:end]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            data = data[end + 1 :]
        else:
            key, size = line, int.from_bytes(data[end + 1 : end + 9], "little")
            value = data[end + 9 : end + 9 + size]
            assert data[end + 9 + size : end + 10 + size] == b"\n"
            data = data[end + 10 + size :]
        assert re.fullmatch(rb"[A-Z0-9][A-Z0-9_]*", key), key
        fields[key.decode()] = value
    return fields


# ------------------------------------------------------------------------------------------------ config
def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "typoguard.toml"
    path.write_text(text)
    return path


def test_the_default_target_is_still_standard_error_and_a_file_alone_still_means_the_file(
    tmp_path: Path,
) -> None:
    assert Config().log.destination == "stderr"
    assert load_config(write(tmp_path, '[log]\nfile = "/var/log/tg.log"\n'), NO_ENV).log.destination == "file"
    explicit = load_config(write(tmp_path, '[log]\ntarget = "file"\nfile = "/var/log/tg.log"\n'), NO_ENV)
    assert explicit.log.destination == "file"
    syslog = load_config(write(tmp_path, '[log]\ntarget = "syslog"\n'), NO_ENV).log
    assert (syslog.destination, syslog.syslog_socket, syslog.facility_code) == ("syslog", "/dev/log", MAIL)
    journal = load_config(write(tmp_path, ""), {"TYPOGUARD_LOG__TARGET": "journal"}).log
    assert (journal.destination, journal.journal_socket) == ("journal", "/run/systemd/journal/socket")
    assert LogConfig(syslog_facility="local3").facility_code == 19


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('target = "console"', "[log] target must be one of stderr, file, syslog, journal, got 'console'"),
        ('target = "file"', '[log] target = "file" needs [log] file'),
        ('target = "syslog"\nfile = "/var/log/tg.log"', '[log] file is only used with target = "file"'),
        ('target = "stderr"\nfile = "/var/log/tg.log"', '[log] file is only used with target = "file"'),
        ('syslog_facility = "mial"', "[log] syslog_facility must be one of kern, user, mail"),
        ('syslog_socket = "dev/log"', "[log] syslog_socket must be an absolute path"),
        (f'journal_socket = "/{"x" * 120}"', "[log] journal_socket must be an absolute path of at most 107"),
    ],
)
def test_log_keys_are_checked_when_the_config_is_read(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, f"[log]\n{text}\n"), NO_ENV)
    assert message in str(info.value)


def test_the_shipped_example_documents_every_log_key() -> None:
    example = (ROOT / "examples" / "typoguard.toml").read_text()
    section = example[example.index("[log]") :].split("\n[", 1)[0]
    for key in ("level", "target", "file", "syslog_socket", "syslog_facility", "journal_socket"):
        assert re.search(rf"^# {key} = ", section, re.MULTILINE), key


# ------------------------------------------------------------------------------------- syslog, records
def test_each_record_is_one_syslog_message_with_facility_mail_its_severity_and_the_json(
    short_dir: Path,
) -> None:
    receiver = Receiver(short_dir / "log")
    log = JsonLog(level="debug", target="syslog", socket_path=str(receiver.path), ident="typoguard-relay")
    try:
        log.event("debug", "probe", n=1)
        log.event("info", "listening", addresses=["127.0.0.1:10025"])
        log.event("warning", "next_hop_down", error="refused")
        log.event("error", "reload_failed", error="bad\nconfig")
        log.record_json(b'{"event":"decision","recipient":"bob@army.ml","action":"reject"}')
        log.flush()
        messages = wait_until("5 messages", lambda: len(receiver.take()) >= 5 and receiver.got)
    finally:
        log.close()
        receiver.close()
    parts = [syslog_parts(m) for m in messages]
    # PRI = facility * 8 + severity: mail (2); debug 7, info 6, warning 4, error 3; a decision is info.
    assert [p[0] for p in parts] == [2 * 8 + 7, 2 * 8 + 6, 2 * 8 + 4, 2 * 8 + 3, 2 * 8 + 6]
    assert {(p[1], p[2]) for p in parts} == {("typoguard-relay", os.getpid())}
    records = [p[3] for p in parts]
    assert [r.get("event") for r in records] == [
        "probe",
        "listening",
        "next_hop_down",
        "reload_failed",
        "decision",
    ]
    assert records[3]["error"] == "bad\nconfig"  # the JSON is the message, whole, on one line
    assert records[4] == {"time": records[4]["time"], "event": "decision", "recipient": "bob@army.ml",
                          "action": "reject"}  # fmt: skip
    assert log.fallback_records == 0


def test_the_level_and_event_of_a_line_are_read_without_parsing_it() -> None:
    log = JsonLog()  # the lines are only made here, not written
    line = log.line(b'{"level":"warning","event":"next_hop_down","error":"x"}')
    assert level_and_event(line) == (b"warning", b"next_hop_down")
    assert level_and_event(log.line(b'{"event":"decision","action":"reject"}')) == (b"info", b"decision")
    assert level_and_event(log.line(b'{"recipient":"a@b"}')) == (b"info", b"")
    assert level_and_event(b'{"time":"' + log.timestamp() + b'"}\n') == (b"info", b"")


POLICYD = """
[protect]
domains = ["army.mil", "navy.mil"]
[policy]
internal_senders = ["army.mil"]
[policyd]
listen = "127.0.0.1:{port}"
metrics_listen = "127.0.0.1:{metrics}"
[store]
enabled = false
[http]
enabled = false
[log]
{log}
"""


class Serve:
    """``typoguard serve`` with a ``[log]`` section; ``ask`` sends one policy request."""

    def __init__(self, exe: str, root: Path, log: str) -> None:
        self.port, self.metrics = free_port(), free_port()
        self.config = root / "typoguard.toml"
        self.config.write_text(POLICYD.format(port=self.port, metrics=self.metrics, log=log))
        self.stderr = root / "serve.stderr"
        with self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [exe, "serve", "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,  # killed with its children if a test fails
            )
        wait_until("the policy service", self._up)

    def _up(self) -> bool:
        assert self.proc.poll() is None, self.stderr.read_text()
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def ask(self, recipient: str) -> str:
        [answer] = query(f"127.0.0.1:{self.port}", [rcpt_request("alice@army.mil", recipient)])
        return answer

    def errors(self) -> dict[str, float]:
        text = httpx.get(f"http://127.0.0.1:{self.metrics}/metrics", timeout=5).text
        found = re.findall(r'^typoguard_policyd_errors_total\{kind="(\w+)"\} (\S+)$', text, re.MULTILINE)
        return {kind: float(n) for kind, n in found}

    def stderr_records(self) -> list[dict[str, Any]]:
        return [json.loads(ln) for ln in self.stderr.read_text().splitlines() if ln.startswith("{")]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def kill(self) -> None:
        if self.proc.poll() is None:  # still running (not reaped: its pid is still its own)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@contextlib.contextmanager
def serve(exe: str, root: Path, log: str) -> Iterator[Serve]:
    svc = Serve(exe, root, log)
    try:
        yield svc
    finally:
        svc.kill()


def test_the_policy_service_logs_its_decisions_to_syslog_as_typoguard_with_its_pid(
    typoguard_exe: str, short_dir: Path
) -> None:
    receiver = Receiver(short_dir / "log")
    try:
        with serve(typoguard_exe, short_dir, f'target = "syslog"\nsyslog_socket = "{receiver.path}"') as svc:
            assert svc.ask("bob@army.ml").startswith("550 5.1.2 ")
            decision = receiver.wait_for("the decision", lambda m: b'"event":"decision"' in m)
            svc.config.write_text("[protect\n")  # a broken file: the reload fails, an error record
            svc.proc.send_signal(signal.SIGHUP)
            failed = receiver.wait_for("reload_failed", lambda m: b'"reload_failed"' in m)
            assert svc.stop() == 0
            stopped = receiver.wait_for("stopped", lambda m: b'"event":"stopped"' in m)
            pid = svc.proc.pid
            assert svc.stderr_records() == []  # nothing on standard error: all of it went to syslog
    finally:
        receiver.close()
    pri, ident, sender, record = syslog_parts(decision)
    assert (pri, ident, sender) == (2 * 8 + 6, "typoguard", pid)
    assert (record["recipient"], record["action"]) == ("bob@army.ml", "reject")
    assert syslog_parts(failed)[0] == 2 * 8 + 3  # error
    assert syslog_parts(stopped)[3]["level"] == "info"


def test_a_syslog_socket_that_goes_away_falls_back_to_stderr_with_one_warning_and_comes_back_on_sighup(
    typoguard_exe: str, short_dir: Path
) -> None:
    receiver = Receiver(short_dir / "log")
    try:
        with serve(typoguard_exe, short_dir, f'target = "syslog"\nsyslog_socket = "{receiver.path}"') as svc:
            svc.ask("first@army.ml")
            receiver.wait_for("the first decision", lambda m: b"first@army.ml" in m)
            receiver.close()  # the daemon stops: its socket is gone
            began = time.monotonic()
            for i in range(50):
                assert svc.ask(f"gone{i}@army.ml").startswith("550 ")  # answered, never blocked
            assert time.monotonic() - began < 10
            records = wait_until("the decisions on stderr", lambda: len(svc.stderr_records()) >= 51 and
                                 svc.stderr_records())  # fmt: skip
            warnings = [r for r in records if r.get("event") == "log_target_failed"]
            assert len(warnings) == 1 and records[0] is not None
            assert warnings[0]["level"] == "warning" and warnings[0]["socket"] == str(receiver.path)
            assert [r["recipient"] for r in records if r.get("event") == "decision"] == [
                f"gone{i}@army.ml" for i in range(50)
            ]
            assert svc.errors().get("log_fallback", 0) >= 50
            # The daemon is back; SIGHUP (logrotate's, or a reload) connects again at once.
            receiver = Receiver(receiver.path)
            svc.proc.send_signal(signal.SIGHUP)
            receiver.wait_for("log_target_restored", lambda m: b'"log_target_restored"' in m)
            svc.ask("back@army.ml")
            receiver.wait_for("the decision after", lambda m: b"back@army.ml" in m)
            assert svc.stop() == 0
        assert not any(r.get("recipient") == "back@army.ml" for r in svc.stderr_records())
    finally:
        receiver.close()


def test_without_its_syslog_socket_the_service_starts_and_logs_to_stderr(
    typoguard_exe: str, short_dir: Path
) -> None:
    missing = short_dir / "no-daemon-here"
    with serve(typoguard_exe, short_dir, f'target = "syslog"\nsyslog_socket = "{missing}"') as svc:
        assert svc.ask("bob@army.ml").startswith("550 ")
        records = wait_until("the decision", lambda: [r for r in svc.stderr_records() if "recipient" in r] and
                             svc.stderr_records())  # fmt: skip
        assert svc.stop() == 0
    assert records[0]["event"] == "log_target_failed" and "No such file" in records[0]["error"]
    assert sum(r.get("event") == "log_target_failed" for r in svc.stderr_records()) == 1


async def _log_while_the_daemon_does_not_read(path: Path, n: int) -> tuple[JsonLog, float]:
    log = JsonLog(target="syslog", socket_path=str(path), ident="typoguard")
    began = time.perf_counter()
    for i in range(n):
        log.record_json(b'{"event":"decision","recipient":"u%d@army.ml"}' % i)
    return log, time.perf_counter() - began


def test_a_daemon_that_is_behind_never_blocks_the_event_loop_and_loses_nothing(short_dir: Path) -> None:
    """The kernel lets a few datagrams wait for a reader (net.unix.max_dgram_qlen, 10 by default; systemd
    sets 512); the rest must wait in the service, not block it, and go out in order once the daemon reads."""
    receiver = Receiver(short_dir / "log")
    n = 3000

    async def main() -> tuple[JsonLog, float]:
        log, took = await _log_while_the_daemon_does_not_read(receiver.path, n)
        reader = threading.Thread(target=lambda: wait_until("all records", lambda: len(receiver.take()) >= n))
        reader.start()
        while reader.is_alive():
            await asyncio.sleep(0.01)  # the event loop runs: the queued records are sent as it does
        reader.join()
        return log, took

    try:
        log, took = asyncio.run(main())
        log.close()
    finally:
        receiver.close()
    assert took < 1.0, f"{n} records took {took:.2f} s: the log blocked on the daemon"
    recipients = [syslog_parts(m)[3]["recipient"] for m in receiver.got]
    assert recipients == [f"u{i}@army.ml" for i in range(n)]
    assert log.fallback_records == 0


def test_at_exit_records_a_daemon_does_not_take_go_to_stderr(
    short_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    receiver = Receiver(short_dir / "log")  # never read
    log = JsonLog(target="syslog", socket_path=str(receiver.path))
    try:
        for i in range(200):
            log.event("info", "probe", i=i)
        began = time.monotonic()
        log.close()  # no event loop: waits up to a second for the daemon, then standard error
        assert time.monotonic() - began < 3
    finally:
        receiver.close()
    err = [json.loads(line) for line in capfd.readouterr().err.splitlines()]
    assert err[0]["event"] == "log_target_behind" and err[0]["level"] == "warning"
    spilled = [r["i"] for r in err[1:]]
    sent = len(receiver.got) if receiver.got else 0
    assert spilled == list(range(200 - len(spilled), 200)) and len(spilled) + sent <= 200
    assert log.fallback_records == len(spilled) > 0


def test_a_record_too_large_for_a_datagram_goes_to_stderr(
    short_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    receiver = Receiver(short_dir / "log")
    log = JsonLog(target="syslog", socket_path=str(receiver.path))
    try:
        log.event("info", "huge", text="x" * (8 << 20))  # above any socket's send buffer
        log.event("info", "small")
        receiver.wait_for("the small one", lambda m: b'"small"' in m)
    finally:
        log.close()
        receiver.close()
    [line] = capfd.readouterr().err.splitlines()
    assert json.loads(line)["event"] == "huge" and log.fallback_records == 1


# ------------------------------------------------------------------------------------------ journald
def test_journal_records_are_native_protocol_datagrams_with_fields(short_dir: Path) -> None:
    receiver = Receiver(short_dir / "socket")
    log = JsonLog(target="journal", socket_path=str(receiver.path), ident="typoguard-sink")
    try:
        log.event("warning", "sink_flush_failed", error="database\nlocked")
        log.record_json(b'{"event":"decision","recipient":"bob@army.ml"}')
        log.flush()
        messages = wait_until("2 datagrams", lambda: len(receiver.take()) >= 2 and receiver.got)
    finally:
        log.close()
        receiver.close()
    first, second = map(journal_fields, messages)
    assert first["PRIORITY"] == b"4" and second["PRIORITY"] == b"6"
    assert first["SYSLOG_IDENTIFIER"] == second["SYSLOG_IDENTIFIER"] == b"typoguard-sink"
    assert first["SYSLOG_FACILITY"] == b"2"
    assert (first["TYPOGUARD_EVENT"], second["TYPOGUARD_EVENT"]) == (b"sink_flush_failed", b"decision")
    assert json.loads(first["MESSAGE"])["error"] == "database\nlocked"
    assert json.loads(second["MESSAGE"])["recipient"] == "bob@army.ml"


def test_a_journal_field_with_a_newline_uses_the_binary_safe_form() -> None:
    assert journal_field(b"MESSAGE", b"one line") == b"MESSAGE=one line\n"
    packed = journal_field(b"MESSAGE", b"two\nlines")
    assert packed == b"MESSAGE\n" + (9).to_bytes(8, "little") + b"two\nlines\n"
    assert journal_fields(packed + journal_field(b"PRIORITY", b"6")) == {
        "MESSAGE": b"two\nlines",
        "PRIORITY": b"6",
    }


class Journald:
    """A private ``systemd-journald`` (a journal namespace, as ``systemd-journald@.service`` runs it), read
    back with ``journalctl --namespace``."""

    def __init__(self) -> None:
        self.binary = need("/lib/systemd/systemd-journald")
        self.journalctl = need("journalctl")
        if os.geteuid() != 0:
            pytest.skip("a journald instance needs root")
        machine_id = Path("/etc/machine-id").read_text().strip() if Path("/etc/machine-id").exists() else ""
        if not machine_id:
            pytest.skip("journald needs /etc/machine-id")
        self.namespace = f"tglog{os.getpid()}"
        self.run_dir = Path(f"/run/systemd/journal.{self.namespace}")
        self.stores = [
            Path(d, f"{machine_id}.{self.namespace}") for d in ("/var/log/journal", "/run/log/journal")
        ]
        self.proc = subprocess.Popen(
            [self.binary, self.namespace], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.socket = self.run_dir / "socket"
        self.dev_log = self.run_dir / "dev-log"
        wait_until("journald's sockets", lambda: self.socket.exists() and self.dev_log.exists())

    def entries(self, **match: str) -> list[dict[str, Any]]:
        out = subprocess.run(
            [self.journalctl, f"--namespace={self.namespace}", "-o", "json", "--no-pager",
             *(f"{k}={v}" for k, v in match.items())],
            capture_output=True, check=False, timeout=30,
        )  # fmt: skip
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        for store in self.stores:
            shutil.rmtree(store, ignore_errors=True)


@pytest.fixture
def journald() -> Iterator[Journald]:
    instance = Journald()
    try:
        yield instance
    finally:
        instance.close()


def test_a_real_journald_stores_the_records_with_their_fields(
    typoguard_exe: str, short_dir: Path, journald: Journald
) -> None:
    with serve(typoguard_exe, short_dir, f'target = "journal"\njournal_socket = "{journald.socket}"') as svc:
        svc.ask("bob@army.ml")
        pid = svc.proc.pid
        entries = wait_until(
            "the decision in the journal", lambda: journald.entries(TYPOGUARD_EVENT="decision")
        )
        assert svc.stop() == 0
    [entry] = entries
    assert entry["SYSLOG_IDENTIFIER"] == "typoguard" and entry["_PID"] == str(pid)
    assert (entry["PRIORITY"], entry["SYSLOG_FACILITY"], entry["_TRANSPORT"]) == ("6", "2", "journal")
    assert json.loads(entry["MESSAGE"])["recipient"] == "bob@army.ml"
    stopped = wait_until("stopped", lambda: journald.entries(TYPOGUARD_EVENT="stopped"))
    assert stopped[0]["SYSLOG_IDENTIFIER"] == "typoguard"
    # A value with a newline, in the binary-safe form, is stored as it was.
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(journal_field(b"MESSAGE", b"two\nlines") + journal_field(b"TYPOGUARD_EVENT", b"probe"),
                    str(journald.socket))  # fmt: skip
    [probe] = wait_until("the probe", lambda: journald.entries(TYPOGUARD_EVENT="probe"))
    assert probe["MESSAGE"] == "two\nlines"


def test_syslog_records_parse_in_journald_as_mail_facility_with_identifier_and_pid(
    typoguard_exe: str, short_dir: Path, journald: Journald
) -> None:
    """journald owns /dev/log on a systemd machine: the syslog target's lines must parse there."""
    log = f'target = "syslog"\nsyslog_socket = "{journald.dev_log}"'
    with serve(typoguard_exe, short_dir, log) as svc:
        svc.ask("bob@army.ml")
        pid = svc.proc.pid
        entries = wait_until("the decision", lambda: [
            e for e in journald.entries(SYSLOG_IDENTIFIER="typoguard") if '"decision"' in e.get("MESSAGE", "")
        ])  # fmt: skip
        assert svc.stop() == 0
    [entry] = entries
    assert (entry["_TRANSPORT"], entry["SYSLOG_FACILITY"], entry["PRIORITY"]) == ("syslog", "2", "6")
    assert entry["SYSLOG_PID"] == str(pid) and "SYSLOG_TIMESTAMP" in entry
    assert json.loads(entry["MESSAGE"])["recipient"] == "bob@army.ml"


# ------------------------------------------------------------------------------------------- rsyslog
RSYSLOG_CONF = """
global(workDirectory="{dir}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{socket}" CreatePath="on")
template(name="fields" type="string"
         string="%syslogfacility-text%|%syslogseverity-text%|%programname%|%procid%|%msg%\\n")
mail.* action(type="omfile" file="{dir}/mail.log" template="fields")
*.*;mail.none action(type="omfile" file="{dir}/other.log" template="fields")
"""


def test_rsyslog_files_the_records_with_postfixs_mail_lines(typoguard_exe: str, short_dir: Path) -> None:
    rsyslogd = need("rsyslogd")
    sock = short_dir / "log"
    (short_dir / "rsyslog.conf").write_text(RSYSLOG_CONF.format(dir=short_dir, socket=sock))
    daemon = subprocess.Popen(
        [rsyslogd, "-n", "-f", str(short_dir / "rsyslog.conf"), "-i", str(short_dir / "rsyslogd.pid")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    mail_log = short_dir / "mail.log"
    try:
        wait_until("rsyslogd's socket", sock.exists)
        with serve(typoguard_exe, short_dir, f'target = "syslog"\nsyslog_socket = "{sock}"') as svc:
            svc.ask("bob@army.ml")
            pid = svc.proc.pid
            line = wait_until("the decision in mail.log", lambda: mail_log.exists() and next(
                (ln for ln in mail_log.read_text().splitlines() if '"decision"' in ln), None))  # fmt: skip
            assert svc.stop() == 0
    finally:
        daemon.terminate()
        daemon.wait(10)
    facility, severity, program, procid, message = line.split("|", 4)
    assert (facility, severity, program, procid) == ("mail", "info", "typoguard", str(pid))
    assert json.loads(message)["recipient"] == "bob@army.ml"
    other = short_dir / "other.log"
    assert not other.exists() or "typoguard" not in other.read_text()


# ----------------------------------------------------------------------------------------- logrotate
SNIPPET = ROOT / "debian" / "typoguard.logrotate"
UNITS = ("typoguard.service", "typoguard-relay.service", "typoguard-sink.service")


def test_the_logrotate_snippet_is_valid_and_rotates_what_the_docs_say(tmp_path: Path) -> None:
    logrotate = need("logrotate")
    text = SNIPPET.read_text()
    assert "/var/log/typoguard/*.log {" in text
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "typoguard.log").write_text('{"event":"x"}\n')
    conf = text.replace("/var/log/typoguard", str(logs))
    try:
        pwd.getpwnam("typoguard")
    except KeyError:  # the package creates the user; on a machine without it, rotate as root
        conf = conf.replace("su typoguard typoguard", "su root root")
        conf = conf.replace("create 0640 typoguard typoguard", "create 0640 root root")
    (tmp_path / "typoguard").write_text(conf)

    def debug(*force: str) -> str:
        out = subprocess.run(
            [logrotate, "-d", *force, "-s", str(tmp_path / "state"), str(tmp_path / "typoguard")],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        said = out.stdout + out.stderr
        assert out.returncode == 0, said
        assert "error" not in said.lower(), said
        return said

    assert f"rotating pattern: {logs}/*.log  after 1 days (14 rotations)" in debug()
    said = debug("-f")  # what a rotation does
    assert f"renaming {logs}/typoguard.log to {logs}/typoguard.log.1" in said
    assert f"creating new {logs}/typoguard.log mode = 0640" in said
    assert "running postrotate script" in said
    script = text.split("postrotate", 1)[1].split("endscript", 1)[0]
    assert subprocess.run(["sh", "-n", "-c", script], check=False).returncode == 0
    for unit in UNITS:  # HUP each unit that exists in the package
        assert unit in script and (ROOT / "debian" / "systemd" / unit).exists()
        assert "ExecReload=/bin/kill -HUP $MAINPID" in (ROOT / "debian" / "systemd" / unit).read_text()
    systemctl = shutil.which("systemctl")
    if systemctl:  # this systemctl knows the options (outside systemd it fails later, on the bus)
        ran = subprocess.run([systemctl, "kill", "--kill-whom=main", "--signal=HUP", "tg-none.service"],
                             capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
        assert "unrecognized option" not in ran.stderr and "invalid" not in ran.stderr.lower(), ran.stderr


def test_the_package_installs_the_snippet_as_etc_logrotate_d_typoguard(tmp_path: Path) -> None:
    tool = shutil.which("dh_installlogrotate")
    if tool is None:
        pytest.skip("debhelper is not installed (scripts/install-deb-deps.sh installs it)")
    shutil.copytree(ROOT / "debian", tmp_path / "debian")
    subprocess.run([tool, "-ptypoguard"], cwd=tmp_path, check=True, timeout=60)
    installed = tmp_path / "debian" / "typoguard" / "etc" / "logrotate.d" / "typoguard"
    assert installed.read_text() == SNIPPET.read_text()


def test_a_log_file_that_cannot_be_written_says_so_on_stderr_once_and_when_it_recovers(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # A full disk (/dev/full answers every write with ENOSPC): deciding goes on, but the decision records
    # are lost, and the admin must hear of it where a service's errors go (stderr: journald, the
    # supervisor), not only in a counter.
    log = JsonLog(path="/dev/full")
    for n in range(3):
        log.event("info", "decision", n=n)
        log.flush()
    err = [json.loads(line) for line in capfd.readouterr().err.splitlines()]
    assert [(e["level"], e["event"], e["path"]) for e in err] == [("error", "log_write_failed", "/dev/full")]
    assert "No space left on device" in err[0]["error"] and log.write_errors == 3
    # The file is writable again (here: the same log pointed at a real file): one line says how many
    # records were lost meanwhile, and the next failure is reported again.
    log.path = str(tmp_path / "decisions.log")
    log.reopen()
    log.event("info", "decision", n=3)
    log.flush()
    err = [json.loads(line) for line in capfd.readouterr().err.splitlines()]
    assert [(e["event"], e["lost_records"]) for e in err] == [("log_write_recovered", 3)]
    assert '"n":3' in (tmp_path / "decisions.log").read_text()


def test_decision_records_carry_the_millisecond_they_were_logged_in_even_when_the_clock_steps_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The line head is formatted once per millisecond; a clock stepped back (NTP, an administrator) must
    # not leave later records with the time of the first.
    from typoguard import obs

    log = JsonLog(path=str(tmp_path / "decisions.log"))
    clock = iter(
        [1_800_000_000.0004, 1_800_000_000.0009, 1_800_000_000.0012, 1_799_999_990.5, 1_800_000_000.0012]
    )
    monkeypatch.setattr(obs, "_now", lambda: next(clock))
    for n in range(5):
        log.record_json(b'{"event":"decision","n":%d}' % n)
    log.flush()
    lines = [json.loads(line) for line in (tmp_path / "decisions.log").read_text().splitlines()]
    assert [(r["time"], r["n"]) for r in lines] == [
        ("2027-01-15T08:00:00.000Z", 0),
        ("2027-01-15T08:00:00.000Z", 1),
        ("2027-01-15T08:00:00.001Z", 2),
        ("2027-01-15T07:59:50.500Z", 3),
        ("2027-01-15T08:00:00.001Z", 4),
    ]
