"""Dashboard sign-in: an API token as the password, a signed session cookie, CSRF tokens, login rate limit.

A person signs in with a ``read`` or ``admin`` token (``typoguard token create --scope admin --name alice``);
the session remembers the token's id, name and scope, never the secret, and is re-checked against the
token table on every request, so revoking the token ends its sessions. The cookie is signed with a key kept
in a file (``[http] session_secret_file``, created 0600 on first start), ``SameSite=Strict``; every form
that changes something carries the session's CSRF token.
"""

from __future__ import annotations

import os
import secrets
import time
from collections import deque
from pathlib import Path

from starlette.requests import Request

from typoguard.config import Config
from typoguard.errors import ConfigError


def session_secret(config: Config) -> str:
    """The cookie-signing key: read from the configured file, or created there (0600) on first use."""
    configured = config.http.session_secret_file
    if configured:
        path = Path(configured) if Path(configured).is_absolute() else Path(config.base_dir, configured)
    else:
        data_dir = Path(config.store.data_dir)
        path = (data_dir if data_dir.is_absolute() else Path(config.base_dir, data_dir)) / "http-session.key"
    try:
        if path.exists():
            key = path.read_text(encoding="ascii").strip()
            if len(key) < 32:
                raise ConfigError(f"{path}: session key too short (want at least 32 characters)")
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key + "\n")
        return key
    except OSError as exc:
        raise ConfigError(f"session key {path}: {exc.strerror or exc}") from exc


class LoginRateLimit:
    """At most ``per_minute`` login attempts per client address in any 60 seconds (in this process)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._attempts: dict[str, deque[float]] = {}

    def allow(self, client: str, now: float | None = None) -> bool:
        """Count an attempt; False when ``client`` has used up its attempts."""
        t = time.monotonic() if now is None else now
        window = self._attempts.setdefault(client, deque())
        while window and t - window[0] >= 60.0:
            window.popleft()
        if len(window) >= self.per_minute:
            return False
        window.append(t)
        if len(self._attempts) > 100_000:  # a flood of addresses: forget the idle ones
            self._attempts = {k: v for k, v in self._attempts.items() if v and t - v[-1] < 60.0}
        return True


def csrf_token(request: Request) -> str:
    """This session's CSRF token (created on first use)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, submitted: object) -> bool:
    expected = request.session.get("csrf")
    return (
        isinstance(expected, str)
        and isinstance(submitted, str)
        and secrets.compare_digest(expected.encode(), submitted.encode())
    )


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
