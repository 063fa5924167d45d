"""Figures for the installed .deb (issue 17): READY=1 time and idle RSS of a unit's ExecStart.

Run as root with the package installed, alone on the machine:
    flock -x /tmp/tg-machine.lock .venv/bin/python tests/packaging/measure_deb.py serve 20
    flock -x /tmp/tg-machine.lock .venv/bin/python tests/packaging/measure_deb.py serve 10000
It runs the unit's own ExecStart line (parsed from /lib/systemd/system/<unit>) as the typoguard user,
with a temporary config protecting N plausible domains (words of typoguard's common-word list under
common suffixes, deterministic), plays systemd's part for READY=1, waits 3 s idle, and prints seconds to
READY=1 and VmRSS of the main process and of its children (the decision writer).
"""

from __future__ import annotations

import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUFFIXES = ("com", "org", "net", "gov", "mil", "edu", "de", "fr", "co.uk", "com.au", "nl", "io")
UNITS = {"serve": "typoguard.service", "relay": "typoguard-relay.service", "sink": "typoguard-sink.service"}
WORDS = Path(__file__).resolve().parents[2] / "src/typoguard/data/common_words.txt"


def domains(n: int) -> list[str]:
    """N distinct plausible registrable domains: long-ish words (fewer accidental look-alike pairs)."""
    found = (
        w.lower() for w in WORDS.read_text().split() if w.isascii() and w.isalpha() and 6 <= len(w) <= 14
    )
    words = list(dict.fromkeys(found))
    out = [f"{words[i]}.{SUFFIXES[i % len(SUFFIXES)]}" for i in range(n)]
    return out


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in found]


def main(command: str, n: int) -> None:
    unit = Path("/lib/systemd/system") / UNITS[command]
    line = next(x for x in unit.read_text().splitlines() if x.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart="))
    port = 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="typoguard-measure-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        data = root / "data"
        data.mkdir()
        shutil.chown(data, "typoguard", "typoguard")
        (root / "domains.txt").write_text("\n".join(domains(n)) + "\n")
        (root / "t.toml").write_text(
            f'[protect]\nfiles = ["{root / "domains.txt"}"]\n[policyd]\nlisten = "127.0.0.1:{port}"\n'
            f'[store]\ndata_dir = "{data}"\n[relay]\nlisten = "127.0.0.1:{port}"\n'
            f'[sink]\nlisten = ["127.0.0.1:{port}"]\ndomains = ["army-mil.com=army.mil"]\n'
        )
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(root / "notify"))
        shutil.chown(root / "notify", "typoguard", "typoguard")
        notify.settimeout(120)
        argv[argv.index("--config") + 1] = str(root / "t.toml")
        started = time.monotonic()
        proc = subprocess.Popen(
            ["setpriv", "--reuid=typoguard", "--regid=typoguard", "--init-groups", *argv],
            env={"PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": str(root / "notify")},
            cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            notify.recv(100)
            ready = time.monotonic() - started
            time.sleep(3)
            main_pid = (
                children(proc.pid)[0]
                if Path(f"/proc/{proc.pid}/exe").resolve().name == "setpriv"
                else proc.pid
            )
            kids = {c: rss_kib(c) for c in children(main_pid)}
            print(
                f"{command} {n} domains: READY=1 {ready:.2f} s; RSS main {rss_kib(main_pid) / 1024:.0f} MiB"
                + "".join(f", child {c} {k / 1024:.0f} MiB" for c, k in kids.items())
            )
        finally:
            proc.terminate()
            proc.wait(60)
            notify.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
