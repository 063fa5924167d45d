"""``typoguard <command>``: one module per command group (click).

``run`` is the ``typoguard`` entry point (``main`` in a process of its own). ``main`` and
``check``/``variants``/``serve`` are in ``app.py``; the other groups are imported only when used
(``app.LAZY_COMMANDS``). ``common.py``: options, config loading, exit
codes and usage errors shared by every group.

May import anything below it: the role packages, batch jobs, ``held``, ``store``, ``guard``, ``core``.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from typing import Any

from typoguard.cli.app import main
from typoguard.cli.common import EXIT_USAGE, discard_stdout, own_process

__all__ = ["main", "run"]


def run() -> None:
    """The ``typoguard`` command (console script, ``python -m typoguard``): ``main``, owning the process.

    A write that fails for want of room (standard output or a file on a full disk, over quota, an I/O
    error) ends any command with one line, ``Error: write failed: <reason>``, and exit 2, never a
    traceback, and never the exit status of an answer that was not written (1 is "flagged" for ``check``)."""
    own_process()
    _occupy_standard_descriptors()
    # Started with standard output closed (``>&-``): Python sets it to None, and a command then died in a
    # TypeError (exit 1: "flagged") or dropped its answer (exit 0). A stand-in whose every write fails with
    # EBADF makes that the failed write it is, reported below. A closed standard error is where the caller
    # chose to send warnings (as 2>/dev/null): they are dropped, the answer and its exit status stand.
    if sys.stdout is None:
        sys.stdout = ClosedStream("standard output")
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    try:
        main()
    except OSError as exc:
        if exc.errno not in _FAILED_WRITES:
            raise
        discard_stdout()
        where = f" ({exc.filename})" if exc.filename else ""
        with contextlib.suppress(OSError):
            print(f"Error: write failed{where}: {exc.strerror}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _occupy_standard_descriptors() -> None:
    """Descriptors 0, 1 and 2 that the process was started without are opened on /dev/null. Left free,
    the first files and sockets opened took them: libuv aborts the process (an assertion) when it closes
    a descriptor <= 2, so the services died at their first closed connection, and a write meant for
    standard output would have gone into whatever took descriptor 1. Python's own view stays as it was
    (``sys.stdin``/``sys.stdout`` None, handled below and by the commands reading '-')."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one or a lower one
            if opened != fd:
                os.dup2(opened, fd, inheritable=True)
                os.close(opened)
            else:
                os.set_inheritable(fd, True)


_FAILED_WRITES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EBADF})


class _ClosedBytes(io.RawIOBase):
    def __init__(self, name: str) -> None:
        self.name_ = name

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        raise OSError(errno.EBADF, f"Bad file descriptor ({self.name_} is closed)")


class ClosedStream(io.TextIOWrapper):
    """A text stream for a standard stream the process was started without: every write fails with
    ``OSError(EBADF)``; nothing is buffered, so ending the process does not fail again."""

    def __init__(self, name: str) -> None:
        super().__init__(io.BufferedWriter(_ClosedBytes(name), buffer_size=1), encoding="utf-8")
        self._name = name

    def write(self, s: str) -> int:
        raise OSError(errno.EBADF, f"Bad file descriptor ({self._name} is closed)")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False
