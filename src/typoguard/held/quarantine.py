"""The relay's quarantine: held messages on disk, with the same surface as ``PostfixQueue``.

``typoguard relay`` has no Postfix queue behind it, so a message it holds is kept here until an admin
releases it (re-injected to the next hop) or deletes it::

    <dir>/tmp/                 files being written (never listed)
    <dir>/msg/<id>.eml         the message exactly as the client sent it
    <dir>/msg/<id>.json        the sidecar: envelope, arrival time, client, the decision (categories and
                               counts of sensitive content, never its text)

Durability: each file is written under ``tmp/``, flushed with ``fsync``, renamed into ``msg/`` and the
directory is synced; the sidecar is written last, so a message is listed only once both are complete (an
``.eml`` without its sidecar is the remains of a crash before the relay answered 250: the sender still has
the message and retries). Release and delete first *claim* the sidecar by renaming it (atomic: of two admins
releasing at once, one wins), so a message is re-injected at most once.

``HoldQueues`` puts the relay's quarantine beside Postfix's hold queue for ``typoguard held`` and the HTTP
API: ids of quarantined messages are ``TG`` + 20 hex digits and are looked up here first.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import smtplib
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import orjson

from typoguard.config import Config, RelayConfig
from typoguard.errors import ConfigError, MailQueueError
from typoguard.held.postfix import PostfixQueue, QueuedMessage, Released
from typoguard.held.privileged import PostfixMissing
from typoguard.store.store import check_queue_id

ID_PREFIX: Final = "TG"
# (sender, recipients, message, MAIL options) -> recipients the next hop refused, with its reply
Deliver = Callable[[str, Sequence[str], bytes, Sequence[str]], dict[str, str]]


def new_id() -> str:
    return ID_PREFIX + secrets.token_hex(10).upper()


def quarantine_dir(config: Config) -> Path:
    """``[relay] quarantine_dir``, else ``<[store] data_dir>/quarantine`` (relative to the config file)."""
    base = Path(config.base_dir)
    chosen = config.relay.quarantine_dir or str(Path(config.store.data_dir) / "quarantine")
    path = Path(chosen)
    return path if path.is_absolute() else base / path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(tmp_dir: Path, target: Path, data: bytes) -> None:
    tmp = tmp_dir / f"{target.name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)


class Quarantine:
    """Held messages of ``typoguard relay`` in a directory; ``deliver`` re-injects on release."""

    def __init__(self, directory: Path, deliver: Deliver | None = None) -> None:
        self.directory = Path(directory)
        self.msg_dir = self.directory / "msg"
        self.tmp_dir = self.directory / "tmp"
        self.deliver = deliver

    @classmethod
    def from_config(cls, config: Config) -> Quarantine:
        return cls(quarantine_dir(config), NextHopDelivery(config.relay, Path(config.base_dir)))

    @property
    def exists(self) -> bool:
        return self.msg_dir.is_dir()

    def ensure(self) -> None:
        """Create the directories (``ConfigError`` if that is not possible)."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            for d in (self.msg_dir, self.tmp_dir):
                d.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"[relay] quarantine_dir {self.directory}: {exc.strerror or exc}") from None

    # ------------------------------------------------------------------ writing (the relay)
    def put(
        self,
        message: bytes,
        sender: str,
        recipients: Sequence[str],
        *,
        mail_options: Sequence[str] = (),
        details: dict[str, Any] | None = None,
    ) -> str:
        """Keep ``message`` durably; returns its id. Raises ``OSError`` if it could not be kept."""
        qid = new_id()
        sidecar = {
            "queue_id": qid,
            "arrival_time": time.time(),
            "size": len(message),
            "sender": sender,
            "recipients": list(recipients),
            "mail_options": list(mail_options),
            **(details or {}),
        }
        _write_durably(self.tmp_dir, self.msg_dir / f"{qid}.eml", message)
        _write_durably(self.tmp_dir, self.msg_dir / f"{qid}.json", orjson.dumps(sidecar))
        _fsync_dir(self.msg_dir)
        return qid

    # ------------------------------------------------------------------ the PostfixQueue surface
    def _sidecar(self, path: Path) -> dict[str, Any] | None:
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def held(self) -> list[QueuedMessage]:
        """Every complete quarantined message, oldest first."""
        if not self.msg_dir.is_dir():
            return []
        out = []
        for path in self.msg_dir.glob(f"{ID_PREFIX}*.json"):
            s = self._sidecar(path)
            if s is None or not (self.msg_dir / f"{path.stem}.eml").exists():
                continue
            out.append(
                QueuedMessage(
                    queue_id=path.stem,
                    queue_name="hold",
                    arrival_time=float(s.get("arrival_time", 0.0)),
                    size=int(s.get("size", 0)),
                    sender=str(s.get("sender", "")),
                    recipients=tuple(str(r) for r in s.get("recipients", ())),
                )
            )
        return sorted(out, key=lambda m: (m.arrival_time, m.queue_id))

    def owns(self, queue_id: str) -> bool:
        return queue_id.startswith(ID_PREFIX) and (self.msg_dir / f"{queue_id}.json").exists()

    def show(self, queue_id: str) -> dict[str, Any]:
        """The sidecar of a held message (envelope and decision, no content)."""
        check_queue_id(queue_id)
        s = self._sidecar(self.msg_dir / f"{queue_id}.json")
        if s is None:
            raise MailQueueError(f"no held message with queue id {queue_id}")
        return s

    def message(self, queue_id: str) -> bytes:
        check_queue_id(queue_id)
        try:
            return (self.msg_dir / f"{queue_id}.eml").read_bytes()
        except OSError:
            raise MailQueueError(f"no held message with queue id {queue_id}") from None

    def _claim(self, queue_id: str, action: str) -> Path:
        check_queue_id(queue_id)
        claimed = self.msg_dir / f"{queue_id}.json.{action}-{os.getpid()}"
        try:
            os.rename(self.msg_dir / f"{queue_id}.json", claimed)
        except FileNotFoundError:
            raise MailQueueError(f"no held message with queue id {queue_id}") from None
        return claimed

    def _forget(self, queue_id: str, claimed: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.msg_dir / f"{queue_id}.eml")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(claimed)
        _fsync_dir(self.msg_dir)

    def release(self, queue_id: str) -> Released:
        """Re-inject a held message to the next hop, then forget it: delivery is attempted at once, and the
        answer names the recipients the next hop refused (with its reply); ``MailQueueError`` (and the
        message stays held) if it took none."""
        if self.deliver is None:
            raise MailQueueError("this quarantine has no next hop to release to")
        claimed = self._claim(queue_id, "release")
        try:
            s = self._sidecar(claimed) or {}
            raw = (self.msg_dir / f"{queue_id}.eml").read_bytes()
            refused = self.deliver(
                str(s.get("sender", "")),
                [str(r) for r in s.get("recipients", ())],
                raw,
                [str(o) for o in s.get("mail_options", ())],
            )
        except BaseException:
            os.rename(claimed, self.msg_dir / f"{queue_id}.json")  # still held: try again later
            raise
        self._forget(queue_id, claimed)
        took = "accepted by the next hop"
        if refused:
            took += "; it refused " + ", ".join(
                f"{rcpt} ({reply})" for rcpt, reply in sorted(refused.items())
            )
        return Released(queue_id, True, "gone", took)

    def delete(self, queue_id: str) -> None:
        self._forget(queue_id, self._claim(queue_id, "delete"))


def next_hop_tls_context(relay: RelayConfig, base_dir: Path) -> ssl.SSLContext | None:
    """The client TLS context for the next hop (None for ``next_hop_tls = "none"``).

    ``required`` verifies the certificate and name (unless ``next_hop_verify = false``); ``opportunistic``
    encrypts without verifying, as MTAs do when nothing better is known (RFC 7435).
    """
    if relay.next_hop_tls == "none":
        return None
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if relay.next_hop_ca_file:
        ca = Path(relay.next_hop_ca_file)
        try:
            ctx.load_verify_locations(cafile=str(ca if ca.is_absolute() else base_dir / ca))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"[relay] next_hop_ca_file: {exc}") from None
    if relay.next_hop_tls == "opportunistic" or not relay.next_hop_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class NextHopDelivery:
    """Blocking delivery to ``[relay] next_hop`` (smtplib) for releases from the quarantine."""

    def __init__(self, relay: RelayConfig, base_dir: Path) -> None:
        self.relay = relay
        self.host, self.port = relay.next_hop_address
        self.tls = next_hop_tls_context(relay, base_dir)

    def __call__(
        self, sender: str, recipients: Sequence[str], message: bytes, options: Sequence[str]
    ) -> dict[str, str]:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.relay.next_hop_timeout) as smtp:
                smtp.ehlo()
                if self.tls is not None and smtp.has_extn("starttls"):
                    smtp.starttls(context=self.tls)
                    smtp.ehlo()
                elif self.relay.next_hop_tls == "required":
                    raise MailQueueError(f"next hop {self.relay.next_hop} does not offer STARTTLS")
                refused = smtp.sendmail(sender, list(recipients), message, mail_options=list(options))
        except smtplib.SMTPRecipientsRefused as exc:
            raise MailQueueError(f"next hop refused every recipient: {_replies(exc.recipients)}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise MailQueueError(f"next hop {self.relay.next_hop}: {exc}") from None
        return _replies(refused)


def _replies(refused: dict[str, tuple[int, bytes]]) -> dict[str, str]:
    return {rcpt: f"{code} {text.decode('utf-8', 'replace')}" for rcpt, (code, text) in refused.items()}


class HoldQueues:
    """Postfix's hold queue and the relay's quarantine as one (``typoguard held``, the HTTP API).

    A Postfix that is not installed is left out of the list when the relay's quarantine is in use on this
    host (and no ``[postfix] config_directory`` names one), with the reason in ``warnings`` (of the last
    call). Any other Postfix failure (wrong instance, no permission) is raised with its reason: an empty
    list must never stand for "cannot read the queue".
    """

    def __init__(self, postfix: PostfixQueue | None, quarantine: Quarantine | None) -> None:
        self.postfix = postfix
        self.quarantine = quarantine
        self.warnings: list[str] = []

    @classmethod
    def from_config(cls, config: Config, postfix: PostfixQueue | None) -> HoldQueues:
        return cls(postfix, Quarantine.from_config(config))

    def held(self) -> list[QueuedMessage]:
        out: list[QueuedMessage] = []
        q = self.quarantine
        warnings: list[str] = []
        if self.postfix is not None:
            try:
                out.extend(self.postfix.held())
            except PostfixMissing as exc:
                if q is None or not q.exists or self.postfix.config_dir:
                    raise
                warnings.append(f"Postfix hold queue left out: {exc}")
        self.warnings = warnings  # the last call's only: bounded, whatever the number of calls
        if q is not None:
            out.extend(q.held())
        return out

    def _source(self, queue_id: str) -> Quarantine | PostfixQueue:
        if self.quarantine is not None and self.quarantine.owns(queue_id):
            return self.quarantine
        if self.postfix is None:
            raise MailQueueError(f"no held message with queue id {queue_id}")
        return self.postfix

    @contextlib.contextmanager
    def _gone_means_not_held(self, source: Quarantine | PostfixQueue, queue_id: str) -> Iterator[None]:
        try:
            yield
        except MailQueueError:
            if source is self.postfix and queue_id.startswith(ID_PREFIX) and self.quarantine is not None:
                # released or deleted from the quarantine meanwhile (and Postfix does not have it either)
                raise MailQueueError(f"no held message with queue id {queue_id}") from None
            raise

    def release(self, queue_id: str) -> Released:
        source = self._source(queue_id)
        with self._gone_means_not_held(source, queue_id):
            return source.release(queue_id)

    def delete(self, queue_id: str) -> None:
        source = self._source(queue_id)
        with self._gone_means_not_held(source, queue_id):
            source.delete(queue_id)
