"""Inputs: which format a file is in, how to open it (plain, gzip, bzip2, xz, zstd), and how to cut it into
tasks.

Detection reads the first 64 KiB (decompressed) and looks for the shape of each format's lines; the
``--format`` option overrides it for every input. Directories are walked: a Maildir (``cur``/``new``)
is one input, anything else contributes its files.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import io
import lzma
import os
import re
import shutil
import stat
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Final, Protocol, cast

import zstandard

from typoguard.audit.unwrap import Wrapper, head_lines, wrapper_of


class Format(StrEnum):
    AUTO = "auto"
    POSTFIX = "postfix"
    EXIM = "exim"
    M365 = "m365"
    EXCHANGE = "exchange"
    MBOX = "mbox"
    MAILDIR = "maildir"
    EML = "eml"
    SENDMAIL = "sendmail"


#: Line-oriented logs whose plain (uncompressed) files can be cut into byte ranges for parallel reading.
SPLITTABLE = frozenset({Format.POSTFIX, Format.EXIM, Format.SENDMAIL})

#: Exceptions that mean "this compressed stream is damaged or cut short"; readers count them, never die.
STREAM_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    gzip.BadGzipFile,
    zlib.error,
    OSError,
    lzma.LZMAError,
    zstandard.ZstdError,
)


def compression(path: Path) -> str | None:
    """``gzip``, ``bzip2``, ``xz``, ``zstd`` or None, by magic bytes (rotated files are not always named
    *.gz)."""
    with path.open("rb") as f:  # OSError: the caller reports the input as unreadable
        return compression_of(f.read(6))


def compression_of(magic: bytes) -> str | None:
    """``compression`` of a stream whose first (up to 6) bytes are ``magic``."""
    if magic[:2] == b"\x1f\x8b":
        return "gzip"
    if magic[:3] == b"BZh":
        return "bzip2"
    if magic == b"\xfd7zXZ\x00":
        return "xz"
    if magic[:4] == _ZSTD_MAGIC or _is_skippable(magic):  # pzstd's files begin with a skippable frame
        return "zstd"
    return None


ProgressHook = Callable[[int], None]
_hooks: list[ProgressHook] = []  # the runner's, for this process; at most one


def report_progress(nbytes: int) -> None:
    """Tell the progress bar (if any) that ``nbytes`` more bytes of input were read from disk."""
    if _hooks:
        _hooks[-1](nbytes)


@contextmanager
def progress_hook(hook: ProgressHook) -> Iterator[None]:
    """Within the block, every byte read from an input file (compressed or not) is reported to ``hook``."""
    _hooks.append(hook)
    try:
        yield
    finally:
        _hooks.remove(hook)


class _Counting(io.RawIOBase):
    """A file that reports the bytes read from it: progress in on-disk bytes, whatever the compression."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._raw.readinto(b)  # type: ignore[attr-defined]
        if n:
            report_progress(n)
        return int(n or 0)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int, /) -> bytes: ...


_DECOMPRESSORS: dict[str, Callable[[], _Decompressor]] = {
    "gzip": lambda: zlib.decompressobj(wbits=47),  # 32 + 15: expect a gzip header
    "bzip2": bz2.BZ2Decompressor,
    "xz": lzma.LZMADecompressor,
}


_OUT: Final = 1 << 20  # of decompressed bytes at a time: a bomb (1 MB of gzip is 1 GB) streams like a log


class _Salvage(io.RawIOBase):
    """A compressed stream (one or more concatenated members) that hands out everything before a truncation
    or corruption: the damage reads as end of file and is raised (``EOFError``, ``zlib.error``, ...) by
    ``close()``, i.e. when the reader leaves its ``with`` block. ``gzip.open`` raises at once and loses the
    data of the damaged block. At most ``_OUT`` bytes are decompressed at a time."""

    def __init__(self, raw: IO[bytes], kind: str) -> None:
        self._raw = raw
        self._new = _DECOMPRESSORS[kind]
        self._d = self._new()
        self._in = b""  # compressed bytes read but not yet taken by the decompressor (zlib's unconsumed tail)
        self._buf = b""
        self._pos = 0
        self._done = False
        self._damage: Exception | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while self._pos >= len(self._buf) and not self._done:
            try:
                self._fill()
            except (EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
                self._damage, self._done = exc, True
        n = min(len(b), len(self._buf) - self._pos)
        b[:n] = self._buf[self._pos : self._pos + n]
        self._pos += n
        return n

    def _fill(self) -> None:
        """Up to ``_OUT`` more decompressed bytes into ``_buf``; none, and ``_done``, at the end."""
        while True:
            if self._d.eof:  # the end of a member: the next one (concatenated .gz files), or the end
                rest = self._d.unused_data
                if not rest:
                    rest = self._raw.read(1 << 20)
                    if not rest:
                        self._done = True
                        return
                self._d, self._in = self._new(), rest
            out = self._d.decompress(self._in, _OUT)
            # zlib hands back what it did not take (at the end of a member, in ``unused_data`` as well);
            # bz2 and lzma keep it themselves
            self._in = b"" if self._d.eof else getattr(self._d, "unconsumed_tail", b"")
            if out:
                self._buf, self._pos = out, 0
                return
            if self._d.eof:
                continue
            chunk = self._raw.read(1 << 20)  # nothing came out: all input was taken, more is needed
            if not chunk:
                self._done = True
                raise EOFError("compressed file ended before the end-of-stream marker was reached")
            self._in += chunk

    def close(self) -> None:
        if self.closed:
            return
        self._raw.close()
        super().close()
        if self._damage is not None:
            raise self._damage


_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_ZSTD_TRUNCATED: Final = "compressed file ended before the end of its last zstd frame"


def _is_skippable(magic: bytes) -> bool:
    """Whether ``magic`` begins a zstd skippable frame (``50 2A 4D 18`` to ``5F 2A 4D 18``)."""
    return len(magic) >= 4 and magic[0] & 0xF0 == 0x50 and magic[1:4] == b"\x2a\x4d\x18"


class _ZstdFrames(io.RawIOBase):
    """The compressed bytes of a zstd file, passed through unchanged, whose frame structure is followed from
    header to block header (skipping block contents) to tell whether the file ends where a frame ends.

    The zstd library's streaming reader ends a frame that the file cuts short in silence, as if it were
    whole; ``whole`` is False then. Bytes that are not a frame are left to the decoder, which rejects them.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._state = "magic"  # what ``_head`` gathers: magic, skip-size, descriptor, block; or "lost"
        self._need = 4  # bytes of it to gather
        self._head = b""
        self._skip = 0  # bytes of content (a block, a skippable frame, a header's fields) to pass over
        self._checksum = False  # the current frame ends with a 4-byte checksum

    @property
    def whole(self) -> bool:
        return self._state == "lost" or (self._state == "magic" and not self._head and not self._skip)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = int(self._raw.readinto(b) or 0)  # type: ignore[attr-defined]
        if n:
            self._follow(bytes(memoryview(b)[:n]))
        return n

    def _follow(self, data: bytes) -> None:
        i, end = 0, len(data)
        while i < end and self._state != "lost":
            if self._skip:
                step = min(self._skip, end - i)
                self._skip -= step
                i += step
                continue
            take = min(self._need - len(self._head), end - i)
            self._head += data[i : i + take]
            i += take
            if len(self._head) == self._need:
                head, self._head = self._head, b""
                self._parsed(head)

    def _parsed(self, head: bytes) -> None:
        if self._state == "magic":
            if head == _ZSTD_MAGIC:
                self._state, self._need = "descriptor", 1
            elif _is_skippable(head):
                self._state, self._need = "skip-size", 4
            else:
                self._state = "lost"
        elif self._state == "skip-size":
            self._skip = int.from_bytes(head, "little")
            self._state, self._need = "magic", 4
        elif self._state == "descriptor":
            fhd = head[0]
            single = bool(fhd & 0x20)
            self._checksum = bool(fhd & 0x04)
            fcs = (1 if single else 0, 2, 4, 8)[fhd >> 6]
            self._skip = (0 if single else 1) + (0, 1, 2, 4)[fhd & 0x03] + fcs
            self._state, self._need = "block", 3
        else:  # a block header: last-block bit, type (raw, RLE, compressed, reserved), size
            header = int.from_bytes(head, "little")
            kind, size = (header >> 1) & 0x03, header >> 3
            if kind == 3:
                self._state = "lost"
                return
            self._skip = 1 if kind == 1 else size
            if header & 1:
                self._skip += 4 if self._checksum else 0
                self._state, self._need = "magic", 4

    def close(self) -> None:
        self._raw.close()
        super().close()


class _ZstdSalvage(io.RawIOBase):
    """A zstd file (one or more frames, skippable frames among them) read as ``_Salvage`` reads the other
    formats: everything before a truncation or corruption, the damage raised by ``close()``. Each read
    decompresses at most what it asks for, so a small file that expands to gigabytes (a bomb) streams in
    bounded memory; a frame's window is bounded by the library's default limit (128 MiB)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._frames = _ZstdFrames(raw)
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            cast("IO[bytes]", self._frames), read_across_frames=True, closefd=True
        )
        self._done = False
        self._damage: Exception | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._done:
            return 0
        try:
            n = int(self._reader.readinto(b))
        except zstandard.ZstdError as exc:
            self._damage, self._done = exc, True
            return 0
        if not n:
            self._done = True
            if not self._frames.whole:
                self._damage = EOFError(_ZSTD_TRUNCATED)
        return n

    def close(self) -> None:
        if self.closed:
            return
        self._reader.close()  # type: ignore[no-untyped-call]
        super().close()
        if self._damage is not None:
            raise self._damage


def decompressing(raw: io.BufferedReader) -> IO[bytes]:
    """``raw`` (a file or a pipe, read once: its first bytes are peeked, not read) decompressed as its first
    bytes say, with ``open_bytes``'s salvage: damage ends the data and is raised by ``close()``."""
    kind = compression_of(raw.peek(6)[:6])
    if kind == "zstd":
        return io.BufferedReader(_ZstdSalvage(raw), buffer_size=1 << 20)
    if kind is not None:
        return io.BufferedReader(_Salvage(raw, kind), buffer_size=1 << 20)
    return raw


def open_bytes(path: Path) -> IO[bytes]:
    """The file's content, decompressed if needed; reads are reported to the progress hook, if any."""
    kind = compression(path)
    raw: IO[bytes] = path.open("rb")
    if _hooks:
        raw = io.BufferedReader(_Counting(raw), buffer_size=1 << 20)
    if kind == "zstd":
        return io.BufferedReader(_ZstdSalvage(raw), buffer_size=1 << 20)
    if kind is not None:
        return io.BufferedReader(_Salvage(raw, kind), buffer_size=1 << 20)
    return raw


def read_head(path: Path, size: int = 65536) -> bytes:
    """Up to ``size`` leading bytes, decompressed; what a damaged stream yields before the damage."""
    out = b""
    compression(path)  # OSError here: the input cannot be read at all (the caller reports it)
    try:
        with open_bytes(path) as f:
            while len(out) < size:
                block = f.read(size - len(out))
                if not block:
                    break
                out += block
    except STREAM_ERRORS:
        pass
    return out


def head_damage(path: Path) -> str:
    """For a compressed file whose first bytes cannot be decompressed: what is wrong, else ""."""
    kind = compression(path)
    if kind is None:
        return ""
    try:
        with open_bytes(path) as f:
            if f.read(1):
                return ""
    except STREAM_ERRORS as exc:
        why = str(exc)[:120] or type(exc).__name__
        return f"compressed with {kind}, but its first bytes cannot be decompressed ({why})"
    return ""


_POSTFIX = POSTFIX_LINE = re.compile(
    rb"^\S.{0,60}? \S+ (?:\S+ )?postfix[\w.-]*(?:/[\w.-]+)+(?:\[\d+\]: | (?:\d+|-) \S+ [-\[])", re.M
)  # a line of a Postfix program (what tells a Postfix log; ``learn`` says when a file has none)
_EXIM_TIME = rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [+-]\d{4})?(?: \[\d+\])? "
# Exim's own log, or its lines through syslog (``log_file_path = syslog``: ``Nov 23 08:00:00 mx exim[4242]:
# `` before them, Exim's time kept unless ``syslog_timestamp = false``).
_EXIM = re.compile(
    rb"^(?:\S.{0,60}? \S+ exim4?\[\d+\]: (?:\[\d+\\\d+\] )?(?:" + _EXIM_TIME + rb")?|" + _EXIM_TIME + rb")"
    rb"(?:[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4} (?:<=|=>|->|\*\*|==|Completed)|H=)",
    re.M,
)
# A Sendmail line about a message: ``Dec  7 15:23:44 mx sm-mta[32469]: 6B7FNiRA032469: ...`` (or RFC 5424).
_SENDMAIL = re.compile(
    rb"^\S.{0,60}? \S+ (?:\w+\.\w+ )?(?:sendmail|sm-mta|sm-msp-queue)(?:\[\d+\]: | (?:\d+|-) \S+ - )"
    rb"[0-9A-Za-z]{6,20}: ",
    re.M,
)
_HEADER = re.compile(rb"^[A-Za-z][A-Za-z0-9-]*:[ \t]", re.M)


def text_of(head: bytes) -> str:
    """Decode a sniffed head or CSV: BOM-marked UTF-16/UTF-8, else UTF-8 with replacement."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return head.decode("utf-16", "replace")
    return head.decode("utf-8-sig", "replace")


def sniff(head: bytes) -> Format | None:
    """The format the leading bytes look like, or None; for a wrapped log (a journal export, container
    logs), the format of the log inside."""
    return sniff_input(head)[0]


def sniff_input(head: bytes) -> tuple[Format | None, Wrapper | None]:
    """(the format of the log, what it is wrapped in) that the leading bytes look like."""
    wrapper = wrapper_of(head)
    if wrapper is None:
        return _sniff_plain(head), None
    found = _sniff_plain(head_lines(wrapper, head))
    return (found if found in SPLITTABLE else None), wrapper


def _sniff_plain(head: bytes) -> Format | None:
    if head.startswith(b"From "):
        return Format.MBOX
    text = text_of(head[:8192]) if head[:2] in (b"\xff\xfe", b"\xfe\xff") else None
    if b"#Software: Microsoft Exchange" in head or b"#Fields: date-time" in head:
        return Format.EXCHANGE
    first = (text if text is not None else head[:4096].decode("utf-8-sig", "replace")).split("\n", 1)[0]
    low = first.lower().replace('"', "").replace(" ", "").replace("_", "")
    if "," in low and ("recipient" in low or "recipients" in low):
        if "eventid" in low:
            return Format.EXCHANGE
        return Format.M365
    if _POSTFIX.search(head):
        return Format.POSTFIX
    if _EXIM.search(head):
        return Format.EXIM
    if _SENDMAIL.search(head):
        return Format.SENDMAIL
    block = head.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    if _HEADER.match(head) and re.search(rb"^(?:From|To|Date|Message-ID|Received):", block, re.M | re.I):
        return Format.EML
    return None


@dataclass(frozen=True, slots=True)
class Task:
    """A unit of work for one process: a whole input, or the byte range [start, end) of a plain log."""

    path: Path
    fmt: Format
    start: int = 0
    end: int | None = None  # None: to the end (and the whole file is one task)
    size: int = 0  # bytes this task covers on disk, for the progress bar
    compressed: bool = False  # decompresses to several times ``size``: scheduled accordingly
    label: str = ""  # the name the user gave when ``path`` is a saved copy (standard input, a pipe)
    wrapper: Wrapper | None = None  # a line log inside a journal export or container logs (``unwrap``)

    @property
    def name(self) -> str:
        return self.label or str(self.path)


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


def expand(inputs: Iterable[Path]) -> Iterator[Path]:
    """Files and Maildirs named by ``inputs``; directories are walked in name order."""
    for p in inputs:
        if p.is_dir() and not _is_maildir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                here = Path(root)
                if _is_maildir(here):
                    dirs.clear()
                    yield here
                    continue
                for f in sorted(files):
                    yield here / f
        else:
            yield p


#: How far into a journal export its log format is looked for (a whole system's export: mail is sparse).
JOURNAL_SNIFF = 8 << 20


def detect(path: Path) -> Format | None:
    """The format of one input, or None when it cannot be told. ``OSError`` if it cannot be read."""
    return detect_input(path)[0]


def detect_input(path: Path) -> tuple[Format | None, Wrapper | None]:
    """(format, wrapper) of one input (``sniff_input``), format None when it cannot be told. ``OSError`` if it
    cannot be read."""
    if path.is_dir():
        return (Format.MAILDIR if _is_maildir(path) else None), None
    found, wrapper = sniff_input(read_head(path))
    if found is None and wrapper is Wrapper.JOURNAL:
        found, wrapper = sniff_input(read_head(path, JOURNAL_SNIFF))
    if found is None and wrapper is None and path.suffix.lower() == ".eml":
        found = Format.EML
    return found, wrapper


def plan(
    inputs: Iterable[Path],
    fmt: Format = Format.AUTO,
    chunk_bytes: int = 64 << 20,
    labels: Mapping[Path, str] | None = None,
) -> tuple[list[Task], list[str]]:
    """Tasks for every input, and the (non-fatal) problems met: unreadable or unrecognised inputs.
    ``labels``: the names to report for saved copies of streams (``saved_streams``)."""
    tasks: list[Task] = []
    problems: list[str] = []
    seen: set[Path] = set()
    labels = labels or {}
    for path in expand(inputs):
        label = labels.get(path, "")
        shown = label or str(path)
        real = path.resolve()
        if real in seen:  # named twice (mail.log and ./mail.log, a directory and a file in it): read once
            continue
        seen.add(real)
        try:
            odd = _not_a_file(path)
            if odd:
                advice = "name it on the command line to read it" if odd == "a pipe" else "save it first"
                problems.append(f"{shown}: {odd}, not a file; skipped ({advice})")
                continue
            if fmt is Format.AUTO:
                kind, wrapper = detect_input(path)
            else:
                kind, wrapper = fmt, None if path.is_dir() else wrapper_of(read_head(path))
            if kind is None and (damage := head_damage(path)):
                problems.append(f"{shown}: {damage}; skipped")
                continue
            if kind is None:
                problems.append(
                    f"{shown}: a journal export (journalctl -o json) with no Postfix, Exim or Sendmail lines"
                    f" in its first {JOURNAL_SNIFF >> 20} MiB; skipped (name the log in it with --format, or"
                    " export only the mail service: journalctl -o json -u 'postfix*')"
                    if wrapper is Wrapper.JOURNAL
                    else f"{shown}: cannot tell its format; skipped (name it with --format)"
                )
                continue
            if kind is Format.MAILDIR or path.is_dir():
                tasks.append(Task(path, Format.MAILDIR, size=_tree_size(path), label=label))
                continue
            if kind not in SPLITTABLE:
                wrapper = None
            size = path.stat().st_size
            packed = compression(path) is not None
            if kind in SPLITTABLE and not packed and size > chunk_bytes:
                tasks.extend(_ranges(path, kind, size, chunk_bytes, label=label, wrapper=wrapper))
            else:
                tasks.append(Task(path, kind, size=size, compressed=packed, label=label, wrapper=wrapper))
        except OSError as exc:
            problems.append(f"{shown}: cannot read it ({exc.strerror or exc}); skipped")
    return tasks, problems


STDIN: Final = Path("-")
STDIN_LABEL: Final = "(standard input)"
_SAVE_BLOCK = 1 << 20


def is_stream(path: Path) -> bool:
    """Whether an input named on the command line is read as a stream and saved first: ``-`` (standard
    input) or a pipe (``<(zcat mail.log.1.gz)``, a FIFO)."""
    if path == STDIN:
        return True
    try:
        return stat.S_ISFIFO(path.stat().st_mode)
    except OSError:
        return False


@contextmanager
def saved_streams(inputs: list[Path]) -> Iterator[tuple[list[Path], dict[Path, str], list[str]]]:
    """``inputs`` with each stream among them (``is_stream``) read to its end and saved to a file in a
    private temporary directory, so that it is detected, decompressed and cut for the workers like any
    log; (the inputs, the saved files' labels, problems). The directory is removed at the end.

    A pipe is opened without waiting for a writer (a FIFO nobody writes to is empty, not waited on). A
    stream that cannot be saved whole (a full disk under ``TMPDIR``) is a problem and not audited: never
    half a log reported as a whole one. Standard input is read once, however often ``-`` is named."""
    if not any(is_stream(p) for p in inputs):
        yield inputs, {}, []
        return
    directory = Path(tempfile.mkdtemp(prefix="typoguard-audit-input-"))
    try:
        out: list[Path] = []
        labels: dict[Path, str] = {}
        problems: list[str] = []
        done_stdin = False
        for n, path in enumerate(inputs):
            if not is_stream(path):
                out.append(path)
                continue
            if path == STDIN:
                if done_stdin:
                    continue
                done_stdin = True
            label = STDIN_LABEL if path == STDIN else str(path)
            saved = directory / f"{n}.input"
            problem = _save_stream(path, saved, label)
            if problem:
                problems.append(problem)
                continue
            out.append(saved)
            labels[saved] = label
        yield out, labels, problems
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def stdin_fd() -> int:
    """A duplicate of standard input's descriptor, to read and close. ``OSError`` when the process was
    started without one (``<&-``): Python then sets ``sys.stdin`` to None, and descriptor 0 may since have
    been given to a file this process opened (its database, its log), which must never be read as input."""
    stdin = sys.stdin
    if stdin is None:
        raise OSError(errno.EBADF, "Bad file descriptor (standard input is closed)")
    return os.dup(stdin.fileno())


def _save_stream(path: Path, saved: Path, label: str) -> str:
    """Copy the stream ``path`` to ``saved``; "" or the problem (then nothing is left of ``saved``)."""
    try:
        if path == STDIN:
            fd = stdin_fd()
        else:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            os.set_blocking(fd, True)  # a writer's pauses are waited on; no writer left: end of stream
    except OSError as exc:
        return f"{label}: cannot read it ({exc.strerror or exc}); skipped"
    total = 0
    try:
        with saved.open("wb") as f:
            while True:
                try:
                    block = os.read(fd, _SAVE_BLOCK)
                except OSError as exc:
                    saved.unlink(missing_ok=True)
                    return f"{label}: cannot read it ({exc.strerror or exc}); skipped"
                if not block:
                    break
                f.write(block)
                total += len(block)
    except OSError as exc:
        saved.unlink(missing_ok=True)
        where = saved.parent.parent
        return (
            f"{label}: cannot save it to a temporary file in {where} ({exc.strerror or exc}) after "
            f"{total:,} bytes; skipped (set TMPDIR to a disk with room)"
        )
    finally:
        os.close(fd)
    if not total:
        saved.unlink(missing_ok=True)
        return f"{label}: nothing to read (empty)"
    return ""


def _not_a_file(path: Path) -> str:
    """What ``path`` is when it is neither a regular file nor a directory ("a pipe", "a device", ...), else
    "". Such an input is never opened: a FIFO beside the logs would be waited on for ever, a pipe named on
    the command line (``<(zcat ...)``) would lose to format detection the bytes it read, and a device such
    as /dev/zero never ends."""
    mode = path.stat().st_mode
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return ""
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def _tree_size(path: Path) -> int:
    total = 0
    for sub in ("cur", "new"):
        with os.scandir(path / sub) as it:
            total += sum(e.stat().st_size for e in it if e.is_file())
    return total


def _ranges(
    path: Path, kind: Format, size: int, chunk: int, *, label: str = "", wrapper: Wrapper | None = None
) -> Iterator[Task]:
    """Cut at line boundaries near every ``chunk`` bytes, so no line is split between tasks."""
    start = 0
    with path.open("rb") as f:
        while start < size:
            end = start + chunk
            if end >= size:
                end = size
            else:
                f.seek(end)
                f.readline()
                end = min(f.tell(), size)
            yield Task(path, kind, start, end, end - start, label=label, wrapper=wrapper)
            start = end
