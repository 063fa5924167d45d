"""typoguard: stops e-mail to look-alike domains before it leaves, and finds what already leaked."""

from typoguard.config import Config, load_config
from typoguard.core.index import LookalikeIndex
from typoguard.core.verdict import Action, Assessment, Finding, Verdict
from typoguard.errors import ConfigError, InvalidAddress, ProtocolError, TypoguardError, UnknownModel
from typoguard.guard import Guard

__version__ = "0.1.0"

__all__ = [
    "Action",
    "Assessment",
    "Config",
    "ConfigError",
    "Finding",
    "Guard",
    "InvalidAddress",
    "LookalikeIndex",
    "ProtocolError",
    "TypoguardError",
    "UnknownModel",
    "Verdict",
    "__version__",
    "load_config",
]
