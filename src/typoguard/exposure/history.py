"""Run history for ``typoguard exposure --watch``: what changed since the last run.

``History`` is the interface. ``StoreHistory`` keeps the runs in the store (``tg_exposure_runs``), so every
node and ``typoguard watch`` compare with the same previous run; at its first use it imports the JSON file
earlier versions kept (``exposure-history.json`` in the data directory), once: the file is left in place and
no longer read once the store holds a run. ``JsonFileHistory`` keeps the last runs in one JSON file, written
atomically (a temporary file renamed over the old one): ``exposure --watch --history FILE``, and when the
store is disabled.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from typoguard.errors import ConfigError
from typoguard.exposure.model import Snapshot

if TYPE_CHECKING:
    from typoguard.store import Store

FORMAT = "typoguard-exposure-history/1"
LEGACY_FILE = "exposure-history.json"  # where runs were kept before the store held them


class History(Protocol):
    """Where runs are kept."""

    def last(self) -> Snapshot | None:
        """The most recent run, or None before the first."""
        ...

    def append(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` as the most recent run."""
        ...

    def close(self) -> None:
        """Release what it holds (the store it opened)."""
        ...


class JsonFileHistory:
    """The last ``keep`` runs in a JSON file. Unreadable or foreign files raise ``ConfigError``."""

    def __init__(self, path: Path, keep: int = 10) -> None:
        self.path = path
        self.keep = keep

    def close(self) -> None:
        pass

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


class StoreHistory:
    """The last ``keep`` runs in the store; ``legacy`` (a JSON history file) is imported while the store has
    no run yet. ``owned``: ``close`` closes the store (a command that opened it for the history alone)."""

    def __init__(
        self, store: Store, legacy: Path | None = None, keep: int = 10, *, owned: bool = False
    ) -> None:
        self.store = store
        self.legacy = legacy
        self.keep = keep
        self.owned = owned

    def close(self) -> None:
        if self.owned:
            self.store.close()

    def _import_legacy(self) -> None:
        if self.legacy is None or not self.legacy.exists():
            return
        runs = JsonFileHistory(self.legacy, self.keep)._runs()
        self.store.add_exposure_runs(
            [(r.taken_at, json.dumps([x.to_dict() for x in r.results])) for r in runs], keep=self.keep
        )

    def last(self) -> Snapshot | None:
        found = self.store.exposure_runs(1)
        if not found:
            self._import_legacy()
            found = self.store.exposure_runs(1)
        if not found:
            return None
        taken_at, results = found[0]
        try:
            return Snapshot.from_dict({"taken_at": taken_at, "results": json.loads(results)})
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"exposure history in the store is damaged: {exc!r}") from None

    def append(self, snapshot: Snapshot) -> None:
        if not self.store.exposure_runs(1):
            self._import_legacy()
        body = json.dumps([r.to_dict() for r in snapshot.results])
        self.store.add_exposure_runs([(snapshot.taken_at, body)], keep=self.keep)
