"""Run history for ``typoguard exposure --watch``: what changed since the last run.

``History`` is the interface; ``JsonFileHistory`` keeps the last runs in one JSON file, written atomically
(a temporary file renamed over the old one), until the store can hold them.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Protocol

from typoguard.errors import ConfigError
from typoguard.exposure.model import Snapshot

FORMAT = "typoguard-exposure-history/1"


class History(Protocol):
    """Where runs are kept."""

    def last(self) -> Snapshot | None:
        """The most recent run, or None before the first."""
        ...

    def append(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` as the most recent run."""
        ...


class JsonFileHistory:
    """The last ``keep`` runs in a JSON file. Unreadable or foreign files raise ``ConfigError``."""

    def __init__(self, path: Path, keep: int = 10) -> None:
        self.path = path
        self.keep = keep

    def _runs(self) -> list[Snapshot]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(f"cannot read exposure history {self.path}: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError(f"{self.path} is not a typoguard exposure history (format {FORMAT})")
        try:
            return [Snapshot.from_dict(run) for run in data["runs"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"exposure history {self.path} is damaged: {exc!r}") from None

    def last(self) -> Snapshot | None:
        runs = self._runs()
        return runs[-1] if runs else None

    def append(self, snapshot: Snapshot) -> None:
        runs = [*self._runs(), snapshot][-self.keep :]
        body = json.dumps({"format": FORMAT, "runs": [r.to_dict() for r in runs]}, indent=1)
        directory = self.path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(body)
            os.replace(tmp, self.path)
        except OSError as exc:
            raise ConfigError(f"cannot write exposure history {self.path}: {exc.strerror or exc}") from None
