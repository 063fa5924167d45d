"""How typoguard runs Postfix's queue commands: itself (as root), or through ``postfix-held`` when it is not.

``postsuper`` refuses anyone but root, and a service under ``NoNewPrivileges`` (every typoguard unit) cannot
gain the ``postdrop`` group ``postqueue`` needs either. So the four commands held mail uses go, when typoguard
is not root, through one small root-owned program, ``/usr/lib/typoguard/postfix-held`` (debian/postfix-held,
docs/adr/0022-held-mail-privileges.md), which runs exactly::

    list              postqueue [-c DIR] -j
    release ID        postsuper [-c DIR] -H ID hold
    flush ID          postqueue [-c DIR] -i ID
    delete ID         postsuper [-c DIR] -d ID hold

and nothing else. It is reached through ``sudo -n`` (``/etc/sudoers.d/typoguard``) or through its socket
(``typoguard-postfix-held.socket``, for the hardened units, where sudo cannot work). ``[postfix]
privileged_helper`` chooses::

    "auto"        (default) root: the commands themselves; else the socket if it exists; else sudo and the
                  helper if both are installed; else the commands themselves (Postfix says what it refuses)
    "none"        the commands themselves, as whoever runs typoguard
    "sudo[:PATH]" sudo -n PATH (default /usr/lib/typoguard/postfix-held)
    "unix[:PATH]" the helper's socket at PATH (default /run/typoguard-postfix-held.sock)
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
from dataclasses import dataclass
from typing import Final, Protocol

import orjson

from typoguard.errors import MailQueueError

HELPER: Final = "/usr/lib/typoguard/postfix-held"
HELPER_SOCKET: Final = "/run/typoguard-postfix-held.sock"
ACTIONS: Final = ("list", "release", "flush", "delete")
TIMEOUT: Final = 60.0
MAX_REPLY: Final = 256 * 1024 * 1024  # a reply from the socket (postqueue -j of a very large queue)
NOT_FOUND: Final = 127  # the helper's exit status when the Postfix command is not installed


class PostfixMissing(MailQueueError):
    """No Postfix on this host: its tools are not installed, or (no instance named) the default instance
    has no main.cf (Debian's "No configuration"). Nothing Postfix holds can be here."""


@dataclass(frozen=True, slots=True)
class Ran:
    """One queue command, done: what ran (in words, for messages), its exit status and output."""

    command: str
    returncode: int
    stdout: bytes
    stderr: str


class QueueCommands(Protocol):
    """Runs one of ``ACTIONS`` (with a queue id, except ``list``) on the instance ``config_dir`` (None:
    Postfix's default). Raises ``PostfixMissing``/``MailQueueError`` only when it could not run at all."""

    def run(self, action: str, queue_id: str | None, config_dir: str | None) -> Ran: ...


def _words(action: str, queue_id: str | None, config_dir: str | None) -> list[str]:
    """The helper's arguments: ``[-c DIR] ACTION [ID]``."""
    if action not in ACTIONS or (queue_id is None) != (action == "list"):
        raise ValueError(f"not a queue command: {action} {queue_id}")
    return [*(["-c", config_dir] if config_dir else []), action, *([queue_id] if queue_id else [])]


def _execute(argv: list[str], missing: MailQueueError) -> Ran:
    """Run ``argv``; ``missing`` is raised if its program is not installed."""
    try:
        done = subprocess.run(
            argv, capture_output=True, timeout=TIMEOUT, check=False, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise missing from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MailQueueError(f"{argv[0]} failed: {exc}") from None
    err = done.stderr.decode("utf-8", "replace")
    return Ran(" ".join(argv), done.returncode, done.stdout, err)


class Direct:
    """The Postfix commands themselves, as whoever runs typoguard."""

    def __init__(self, postqueue: str = "postqueue", postsuper: str = "postsuper") -> None:
        self.postqueue = postqueue
        self.postsuper = postsuper

    def argv(self, action: str, queue_id: str | None, config_dir: str | None) -> list[str]:
        _words(action, queue_id, config_dir)  # checks the combination
        c = ["-c", config_dir] if config_dir else []
        if action == "list":
            return [self.postqueue, *c, "-j"]
        assert queue_id is not None
        if action == "flush":
            return [self.postqueue, *c, "-i", queue_id]
        return [self.postsuper, *c, "-H" if action == "release" else "-d", queue_id, "hold"]

    def run(self, action: str, queue_id: str | None, config_dir: str | None) -> Ran:
        argv = self.argv(action, queue_id, config_dir)
        return _execute(argv, PostfixMissing(f"{argv[0]} not found: is Postfix installed?"))


class Sudo:
    """``sudo -n HELPER [-c DIR] ACTION [ID]`` (``/etc/sudoers.d/typoguard`` allows exactly the helper)."""

    def __init__(self, helper: str = HELPER, sudo: str = "sudo") -> None:
        self.helper = helper
        self.sudo = sudo

    def run(self, action: str, queue_id: str | None, config_dir: str | None) -> Ran:
        argv = [self.sudo, "-n", self.helper, *_words(action, queue_id, config_dir)]
        ran = _execute(
            argv, MailQueueError("sudo not found: install sudo, or set [postfix] privileged_helper")
        )
        if ran.returncode == NOT_FOUND:
            raise PostfixMissing(f"{ran.command}: {ran.stderr.strip()}")
        if ran.returncode != 0 and "no new privileges" in ran.stderr.lower():
            hint = (
                "typoguard runs with NoNewPrivileges (as typoguard.service does), where sudo cannot work: "
                "use the helper's socket (systemctl enable --now typoguard-postfix-held.socket)"
            )
            return Ran(ran.command, ran.returncode, ran.stdout, f"{ran.stderr.strip()} [{hint}]")
        return ran


class HelperSocket:
    """The helper behind ``typoguard-postfix-held.socket``: one request line, one JSON reply."""

    def __init__(self, path: str = HELPER_SOCKET) -> None:
        self.path = path

    def run(self, action: str, queue_id: str | None, config_dir: str | None) -> Ran:
        words = _words(action, queue_id, config_dir)
        command = f"postfix-held (socket {self.path}) {' '.join(words)}"
        chunks: list[bytes] = []
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(TIMEOUT)
                sock.connect(self.path)
                sock.sendall(" ".join(words).encode() + b"\n")
                sock.shutdown(socket.SHUT_WR)
                size = 0
                while chunk := sock.recv(1 << 16):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > MAX_REPLY:
                        raise MailQueueError(f"{command}: reply larger than {MAX_REPLY} bytes")
        except OSError as exc:
            how = (
                " (is typoguard in group typoguard?)"
                if isinstance(exc, PermissionError)
                else " (systemctl enable --now typoguard-postfix-held.socket)"
                if isinstance(exc, FileNotFoundError | ConnectionRefusedError)
                else ""
            )
            raise MailQueueError(f"{command}: {exc.strerror or exc}{how}") from None
        try:
            reply = orjson.loads(b"".join(chunks))
            ran = Ran(command, int(reply["status"]), str(reply["stdout"]).encode(), str(reply["stderr"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise MailQueueError(
                f"{command}: not a reply from postfix-held: {b''.join(chunks)[:200]!r}"
            ) from None
        if ran.returncode == NOT_FOUND:
            raise PostfixMissing(f"{command}: {ran.stderr.strip()}")
        return ran


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


class Auto:
    """``privileged_helper = "auto"``: chosen at each call, so a socket enabled after start is used."""

    def __init__(self, direct: Direct) -> None:
        self.direct = direct

    def choose(self) -> QueueCommands:
        if os.geteuid() == 0:
            return self.direct
        if _is_socket(HELPER_SOCKET):
            return HelperSocket(HELPER_SOCKET)
        if os.path.exists(HELPER) and shutil.which("sudo"):
            return Sudo(HELPER)
        return self.direct

    def run(self, action: str, queue_id: str | None, config_dir: str | None) -> Ran:
        return self.choose().run(action, queue_id, config_dir)


def queue_commands(
    choice: str, *, postqueue: str = "postqueue", postsuper: str = "postsuper"
) -> QueueCommands:
    """The ``QueueCommands`` for ``[postfix] privileged_helper`` (its form is checked by the config)."""
    direct = Direct(postqueue, postsuper)
    kind, _, path = choice.partition(":")
    if kind == "none":
        return direct
    if kind == "sudo":
        return Sudo(path or HELPER)
    if kind == "unix":
        return HelperSocket(path or HELPER_SOCKET)
    return Auto(direct)
