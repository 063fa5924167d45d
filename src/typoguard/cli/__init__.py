"""``typoguard <command>``: one module per command group (click).

``run`` is the ``typoguard`` entry point (``main`` in a process of its own). ``main`` and
``check``/``variants``/``serve`` are in ``app.py``; the other groups are imported only when used
(``app.LAZY_COMMANDS``). ``common.py``: options, config loading, exit
codes and usage errors shared by every group.

May import anything below it: the role packages, batch jobs, ``held``, ``store``, ``guard``, ``core``.
"""

from __future__ import annotations

from typoguard.cli.app import main
from typoguard.cli.common import own_process

__all__ = ["main", "run"]


def run() -> None:
    """The ``typoguard`` command (console script, ``python -m typoguard``): ``main``, owning the process."""
    own_process()
    main()
