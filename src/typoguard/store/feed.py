"""The decision feed: the policy service's decisions reach the store through a writer *process*.

The policy service already turns every decision into one JSON log line. The same bytes go down a pipe to
``python -m typoguard.store.feed`` (a child process at a low CPU priority), which parses them into
``DecisionEvent``s and hands them to a ``DecisionWriter`` (batches, spool, exactly-once replay). Why a
process and not the writer thread in the service (ADR 0008):

* a thread shares the GIL with the event loop: whatever CPU the writer uses (about as much per decision as
  the request itself) is taken from answering Postfix, whatever its ``nice`` value - a niced thread that
  holds the GIL makes the event loop wait;
* a process at ``nice 19`` under ``SCHED_IDLE`` (``lower_priority``) gets a spare core when there is one
  and only idle time when there is not: at saturation the log lags (pipe, then memory, then the spool
  hold the difference) and catches up after.

Parent side (``DecisionFeed``, event-loop thread only): ``append(line)`` is a list append; ``flush()``
(every 2,048 lines, and on a 50 ms timer) writes what the pipe takes without blocking, and when the pipe is
full waits for it to become writable (``loop.add_writer``). What the pipe does not take waits in memory
for at most ``MAX_WAIT_SECONDS`` (and ``[store] queue_size`` decisions' worth of bytes); then it is written
as it is to a file in the spool directory, which the writer process turns into spool rows and replays.
Every byte written to the pipe is kept until the writer reports it stored (ADR 0014); a writer process that
dies is restarted (at most once a second) and gets those bytes again, at the same stream offsets, so with
the same event ids: nothing is lost and nothing stored twice.

Child side (``main``): reads lines while fewer than ``READ_AHEAD_BATCHES`` batches wait to be written,
reports on standard output how far the stream is stored, until end of file (the service closed the pipe:
it is stopping, or it was killed), writes everything, exits 0. It ignores SIGTERM/SIGINT/SIGHUP: a
service manager signalling the whole process group must not make it drop decisions the service already
handed over; end of file is its only stop signal. If the database cannot be opened it spools lines and
keeps trying.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import datetime as _dt
import fcntl
import logging
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import orjson

from typoguard.store.decisions import DecisionEvent, row_dict
from typoguard.store.spool import Spool

log = logging.getLogger("typoguard.store.feed")

LINE_BYTES: Final = 512  # a decision line's typical size: turns ``queue_size`` (decisions) into bytes
BATCH_LINES: Final = 2048  # lines gathered before a write to the pipe ...
FLUSH_SECONDS: Final = 0.05  # ... or at most this long
PIPE_BYTES: Final = 1 << 20  # ask the kernel for a 1 MiB pipe (Linux; the default is 64 KiB)
_SKIPPED_ACTIONS: Final = frozenset({"skip", "ignored"})  # not guarded mail: logged, not stored


# --------------------------------------------------------------------------- line -> event
def _parse_time(text: str) -> float:
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return _dt.datetime.fromisoformat(text).timestamp()


def event_from_line(line: bytes, node: str) -> DecisionEvent | None:
    """The ``DecisionEvent`` in one decision log line; None for other records (``ValueError`` if broken)."""
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(rec, dict) or rec.get("event") != "decision":
        return None
    action = rec.get("action")
    if not isinstance(action, str) or action in _SKIPPED_ACTIONS:
        return None
    try:
        return DecisionEvent(
            time=_parse_time(rec["time"]),
            recipient=str(rec["recipient"]),
            action=action,
            domain=str(rec.get("domain") or ""),
            intended=rec.get("intended"),
            kind=rec.get("kind"),
            score=float(rec.get("score") or 0.0),
            sender=str(rec.get("sender") or ""),
            queue_id=str(rec.get("queue_id") or ""),
            node=node,
            mode=str(rec.get("mode") or "enforce"),
            reason=str(rec["reason"]) if rec.get("reason") else None,
            content=_content_json(rec.get("content")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a decision record: {exc}") from None


def _content_json(content: object) -> str | None:
    """The relay's content findings ({category: count}) as stored: compact JSON, or None."""
    return orjson.dumps(content, option=orjson.OPT_SORT_KEYS).decode() if isinstance(content, dict) else None


IOV_MAX: Final = 1024  # buffers per writev(2) (Linux UIO_MAXIOV)
MAX_WAIT_SECONDS: Final = 1.0  # longest a decision waits in the service's memory for a lagging writer


# --------------------------------------------------------------------------- parent side
class DecisionFeed:
    """Ships decision log lines to a writer process through a non-blocking pipe (event-loop thread only)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        spool_dir: Path,
        node: str,
        queue_size: int = 100_000,
        on_event: Callable[..., None] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.spool_dir = spool_dir
        self.node = node
        self.max_pending = max(1, queue_size) * LINE_BYTES
        self.on_event = on_event  # (level, event, **fields) -> None: the service's JSON log
        self.loop: asyncio.AbstractEventLoop | None = None  # set by the owner: wait for the pipe, not poll
        self._buf: list[bytes] = []
        self._chunks: collections.deque[bytes] = collections.deque()  # what the pipe has not taken yet
        self._chunk_bytes = 0
        self._oldest = 0.0  # when the oldest queued chunk was queued (monotonic; 0: none queued)
        self._waiting = False  # registered with the loop for the pipe to become writable
        self._torn = False  # the pipe took part of the first queued chunk (the end of a line)
        # Bytes handed to a writer process that it has not yet reported stored (or spooled): kept until it
        # does, and sent again, from the same stream offsets (the same event ids), to the next writer if it
        # dies. ``_acked`` is the stream offset of ``_unacked[0]``; the last ``_resend`` bytes of
        # ``_unacked`` are still to be written to the current process.
        self.stream = uuid.uuid4().hex[:16]  # this service's decision stream: the prefix of its event ids
        self._unacked = bytearray()
        self._acked = 0
        self._resend = 0
        self._ack_rest = b""
        self._proc: subprocess.Popen[bytes] | None = None
        self._fd = -1
        self._ack_fd = -1
        self._closing = False
        self._last_start = 0.0
        self._spills = 0
        self._spill_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._spill_jobs: dict[concurrent.futures.Future[None], int] = {}  # job: its bytes
        self.sent = 0  # bytes handed to a writer process
        self.spilled = 0  # bytes spilled to the spool directory because the writer lagged too far
        self.restarts = 0
        self._start()

    # ------------------------------------------------------------------ hot path
    def append(self, line: bytes) -> None:
        """Queue one line. Lines are written in batches: when ``BATCH_LINES`` have gathered, or by the
        owner's timer (``flush`` every ``FLUSH_SECONDS``): one ``write(2)`` and one wake-up of the writer
        per batch, not per event-loop turn."""
        buf = self._buf
        buf.append(line)
        if len(buf) >= BATCH_LINES:
            self.flush()

    @property
    def pending_bytes(self) -> int:
        """Decision bytes only in this process's memory: what a ``kill -9`` of the service would lose
        (queued, and spilled but not yet written by the spill thread)."""
        spilling = sum(n for job, n in list(self._spill_jobs.items()) if not job.done())
        return self._chunk_bytes + sum(map(len, self._buf)) + spilling

    @property
    def unacked_bytes(self) -> int:
        """Bytes handed to the writer process and not yet reported stored (sent again if it dies)."""
        return len(self._unacked)

    def spool_bytes(self) -> int:
        """Bytes waiting in the spool directory (the service's spills and the writer's spool files)."""
        total = 0
        with contextlib.suppress(OSError):
            for path in self.spool_dir.iterdir():
                if path.name.endswith((RAW_SUFFIX, SPOOL_SUFFIX, PART_SUFFIX)):
                    with contextlib.suppress(OSError):
                        total += path.stat().st_size
        return total

    @property
    def backlog_bytes(self) -> int:
        """Everything not yet stored: in memory, with the writer process, and in the spool directory."""
        return self.pending_bytes + self.unacked_bytes + self.spool_bytes()

    def flush(self) -> None:
        """Queue what was appended and write what the pipe takes now; never blocks."""
        if self._buf:
            chunk = b"".join(self._buf)
            self._buf.clear()
            self._chunks.append(chunk)
            self._chunk_bytes += len(chunk)
            if not self._oldest:
                self._oldest = time.monotonic()
        if self._ack_fd >= 0:  # every FLUSH_SECONDS at least (the owner's timer): a read(2), no wake-ups
            self._read_acks()
        if (self._chunks or self._resend or self._fd < 0) and not self._waiting and not self._closing:
            self._drain()
        if not self._chunks:
            self._oldest = 0.0
        elif self._chunk_bytes > self.max_pending or time.monotonic() - self._oldest > MAX_WAIT_SECONDS:
            # The writer lags: bound what a kill -9 of the service could lose to what gathered within
            # MAX_WAIT_SECONDS (docs/store.md), and memory to queue_size lines' worth of bytes.
            self._spill()

    def _drain(self) -> None:
        if self._fd < 0 and not self._restart():
            return
        while self._resend:  # what a dead writer may not have stored, first, at the same offsets
            start = len(self._unacked) - self._resend
            try:
                n = os.write(self._fd, memoryview(self._unacked)[start:])
            except BlockingIOError:
                self._wait_writable()
                return
            except OSError as exc:
                self._lost(f"{type(exc).__name__}: {exc}")
                return
            self._resend -= n
        chunks = self._chunks
        while chunks:
            if self._fd < 0 and not self._restart():
                return
            head = chunks[0]
            try:
                n = os.write(self._fd, head)
            except BlockingIOError:
                self._wait_writable()
                return
            except OSError as exc:  # EPIPE: the writer process died
                self._lost(f"{type(exc).__name__}: {exc}")
                return
            self.sent += n
            self._chunk_bytes -= n
            self._unacked += head if n == len(head) else head[:n]
            if n == len(head):
                chunks.popleft()
                self._torn = False
            else:
                # The pipe took part of a line: only the rest of that line must follow it there; the
                # lines after it stay a chunk of their own, free to be spilled if the pipe stays full.
                rest = head[n:]
                end = rest.find(b"\n") + 1
                chunks[0] = rest[:end] if end else rest
                if end and end < len(rest):
                    chunks.insert(1, rest[end:])
                self._torn = True
                self._wait_writable()
                return

    def _wait_writable(self) -> None:
        loop = self.loop
        if loop is None or self._waiting or self._fd < 0:
            return
        fd = self._fd
        self._waiting = True

        def writable() -> None:
            loop.remove_writer(fd)
            self._waiting = False
            self._drain()

        loop.add_writer(fd, writable)

    # ------------------------------------------------------------------ the writer process
    def _start(self) -> None:
        self._last_start = time.monotonic()
        try:
            proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
        except OSError as exc:
            self._event("error", "decision_writer_failed", error=str(exc))
            return
        assert proc.stdin is not None and proc.stdout is not None
        fd = proc.stdin.fileno()
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        # The stream's header: which stream, where this process starts in it, and up to where an earlier
        # process may already have stored what it is sent again (those are stored "if not yet").
        os.write(fd, stream_header(self.stream, self._acked, self._acked + len(self._unacked)))
        os.set_blocking(fd, False)
        self._resend = len(self._unacked)
        self._ack_rest = b""
        self._proc, self._fd, self._ack_fd = proc, fd, proc.stdout.fileno()
        os.set_blocking(self._ack_fd, False)
        self._event("info", "decision_writer_started", pid=proc.pid)

    def _read_acks(self) -> None:
        """The writer's reports "stored up to stream offset N": forget what it has stored."""
        fd = self._ack_fd
        if fd < 0:
            return
        data = b""
        try:
            while True:
                got = os.read(fd, 65536)
                if not got:  # end of file: the writer process is gone
                    self._settle(self._ack_rest + data)
                    if self._closing:
                        self._ack_fd = -1
                    else:
                        self._lost("the writer process exited")
                    return
                data += got
        except BlockingIOError:
            pass
        except OSError as exc:
            self._lost(f"{type(exc).__name__}: {exc}")
            return
        self._settle(self._ack_rest + data)

    def _settle(self, data: bytes) -> None:
        lines = data.split(b"\n")
        self._ack_rest = lines.pop()
        for line in reversed(lines):
            if line.isdigit():
                n = int(line) - self._acked
                if 0 < n <= len(self._unacked) - self._resend:
                    del self._unacked[:n]
                    self._acked += n
                break

    def _restart(self) -> bool:
        if time.monotonic() - self._last_start < 1.0:
            return False
        self._close_pipe()
        self.restarts += 1
        self._start()  # what the last one did not report stored is sent again, at the same offsets
        return self._fd >= 0

    def _lost(self, why: str) -> None:
        if self._proc is None:
            return
        code = self._proc.poll()
        self._event("error", "decision_writer_lost", error=why, exit_code=code, resending=len(self._unacked))
        self._close_pipe()

    def _close_pipe(self) -> None:
        proc, self._proc = self._proc, None
        if self._waiting and self.loop is not None and self._fd >= 0:
            self.loop.remove_writer(self._fd)
        self._waiting = False
        self._fd = self._ack_fd = -1
        if proc is not None:
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.1)

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # ------------------------------------------------------------------ overflow
    def _spill(self) -> None:
        """Move every queued line into a file the writer picks up later (but the end of a line the pipe
        took the beginning of).

        The lines are written as they are, in a worker thread. The writer process turns such files into
        spool files, idempotently (``adopt_raw_spills``)."""
        chunks = self._chunks
        keep = chunks.popleft() if self._torn and chunks else None  # the end of a line the pipe has begun
        parts = list(chunks)  # joined by the kernel (writev), not here: megabytes copied would stall the loop
        chunks.clear()
        self._chunk_bytes = 0
        if keep is not None:
            chunks.append(keep)
            self._chunk_bytes = len(keep)
        self._oldest = time.monotonic() if chunks else 0.0  # the next spill: MAX_WAIT_SECONDS from now
        serial = self._spills
        self._spills += 1
        if self.loop is None:  # shutting down (or no event loop): write it now
            self._spilled(parts, serial)
            return
        # Off the event loop: tens of megabytes written to disk would stall every connection meanwhile.
        # On a slow disk it may fall behind: what it has not written yet is bounded like the queue, beyond
        # which the loop writes this spill itself (the service slows down rather than hold more in memory).
        jobs = self._spill_jobs = {job: n for job, n in self._spill_jobs.items() if not job.done()}
        behind = sum(jobs.values())
        if behind and behind + sum(map(len, parts)) > self.max_pending:
            self._spilled(parts, serial)
            return
        if self._spill_pool is None:
            self._spill_pool = concurrent.futures.ThreadPoolExecutor(1, "typoguard-spill")
        jobs[self._spill_pool.submit(self._spilled, parts, serial)] = sum(map(len, parts))

    def _spilled(self, parts: list[bytes], serial: int) -> None:
        size = sum(map(len, parts))
        try:
            write_raw_spill(self.spool_dir, parts, os.getpid(), serial)
        except OSError as exc:  # never raise into the event loop; the metric and the log show the loss
            self._event("error", "decision_spill_failed", error=str(exc), lost_bytes=size)
            return
        self.spilled += size
        self._event("warning", "decision_writer_lagging", spilled_bytes=size, spool=str(self.spool_dir))

    # ------------------------------------------------------------------ shutdown
    def close(self, timeout: float = 30.0) -> bool:
        """Hand over everything pending (blocking, up to ``timeout``), close the pipe, wait for the writer
        to store it and exit. True only if everything is stored: nothing left in memory, with a writer,
        or in the spool directory (the database was down, or the writer did not finish in time)."""
        deadline = time.monotonic() + timeout
        self._closing = True
        if self._spill_pool is not None:  # spills in progress reach the disk before the writer's EOF
            self._spill_pool.shutdown(wait=True)
            self._spill_pool = None
        if self.loop is not None and self._waiting and self._fd >= 0:
            with contextlib.suppress(Exception):
                self.loop.remove_writer(self._fd)
        self._waiting = False
        self.loop = None
        if self._buf:
            self._chunks.append(b"".join(self._buf))
            self._buf.clear()
        self._hand_over(deadline)
        if self._chunks:  # no writer, or it did not keep up in time: the writer adopts them at its end
            self._spill()
        clean = self._wait_writer(deadline)
        return self._nothing_left() and clean

    def _hand_over(self, deadline: float) -> None:
        """Write what is queued (blocking), reading the writer's reports meanwhile; a new writer if needed.
        Lines the pipe does not take within a second (the writer is busy replaying the spool) are spilled:
        the writer adopts them before it exits, and the stop does not wait for the pipe meanwhile."""
        progress = time.monotonic()
        while (self._chunks or self._resend or (self._unacked and self._fd < 0)) and (
            time.monotonic() < deadline
        ):
            if self._fd < 0 and not self._restart():
                time.sleep(0.05)
                continue
            wait = max(0.0, min(0.5, deadline - time.monotonic()))
            select.select([fd for fd in (self._ack_fd,) if fd >= 0], [self._fd], [], wait)
            self._read_acks()  # a writer blocked on reporting would stop reading
            before = self._chunk_bytes + self._resend
            if self._fd >= 0:
                self._drain()
            now = time.monotonic()
            if self._chunk_bytes + self._resend < before:
                progress = now
            elif now - progress > 1.0 and self._chunks and not (self._torn and len(self._chunks) == 1):
                self._spill()

    def _wait_writer(self, deadline: float) -> bool:
        """End of file to the writer; its last reports; its exit. False if it failed or was killed."""
        clean = True
        proc = self._proc
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            self._fd = -1
            while self._ack_fd >= 0 and time.monotonic() < deadline:  # its last reports, up to its exit
                select.select([self._ack_fd], [], [], max(0.0, min(0.5, deadline - time.monotonic())))
                self._read_acks()
            try:
                code = proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._event("error", "decision_writer_timeout", pid=proc.pid)
                proc.kill()
                code = proc.wait(5)
            if code != 0:
                clean = False
            if proc.stdout is not None:
                with contextlib.suppress(OSError):
                    proc.stdout.close()
            self._proc, self._fd, self._ack_fd = None, -1, -1
        return clean

    def _nothing_left(self) -> bool:
        """What the writer did not report stored goes to the spool; True if the spool is empty."""
        clean = True
        if self._torn and self._chunks:  # the rest of a line the pipe took the start of: complete it
            self._unacked += self._chunks.popleft()
            self._chunk_bytes = 0
            self._torn = False
        if self._unacked:  # a writer that died or did not finish: to the spool, with their event ids
            header = stream_header(self.stream, self._acked, self._acked + len(self._unacked))
            self._spilled([header, bytes(self._unacked)], self._spills)
            self._spills += 1
            self._unacked.clear()
            clean = False
        left = self.spool_bytes()
        if left:
            self._event(
                "warning",
                "decision_spool_left",
                spool=str(self.spool_dir),
                bytes=left,
                then="stored at the next start (the writer replays the spool)",
            )
            clean = False
        return clean

    def _event(self, level: str, event: str, **fields: Any) -> None:
        if self.on_event is not None:
            self.on_event(level, event, **fields)
        else:
            log.log(logging.getLevelName(level.upper()), "%s %s", event, fields)


RAW_PREFIX: Final = "feed-"
RAW_SUFFIX: Final = ".lines"
PART_SUFFIX: Final = ".part"  # a raw spill being written
SPOOL_SUFFIX: Final = ".jsonl"


# --------------------------------------------------------------------------- the stream
# The bytes the service hands to writer processes form one stream per service process; a decision's event
# id is the stream's random prefix and the line's offset in it. A writer that dies before it stored what it
# was sent gets it again in its successor, at the same offsets: the same ids, so stored once whatever the
# first one managed. The pipe starts with a header line, ``#<stream> <offset> <seen>``: where this process
# starts in the stream, and the offset below which an earlier process may have stored the lines already
# (those are stored "where not yet", like a spool replay). A raw spill of such lines starts with it too.
def stream_header(stream: str, offset: int, seen: int) -> bytes:
    return f"#{stream} {offset} {seen}\n".encode()


def parse_header(line: bytes) -> tuple[str, int, int] | None:
    """``(stream, offset, seen)`` from a header line, None if ``line`` is not one."""
    parts = line[1:].split() if line.startswith(b"#") else []
    if len(parts) != 3 or len(parts[0]) != 16 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    try:
        int(parts[0], 16)
    except ValueError:
        return None
    return parts[0].decode(), int(parts[1]), int(parts[2])


def event_id(stream: str, offset: int) -> str:
    """The event id of the line at ``offset`` of ``stream``, UUID-shaped: 64 random bits (the stream,
    one per service process) and a 64-bit offset."""
    o = f"{offset:016x}"
    return f"{stream[:8]}-{stream[8:12]}-{stream[12:16]}-{o[:4]}-{o[4:]}"


def write_raw_spill(spool_dir: Path, data: bytes | Sequence[bytes], pid: int, serial: int) -> Path:
    """Decision log lines the writer could not take yet, as a file it will pick up (complete or absent:
    written under a temporary name, then renamed)."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    path = spool_dir / f"{RAW_PREFIX}{stamp}-{pid}-{serial}{RAW_SUFFIX}"
    tmp = path.with_name(path.name + PART_SUFFIX)
    with tmp.open("wb", buffering=0) as f:
        parts = [data] if isinstance(data, bytes | bytearray) else list(data)
        while parts:  # writev: one copy, by the kernel; a short write leaves the rest for the next call
            n = os.writev(f.fileno(), parts[:IOV_MAX])
            while parts and n >= len(parts[0]):
                n -= len(parts[0])
                parts.pop(0)
            if n:
                parts[0] = parts[0][n:]
    os.replace(tmp, path)
    return path


def recover_partial_spills(spool_dir: Path, gone: Callable[[int], bool]) -> int:
    """Spills a service was writing when it was killed (``*.lines.part`` of a process ``gone``): what
    reached the kernel is adopted like a complete spill (a torn last line is skipped); returns files."""
    n = 0
    for part in spool_dir.glob(f"{RAW_PREFIX}*{RAW_SUFFIX}{PART_SUFFIX}"):
        stem = part.name[: -len(RAW_SUFFIX + PART_SUFFIX)]
        pid = stem.rsplit("-", 2)[-2] if stem.count("-") >= 3 else ""
        if pid.isdigit() and gone(int(pid)):
            with contextlib.suppress(OSError):
                os.replace(part, part.with_name(part.name[: -len(PART_SUFFIX)]))
                n += 1
    return n


def process_gone(pid: int) -> bool:
    """True if no process ``pid`` runs (or it is a zombie: killed, not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def adopt_raw_spills(spool_dir: Path, node: str) -> int:
    """Turn the service's raw spill files into spool files (rows with ids) the writer replays; returns rows.

    Idempotent: the spool file's name is derived from the raw file's and written complete before the raw
    file is removed, so a crash in between converts nothing twice."""
    rows_total = 0
    for raw in sorted(spool_dir.glob(f"{RAW_PREFIX}*{RAW_SUFFIX}")):
        target = raw.with_name(raw.name[: -len(RAW_SUFFIX)] + SPOOL_SUFFIX)
        if not target.exists():
            rows = []
            data = raw.read_bytes()
            header = parse_header(data[: data.find(b"\n") + 1].rstrip()) if data.startswith(b"#") else None
            # Lines a writer process was sent (after a header) keep their ids: it may have stored them.
            offset = header[1] if header else 0
            if header:
                data = data[data.find(b"\n") + 1 :]
            for line in data.split(b"\n"):
                at, offset = offset, offset + len(line) + 1
                try:
                    event = event_from_line(line, node) if line else None
                except ValueError:
                    continue  # a torn first line
                if event is not None:
                    eid = event_id(header[0], at) if header else str(uuid.uuid4())
                    rows.append(orjson.dumps(row_dict(event.values(eid))) + b"\n")
            tmp = target.with_suffix(".tmp")
            with tmp.open("wb") as f:
                f.write(b"".join(rows))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
            rows_total += len(rows)
        raw.unlink()
    return rows_total


def lower_priority(nice: int, idle: bool, pid: int = 0) -> str:
    """Put this process (or process ``pid``) behind everything else on the CPU: ``nice`` and, when
    ``idle``, Linux's ``SCHED_IDLE`` policy; returns what it got (for the log).

    The writer competes with the policy service for a core only when the machine is saturated. Then
    ``nice 19`` alone is not enough: a niced process that is running when Postfix's next request arrives
    keeps the CPU until the scheduler's slice ends (EEVDF's run-to-parity), which shows as lower
    throughput and a longer tail (measured: docs/store.md). Under ``SCHED_IDLE`` any waking normal task
    preempts it at once. It is not starved: the kernel gives it a weight of 3 (nice 19: 15, nice 0: 1024),
    so it still progresses under full load, and what it cannot take meanwhile waits in the pipe, then in
    memory, then in the spool (``typoguard_store_backlog_bytes`` shows it).
    """
    got = []
    if nice > 0:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, nice)
            got.append(f"nice {nice}")
    if idle and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
            got.append("SCHED_IDLE")
        except OSError as exc:  # e.g. a seccomp profile: nice alone then
            got.append(f"not SCHED_IDLE ({exc.strerror or exc})")
    return ", ".join(got) or "normal priority"


def writer_argv(config_path: str | Path) -> list[str]:
    """The command that runs the writer process for the config at ``config_path``."""
    return [sys.executable, "-m", "typoguard.store.feed", "--config", str(Path(config_path).resolve())]


# --------------------------------------------------------------------------- child side
class _Child:
    """The writer process: lines from standard input into a ``DecisionWriter`` (or the spool); reports on
    standard output, as a decimal line, the stream offset up to which everything is stored or spooled."""

    READ_AHEAD_BATCHES: Final = 16  # read the pipe only while fewer batches than this wait to be written

    def __init__(self, config_path: str) -> None:
        from typoguard.config import load_config
        from typoguard.store.store import resolve

        self.config = load_config(config_path)
        self.resolved = resolve(self.config)
        self.spool = Spool(self.resolved.spool_dir)  # lines sent again, and all while the database is away
        self.writer: Any = None  # a DecisionWriter once the database answers
        self.next_try = 0.0
        self.next_adopt = time.monotonic() + 2.0
        self.stream = ""
        self.offset = 0  # stream offset of the next byte read
        self.seen = 0  # lines below this offset may have been stored by an earlier writer process
        self.submitted = 0  # events handed to the writer
        self.marks: collections.deque[tuple[int, int]] = collections.deque()  # (submitted, offset after)
        self.acked = -1
        self.service = os.getppid()

    def service_gone(self, pid: int) -> bool:
        """Whether the service ``pid`` is gone (ours, once we are orphaned; or an earlier one)."""
        if pid == self.service:
            return os.getppid() != pid
        return pid != os.getppid() and process_gone(pid)

    def connect(self, now: float) -> None:
        from typoguard.errors import TypoguardError
        from typoguard.store.store import open_store
        from typoguard.store.writer import DecisionWriter

        if self.writer is None and now >= self.next_try:
            try:
                store = open_store(self.config)
            except (TypoguardError, OSError) as exc:
                log.warning("decision store unavailable, spooling: %s", exc)
                self.next_try = now + self.resolved.settings.retry_interval
            else:
                self.spool.rotate()  # unlock what was spooled while the database was away: replayable now
                # Its queue is bounded by reading the pipe only while it is short (READ_AHEAD_BATCHES): what
                # waits beyond that stays with the service, which survives this process.
                self.writer = DecisionWriter(store, nice=0, queue_size=1 << 30)
        if self.writer is not None and now >= self.next_adopt:
            try:  # lines the service spilled while we lagged (or was writing when it was killed)
                recover_partial_spills(self.resolved.spool_dir, self.service_gone)
                adopted = adopt_raw_spills(self.resolved.spool_dir, self.resolved.node)
                self.writer.adopt_spool(adopted)
            except OSError as exc:
                log.warning("cannot adopt spilled decisions: %s", exc)
            self.next_adopt = now + 2.0

    def busy(self) -> bool:
        """Enough is queued for the writer: leave the rest in the pipe (and the service)."""
        w = self.writer
        return w is not None and w.queued >= self.READ_AHEAD_BATCHES * w.batch_size

    def take(self, lines: list[bytes]) -> None:
        """Complete lines read from the pipe (each followed by a newline)."""
        node = self.resolved.node
        again: list[dict[str, Any]] = []
        for line in lines:
            at = self.offset
            self.offset += len(line) + 1
            if line.startswith(b"#"):
                header = parse_header(line)
                if header is not None:
                    self.stream, self.offset, self.seen = header
                    self.marks.append((self.submitted, self.offset))
                continue
            try:
                event = event_from_line(line, node) if line else None
            except ValueError as exc:
                log.warning("skipping a decision line: %s", exc)
                continue
            if event is None:
                continue
            values = event.values(event_id(self.stream, at) if self.stream else str(uuid.uuid4()))
            if self.writer is None or at < self.seen:
                again.append(row_dict(values))  # to the spool: replayed "where not stored yet"
            else:
                self.writer.submit_row(values)
                self.submitted += 1
        if again:
            self.spool.append(again)
            if self.writer is not None:
                self.spool.rotate()
                self.writer.adopt_spool(len(again))
        self.marks.append((self.submitted, self.offset))

    def ack(self) -> None:
        """Tell the service how far the stream is stored (or spooled): it forgets that much."""
        settled = self.writer.settled if self.writer is not None else self.submitted
        marks, offset = self.marks, -1
        while marks and marks[0][0] <= settled:
            offset = marks.popleft()[1]
        if offset > self.acked:
            self.acked = offset
            with contextlib.suppress(OSError):
                os.write(sys.stdout.fileno(), b"%d\n" % offset)

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        got = lower_priority(self.resolved.settings.writer_nice, self.resolved.settings.writer_idle)
        log.info("decision writer process %d running at %s", os.getpid(), got)
        fd = sys.stdin.fileno()
        pending = b""
        while True:
            self.connect(time.monotonic())
            self.ack()
            if self.busy():
                time.sleep(0.005)
                continue
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:  # the service closed the pipe (or died: then a torn last line is dropped)
                break
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            self.take(lines)
        self.spool.close()
        if self.writer is not None:
            w, t0 = self.writer, time.monotonic()
            log.info("end of input: %d decisions queued, %d in the spool", w.queued, w.spool.pending)
            self.next_adopt = 0.0
            self.connect(time.monotonic())  # lines the service spilled: into the spool, replayed by close()
            t1 = time.monotonic()
            w.close()
            w.store.close()
            log.info(
                "stored: adopted spills in %.2f s, wrote the rest in %.2f s (written %d, replayed %d in all)",
                t1 - t0,
                time.monotonic() - t1,
                w.written,
                w.replayed,
            )
        self.ack()
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m typoguard.store.feed", description=__doc__)
    parser.add_argument("--config", required=True, help="the service's TOML config file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="typoguard decision writer: %(levelname)s %(message)s")
    return _Child(args.config).run()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
