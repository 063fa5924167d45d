"""SMTP AUTH for ``typoguard relay``: a users file of scrypt hashes and aiosmtpd's ``authenticator``.

    typoguard relay hash-password exchange      ->  exchange:scrypt$16384$8$1$<salt>$<hash>

AUTH PLAIN and LOGIN are offered only after STARTTLS (aiosmtpd's ``auth_require_tls``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path
from typing import Any, Final

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from typoguard.errors import ConfigError

SCRYPT_N: Final = 1 << 14


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64) for a users file line ``name:<this>``."""
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=8, p=1, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}$8$1${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: bytes, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(
            password, salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32,
            maxmem=256 * 1024 * 1024,
        )  # fmt: skip
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


def load_users(path: Path) -> dict[str, str]:
    """``name:scrypt$...`` lines (``#`` comments); ``ConfigError`` if unreadable or malformed."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"[relay] auth_users_file {path}: {exc}") from None
    users = {}
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, stored = line.partition(":")
        if not sep or not name or not stored.startswith("scrypt$") or stored.count("$") != 5:
            raise ConfigError(f"[relay] auth_users_file {path}:{n}: expected name:scrypt$... (hash-password)")
        users[name] = stored
    return users


class Authenticator:
    """aiosmtpd ``authenticator``: PLAIN/LOGIN against the users file. A success is remembered (by a
    keyed digest of the password) so a client that reconnects all day costs one scrypt, not thousands."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self._key = os.urandom(32)
        self._ok: dict[str, bytes] = {}

    def replace_users(self, users: dict[str, str]) -> None:
        """The users file read again (a reload): a login removed or whose password changed stops working
        at once, remembered success included; the others keep theirs."""
        old = self.users
        self.users = users
        self._ok = {name: mark for name, mark in self._ok.items() if users.get(name) == old.get(name)}

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        name = auth_data.login.decode("utf-8", "replace")
        stored = self.users.get(name)
        if stored is None:
            return AuthResult(success=False, handled=False)
        mark = hmac.new(self._key, auth_data.password, "sha256").digest()
        if self._ok.get(name) == mark or verify_password(auth_data.password, stored):
            self._ok[name] = mark
            return AuthResult(success=True, auth_data=name)
        return AuthResult(success=False, handled=False)
