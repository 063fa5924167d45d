"""Mail logs inside another format, turned back into the lines the log readers know, block by block.

* A journal export (``journalctl -o json``, or ``-o json-seq`` with an RS before each record): one JSON
  object per line. Each record of a mail program becomes the line syslog would have written, with the
  journal's time in ISO 8601 (so the year is right) in local time with its offset, as ``journalctl -o
  short-iso-precise`` shows it::

      2026-12-08T02:24:13.123456+00:00 mx1 postfix/smtp[1235]: 4BC1D2E3F: to=<bob@army.ml>, ...

  from ``__REALTIME_TIMESTAMP`` (microseconds since the epoch; else ``SYSLOG_TIMESTAMP``), ``_HOSTNAME``,
  ``SYSLOG_IDENTIFIER`` and ``SYSLOG_PID`` (else ``_PID``) and ``MESSAGE``: a string, or an array of byte
  values where journald stored bytes that are not UTF-8 (kept as bytes: the readers decode them as they
  decode any log). Records of other programs (systemd, the kernel) and records without a MESSAGE are passed
  over; a record whose MESSAGE is a whole log line of its own (a container's output through Docker's
  journald log driver) is that line. A line that is not a JSON object (a record cut short), and a mail
  record whose MESSAGE journalctl left out (``null``: longer than 4096 bytes, without ``--all``), are bad
  lines.
* Container logs: ``docker compose logs`` puts the service's name, padded, and ``| `` before each line
  (``mail-1  | ``, ``mail_1  | `` for docker-compose v1); ``--timestamps`` (and ``docker logs
  --timestamps``) put Docker's RFC 3339 time before it. The prefix is cut off, and so is Docker's time
  where the line has a syslog time of its own (a container that writes its mail.log to its output, as
  docker-mailserver and mailcow do): what is left is the line of the log inside.

Which one an input is, is told from its first 64 KiB (``wrapper_of``); the runner then unwraps every block
before the scanner of the log format sees it. Plain logs are not touched: no cost on their hot path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

from typoguard.audit.model import SourceStats


class Wrapper(StrEnum):
    JOURNAL = "journal"  # journalctl -o json / json-seq
    CONTAINER = "container"  # docker compose logs, docker logs --timestamps


# Programs whose records a journal export is read for, per log format ("" while the format is not known).
# Postfix logs as ``syslog_name/process`` (``postfix/smtp``, ``postfix-out/qmgr`` for a second instance).
_SENDMAIL = frozenset({"sendmail", "sm-mta", "sm-msp-queue"})
_EXIM = frozenset({"exim", "exim4"})


def _is_postfix(ident: str) -> bool:
    return "/" in ident


_PROGRAMS: dict[str, Callable[[str], bool]] = {
    "postfix": _is_postfix,
    "sendmail": _SENDMAIL.__contains__,
    "exim": _EXIM.__contains__,
    "": lambda ident: "/" in ident or ident in _SENDMAIL or ident in _EXIM,
}
# A MESSAGE that is a log line of its own: it starts with a time (syslog's, ISO 8601's, Exim's).
_OWN_LINE = re.compile(
    r"(?:<\d{1,3}>)?(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d |\d{4}-\d\d-\d\d[T ]\d\d:\d\d)", re.ASCII
)
_SYSLOG_STAMP = re.compile(r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ?", re.ASCII)
_MAX_STAMPS = 100_000  # seconds whose ISO text is remembered

# Docker's time: RFC 3339 with up to nine digits of fraction, in UTC (``docker logs``: trailing zeros cut)
# or with the local offset (``docker compose logs --timestamps`` of Compose v2's later releases).
_DOCKER_TIME = rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d) "
_SYSLOG_TIME = rb"(?:<\d{1,3}>)?[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d"
# Compose's prefix: ``%-{longest name + 1}s | ``, in the service's colour when written to a terminal.
_COMPOSE_PREFIX = re.compile(rb"^(?:\x1b\[[\d;]*m)?[\w.-]+ +\| (?:\x1b\[0m)?", re.M)
_DOCKER_BEFORE_SYSLOG = re.compile(rb"^" + _DOCKER_TIME + rb"(?=" + _SYSLOG_TIME + rb")", re.M)
_DOCKER_LINE = re.compile(rb"^" + _DOCKER_TIME, re.M)


def wrapper_of(head: bytes) -> Wrapper | None:
    """What ``head`` (an input's first bytes, decompressed) is wrapped in, or None for a plain log."""
    body = head.lstrip(b"\x1e \t\r\n")
    if body.startswith(b"{"):
        return Wrapper.JOURNAL if _journal_records(body) else None
    lines = body.count(b"\n") or 1
    compose = len(_COMPOSE_PREFIX.findall(body))
    if compose and compose * 2 >= lines:
        return Wrapper.CONTAINER
    if _DOCKER_BEFORE_SYSLOG.search(body) and len(_DOCKER_LINE.findall(body)) * 2 >= lines:
        return Wrapper.CONTAINER
    return None


def _journal_records(body: bytes) -> bool:
    """Whether one of the first lines is a journal record: a JSON object with the journal's fields."""
    for line in body.split(b"\n", 8)[:8]:
        try:
            entry = orjson.loads(line.lstrip(b"\x1e"))
        except orjson.JSONDecodeError:
            continue
        if not isinstance(entry, dict):
            return False
        if ("__REALTIME_TIMESTAMP" in entry or "SYSLOG_IDENTIFIER" in entry) and (
            "MESSAGE" in entry or "__CURSOR" in entry
        ):
            return True
    return False


def head_lines(wrapper: Wrapper, head: bytes) -> bytes:
    """The log lines of an input's first bytes (for telling the format inside): the last, perhaps
    incomplete, line of ``head`` is left out."""
    cut = head.rfind(b"\n") + 1
    return Unwrapper(wrapper, "").block(head[:cut] if cut else head)


class Unwrapper:
    """Turns blocks of whole lines of one wrapped input into blocks of log lines.

    ``fmt``: the log format inside (``postfix``, ``exim``, ``sendmail``; "" while not known): a journal's
    records of that format's programs are kept. ``stats``: where bad lines are counted (None: not counted,
    for bytes read a second time) and where the records passed over are counted as lines read (the
    scanner counts the lines it is given)."""

    def __init__(
        self, wrapper: Wrapper, fmt: str, stats: SourceStats | None = None, source: str = ""
    ) -> None:
        self.wrapper = wrapper
        self._wanted = _PROGRAMS.get(fmt, _PROGRAMS[""])
        self._stats = stats
        self._source = source
        # seconds since the epoch (as the journal writes them) -> (ISO date and time, offset), local time
        self._stamps: dict[str, tuple[str, str]] = {}
        self._why: str | None = None  # what is wrong with the record just found bad, if more than its text

    def block(self, block: bytes) -> bytes:
        if self.wrapper is Wrapper.CONTAINER:
            return _DOCKER_BEFORE_SYSLOG.sub(b"", _COMPOSE_PREFIX.sub(b"", block))
        return self._journal(block)

    def _journal(self, block: bytes) -> bytes:
        """The log lines of a block of journal records. Lines are made as text and encoded once per block;
        a MESSAGE of bytes is carried through as text with ``surrogateescape``, so its bytes come out as
        they were. The usual record (string fields, a time second already seen) takes the inline path."""
        out: list[str] = []
        passed = 0
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        wanted = self._wanted
        stamps = self._stamps
        for raw in block.split(b"\n"):
            try:
                entry = loads(raw[1:] if raw[:1] == b"\x1e" else raw)
            except decode_error:
                if raw.strip(b"\x1e \t\r"):
                    self._bad(raw)
                    passed += 1
                continue
            if type(entry) is not dict:
                self._bad(raw)
                passed += 1
                continue
            message = entry.get("MESSAGE")
            ident = entry.get("SYSLOG_IDENTIFIER")
            realtime = entry.get("__REALTIME_TIMESTAMP")
            host = entry.get("_HOSTNAME")
            pid = entry.get("SYSLOG_PID") or entry.get("_PID")
            known, fraction = (
                (stamps.get(realtime[:-6]), realtime[-6:])
                if type(realtime) is str and realtime.isdigit()
                else (None, "")
            )
            if (
                type(message) is str
                and type(ident) is str
                and known is not None
                and type(host) is str
                and host
                and type(pid) is str
                and pid.isdigit()
                and wanted(ident)
            ):
                out.append(f"{known[0]}.{fraction}{known[1]} {host} {ident}[{pid}]: {message}")
                continue
            self._why = None
            line = self._line(entry)
            if line is None:
                self._bad(self._why or raw)
                passed += 1
            elif line:
                out.append(line)
            else:
                passed += 1
        if self._stats is not None:
            self._stats.lines += passed
        if not out:
            return b""
        out.append("")
        text = "\n".join(out)
        if text.count("\n") != len(out) - 1:  # a field with a line break: the lines are kept whole
            text = "\n".join(line.replace("\n", " ") for line in out)
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate escaped in the JSON: not text
            return text.encode("utf-8", "replace")

    def _line(self, entry: dict[str, Any]) -> str | None:
        """The log line of one record (text; bytes as ``surrogateescape``); "" for a record passed over,
        None for a bad one."""
        ident = entry.get("SYSLOG_IDENTIFIER")
        if isinstance(ident, list):  # a field given several times: a list of its values
            ident = ident[0] if ident else None
        if "MESSAGE" not in entry:
            return ""
        message = _text(entry["MESSAGE"])
        if not isinstance(ident, str) or not self._wanted(ident):
            # Another program's record, unless its MESSAGE is a whole log line (Docker's journald driver)
            if message is not None and _OWN_LINE.match(message):
                return message
            return ""
        stamp = self._stamp(entry)
        if message is None:  # null (longer than journalctl prints without --all) or not text
            self._why = (
                f"{stamp or '(no time)'} {ident}: a record whose MESSAGE the export left out (null:"
                " journalctl prints a field over 4096 bytes with --all only)"
            )
            return None
        if stamp is None:
            return None
        host = entry.get("_HOSTNAME")
        pid = entry.get("SYSLOG_PID") or entry.get("_PID")
        if not isinstance(pid, str) or not (pid.isascii() and pid.isdigit()):
            pid = "0"
        where = f"{host} " if isinstance(host, str) and host else ""
        return f"{stamp} {where}{ident}[{pid}]: {message}"

    def _stamp(self, entry: dict[str, Any]) -> str | None:
        """``2026-12-08T02:24:13.123456+01:00`` (local time) of ``__REALTIME_TIMESTAMP``, else syslog's
        ``Dec  8 02:24:13`` of ``SYSLOG_TIMESTAMP`` (its year then comes from the file's time)."""
        realtime = entry.get("__REALTIME_TIMESTAMP")
        if (
            isinstance(realtime, str)
            and realtime.isascii()
            and realtime.isdigit()
            and 6 < len(realtime) <= 19
        ):
            second = realtime[:-6]
            known = self._stamps.get(second)
            if known is None:
                try:
                    text = datetime.fromtimestamp(int(second), UTC).astimezone().isoformat()
                except (OverflowError, OSError, ValueError):
                    return None
                if len(self._stamps) >= _MAX_STAMPS:
                    self._stamps.clear()
                known = self._stamps[second] = (text[:19], text[19:])
            return f"{known[0]}.{realtime[-6:]}{known[1]}"
        syslog = entry.get("SYSLOG_TIMESTAMP")
        if isinstance(syslog, str) and _SYSLOG_STAMP.fullmatch(syslog):
            return syslog.strip()
        return None

    def _bad(self, raw: bytes | str) -> None:
        if self._stats is not None:
            self._stats.bad(self._source, raw)


def _text(value: object) -> str | None:
    """A journal field's value as text: a string, or an array of byte values (decoded with
    ``surrogateescape``: its bytes come back unchanged when the line is encoded); the first of several
    values; None for anything else (``null``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        if all(type(b) is int for b in value):
            try:
                return bytes(value).decode("utf-8", "surrogateescape")
            except ValueError:
                return None
        return _text(value[0])
    return None
