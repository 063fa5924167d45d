"""The spool: decision rows waiting for the database, as JSON lines in files under the spool directory.

Each writer appends to its own file and holds an exclusive ``flock`` on it while it is open; a file is
replayed only by whoever can take that lock, so a live writer's file is never replayed under it and two
replayers never share one. Replay inserts with "ignore duplicates" on the unique ``event_id`` and deletes
the file only after the rows are committed: a crash between the two replays the file again, harmlessly.
A torn last line (crash mid-write) is skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

log = logging.getLogger("typoguard.store.spool")

SUFFIX = ".jsonl"


class Spool:
    """Append-only spool files of one writer, plus replay of every unlocked file in the directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._path: Path | None = None
        self._serial = 0
        self.pending = self._count_existing()  # rows on disk not yet replayed (approximate across nodes)
        self.skipped = 0  # unreadable lines met during replay

    def _count_existing(self) -> int:
        n = 0
        with contextlib.suppress(OSError):
            for path in self.directory.glob("*" + SUFFIX):
                with contextlib.suppress(OSError), path.open("rb") as f:
                    n += sum(1 for _ in f)
        return n

    def recount(self) -> None:
        """Count again the rows waiting in every spool file (others' too)."""
        n = self._count_existing()
        with self._lock:
            self.pending = n

    def noticed(self, rows: int) -> None:
        """Rows others put in the spool directory (a converted spill of the service)."""
        with self._lock:
            self.pending += rows

    def has_files(self) -> bool:
        try:
            return any(p != self._path for p in self.directory.glob("*" + SUFFIX)) or self._path is not None
        except OSError:
            return False

    def append(self, rows: Sequence[dict[str, Any]], *, flush: bool = True) -> None:
        """Write rows; with ``flush`` (the default) durably enough to survive a crash of this process
        (handed to the OS). ``flush=False`` (the hot path's overflow) leaves them in the buffer until the
        next ``flush()``."""
        data = b"".join(orjson.dumps(r) + b"\n" for r in rows)
        with self._lock:
            if self._file is None:
                self._open()
            assert self._file is not None
            self._file.write(data)
            if flush:
                self._file.flush()
            self.pending += len(rows)

    def flush(self) -> None:
        if self._file is not None:
            with self._lock:
                if self._file is not None:
                    self._file.flush()

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._serial += 1
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        path = self.directory / f"decisions-{stamp}-{os.getpid()}-{self._serial}{SUFFIX}"
        f = path.open("ab")
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        self._file, self._path = f, path

    def rotate(self) -> None:
        """Close the current file so that it can be replayed."""
        with self._lock:
            if self._file is not None:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
                self._file.close()
            self._file, self._path = None, None

    def replay(self, write: Callable[[list[dict[str, Any]]], int], batch_size: int) -> int:
        """Feed every replayable file to ``write`` in batches, deleting each file once all of it is stored.

        ``write`` raises to stop (the database went away again); the file stays for the next attempt.
        Returns the rows ``write`` reported as newly inserted.
        """
        self.rotate()
        inserted = 0
        done: set[Path] = set()
        while True:  # files that appear meanwhile too (others spill while we replay): not stranded
            todo = [p for p in sorted(self.directory.glob("*" + SUFFIX)) if p not in done]
            if not todo:
                break
            for path in todo:
                done.add(path)
                inserted += self._replay_file(path, write, batch_size)
        if not self.has_files():
            with self._lock:
                self.pending = 0
        return inserted

    def _replay_file(self, path: Path, write: Callable[[list[dict[str, Any]]], int], batch_size: int) -> int:
        inserted = 0
        with _locked(path) as f:
            if f is None:
                return 0  # another writer's open file, or someone else is replaying it
            if not path.exists():
                return 0  # replayed and removed while we waited
            lines = 0
            batch: list[dict[str, Any]] = []
            for raw in f:
                lines += 1
                try:
                    row = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    self.skipped += 1
                    log.warning("spool %s: skipping an unreadable line (torn write?)", path.name)
                    continue
                batch.append(row)
                if len(batch) >= batch_size:
                    inserted += write(batch)
                    batch = []
            if batch:
                inserted += write(batch)
            path.unlink()
            with self._lock:
                self.pending = max(0, self.pending - lines)
        return inserted

    def close(self) -> None:
        self.rotate()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[IO[bytes] | None]:
    try:
        f = path.open("rb")
    except FileNotFoundError:
        yield None
        return
    with f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield f
