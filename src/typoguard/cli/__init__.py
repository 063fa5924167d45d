"""``typoguard <command>``: one module per command group (click).

``run`` is the ``typoguard`` entry point (``main`` in a process of its own). ``main`` and
``check``/``variants``/``serve`` are in ``app.py``; the other groups are imported only when used
(``app.LAZY_COMMANDS``). ``common.py``: options, config loading, exit
codes and usage errors shared by every group.

May import anything below it: the role packages, batch jobs, ``held``, ``store``, ``guard``, ``core``.
"""

from __future__ import annotations

import errno
import sys

from typoguard.cli.app import main
from typoguard.cli.common import EXIT_USAGE, discard_stdout, own_process

__all__ = ["main", "run"]


def run() -> None:
    """The ``typoguard`` command (console script, ``python -m typoguard``): ``main``, owning the process.

    A write that fails for want of room (standard output or a file on a full disk, over quota, an I/O
    error) ends any command with one line, ``Error: write failed: <reason>``, and exit 2, never a
    traceback, and never the exit status of an answer that was not written (1 is "flagged" for ``check``)."""
    own_process()
    try:
        main()
    except OSError as exc:
        if exc.errno not in _NO_ROOM:
            raise
        discard_stdout()
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"Error: write failed{where}: {exc.strerror}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})
