"""The one exception tree of typoguard.

    TypoguardError
     +-- InvalidAddress        a recipient or domain that is not a valid mail address (also ValueError)
     +-- ConfigError           a configuration that cannot be loaded or is invalid
     +-- UnknownModel          a typo model name that is not in the registry (also ConfigError)
     +-- ProtocolError         a peer broke a wire protocol (e.g. Postfix policy delegation)
     +-- StoreError            the database (decisions, overrides, ...) failed or is unreachable
     +-- MailQueueError        Postfix's postqueue/postsuper failed (held mail)

Third-party exceptions (idna, tomllib, OSError, ...) are translated into these at the boundary, so callers
catch ``TypoguardError`` and nothing else.
"""

from __future__ import annotations


class TypoguardError(Exception):
    """Base of every error typoguard raises on purpose."""


class InvalidAddress(TypoguardError, ValueError):
    """A recipient address or domain that is malformed; ``str(exc)`` says why, for a person."""


class ConfigError(TypoguardError):
    """A configuration file or value that cannot be used."""


class UnknownModel(ConfigError):
    """A typo model named in configuration does not exist."""


class ProtocolError(TypoguardError):
    """The remote peer sent something the protocol does not allow."""


class StoreError(TypoguardError):
    """The store's database failed or cannot be reached; ``str(exc)`` names the operation."""


class MailQueueError(TypoguardError):
    """Postfix's queue tools (``postqueue``, ``postsuper``) failed or are missing."""
