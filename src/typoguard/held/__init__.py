"""Mail waiting for a person: Postfix's hold queue and the relay's quarantine, one surface (``HoldQueue``).

May import: ``store`` (the decisions that held each message), ``config``, ``errors``, ``core``.
"""

from __future__ import annotations

from typoguard.held.postfix import (
    HeldMessage,
    HoldQueue,
    PostfixQueue,
    QueuedMessage,
    Released,
    held_with_decisions,
    parse_postqueue_json,
    postfix_config_directory,
)
from typoguard.held.privileged import PostfixMissing
from typoguard.held.quarantine import HoldQueues, Quarantine

__all__ = [
    "HeldMessage",
    "HoldQueue",
    "HoldQueues",
    "PostfixMissing",
    "PostfixQueue",
    "Quarantine",
    "QueuedMessage",
    "Released",
    "held_with_decisions",
    "parse_postqueue_json",
    "postfix_config_directory",
]
