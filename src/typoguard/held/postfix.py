"""Held mail: Postfix's hold queue (``postqueue -j``, ``postsuper -H/-d``) joined with typoguard decisions.

The Postfix side is a small class around the two commands; every call gets ``-c <config_directory>``
(``[postfix] config_directory``, else ``$MAIL_CONFIG``, else Postfix's default) so typoguard reads the
instance the operator named, and nothing else in typoguard runs Postfix tools. A queue that cannot be
read (wrong directory, no permission: a non-root ``postqueue -c DIR`` needs DIR in the default
instance's ``alternate_config_directories``) raises ``MailQueueError`` with the reason - never an empty list.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import orjson

from typoguard.errors import MailQueueError
from typoguard.store.decisions import DecisionRecord
from typoguard.store.store import Store, check_queue_id

if TYPE_CHECKING:
    from typoguard.config import Config


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """One message as ``postqueue -j`` reports it (envelope only)."""

    queue_id: str
    queue_name: str
    arrival_time: float
    size: int
    sender: str
    recipients: tuple[str, ...]


class HoldQueue(Protocol):
    """One surface for held mail: Postfix's hold queue (``PostfixQueue``), the relay's quarantine
    (``Quarantine``), or both (``HoldQueues``)."""

    def held(self) -> list[QueuedMessage]: ...
    def release(self, queue_id: str) -> None: ...
    def delete(self, queue_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class HeldMessage:
    """A message in the hold queue and the typoguard decision that held it (if one was logged)."""

    message: QueuedMessage
    decision: DecisionRecord | None


def parse_postqueue_json(lines: Iterable[bytes | str]) -> list[QueuedMessage]:
    """Parse ``postqueue -j`` output (one JSON object per line); malformed lines are an error."""
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
            out.append(
                QueuedMessage(
                    queue_id=str(obj["queue_id"]),
                    queue_name=str(obj.get("queue_name", "")),
                    arrival_time=float(obj.get("arrival_time", 0)),
                    size=int(obj.get("message_size", 0)),
                    sender=str(obj.get("sender", "")),
                    recipients=tuple(str(r.get("address", "")) for r in obj.get("recipients", ())),
                )
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MailQueueError(f"postqueue -j: unreadable line {n}: {exc}") from None
    return out


class PostfixMissing(MailQueueError):
    """No Postfix on this host: its tools are not installed, or (no instance named) the default instance
    has no main.cf (Debian's "No configuration"). Nothing Postfix holds can be here."""


def postfix_config_directory(config: Config, environ: Mapping[str, str] | None = None) -> str | None:
    """The Postfix instance held mail is read from: ``[postfix] config_directory``, else ``$MAIL_CONFIG``,
    else None (Postfix's own default, /etc/postfix)."""
    env = os.environ if environ is None else environ
    return config.postfix.config_directory or env.get("MAIL_CONFIG") or None


class PostfixQueue:
    """Runs ``postqueue``/``postsuper``; ``config_dir`` selects a Postfix instance (``-c``) for every call."""

    def __init__(
        self, *, postqueue: str = "postqueue", postsuper: str = "postsuper", config_dir: str | None = None
    ) -> None:
        self.postqueue = postqueue
        self.postsuper = postsuper
        self.config_dir = config_dir

    @classmethod
    def from_config(cls, config: Config, *, config_dir: str | None = None) -> PostfixQueue:
        """The instance named by ``config_dir`` (a command-line option), else ``postfix_config_directory``."""
        return cls(config_dir=config_dir or postfix_config_directory(config))

    def describe(self) -> str:
        """Which instance, in words, for error messages."""
        return f"Postfix instance {self.config_dir or '(default config directory)'}"

    def _run(self, argv: list[str]) -> bytes:
        if self.config_dir:
            argv = [argv[0], "-c", self.config_dir, *argv[1:]]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
        except FileNotFoundError:
            raise PostfixMissing(f"{argv[0]} not found: is Postfix installed?") from None
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MailQueueError(f"{argv[0]} failed: {exc}") from None
        if done.returncode != 0:
            err = done.stderr.decode("utf-8", "replace").strip()
            if not self.config_dir and "main.cf: No such file or directory" in err:
                raise PostfixMissing(f"Postfix is not configured on this host: {err}")
            verb = "read" if argv[0] == self.postqueue else "change"
            raise MailQueueError(
                f"cannot {verb} the queue of {self.describe()}: "
                f"{' '.join(argv)} exited {done.returncode}: {err}"
            )
        return done.stdout

    def messages(self) -> list[QueuedMessage]:
        return parse_postqueue_json(self._run([self.postqueue, "-j"]).splitlines())

    def held(self) -> list[QueuedMessage]:
        return [m for m in self.messages() if m.queue_name == "hold"]

    def _postsuper(self, flag: str, queue_id: str) -> None:
        out = self._run([self.postsuper, flag, check_queue_id(queue_id), "hold"])
        del out  # postsuper reports counts on stderr; a missing id is not an error for it
        # ... so check: the message must have left the hold queue.
        if any(m.queue_id == queue_id for m in self.held()):
            raise MailQueueError(f"postsuper {flag} {queue_id}: the message is still held")

    def release(self, queue_id: str) -> None:
        """Move a held message back to the queue for delivery (``postsuper -H``)."""
        self._require_held(queue_id)
        self._postsuper("-H", queue_id)

    def delete(self, queue_id: str) -> None:
        """Delete a held message (``postsuper -d``)."""
        self._require_held(queue_id)
        self._postsuper("-d", queue_id)

    def _require_held(self, queue_id: str) -> None:
        check_queue_id(queue_id)
        if not any(m.queue_id == queue_id for m in self.held()):
            raise MailQueueError(f"no held message with queue id {queue_id}")


def held_with_decisions(store: Store, queue: HoldQueue) -> list[HeldMessage]:
    """The hold queue (Postfix's, the relay's quarantine, or both), each message joined with the decision
    that held it. A queue that cannot be read raises ``MailQueueError``: never an empty list."""
    msgs = queue.held()
    found = store.decisions_for_held(msgs)
    return [HeldMessage(m, found.get(m.queue_id)) for m in msgs]
