"""Held mail from a service that is not root: every Postfix queue command goes through the root-owned helper
(debian/postfix-held), by sudo (debian/typoguard.sudoers) or by its socket
(debian/systemd/typoguard-postfix-held.socket), and the helper refuses anything but its four commands.

Real components: a private Postfix (``test_held_postfix.postfix_instance``), sudo with a drop-in made from the
shipped one (the rule's user and helper path swapped for the test's, checked by ``visudo -cf`` before it is
installed, removed after), the helper copied root-owned, ``typoguard http`` run as a system user made for
the test (``useradd --system``), ``systemd-socket-activate`` standing in for the socket unit (with the unit's
capability bounding set and NoNewPrivileges).

A non-root caller may name the private instance (``-c DIR``) only if the default instance's main.cf lists it
in ``alternate_config_directories`` - Postfix's rule, which the helper applies. This machine has no
/etc/postfix/main.cf and the test must not write one, so the test user's processes run in a private mount
namespace (``unshare --mount``) where /etc/postfix is a copy with that line; the machine's is never written.

Needs root, sudo, visudo, unshare, setpriv and useradd (the socket test also systemd-socket-activate). Skips
with the reason when one is missing, except under CI=true, where it fails.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from test_held_instance import _exe
from test_held_postfix import _send_held, _wait_held, delivered, postfix_instance  # noqa: F401 - the fixture

from typoguard.config import load_config
from typoguard.held import PostfixQueue
from typoguard.store import open_store
from typoguard.store.tokens import TokenStore

IN_CI = os.environ.get("CI") == "true"
REPO = Path(__file__).resolve().parents[2]
HELPER_SOURCE = REPO / "debian" / "postfix-held"
SUDOERS_SOURCE = REPO / "debian" / "typoguard.sudoers"
SHIPPED_RULE = "typoguard ALL=(root) NOPASSWD: /usr/lib/typoguard/postfix-held"
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# typoguard-postfix-held@.service's CapabilityBoundingSet, as setpriv spells it
UNIT_CAPS = "-all,+setuid,+setgid,+dac_override,+dac_read_search,+chown,+fowner"
FAST = 10.0  # seconds: "delivered at once" (the instance's next queue run is an hour away)


def _cannot_run(why: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true: the held-mail privilege test must run, but {why}")
    print(f"skipping: {why}")
    pytest.skip(why)


def _need(*tools: str) -> None:
    if os.geteuid() != 0:
        _cannot_run("it needs root (useradd, a sudoers drop-in, a mount namespace)")
    missing = [t for t in tools if not shutil.which(t, path=PATH)]
    if missing:
        _cannot_run(f"{', '.join(missing)} missing (bash scripts/install-system-deps.sh installs sudo)")


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=env)


@pytest.fixture(scope="module")
def user() -> Iterator[str]:
    """A system user and group made for this test: what the typoguard package's postinst makes."""
    _need("sudo", "visudo", "unshare", "setpriv", "useradd", "userdel", "postfix", "mount")
    probe = _run(["unshare", "--mount", "--propagation", "private", "mount", "--bind", "/etc", "/etc"])
    if probe.returncode != 0:
        _cannot_run(f"no mount namespace here: {probe.stderr.strip()}")
    name = f"tgheld{secrets.token_hex(3)}"
    done = _run(
        ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", name]
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    try:
        yield name
    finally:
        _run(["userdel", name])
        with contextlib.suppress(KeyError):
            grp.getgrnam(name)
            _run(["groupdel", name])


@pytest.fixture(scope="module")
def helper() -> Iterator[Path]:
    """The helper as the package installs it: root-owned, 0755, in a root-owned directory."""
    d = Path(tempfile.mkdtemp(prefix="typoguard-helper-", dir="/var/tmp"))
    d.chmod(0o755)
    path = d / "postfix-held"
    shutil.copy(HELPER_SOURCE, path)
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def sudo_rule(user: str, helper: Path) -> Iterator[Path]:
    """The shipped drop-in with the test's user and helper path, checked by visudo, in /etc/sudoers.d."""
    text = SUDOERS_SOURCE.read_text()
    assert text.count(SHIPPED_RULE) == 1, "the shipped rule changed: update SHIPPED_RULE"
    staged = helper.parent / "sudoers"
    staged.write_text(text.replace(SHIPPED_RULE, f"{user} ALL=(root) NOPASSWD: {helper}"))
    checked = _run(["visudo", "-cf", str(staged)])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    drop_in = Path("/etc/sudoers.d") / f"typoguard-test-{user}"  # no dot: sudo would skip the file
    tmp = drop_in.with_name(drop_in.name + ".new")  # with a dot: never read while it is written
    shutil.copy(staged, tmp)
    tmp.chmod(0o440)
    tmp.replace(drop_in)
    try:
        yield drop_in
    finally:
        drop_in.unlink(missing_ok=True)


@pytest.fixture
def instance(postfix_instance: Path) -> Iterator[tuple[Path, Path]]:  # noqa: F811 - the fixture
    """The private instance's config directory, and an /etc/postfix for the namespace that lists it."""
    conf = postfix_instance
    etc = conf.parent / "etc-postfix"
    shutil.copytree("/etc/postfix", etc, symlinks=True)
    (etc / "main.cf").write_text(f"compatibility_level = 3.6\nalternate_config_directories = {conf}\n")
    yield conf, etc


def _in_namespace(etc: Path, argv: list[str]) -> list[str]:
    """``argv`` in a private mount namespace where /etc/postfix is ``etc``."""
    script = 'mount --bind "$0" /etc/postfix && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(etc), *argv]


def _as(user: str, argv: list[str], *, no_new_privs: bool = False) -> list[str]:
    nnp = ["--no-new-privs"] if no_new_privs else []
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *nnp, *argv]


def _env() -> dict[str, str]:
    return {"PATH": PATH, "LANG": "C.UTF-8", "HOME": "/nonexistent"}


def _queue_ids(conf: Path) -> set[str]:
    return {m.queue_id for m in PostfixQueue(config_dir=str(conf)).messages()}


@contextlib.contextmanager
def _service(
    user: str, conf: Path, etc: Path, privileged_helper: str, *, no_new_privs: bool = False
) -> Iterator[tuple[httpx.Client, dict[str, str], Path]]:
    """``typoguard http`` run as ``user`` (in the namespace) with an admin token; its directory."""
    base = Path(tempfile.mkdtemp(prefix="typoguard-held-svc-", dir="/var/tmp"))
    base.chmod(0o755)
    data = base / "data"
    data.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = base / "typoguard.toml"
    cfg.write_text(
        f'[protect]\ndomains = ["army.mil"]\n[store]\ndata_dir = "{data}"\nnode = "mx1"\n'
        f'[postfix]\nconfig_directory = "{conf}"\nprivileged_helper = "{privileged_helper}"\n'
        f'[http]\nlisten = "127.0.0.1:{port}"\n'
    )
    store = open_store(load_config(cfg))
    secret = TokenStore(store).create("admin-user", "admin", by="test")[1]
    store.close()
    for path in (data, *data.rglob("*")):
        shutil.chown(path, user, user)
    log = base / "http.out"
    with log.open("wb") as out:
        argv = _in_namespace(
            etc, _as(user, [_exe(), "http", "--config", str(cfg)], no_new_privs=no_new_privs)
        )
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=_env(), cwd="/")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        assert f"Uid:\t{pwd.getpwnam(user).pw_uid}\t" in status, status  # not root
        assert f"NoNewPrivs:\t{int(no_new_privs)}" in status, status
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client, {"Authorization": f"Bearer {secret}"}, base
    finally:
        proc.terminate()
        proc.wait(15)
        shutil.rmtree(base, ignore_errors=True)


def test_the_shipped_sudoers_drop_in_is_valid_and_grants_only_the_helper(
    user: str, helper: Path, sudo_rule: Path
) -> None:
    checked = _run(["visudo", "-cf", str(SUDOERS_SOURCE)])
    assert checked.returncode == 0 and "parsed OK" in checked.stdout, checked.stdout + checked.stderr
    rules = [line for line in SUDOERS_SOURCE.read_text().splitlines() if line and not line.startswith("#")]
    assert rules == [SHIPPED_RULE]
    listed = _run(["sudo", "-l", "-U", user])
    assert listed.returncode == 0, listed.stderr
    commands = listed.stdout.split("may run the following commands", 1)[1].splitlines()[1:]
    assert [c.strip() for c in commands if c.strip()] == [f"(root) NOPASSWD: {helper}"], listed.stdout


def test_the_helper_refuses_anything_but_its_four_commands(
    instance: tuple[Path, Path], user: str, helper: Path, sudo_rule: Path
) -> None:
    conf, etc = instance
    _send_held(conf, "bob@arrny.mil")
    (qid,) = _wait_held(PostfixQueue(config_dir=str(conf)), 1)
    c = ["-c", str(conf)]

    def as_user(*argv: str) -> subprocess.CompletedProcess[str]:
        return _run(_in_namespace(etc, _as(user, list(argv))), env=_env())

    listed = as_user("sudo", "-n", str(helper), *c, "list")
    assert listed.returncode == 0, listed.stderr
    assert [orjson.loads(line)["queue_id"] for line in listed.stdout.splitlines()] == [qid]
    refused = [
        [*c, "release", f"{qid};id"],  # shell metacharacters: never a shell, and not a queue id
        [*c, "release", "$(id)"],
        [*c, "release", f"{qid} {qid}"],
        [*c, "release", "../../etc/passwd"],
        [*c, "delete", "ALL"],  # postsuper's "every message"
        [*c, "release", "-r"],
        [*c, "-r", "ALL"],  # another postsuper flag
        [*c, "-d", qid],
        [*c, "release", "-H", qid],
        [*c, "release", qid, "deferred"],  # one argument too many (another queue)
        [*c, "requeue", qid],
        [*c, "list", "-v"],
        ["-c", "/etc", "list"],  # an instance the default main.cf does not list
        ["-c", f"{conf}/", "release", qid],
        ["-c", f"{conf}/../conf", "release", qid],
        ["-c"],
        [],
        ["--request", "list"],
    ]
    for args in refused:
        done = as_user("sudo", "-n", str(helper), *args)
        assert done.returncode == 2 and "postfix-held: refused" in done.stderr, (args, done)
    # sudo allows the helper and nothing else; postsuper itself refuses a non-root user.
    for argv in (
        ["sudo", "-n", "/usr/sbin/postsuper", *c, "-d", "ALL"],
        ["sudo", "-n", "/bin/sh", "-c", "id"],
    ):
        done = as_user(*argv)
        assert done.returncode == 1 and "password is required" in done.stderr, (argv, done)
    done = as_user("/usr/sbin/postsuper", *c, "-d", qid, "hold")
    assert done.returncode != 0 and "reserved for the superuser" in done.stderr, done
    assert PostfixQueue(config_dir=str(conf)).held()[0].queue_id == qid  # nothing changed
    assert _queue_ids(conf) == {qid}


def test_an_unprivileged_service_releases_and_deletes_through_sudo_and_the_helper(
    instance: tuple[Path, Path], user: str, helper: Path, sudo_rule: Path
) -> None:
    conf, etc = instance
    _send_held(conf, "bob@arrny.mil")
    _send_held(conf, "carol@arrny.mil")
    ids = _wait_held(PostfixQueue(config_dir=str(conf)), 2)
    with _service(user, conf, etc, f"sudo:{helper}") as (client, auth, _):
        r = client.get("/v1/held", headers=auth)
        assert r.status_code == 200, r.text
        assert sorted(m["queue_id"] for m in r.json()["held"]) == sorted(ids)
        bob, carol = ids
        started = time.monotonic()
        r = client.post(f"/v1/held/{bob}/release", headers=auth)
        assert r.status_code == 200, r.text
        delivered(conf, bob, timeout=FAST)
        print(f"API release through sudo + helper to delivered: {time.monotonic() - started:.2f} s")
        assert r.json()["delivery"]["attempted"] is True and r.json()["delivery"]["queue_state"] == "gone"
        r = client.delete(f"/v1/held/{carol}", headers=auth)
        assert r.status_code == 200, r.text
        assert _queue_ids(conf) == set()
        assert client.post("/v1/held/BAD!!/release", headers=auth).status_code == 400
        assert client.post(f"/v1/held/{carol}/release", headers=auth).status_code == 409
    log = (conf.parent / "postfix.log").read_text()
    assert f"{carol}: to=<" not in log  # deleted, never delivered


def test_sudo_cannot_work_under_no_new_privileges_and_the_answer_says_so(
    instance: tuple[Path, Path], user: str, helper: Path, sudo_rule: Path
) -> None:
    conf, etc = instance
    _send_held(conf, "bob@arrny.mil")
    (qid,) = _wait_held(PostfixQueue(config_dir=str(conf)), 1)
    with _service(user, conf, etc, f"sudo:{helper}", no_new_privs=True) as (client, auth, _):
        r = client.get("/v1/held", headers=auth)
        assert r.status_code == 502, r.text
        error = r.json()["error"]
        assert f"cannot read the queue of Postfix instance {conf}" in error
        assert '"no new privileges" flag is set' in error and "typoguard-postfix-held.socket" in error
        r = client.post(f"/v1/held/{qid}/release", headers=auth)
        assert r.status_code == 502, r.text
    assert [m.queue_id for m in PostfixQueue(config_dir=str(conf)).held()] == [qid]


def _ask(sock: Path, line: bytes) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(str(sock))
        s.sendall(line)
        s.shutdown(socket.SHUT_WR)  # nothing more: a line without its newline is refused, not waited for
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    answer: dict[str, object] = orjson.loads(reply)
    return answer


def test_a_hardened_service_releases_and_deletes_through_the_helper_socket(
    instance: tuple[Path, Path], user: str, helper: Path
) -> None:
    _need("systemd-socket-activate")
    conf, etc = instance
    _send_held(conf, "bob@arrny.mil")
    _send_held(conf, "carol@arrny.mil")
    bob, carol = _wait_held(PostfixQueue(config_dir=str(conf)), 2)
    sock = helper.parent / "postfix-held.sock"
    sock.unlink(missing_ok=True)
    journal = helper.parent / "helper.log"
    # typoguard-postfix-held.socket + @.service: root, the unit's bounding set, NoNewPrivileges, Accept=yes.
    activate = [
        "setpriv", f"--bounding-set={UNIT_CAPS}", "--no-new-privs",
        "systemd-socket-activate", "--inetd", "--accept", "--listen", str(sock), str(helper), "--request",
    ]  # fmt: skip
    with journal.open("wb") as err:
        activator = subprocess.Popen(_in_namespace(etc, activate), stderr=err, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert activator.poll() is None and time.monotonic() < deadline, journal.read_text()
            time.sleep(0.05)
        os.chown(sock, 0, grp.getgrnam(user).gr_gid)  # SocketUser=root, SocketGroup=typoguard
        sock.chmod(0o660)  # SocketMode=0660
        for junk in (b"release ABC;id\n", f"-c /etc release {bob}\n".encode(), b"-r ALL\n", b"list"):
            answer = _ask(sock, junk)
            assert answer["status"] == 2 and "refused" in str(answer["stderr"]), (junk, answer)
        other = _run(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "python3", "-c",
             f"import socket; socket.socket(socket.AF_UNIX).connect({str(sock)!r})"],
            env=_env(),
        )  # fmt: skip
        assert other.returncode != 0 and "PermissionError" in other.stderr, other  # not in the group
        with _service(user, conf, etc, f"unix:{sock}", no_new_privs=True) as (client, auth, _):
            r = client.get("/v1/held", headers=auth)
            assert r.status_code == 200, r.text
            assert sorted(m["queue_id"] for m in r.json()["held"]) == sorted([bob, carol])
            started = time.monotonic()
            r = client.post(f"/v1/held/{bob}/release", headers=auth)
            assert r.status_code == 200, r.text
            delivered(conf, bob, timeout=FAST)
            print(f"API release through the helper socket to delivered: {time.monotonic() - started:.2f} s")
            assert r.json()["delivery"]["queue_state"] == "gone", r.json()
            r = client.delete(f"/v1/held/{carol}", headers=auth)
            assert r.status_code == 200, r.text
        assert _queue_ids(conf) == set()
        lines = journal.read_text()
        for request in (f"-c {conf} release {bob}: exit 0", f"-c {conf} flush {bob}: exit 0",
                        f"-c {conf} delete {carol}: exit 0"):  # fmt: skip
            assert f"postfix-held: {request}" in lines, lines
        assert "postfix-held: refused: not a queue id: 'ABC;id'" in lines, lines
    finally:
        activator.terminate()
        activator.wait(15)
        sock.unlink(missing_ok=True)


def test_privileged_helper_is_checked_and_chosen(tmp_path: Path) -> None:
    from typoguard.errors import ConfigError
    from typoguard.held.privileged import (
        HELPER,
        HELPER_SOCKET,
        Auto,
        Direct,
        HelperSocket,
        Sudo,
        queue_commands,
    )

    cfg = tmp_path / "typoguard.toml"
    for bad in ("sudo:relative/path", "root", "unix:", "sudo /x"):
        cfg.write_text(f'[postfix]\nprivileged_helper = "{bad}"\n')
        with pytest.raises(ConfigError, match=r"\[postfix\] privileged_helper must be"):
            load_config(cfg)
    assert isinstance(queue_commands("none"), Direct)
    sudo = queue_commands("sudo")
    assert isinstance(sudo, Sudo) and sudo.helper == HELPER
    assert isinstance(sudo := queue_commands("sudo:/opt/h"), Sudo) and sudo.helper == "/opt/h"
    assert isinstance(sock := queue_commands("unix"), HelperSocket) and sock.path == HELPER_SOCKET
    auto = queue_commands("auto")
    assert isinstance(auto, Auto)
    if os.geteuid() == 0:
        assert isinstance(auto.choose(), Direct)  # root runs Postfix's commands itself
