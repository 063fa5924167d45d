"""``typoguard <command>``: one module per command group (click).

``main`` (the ``typoguard`` entry point) and ``check``/``variants``/``serve`` are in ``app.py``; the other
groups are imported only when used (``app.LAZY_COMMANDS``). ``common.py``: options, config loading, exit
codes and usage errors shared by every group.

May import anything below it: the role packages, batch jobs, ``held``, ``store``, ``guard``, ``core``.
"""

from __future__ import annotations

from typoguard.cli.app import main

__all__ = ["main"]
