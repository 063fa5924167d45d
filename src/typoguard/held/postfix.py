"""Held mail: Postfix's hold queue (``postqueue -j``, ``postsuper -H/-d``) joined with typoguard decisions.

The Postfix side is a small class around the two commands; every call gets ``-c <config_directory>``
(``[postfix] config_directory``, else ``$MAIL_CONFIG``, else Postfix's default) so typoguard reads the
instance the operator named, and nothing else in typoguard runs Postfix tools. A queue that cannot be
read (wrong directory, no permission: a non-root ``postqueue -c DIR`` needs DIR in the default
instance's ``alternate_config_directories``) raises ``MailQueueError`` with the reason - never an empty list.

A release is ``postsuper -H`` then ``postqueue -i``: ``-H`` alone moves the message to the deferred queue,
where it would wait for the next queue run (``queue_run_delay``, 300 s by default); ``-i`` has it delivered
now. The answer (``Released``) says whether delivery was attempted and where the message is a moment later.
When typoguard is not root the commands go through the ``postfix-held`` helper (``privileged.py``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import orjson

from typoguard.errors import MailQueueError
from typoguard.held.privileged import Direct, PostfixMissing, QueueCommands, queue_commands
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
    def release(self, queue_id: str) -> Released: ...
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


def postfix_config_directory(config: Config, environ: Mapping[str, str] | None = None) -> str | None:
    """The Postfix instance held mail is read from: ``[postfix] config_directory``, else ``$MAIL_CONFIG``,
    else None (Postfix's own default, /etc/postfix)."""
    env = os.environ if environ is None else environ
    return config.postfix.config_directory or env.get("MAIL_CONFIG") or None


@dataclass(frozen=True, slots=True)
class Released:
    """What became of a released message: was delivery attempted at once, and where is it now.

    ``queue_state`` is ``"gone"`` (no longer queued: delivered, or bounced to its sender - Postfix's log says
    which) or the Postfix queue the message is in (``active``, ``incoming``, ``deferred``, ``hold``).
    ``detail``: why it is deferred, why delivery was not attempted, or what the next hop said.
    """

    queue_id: str
    attempted: bool
    queue_state: str
    detail: str = ""

    def outcome(self) -> str:
        """What follows "released": ``delivery attempted: ...`` or ``but delivery not attempted: ...``."""
        if not self.attempted:
            waits = f"; it waits in the {self.queue_state} queue for the next queue run"
            return f"but delivery not attempted: {self.detail}{waits if self.queue_state != 'gone' else ''}"
        if self.queue_state == "gone":
            why = self.detail or "delivered, or bounced to the sender: the mail log says which"
            return f"delivery attempted: no longer queued ({why})"
        if self.queue_state == "deferred" and self.detail:
            return f"delivery attempted: deferred ({self.detail}); Postfix retries it"
        if self.queue_state in ("active", "incoming"):
            return f"delivery attempted: in the {self.queue_state} queue (being delivered)"
        return f"delivery attempted: in the {self.queue_state} queue"

    def as_dict(self) -> dict[str, Any]:
        """The ``delivery`` object of the API's answer to a release."""
        return {
            "attempted": self.attempted,
            "queue_state": self.queue_state,
            "detail": self.detail,
            "summary": f"released, {self.outcome()}",
        }


SETTLE_SECONDS: Final = 3.0  # how long a release waits to see what became of the delivery attempt


class PostfixQueue:
    """Postfix's queue through ``postqueue``/``postsuper``: run by typoguard itself, or through the
    ``postfix-held`` helper when it is not root (``privileged.py``); ``config_dir`` selects a Postfix
    instance (``-c``) for every call."""

    def __init__(
        self,
        *,
        postqueue: str = "postqueue",
        postsuper: str = "postsuper",
        config_dir: str | None = None,
        commands: QueueCommands | None = None,
        settle: float = SETTLE_SECONDS,
    ) -> None:
        self.config_dir = config_dir
        self.commands = commands if commands is not None else Direct(postqueue, postsuper)
        self.settle = settle

    @classmethod
    def from_config(cls, config: Config, *, config_dir: str | None = None) -> PostfixQueue:
        """The instance named by ``config_dir`` (a command-line option), else ``postfix_config_directory``;
        the commands run as ``[postfix] privileged_helper`` says."""
        return cls(
            config_dir=config_dir or postfix_config_directory(config),
            commands=queue_commands(config.postfix.privileged_helper),
        )

    def describe(self) -> str:
        """Which instance, in words, for error messages."""
        return f"Postfix instance {self.config_dir or '(default config directory)'}"

    def _run(self, action: str, queue_id: str | None = None) -> bytes:
        ran = self.commands.run(action, queue_id, self.config_dir)
        if ran.returncode != 0:
            err = ran.stderr.strip()
            if not self.config_dir and "main.cf: No such file or directory" in err:
                raise PostfixMissing(f"Postfix is not configured on this host: {err}")
            verb = {"list": "read", "flush": "flush"}.get(action, "change")
            raise MailQueueError(
                f"cannot {verb} the queue of {self.describe()}: {ran.command} exited {ran.returncode}: {err}"
            )
        return ran.stdout

    def messages(self) -> list[QueuedMessage]:
        return parse_postqueue_json(self._run("list").splitlines())

    def held(self) -> list[QueuedMessage]:
        return [m for m in self.messages() if m.queue_name == "hold"]

    def state(self, queue_id: str) -> tuple[str, str] | None:
        """Where ``queue_id`` is: its queue's name and why it is deferred (``""`` if it is not); None if
        it is in no queue."""
        key = queue_id.encode()
        for n, line in enumerate(self._run("list").splitlines(), 1):
            if key not in line:
                continue
            try:
                obj = orjson.loads(line)
                if obj["queue_id"] != queue_id:
                    continue
                reasons = {str(r["delay_reason"]) for r in obj.get("recipients", ()) if r.get("delay_reason")}
                return str(obj.get("queue_name", "")), "; ".join(sorted(reasons))
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise MailQueueError(f"postqueue -j: unreadable line {n}: {exc}") from None
        return None

    def release(self, queue_id: str) -> Released:
        """Move a held message back to the queue (``postsuper -H``) and have it delivered now
        (``postqueue -i``) rather than at the next queue run; what became of it after a moment.

        ``MailQueueError`` if it is not held or ``postsuper -H`` failed (it stays held). A failing
        ``postqueue -i`` after a successful ``-H`` is not an error - the message is released - but is said in
        the answer (``attempted=False`` with the reason)."""
        before = self._require_held(queue_id)
        self._postsuper("release", queue_id)
        try:
            self._run("flush", queue_id)
        except MailQueueError as exc:
            now = self.state(queue_id)
            return Released(queue_id, False, now[0] if now else "gone", str(exc))
        return self._after_delivery_attempt(queue_id, stale_reason=before[1])

    def _after_delivery_attempt(self, queue_id: str, *, stale_reason: str) -> Released:
        """Watch ``queue_id`` for up to ``settle`` seconds: until it has left the queue or is deferred for a
        new reason (not the one it had before it was held); then where it is."""
        deadline = time.monotonic() + self.settle
        moved = False
        while True:
            now = self.state(queue_id)
            if now is None:
                return Released(queue_id, True, "gone")
            name, reason = now
            moved = moved or name != "deferred"
            if name == "deferred" and reason and (moved or reason != stale_reason):
                return Released(queue_id, True, name, reason)
            if time.monotonic() >= deadline:
                return Released(queue_id, True, name, reason)
            time.sleep(0.1)

    def delete(self, queue_id: str) -> None:
        """Delete a held message (``postsuper -d``)."""
        self._require_held(queue_id)
        self._postsuper("delete", queue_id)

    def _postsuper(self, action: str, queue_id: str) -> None:
        self._run(action, queue_id)  # postsuper reports counts on stderr; a missing id is not an error for it
        # ... so check: the message must have left the hold queue.
        now = self.state(queue_id)
        if now is not None and now[0] == "hold":
            flag = "-H" if action == "release" else "-d"
            raise MailQueueError(f"postsuper {flag} {queue_id}: the message is still held")

    def _require_held(self, queue_id: str) -> tuple[str, str]:
        check_queue_id(queue_id)
        now = self.state(queue_id)
        if now is None or now[0] != "hold":
            raise MailQueueError(f"no held message with queue id {queue_id}")
        return now


def held_with_decisions(store: Store, queue: HoldQueue) -> list[HeldMessage]:
    """The hold queue (Postfix's, the relay's quarantine, or both), each message joined with the decision
    that held it. A queue that cannot be read raises ``MailQueueError``: never an empty list."""
    msgs = queue.held()
    found = store.decisions_for_held(msgs)
    return [HeldMessage(m, found.get(m.queue_id)) for m in msgs]
