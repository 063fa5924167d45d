"""The e2e Postfix lab is a private instance: the machine's own Postfix (``/etc/postfix``) is never touched.

A machine with its own mail server must be able to run the suite: the lab's config, queue, data and log
live in a temporary directory, its smtpd listens on an ephemeral loopback port, and two labs run at once.
Needs Postfix, swaks and root (skips with the reason elsewhere; under CI=true it must run).
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
from postfix_lab import PostfixLab, missing_tools  # tests/e2e is on sys.path (no __init__.py here)

pytestmark = pytest.mark.e2e

_MISSING = missing_tools()
if _MISSING:
    _REASON = f"needs {', '.join(_MISSING)}; run scripts/install-system-deps.sh as root"
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true: Postfix lab tests must run, but: {_REASON}")
    pytest.skip(_REASON, allow_module_level=True)

SYSTEM = Path("/etc/postfix")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _system_files() -> dict[str, bytes | None]:
    """The machine's Postfix config, byte for byte (None: absent), and every name in /etc/postfix."""
    out: dict[str, bytes | None] = {}
    for name in ("main.cf", "master.cf"):
        path = SYSTEM / name
        out[name] = path.read_bytes() if path.exists() else None
    out["listing"] = "\n".join(sorted(p.name for p in SYSTEM.iterdir())).encode() if SYSTEM.is_dir() else None
    return out


def _default_instance_status() -> int:
    """``postfix status`` of the machine's own instance (non-zero: not configured or not running)."""
    return subprocess.run(["postfix", "status"], capture_output=True, check=False, timeout=30).returncode


def test_two_labs_run_at_once_and_leave_the_machines_postfix_untouched() -> None:
    before, status_before = _system_files(), _default_instance_status()
    labs = [PostfixLab(smtp_port=_free_port(), policy_service="none") for _ in range(2)]
    try:
        for lab in labs:
            lab.start()
        assert labs[0].conf != labs[1].conf
        assert _system_files() == before, "a running lab changed /etc/postfix"
        for n, lab in enumerate(labs):
            result = lab.swaks("alice@army.mil", [f"bob{n}@example.org"])
            assert result.exit_code == 0, result.transcript
            lab.wait_delivered(f"bob{n}@example.org", result.queue_id)
            # each lab's log is its own
            assert not any(f"bob{1 - n}@example.org" in line for line in lab.log_lines())
        assert lab.queue() == []  # postqueue -c <lab>: its own, empty queue
    finally:
        for lab in labs:
            lab.stop()
    assert _system_files() == before, "a lab's start/stop changed /etc/postfix"
    assert _default_instance_status() == status_before
    assert all(not lab.root.exists() for lab in labs), "stop() leaves no temporary directory behind"
