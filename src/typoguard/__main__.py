"""``python -m typoguard``: the same as the ``typoguard`` command."""

from typoguard.cli import run

run()
