"""The Debian package, as an admin gets it: ``make deb``, ``apt-get install ./typoguard_*.deb``, the units'
own ``ExecStart`` run as the ``typoguard`` user, ``apt-get purge``.

Needs root (apt-get, a system user) and dh-virtualenv. Under ``CI=true`` it installs what it needs
(scripts/install-deb-deps.sh) and never skips; elsewhere it skips, saying why, when it cannot run. The .deb
is built once per session (a few minutes: pip builds a venv and mypyc compiles the policy codec);
``TYPOGUARD_TEST_DEB=/path/to/typoguard_*.deb`` reuses one already built. No systemd needs to run: the
units are checked by ``systemd-analyze verify`` and their ``ExecStart`` line is run here, with the
process playing systemd's part for readiness (``NOTIFY_SOCKET``). The machine's own Postfix is not touched.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from typoguard.policyd.query import query, rcpt_request

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
UNIT_DIR = Path("/lib/systemd/system")
UNITS = (
    "typoguard.service",
    "typoguard-relay.service",
    "typoguard-sink.service",
    "typoguard-exposure.service",
    "typoguard-exposure.timer",
)
# The held-mail helper's socket and the service it starts per connection (root; docs/adr/0022).
HELD_UNITS = ("typoguard-postfix-held.socket", "typoguard-postfix-held@.service")
HELPER = Path("/usr/lib/typoguard/postfix-held")
SUDOERS = Path("/etc/sudoers.d/typoguard")
CI = os.environ.get("CI") == "true"
USER = "typoguard"


def _cannot_run(why: str) -> None:
    if CI:
        pytest.fail(f"CI=true: the .deb test must run, but {why}")
    print(f"skipping the .deb test: {why}")
    pytest.skip(why)


def _run(cmd: list[str], *, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    """Run ``cmd``; its standard output, or a failed assertion with both outputs."""
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    output = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.returncode == 0, f"{shlex.join(cmd)} exited {result.returncode}:\n{output}"
    return result.stdout


def _version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def _installed() -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Abbrev}", "typoguard"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.startswith("ii")


@pytest.fixture(scope="session")
def deb(deb_background_build: Any) -> Path:
    """typoguard_<version>_<arch>.deb: built by ``make deb`` once per session (or TYPOGUARD_TEST_DEB); the
    build tests/conftest.py started in the background when the tests were collected, if it could."""
    if os.geteuid() != 0:
        _cannot_run("it needs root (apt-get install, a system user)")
    if CI:
        _run(["bash", str(REPO / "scripts/install-deb-deps.sh")])
    for tool in ("dh_virtualenv", "dpkg-buildpackage", "systemd-analyze", "setpriv"):
        if shutil.which(tool) is None:
            _cannot_run(f"{tool} is missing (bash scripts/install-deb-deps.sh installs it)")
    prebuilt = os.environ.get("TYPOGUARD_TEST_DEB")
    if prebuilt:
        return Path(prebuilt).resolve()  # apt-get wants a path ("./" or "/"), not a name
    background = deb_background_build
    if background is not None:
        status, took, log = background.wait(timeout=1200)
        assert status == 0, f"make deb (in the background) exited {status}:\n{log}"
        print(f"make deb, in the background: {took:.0f} s")
    else:
        started = time.monotonic()
        _run(["make", "-C", str(REPO), "deb"], timeout=1200)
        print(f"make deb: {time.monotonic() - started:.0f} s")
    arch = _run(["dpkg", "--print-architecture"]).strip()
    built = REPO / "build" / "deb" / f"typoguard_{_version()}_{arch}.deb"
    assert built.exists(), f"make deb did not produce {built.name}: {sorted(built.parent.glob('*.deb'))}"
    return built


@pytest.fixture(scope="session")
def installed(deb: Path) -> Iterator[Path]:
    """The package installed with apt-get as an admin would; purged afterwards if a test left it."""
    started = time.monotonic()
    _run(
        ["apt-get", "install", "-y", "--no-install-recommends", str(deb)],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    print(f"apt-get install: {time.monotonic() - started:.1f} s, {deb.stat().st_size / 1e6:.1f} MB .deb")
    try:
        yield deb
    finally:
        if _installed():
            subprocess.run(["apt-get", "purge", "-y", "typoguard"], capture_output=True, check=False)


def _exec_start(unit: str) -> list[str]:
    lines = [line for line in (UNIT_DIR / unit).read_text().splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1, lines
    return shlex.split(lines[0].removeprefix("ExecStart="))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_typoguard(argv: list[str]) -> list[str]:
    return ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups", "--no-new-privs", *argv]


def test_deb_is_named_for_the_version_and_arch(deb: Path) -> None:
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert deb.name == f"typoguard_{_version()}_{arch}.deb"
    fields = _run(["dpkg-deb", "-f", str(deb), "Package", "Version", "Depends"])
    assert f"Version: {_version()}" in fields and "python3.11" in fields


def test_every_unit_passes_systemd_analyze_verify(installed: Path) -> None:
    for unit in (*UNITS, *HELD_UNITS):
        assert (UNIT_DIR / unit).exists(), unit
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(UNIT_DIR / u) for u in (*UNITS, HELD_UNITS[0]))],
        capture_output=True,
        text=True,
        check=False,
    )
    # Outside a booted systemd it also says it cannot reach the bus; only lines about our units count.
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "typoguard" in line]
    assert result.returncode == 0 and not ours, f"exit {result.returncode}:\n{result.stdout}\n{result.stderr}"


def test_the_units_are_hardened_and_only_the_sink_may_bind_port_25(installed: Path) -> None:
    for unit in UNITS[:4]:
        text = (UNIT_DIR / unit).read_text()
        for line in (
            "User=typoguard", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
            "PrivateTmp=yes", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "StateDirectory=typoguard",
        ):  # fmt: skip
            assert line in text.splitlines(), f"{unit}: no {line}"
        caps = re.findall(r"^(?:AmbientCapabilities|CapabilityBoundingSet)=(.*)$", text, re.M)
        assert caps == (["CAP_NET_BIND_SERVICE"] * 2 if unit == "typoguard-sink.service" else [""]), (
            unit,
            caps,
        )


def test_the_held_mail_helper_and_its_sudoers_rule_are_installed_root_owned(installed: Path) -> None:
    """/usr/lib/typoguard/postfix-held root:root 0755, /etc/sudoers.d/typoguard root:root 0440 (a conffile)
    that visudo accepts and that lets the typoguard user run the helper and nothing else."""
    for path, mode in ((HELPER, 0o755), (SUDOERS, 0o440), (HELPER.parent, 0o755)):
        st = path.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 0, mode), (path, oct(st.st_mode))
    assert str(SUDOERS) in _run(["dpkg-query", "-W", "-f=${Conffiles}", "typoguard"]).split()
    if shutil.which("visudo") is None or shutil.which("sudo") is None:
        _cannot_run("sudo is missing (bash scripts/install-system-deps.sh installs it)")
    assert "parsed OK" in _run(["visudo", "-cf", str(SUDOERS)])
    listed = _run(["sudo", "-l", "-U", USER]).split("may run the following commands", 1)[1].splitlines()[1:]
    assert [line.strip() for line in listed if line.strip()] == [f"(root) NOPASSWD: {HELPER}"], listed
    # The installed chain works as the typoguard user: "auto" picks sudo and the helper (not root, no
    # socket), the helper runs as root and refuses an instance Postfix would not let a non-root user name.
    with tempfile.TemporaryDirectory(prefix="typoguard-deb-held-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        data = root / "data"
        data.mkdir()
        shutil.chown(data, USER, USER)
        config = root / "typoguard.toml"
        config.write_text(
            f'[store]\ndata_dir = "{data}"\n[postfix]\nconfig_directory = "/nonexistent/postfix"\n'
        )
        result = subprocess.run(
            ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups", "/usr/bin/typoguard", "held",
             "list", "--config", str(config)],
            capture_output=True, text=True, timeout=60, cwd="/", check=False,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
        )  # fmt: skip
    assert result.returncode != 0, (result.returncode, result.stdout, result.stderr)
    assert f"sudo -n {HELPER} -c /nonexistent/postfix list exited 2" in result.stderr, result.stderr
    assert "postfix-held: refused: /nonexistent/postfix is not Postfix's default" in result.stderr


def test_the_held_mail_helper_units_run_it_as_root_with_little(installed: Path) -> None:
    socket_unit = (UNIT_DIR / HELD_UNITS[0]).read_text().splitlines()
    for line in ("ListenStream=/run/typoguard-postfix-held.sock", "SocketUser=root", "SocketGroup=typoguard",
                 "SocketMode=0660", "Accept=yes"):  # fmt: skip
        assert line in socket_unit, line
    service = (UNIT_DIR / HELD_UNITS[1]).read_text().splitlines()
    assert f"ExecStart={HELPER} --request" in service
    for line in ("NoNewPrivileges=yes", "PrivateNetwork=yes", "RestrictAddressFamilies=AF_UNIX",
                 "CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_CHOWN "
                 "CAP_FOWNER"):  # fmt: skip
        assert line in service, line
    assert not any(line.startswith("User=") for line in service)  # root: postsuper refuses anyone else
    wants = Path("/etc/systemd/system/sockets.target.wants") / HELD_UNITS[0]
    assert not os.path.lexists(wants), "the install enables nothing: the admin enables the socket"


def test_typoguard_is_on_path_and_runs_from_opt(installed: Path) -> None:
    assert shutil.which("typoguard", path="/usr/bin") == "/usr/bin/typoguard"
    assert os.path.realpath("/usr/bin/typoguard").startswith("/opt/typoguard/")
    help_text = _run(["/usr/bin/typoguard", "--help"])
    assert "serve" in help_text and "exposure" in help_text
    assert pwd.getpwnam(USER).pw_dir == "/var/lib/typoguard"


def test_the_shipped_config_refuses_to_start_and_says_why(installed: Path) -> None:
    """/etc/typoguard/typoguard.toml protects nothing until edited: exit 2 (no restart loop), a clear line."""
    assert Path("/etc/typoguard/typoguard.toml") in {
        Path(p) for p in _run(["dpkg-query", "-W", "-f=${Conffiles}", "typoguard"]).split()
    }
    result = subprocess.run(
        _as_typoguard(_exec_start("typoguard.service")),
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        check=False,
    )
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "nothing to protect" in result.stderr and "Traceback" not in result.stderr
    assert "RestartPreventExitStatus=2" in (UNIT_DIR / "typoguard.service").read_text().splitlines()


def test_execstart_as_the_typoguard_user_answers_postfix_and_reloads_on_sighup(installed: Path) -> None:
    argv = _exec_start("typoguard.service")
    assert argv[:2] == ["/usr/bin/typoguard", "serve"] and argv[-2:] == [
        "--config",
        "/etc/typoguard/typoguard.toml",
    ]
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="typoguard-deb-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        data = root / "data"  # what StateDirectory= gives the unit: owned by the typoguard user
        data.mkdir()
        shutil.chown(data, USER, USER)
        config = root / "typoguard.toml"
        body = f'[policyd]\nlisten = "127.0.0.1:{port}"\n[store]\ndata_dir = "{data}"\n'
        body += '[policy]\ninternal_senders = ["army.mil"]\n[protect]\ndomains = [{}]\n'
        config.write_text(body.format('"army.mil"'))
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(root / "notify"))
        shutil.chown(root / "notify", USER, USER)
        notify.settimeout(60)
        log = (root / "stderr.txt").open("wb")
        started = time.monotonic()
        proc = subprocess.Popen(
            _as_typoguard([*argv[:-1], str(config)]),
            cwd="/",
            env={
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "NOTIFY_SOCKET": str(root / "notify"),
                "LANG": "C.UTF-8",
            },
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            assert "READY=1" in notify.recv(4096).decode().split("\n")
            print(f"typoguard.service ExecStart: READY=1 {time.monotonic() - started:.2f} s after exec")
            assert pwd.getpwuid(os.stat(f"/proc/{proc.pid}").st_uid).pw_name == USER
            reply = query(f"127.0.0.1:{port}", [rcpt_request("alice@army.mil", "bob@army.ml")])
            assert reply[0].startswith("550 5.1.2") and "army.mil" in reply[0], reply
            assert query(f"127.0.0.1:{port}", [rcpt_request("alice@army.mil", "bob@exmaple.com")]) == [
                "DUNNO"
            ]
            config.write_text(body.format('"army.mil", "example.com"'))
            proc.send_signal(signal.SIGHUP)  # ExecReload=/bin/kill -HUP $MAINPID
            deadline = time.monotonic() + 30
            while query(f"127.0.0.1:{port}", [rcpt_request("alice@army.mil", "bob@exmaple.com")]) == [
                "DUNNO"
            ]:
                assert time.monotonic() < deadline, "SIGHUP did not reload the config"
                time.sleep(0.1)
            assert list(data.iterdir()), "nothing written under the state directory"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            notify.close()
            log.close()
        assert "Traceback" not in (root / "stderr.txt").read_text()


def test_purge_removes_the_venv_user_units_and_config(installed: Path) -> None:
    _run(["apt-get", "purge", "-y", "typoguard"], env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    assert not _installed()
    for path in (
        "/opt/typoguard",
        "/usr/bin/typoguard",
        "/etc/typoguard",
        "/var/lib/typoguard",
        str(SUDOERS),
        str(HELPER.parent),
        *(str(UNIT_DIR / u) for u in (*UNITS, *HELD_UNITS)),
    ):
        assert not os.path.lexists(path), f"{path} left after purge"
    for db in ("passwd", "group"):
        assert subprocess.run(["getent", db, USER], capture_output=True, check=False).returncode == 2, (
            f"{db}: {USER} left"
        )
