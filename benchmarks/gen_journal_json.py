"""Turn a BSD syslog mail log into what ``journalctl -o json`` prints for the same lines, for timing the
audit of journal exports (``typoguard.audit.unwrap``): one JSON record per line with the fields journald
adds (~1.3 KB a record, ~7x the syslog line), the year taken from the command line.

    python -m benchmarks.gen_journal_json IN.log OUT.json [YEAR]
"""

from __future__ import annotations

import re
import sys
from datetime import datetime
from pathlib import Path

import orjson

_LINE = re.compile(rb"^(\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) (\S+) ([\w./-]+)\[(\d+)\]: (.*)$")
_MONTHS = {datetime(2026, i, 1).strftime("%b").encode(): i for i in range(1, 13)}


def convert(src: Path, out: Path, year: int) -> int:
    n = 0
    with src.open("rb") as f, out.open("wb") as w:
        for line in f:
            m = _LINE.match(line.rstrip(b"\n"))
            if m is None:
                continue
            month, day, hh, mm, ss, host, ident, pid, text = m.groups()
            when = datetime(year, _MONTHS[month], int(day), int(hh), int(mm), int(ss))
            us = int(when.timestamp()) * 1_000_000 + n % 1_000_000
            comm = ident.rsplit(b"/", 1)[-1].decode()
            try:
                message: str | list[int] = text.decode("utf-8")
            except UnicodeDecodeError:
                message = list(text)
            record = {
                "__CURSOR": f"s=6c1f3b2a9e8d4c7b8a9f0e1d2c3b4a59;i={n:x};b=0f1e2d3c4b5a69788796a5b4c3d2e1f0;"
                f"m={n * 997:x};t={us:x};x=9a8b7c6d5e4f3a2b",
                "__REALTIME_TIMESTAMP": str(us),
                "__MONOTONIC_TIMESTAMP": str(5_000_000 + n * 997),
                "_BOOT_ID": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
                "_MACHINE_ID": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
                "_HOSTNAME": host.decode(),
                "PRIORITY": "6",
                "SYSLOG_FACILITY": "2",
                "_UID": "107",
                "_GID": "114",
                "_CAP_EFFECTIVE": "0",
                "_TRANSPORT": "syslog",
                "SYSLOG_IDENTIFIER": ident.decode(),
                "SYSLOG_PID": pid.decode(),
                "SYSLOG_TIMESTAMP": when.strftime("%b %e %H:%M:%S "),
                "MESSAGE": message,
                "_PID": pid.decode(),
                "_COMM": comm,
                "_EXE": f"/usr/lib/postfix/sbin/{comm}",
                "_CMDLINE": f"{comm} -n {comm} -t unix -u -c",
                "_SYSTEMD_CGROUP": "/system.slice/system-postfix.slice/postfix@-.service",
                "_SYSTEMD_UNIT": "postfix@-.service",
                "_SYSTEMD_SLICE": "system.slice",
                "_SYSTEMD_INVOCATION_ID": "5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b",
                "_SOURCE_REALTIME_TIMESTAMP": str(us - 40),
            }
            w.write(orjson.dumps(record) + b"\n")
            n += 1
    return n


if __name__ == "__main__":
    year = int(sys.argv[3]) if len(sys.argv) > 3 else datetime.now().year
    print(convert(Path(sys.argv[1]), Path(sys.argv[2]), year), "records")
