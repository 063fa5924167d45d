"""Observability for the services: JSON log lines and Prometheus metrics.

Both sit on the hot path of the policy service (one log line and a handful of counters per request, tens
of thousands of requests a second), so neither uses the general-purpose machinery per event:

* ``JsonLog`` formats each record with orjson and *buffers* it; the owner flushes a few milliseconds
  after the first record of a batch (``flush_soon`` hook; the policy service: 5 ms), so a busy service
  costs at most a couple of hundred ``write(2)`` a second, not one per request or per loop turn. The
  timestamp's seconds part is formatted once a second. Its target (``[log] target``, ADR 0023) is standard
  error, a file (reopened on SIGHUP), or one datagram per record to the local syslog daemon (``/dev/log``,
  RFC 3164 as glibc's syslog(3) sends it) or to journald (its native protocol, with fields). A datagram
  target never blocks the event loop: while the daemon is behind, records wait here (and are retried
  every few ms); when its socket is gone, they go to standard error, with one warning, until it is back.
* ``PolicydMetrics`` keeps plain integers and a bucketed latency array; ``PolicydCollector`` turns them
  into Prometheus families only when scraped. prometheus-client's own ``Counter.inc()`` takes a lock and
  ``Histogram.observe()`` walks every bucket, which is measurable at this rate.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import errno
import os
import select
import socket
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, Final, Protocol

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from typoguard.core.names import printable as _printable  # text orjson can encode (no lone surrogates)
from typoguard.errors import ConfigError

LEVELS: Final = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_now = time.time
_FLUSH_AT = 1 << 16  # bytes; flush at once beyond this, whatever the owner's schedule


MAX_LOGGED_ADDRESS: Final = 254  # the longest address a path can carry (RFC 5321 4.5.3.1.3)
_CLIPPED_PREFIX: Final = 64


def clip_address(text: str) -> str:
    """An address as the decision log and the store keep it: whole up to ``MAX_LOGGED_ADDRESS`` characters;
    a longer one cannot be valid, and a client must not make us write 8 KB a request to disk: its first 64
    characters, then ``...[truncated, N chars]`` (N its whole length)."""
    if len(text) <= MAX_LOGGED_ADDRESS:
        return text
    return f"{text[:_CLIPPED_PREFIX]}...[truncated, {len(text)} chars]"


_DATAGRAM_TARGETS: Final = {"syslog": "/dev/log", "journal": "/run/systemd/journal/socket"}
_SEVERITY: Final = {b"debug": b"7", b"info": b"6", b"warning": b"4", b"error": b"3"}  # syslog severities
_MONTHS: Final = tuple(b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())  # never localised
_AFTER_TIME: Final = len(b'{"time":"2026-11-27T00:27:31.450Z",')  # where a line's second key starts
_RETRY_SECONDS: Final = 0.005  # a daemon that is behind: records kept, sent again this much later
_BACKLOG_MAX: Final = 4 << 20  # bytes kept for a daemon that is behind; beyond, they go to standard error
_WAIT_SECONDS: Final = 1.0  # at exit (``close``): wait this long for a daemon that is behind
_SYNC_WAIT_SECONDS: Final = 0.05  # without an event loop (a supervisor, a thread): this long per flush
_RECONNECT_SECONDS: Final = 30.0  # after the socket was gone: try it again this often (and on SIGHUP)
_SNDBUF: Final = 8 << 20  # as libsystemd's journal socket: room for bursts (capped by net.core.wmem_max)


class LogSettings(Protocol):
    """What a service's log is opened from: ``typoguard.config.LogConfig``."""

    @property
    def level(self) -> str: ...
    @property
    def file(self) -> str: ...
    @property
    def destination(self) -> str: ...
    @property
    def syslog_socket(self) -> str: ...
    @property
    def journal_socket(self) -> str: ...
    @property
    def facility_code(self) -> int: ...


def level_and_event(line: bytes) -> tuple[bytes, bytes]:
    """The ``level`` (``info`` for a decision record, which has none) and ``event`` (or empty) of a log
    line as ``JsonLog`` writes it: ``{"time":"...","level":"...","event":"...",...}`` or
    ``{"time":"...","event":"decision",...}``; read off the bytes, not parsed (one per record, at the
    policy service's rate)."""
    level, at = b"info", _AFTER_TIME
    if line.startswith(b'"level":"', at):
        end = line.find(b'"', at + 9)
        level, at = line[at + 9 : end], end + 2
    if line.startswith(b'"event":"', at):
        return level, line[at + 9 : line.find(b'"', at + 9)]
    return level, b""


def journal_field(name: bytes, value: bytes) -> bytes:
    """One field of journald's native protocol: ``NAME=value\n``, or for a value with a newline the
    binary-safe form ``NAME\n`` + its length (64-bit little-endian) + value + ``\n``."""
    if b"\n" not in value:
        return name + b"=" + value + b"\n"
    return name + b"\n" + len(value).to_bytes(8, "little") + value + b"\n"


class _Datagrams:
    """One record per datagram to a local UNIX socket: the syslog daemon (``/dev/log``) or journald.

    The socket is non-blocking and connected once (a daemon that restarts makes a new socket at the same
    path: ``connect`` again). ``send`` raises ``BlockingIOError`` when the daemon is behind, another
    ``OSError`` when it is gone.
    """

    def __init__(self, kind: str, path: str, ident: str, facility: int) -> None:
        self.kind, self.path = kind, path
        self.ident = ident.encode()
        self.facility = facility
        self.sock: socket.socket | None = None
        self._sec = -1
        self._head = b""  # syslog: "Mmm dd hh:mm:ss ident[pid]: " of the current second
        self._journal_head = b"\nSYSLOG_FACILITY=%d\nSYSLOG_IDENTIFIER=%s\n" % (facility, self.ident)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        try:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SNDBUF)
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.close()
        self.sock = sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def send(self, line: bytes) -> None:
        if self.sock is None:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "not connected")
        self.sock.send(self.datagram(line))

    def datagram(self, line: bytes) -> bytes:
        """The message for one log line (its trailing newline dropped)."""
        level, event = level_and_event(line)
        severity = _SEVERITY.get(level, b"6")
        if self.kind == "journal":
            return (
                b"PRIORITY=" + severity + self._journal_head
                + (journal_field(b"TYPOGUARD_EVENT", event) if event else b"")
                + journal_field(b"MESSAGE", line.rstrip(b"\n"))
            )  # fmt: skip
        # RFC 3164 as glibc's syslog(3) writes it to /dev/log: <PRI>Mmm dd hh:mm:ss ident[pid]: message
        # (no host name: the local daemon adds it); PRI = facility * 8 + severity.
        sec = int(time.time())
        if sec != self._sec:
            self._sec = sec
            t = time.localtime(sec)
            self._head = b"%s %2d %02d:%02d:%02d %s[%d]: " % (
                _MONTHS[t.tm_mon - 1],
                t.tm_mday,
                t.tm_hour,
                t.tm_min,
                t.tm_sec,
                self.ident,
                os.getpid(),
            )
        return b"<%d>" % (self.facility * 8 + int(severity)) + self._head + line.rstrip(b"\n")


class JsonLog:
    """JSON lines (one object per line, ``time`` first), buffered, to a target (ADR 0023): standard error, a
    file, the local syslog daemon or journald."""

    def __init__(
        self,
        *,
        level: str = "info",
        path: str = "",
        stream: IO[bytes] | None = None,
        target: str = "",
        ident: str = "typoguard",
        socket_path: str = "",
        facility: int = 2,  # mail
    ) -> None:
        if level not in LEVELS:
            raise ConfigError(f"[log] level must be one of {', '.join(LEVELS)}, got {level!r}")
        self.threshold = LEVELS[level]
        self.target = target or ("file" if path else "stderr")
        if self.target not in ("stderr", "file", *_DATAGRAM_TARGETS):
            raise ConfigError(f"[log] target {self.target!r} is unknown")
        self.path = path if self.target == "file" else ""
        self.ident = ident
        self._stream = stream
        self._chunks: list[bytes] = []
        self._size = 0
        self._sec = -1
        self._sec_text = ""
        self._ms = -1
        self._ms_text = b""
        # The current millisecond [from, until) in time.time() seconds and its line head b'{"time":"...",':
        # a record in the same millisecond costs two comparisons (a clock set back leaves the range too).
        self._head_from = self._head_until = 0.0
        self._head = b""
        self.flush_soon: Callable[[], None] | None = None  # set by an event loop owner
        self.write_errors = 0
        self.lost_records = 0  # records a failing file did not take, in the current spell
        self.fallback_records = 0  # records written to standard error because the target failed or lagged
        self._datagrams: _Datagrams | None = None
        self._down_since = 0.0  # monotonic time the datagram target failed; 0: it works
        self._retry_armed = False
        self._lagging = False  # the last flush left records for a daemon that is behind
        self._warned_behind = False  # records were spilled to stderr in this spell (one warning each)
        if self.target in _DATAGRAM_TARGETS:
            self._fd = sys.stderr.fileno()  # where records go while the daemon's socket is gone
            self._datagrams = _Datagrams(
                self.target, socket_path or _DATAGRAM_TARGETS[self.target], ident, facility
            )
            try:
                self._datagrams.connect()
            except OSError as exc:
                self._fall_back(exc)
        else:
            self._fd = self._open()

    @classmethod
    def for_service(cls, settings: LogSettings, ident: str) -> JsonLog:
        """The log of one service (``ident``: ``typoguard``, ``typoguard-relay`` ...) as ``[log]`` says."""
        target = settings.destination
        return cls(
            level=settings.level,
            path=settings.file,
            target=target,
            ident=ident,
            socket_path=settings.journal_socket if target == "journal" else settings.syslog_socket,
            facility=settings.facility_code,
        )

    def _open(self) -> int:
        if self._stream is not None:
            return self._stream.fileno()
        if not self.path:
            return sys.stderr.fileno()
        try:
            return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise ConfigError(f"[log] file {self.path}: {exc.strerror or exc}") from None

    def reopen(self) -> None:
        """SIGHUP: reopen the log file (after logrotate moved it: every record queued before goes to the old
        file, every later one to the new), or connect the syslog/journal socket again; standard error is
        left alone. A file that cannot be opened keeps the old one (with a warning)."""
        self.flush()
        if self._datagrams is not None:
            self._reconnect("reopen")
            self.flush()
            return
        if not self.path or self._stream is not None:
            return
        try:
            fd = self._open()
        except ConfigError as exc:
            self.event(
                "warning", "log_reopen_failed", file=self.path, error=str(exc), then="kept the old file"
            )
            self.flush()
            return
        old, self._fd = self._fd, fd
        os.close(old)

    def close(self) -> None:
        self.flush(wait=True)
        if self._datagrams is not None:
            self._datagrams.close()
        elif self.path and self._stream is None:
            os.close(self._fd)

    def enabled(self, level: str) -> bool:
        return LEVELS[level] >= self.threshold

    def timestamp(self) -> bytes:
        """UTC, millisecond precision, ISO 8601 (``2026-11-27T00:27:31.450Z``); formatted once per ms."""
        return self._stamp(int(time.time() * 1000))

    def _stamp(self, ms: int) -> bytes:
        if ms != self._ms:
            self._ms = ms
            sec, frac = divmod(ms, 1000)
            if sec != self._sec:
                self._sec = sec
                self._sec_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            self._ms_text = f"{self._sec_text}.{frac:03d}Z".encode()
        return self._ms_text

    def record(self, fields: dict[str, Any]) -> None:
        """Queue one record; ``fields`` should not hold ``time`` (it is put first here)."""
        try:
            body = orjson.dumps(fields)
        except TypeError:  # a str with lone surrogates (invalid UTF-8 from the wire), or an odd type
            clean = {k: _printable(v) if isinstance(v, str) else v for k, v in fields.items()}
            body = orjson.dumps(clean, default=str)
        # {"time":"...",<the fields>}: spliced as bytes rather than copying the dict
        self.append_line(self.line(body) if len(body) > 2 else b'{"time":"' + self.timestamp() + b'"}\n')

    def record_json(self, body: bytes) -> None:
        """Queue one record already serialised as a JSON object (without ``time``: it is put first here):
        a decision record, one per recipient, so its line head is formatted once per millisecond."""
        now = _now()
        if not self._head_from <= now < self._head_until:
            self._new_head(now)
        self.append_line(self._head + body[1:] + b"\n")

    def _new_head(self, now: float) -> None:
        ms = int(now * 1000)
        self._head_from, self._head_until = ms / 1000, (ms + 1) / 1000
        self._head = b'{"time":"' + self._stamp(ms) + b'",'

    def line(self, body: bytes) -> bytes:
        """The log line for a record serialised as a JSON object without ``time``."""
        return b'{"time":"' + self.timestamp() + b'",' + body[1:] + b"\n"

    def append_line(self, line: bytes) -> None:
        """Queue one complete line (see ``line``); flushed at once beyond ``_FLUSH_AT`` bytes or without a
        ``flush_soon`` hook, else the hook is asked once per batch."""
        self._chunks.append(line)
        self._size += len(line)
        if self._size >= _FLUSH_AT or self.flush_soon is None:
            self.flush()
        elif len(self._chunks) == 1:
            self.flush_soon()

    def event(self, level: str, event: str, **fields: Any) -> None:
        """A non-decision record (startup, reload, errors)."""
        if LEVELS[level] >= self.threshold:
            self.record({"level": level, "event": event, **fields})

    def flush(self, *, wait: bool = False) -> None:
        """Write what is queued: one ``write(2)`` to a file or standard error, one datagram per record to
        syslog or journald. ``wait``: give a daemon that is behind up to a second (at exit)."""
        if not self._chunks:
            return
        if self._datagrams is not None:
            if self._down_since and time.monotonic() - self._down_since >= _RECONNECT_SECONDS:
                self._reconnect("retry")
            if not self._down_since:
                self._send_datagrams(at_exit=wait)
                return
            self.fallback_records += len(self._chunks)
        records = len(self._chunks)
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._size = 0
        self._write(data, records)

    def _write(self, data: bytes, records: int = 1) -> None:
        try:
            while data:
                n = os.write(self._fd, data)
                data = data[n:]
        except OSError as exc:
            # The log sink is gone (closed pipe, full disk). Deciding goes on; the metric counts it, and
            # standard error (journald, the supervisor) hears of it once per spell.
            self.write_errors += 1
            if not self.lost_records:
                self._tell_stderr(
                    "error", "log_write_failed", error=exc.strerror or str(exc),
                    then="deciding goes on; records are lost until the log can be written again",
                )  # fmt: skip
            self.lost_records += records
            return
        if self.lost_records:
            self._tell_stderr("info", "log_write_recovered", lost_records=self.lost_records)
            self.lost_records = 0

    def _tell_stderr(self, level: str, event: str, **fields: Any) -> None:
        """A line about the log file itself on standard error (unless the log is standard error)."""
        if self.target != "file":
            return
        with contextlib.suppress(OSError):
            os.write(2, self._notice(level, event, path=self.path, **fields))

    # ------------------------------------------------------------------ syslog and journald
    def _send_datagrams(self, *, at_exit: bool) -> None:
        """Each queued record as a datagram, in order, until the daemon is behind or gone (the rest goes
        to standard error). Behind: in an event loop the rest stays queued and is tried again in
        ``_RETRY_SECONDS``, the loop never waits; without one (a supervisor, a thread) this waits up to
        ``_SYNC_WAIT_SECONDS`` once, then keeps the rest for the next flush; at exit up to
        ``_WAIT_SECONDS``."""
        dgrams, chunks = self._datagrams, self._chunks
        assert dgrams is not None
        in_loop = _in_event_loop()
        patience = _WAIT_SECONDS if at_exit else 0.0 if in_loop or self._lagging else _SYNC_WAIT_SECONDS
        deadline = time.monotonic() + patience
        sent, reconnected = 0, False
        while sent < len(chunks):
            try:
                dgrams.send(chunks[sent])
            except OSError as exc:
                if isinstance(exc, BlockingIOError) or exc.errno == errno.ENOBUFS:  # the daemon is behind
                    if patience and _writable(dgrams, deadline):
                        continue
                    break
                if exc.errno == errno.EMSGSIZE:  # larger than a datagram can be: this record to stderr
                    self.fallback_records += 1
                    self._write(chunks[sent])
                elif not reconnected and self._reconnect(""):  # the daemon restarted: a new socket
                    reconnected = True
                    continue
                else:  # gone: the daemon stopped, or its socket moved
                    self._fall_back(exc)
                    self.fallback_records += len(chunks) - sent
                    self._write(b"".join(chunks[sent:]))
                    sent = len(chunks)
                    break
            sent += 1
        self._size -= sum(map(len, chunks[:sent]))  # only what went: a long backlog is not summed again
        del chunks[:sent]
        self._lagging = bool(chunks)
        if not chunks:
            self._warned_behind = False  # caught up: a later spell gets its own warning
            return
        if at_exit:
            self._spill("the daemon did not take them within a second")
        elif self._size > _BACKLOG_MAX:
            self._spill(f"the daemon is behind by more than {_BACKLOG_MAX >> 20} MiB")
        elif in_loop:
            self._retry_soon()

    def _spill(self, why: str) -> None:
        """Queued records to standard error (counted), with one warning per spell of a lagging daemon."""
        records = len(self._chunks)
        self.fallback_records += records
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._size = 0
        if not self._warned_behind:
            self._warned_behind = True
            self._write(self._notice("warning", "log_target_behind", records=records, reason=why))
        self._write(data)

    def _retry_soon(self) -> None:
        if not self._retry_armed:
            self._retry_armed = True
            asyncio.get_running_loop().call_later(_RETRY_SECONDS, self._retry)

    def _retry(self) -> None:
        self._retry_armed = False
        self.flush()

    def _fall_back(self, exc: OSError) -> None:
        """The socket is gone: standard error from now on, with one warning; tried again every 30 s and on
        SIGHUP (``reopen``)."""
        assert self._datagrams is not None
        self._datagrams.close()
        self._down_since = time.monotonic()
        then = f"logging to standard error; trying the socket again every {_RECONNECT_SECONDS:.0f} s"
        error = exc.strerror or str(exc)
        self._write(self._notice("warning", "log_target_failed", socket=self._datagrams.path, error=error,
                                 then=then))  # fmt: skip

    def _reconnect(self, restored_by: str) -> bool:
        """A new socket to the daemon (True), or False. After a fall-back, the first record on the socket
        (and one on standard error) says it is back."""
        assert self._datagrams is not None
        try:
            self._datagrams.connect()
        except OSError:
            if self._down_since:
                self._down_since = time.monotonic()
            return False
        if self._down_since:
            self._down_since = 0.0
            note = self._notice("info", "log_target_restored", socket=self._datagrams.path, by=restored_by)
            self._write(note)
            self._chunks.insert(0, note)
            self._size += len(note)
        return True

    def _notice(self, level: str, event: str, **fields: Any) -> bytes:
        """A line about the log itself, written where it must go rather than queued."""
        return self.line(orjson.dumps({"level": level, "event": event, "target": self.target, **fields}))


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _writable(dgrams: _Datagrams, deadline: float) -> bool:
    """Wait (without an event loop) until the daemon takes datagrams again or ``deadline`` passes."""
    left = deadline - time.monotonic()
    if left <= 0 or dgrams.sock is None:
        return False
    poller = select.poll()
    poller.register(dgrams.sock, select.POLLOUT)
    return bool(poller.poll(left * 1000))


# Latency buckets in seconds: the interesting range of a local policy answer is 10 us .. 10 ms.
LATENCY_BUCKETS: Final = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0,
)  # fmt: skip


class PolicydMetrics:
    """Counters of the policy service as plain numbers (single-threaded: only the event loop writes)."""

    def __init__(self) -> None:
        self.decisions: dict[tuple[str, str], int] = {}  # (action, mode) -> count
        self.errors: dict[str, int] = {}  # kind -> count
        self.reloads: dict[str, int] = {"ok": 0, "failed": 0}
        self.connections_open = 0
        self.connections_total = 0
        self.connections_refused = 0
        self.connections_shed: dict[str, int] = {}  # reason (per_client, max_connections) -> count
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.config_loaded_at = time.time()
        self.protected_domains = 0

    feed: Any = None  # a store.feed.DecisionFeed when decisions are stored (its backlog is exported)
    retention: Any = None  # a store.retention.RetentionTask when [store] keep_days prunes
    watch: Any = None  # a watch.companion.Watch when [watch] enabled runs rounds in this process
    milter: Any = None  # a milter.server.MilterServer when [milter] listen runs it in this process

    def decision(self, action: str, mode: str, seconds: float) -> None:
        key = (action, mode)
        self.decisions[key] = self.decisions.get(key, 0) + 1
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def _milter_metrics(milter: Any, log: JsonLog | None = None) -> Iterator[Any]:
    """The milter's counters (``[milter] listen`` under ``typoguard serve``), named as the policy service's
    are. Decisions are counted by action; their mode is the one in force (a reload may change it)."""
    mode = milter.decider.mode
    decisions = CounterMetricFamily(
        "typoguard_milter_decisions",
        "Milter recipients decided, by verdict action and mode",
        labels=["action", "mode"],
    )
    for action, n in sorted(dict(milter.decisions).items()):
        decisions.add_metric([action, mode], n)
    yield decisions
    errors = CounterMetricFamily(
        "typoguard_milter_errors",
        "Milter connections closed on a protocol error, or recipients whose decision failed (on_error)",
        labels=["kind"],
    )
    for kind, n in sorted(dict(milter.errors).items()):
        errors.add_metric([kind], n)
    if log is not None and log.write_errors:  # its own log (under serve: on the policy service's errors)
        errors.add_metric(["log_write"], log.write_errors)
    if log is not None and log.fallback_records:
        errors.add_metric(["log_fallback"], log.fallback_records)
    yield errors
    yield GaugeMetricFamily(
        "typoguard_milter_connections", "Open milter connections", len(milter.connections)
    )
    yield CounterMetricFamily(
        "typoguard_milter_connections_accepted", "Milter connections accepted", milter.connections_total
    )


class PolicydCollector(Collector):
    """Exposes a ``PolicydMetrics`` in Prometheus' text format at scrape time."""

    def __init__(self, metrics: PolicydMetrics, log: JsonLog | None = None) -> None:
        self.metrics = metrics
        self.log = log

    def collect(self) -> Iterator[Any]:
        m = self.metrics
        decisions = CounterMetricFamily(
            "typoguard_policyd_decisions",
            "Policy requests answered, by verdict action and mode",
            labels=["action", "mode"],
        )
        for (action, mode), n in sorted(dict(m.decisions).items()):
            decisions.add_metric([action, mode], n)
        yield decisions
        errors = CounterMetricFamily(
            "typoguard_policyd_errors", "Connections dropped or requests failed, by kind", labels=["kind"]
        )
        for kind, n in sorted(dict(m.errors).items()):
            errors.add_metric([kind], n)
        if self.log is not None and self.log.write_errors:
            errors.add_metric(["log_write"], self.log.write_errors)
        if self.log is not None and self.log.fallback_records:  # [log] target syslog/journal failed or lagged
            errors.add_metric(["log_fallback"], self.log.fallback_records)
        yield errors
        counts = list(m.latency_counts)
        buckets, running = [], 0
        for bound, n in zip((*map(str, LATENCY_BUCKETS), "+Inf"), counts, strict=True):
            running += n
            buckets.append((bound, running))
        yield HistogramMetricFamily(
            "typoguard_policyd_request_seconds",
            "Time to decide one policy request (server side)",
            buckets=buckets,
            sum_value=m.latency_sum,
        )
        yield GaugeMetricFamily(
            "typoguard_policyd_connections", "Open policy connections", m.connections_open
        )
        yield CounterMetricFamily(
            "typoguard_policyd_connections_accepted", "Policy connections accepted", m.connections_total
        )
        yield CounterMetricFamily(
            "typoguard_policyd_connections_refused",
            "Connections closed at once: draining, or full and every connection in the middle of a request",
            m.connections_refused,
        )
        shed = CounterMetricFamily(
            "typoguard_policyd_connections_shed",
            "Idle connections closed to make room for a new one, by the cap that was reached",
            labels=["reason"],
        )
        for reason, n in sorted(m.connections_shed.items()):
            shed.add_metric([reason], n)
        yield shed
        reloads = CounterMetricFamily(
            "typoguard_policyd_reloads", "Config reloads (SIGHUP)", labels=["result"]
        )
        for result, n in sorted(m.reloads.items()):
            reloads.add_metric([result], n)
        yield reloads
        yield GaugeMetricFamily(
            "typoguard_config_loaded_timestamp_seconds",
            "When the active config was loaded",
            m.config_loaded_at,
        )
        yield GaugeMetricFamily(
            "typoguard_protected_domains", "Protected domains in the active index", m.protected_domains
        )
        if m.milter is not None:
            yield from _milter_metrics(m.milter)
        yield from store_families(m.feed, m.retention)
        if m.watch is not None:
            yield from watch_families(m.watch)


def store_families(feed: Any, retention: Any) -> Iterator[Any]:
    """The decision store's metrics: its writer process (``store.feed.DecisionFeed``) and retention
    (``store.retention.RetentionTask``), each None when the process has none."""
    if feed is not None:  # the decision store's writer process (typoguard serve with [store])
        spool = feed.spool_bytes()
        unsaved = feed.pending_bytes
        yield GaugeMetricFamily(
            "typoguard_store_backlog_bytes",
            "Decision bytes not yet stored: in the service's memory, with the writer, in the spool",
            unsaved + feed.unacked_bytes + spool,
        )
        yield GaugeMetricFamily(
            "typoguard_store_spool_bytes", "Decision bytes waiting in the spool directory", spool
        )
        yield GaugeMetricFamily(
            "typoguard_store_unsaved_bytes",
            "Decision bytes only in the service's memory (lost if the service is killed with -9)",
            unsaved,
        )
        yield CounterMetricFamily(
            "typoguard_store_spilled_bytes",
            "Decision log bytes written to the spool directory because the writer lagged",
            feed.spilled,
        )
        yield CounterMetricFamily(
            "typoguard_store_writer_restarts", "Decision writer processes restarted", feed.restarts
        )
        yield GaugeMetricFamily("typoguard_store_writer_up", "1 if the writer process runs", int(feed.alive))
    if retention is not None:  # [store] keep_days: the service deletes old rows itself
        pruned = CounterMetricFamily(
            "typoguard_store_pruned_rows",
            "Rows deleted by retention ([store] keep_days)",
            labels=["table"],
        )
        for table, n in sorted(retention.pruned.items()):
            pruned.add_metric([table], n)
        yield pruned
        yield CounterMetricFamily(
            "typoguard_store_prune_failures", "Retention runs that failed", retention.failures
        )
        yield GaugeMetricFamily(
            "typoguard_store_prune_last_success_timestamp_seconds",
            "When a retention run last completed (0: not yet)",
            retention.last_success,
        )
        yield GaugeMetricFamily(
            "typoguard_store_prune_last_duration_seconds",
            "How long the last completed retention run took",
            retention.last_seconds,
        )


def watch_families(watch: Any) -> Iterator[Any]:
    """The metrics of ``typoguard watch`` rounds and their alerts (a ``watch.companion.Watch``: plain counters
    written by the round's thread and the alerts' threads, read here at scrape time)."""
    rounds = CounterMetricFamily(
        "typoguard_watch_rounds",
        "Watch rounds by result: ok, failed (DNS unusable: nothing classified), error (store or config)",
        labels=["result"],
    )
    for result, n in sorted(dict(watch.results).items()):
        rounds.add_metric([result], n)
    yield rounds
    events = CounterMetricFamily(
        "typoguard_watch_events", "New watch events raised, by kind", labels=["kind"]
    )
    for kind, n in sorted(dict(watch.new_events).items()):
        events.add_metric([kind], n)
    yield events
    yield GaugeMetricFamily(
        "typoguard_watch_last_success_timestamp_seconds",
        "When a watch round last completed (0: not yet)",
        watch.last_success,
    )
    yield GaugeMetricFamily(
        "typoguard_watch_last_duration_seconds",
        "How long the last completed watch round took",
        watch.last_seconds,
    )
    labels = ["type", "name"]
    sent = CounterMetricFamily("typoguard_alerts_sent", "Events delivered, per [[alert]]", labels=labels)
    failed = CounterMetricFamily(
        "typoguard_alerts_failed", "Events given up after every retry, per [[alert]]", labels=labels
    )
    dropped = CounterMetricFamily(
        "typoguard_alerts_dropped",
        "Events dropped because the backlog was full, per [[alert]]",
        labels=labels,
    )
    attempts = CounterMetricFamily(
        "typoguard_alerts_attempts", "Delivery attempts (retries included), per [[alert]]", labels=labels
    )
    backlog = GaugeMetricFamily(
        "typoguard_alerts_backlog",
        "Events waiting to be delivered (queued, or in a batch waiting for its retry), per [[alert]]",
        labels=labels,
    )
    for s in watch.dispatcher.stats():
        key = [s["type"], s["name"]]
        sent.add_metric(key, s["sent"])
        failed.add_metric(key, s["failed"])
        dropped.add_metric(key, s["dropped"])
        attempts.add_metric(key, s["attempts"])
        backlog.add_metric(key, s["backlog"])
    yield from (sent, failed, dropped, attempts, backlog)


class WatchCollector(Collector):
    """The metrics page of the foreground ``typoguard watch`` (``[watch] metrics_listen``)."""

    def __init__(self, watch: Any) -> None:
        self.watch = watch

    def collect(self) -> Iterator[Any]:
        yield from watch_families(self.watch)


class MilterCollector(Collector):
    """The metrics page of ``typoguard milter`` on its own (``[milter] metrics_listen``): its counters (its
    log's lost records among its errors), what it protects, its reloads, the store's writer and retention."""

    def __init__(self, milter: Any, log: JsonLog, feed: Any = None, retention: Any = None) -> None:
        self.milter, self.log, self.feed, self.retention = milter, log, feed, retention

    def collect(self) -> Iterator[Any]:
        yield from _milter_metrics(self.milter, self.log)
        reloads = CounterMetricFamily(
            "typoguard_milter_reloads", "Config reloads (SIGHUP)", labels=["result"]
        )
        for result, n in sorted(self.milter.reloads.items()):
            reloads.add_metric([result], n)
        yield reloads
        yield GaugeMetricFamily(
            "typoguard_config_loaded_timestamp_seconds",
            "When the active config was loaded",
            self.milter.config_loaded_at,
        )
        yield GaugeMetricFamily(
            "typoguard_protected_domains",
            "Protected domains in the active index",
            self.milter.decider.protected_domains,
        )
        yield from store_families(self.feed, self.retention)


def metrics_registry(metrics: PolicydMetrics, log: JsonLog | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PolicydCollector(metrics, log))
    return registry
