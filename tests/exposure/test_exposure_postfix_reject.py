"""The exported access table in a real Postfix: RCPT to a look-alike is rejected with "did you mean".

A private Postfix instance (``postfix -c DIR``: its own config, queue and port under the test's tmp
directory, /etc/postfix untouched; every transport ``discard:``, nothing leaves the machine) with
``check_recipient_access hash:<typoguard export --format postfix-access>``. Needs root and the Debian
``postfix`` package: skipped with the reason elsewhere, must run under CI=true.
"""

from __future__ import annotations

import os
import shutil
import smtplib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from typoguard.cli import main

pytestmark = pytest.mark.e2e


def _missing() -> str:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [t for t in ("postfix", "postmap", "postconf") if shutil.which(t, path=path) is None]
    if os.geteuid() != 0:
        missing.append("root (the Postfix master runs as root)")
    return ", ".join(missing)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postfix() -> Iterator[int]:
    missing = _missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Postfix lab cannot run under CI=true: missing {missing}")
        pytest.skip(f"Postfix lab needs {missing} (scripts/install-system-deps.sh installs postfix)")
    # Not under pytest's tmp directory: that is root-only (0700) and Postfix's daemons run as postfix.
    top = Path(tempfile.mkdtemp(prefix="typoguard-postfix-"))
    top.chmod(0o755)
    conf, queue, data = top / "conf", top / "queue", top / "data"
    conf.mkdir()
    queue.mkdir()
    data.mkdir()
    shutil.chown(data, "postfix")
    port = _free_port()
    master = Path("/etc/postfix/master.cf").read_text().replace("\nsmtp      inet", "\n#smtp      inet")
    (conf / "master.cf").write_text(master + f"127.0.0.1:{port} inet n - n - - smtpd\n")
    for name in ("dynamicmaps.cf", "postfix-files"):
        if Path("/etc/postfix", name).exists():
            shutil.copy(Path("/etc/postfix", name), conf / name)
    result = CliRunner().invoke(
        main, ["export", "--format", "postfix-access", "--protect", "army.mil", "--protect", "gmail.com"]
    )
    assert result.exit_code == 0
    (conf / "access").write_text(result.output)
    (conf / "main.cf").write_text(
        f"compatibility_level = 3.6\nqueue_directory = {queue}\ndata_directory = {data}\n"
        "myhostname = lab.typoguard.test\nmydestination =\n"
        "inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n"
        "mynetworks = 127.0.0.0/8\nsmtpd_peername_lookup = no\nsmtpd_error_sleep_time = 0\n"
        "smtpd_recipient_restrictions = "
        f"check_recipient_access hash:{conf}/access, permit_mynetworks, reject\n"
        "smtpd_relay_restrictions = permit_mynetworks, reject\n"
        "default_transport = discard:\nrelay_transport = discard:\nlocal_transport = discard:\n"
        "maillog_file = /var/log/typoguard-exposure-postfix.log\n"
    )
    cmd = ["postfix", "-c", str(conf)]
    env = {**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"}
    subprocess.run(["postmap", "-c", str(conf), f"hash:{conf}/access"], check=True, env=env, timeout=30)
    subprocess.run(["postconf", "-c", str(conf), "-F", "*/*/chroot = n"], check=True, env=env, timeout=30)
    subprocess.run([*cmd, "check"], check=True, env=env, timeout=30)
    subprocess.run([*cmd, "start"], check=True, env=env, timeout=30)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield port
    finally:
        pid_file = queue / "pid" / "master.pid"
        pid = int(pid_file.read_text().strip() or 0) if pid_file.exists() else 0
        subprocess.run([*cmd, "stop"], check=False, env=env, timeout=30)
        deadline = time.monotonic() + 10  # `postfix stop` returns before the master has exited
        while pid and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(top, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _rcpt(port: int, recipient: str) -> tuple[int, str]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo("client.example.org")
        smtp.mail("alice@example.org")
        code, text = smtp.rcpt(recipient)
        return code, text.decode()


def test_postfix_rejects_a_lookalike_with_the_exported_table(postfix: int) -> None:
    code, text = _rcpt(postfix, "bob@army.ml")
    assert code == 554
    assert "5.1.2" in text and "did you mean army.mil?" in text
    code, text = _rcpt(postfix, "bob@gmial.com")
    assert code == 554 and "did you mean gmail.com?" in text


def test_postfix_accepts_the_real_domain(postfix: int) -> None:
    assert _rcpt(postfix, "bob@army.mil")[0] == 250
