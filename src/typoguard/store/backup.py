"""Backups of the SQLite store while the service runs (``typoguard db backup``), restores into a stopped one
(``typoguard db restore``). PostgreSQL has pg_dump and pg_restore for that: the commands print their line.

Backup. SQLite's online backup API copies the database in *one* step, that is inside one read transaction:
a consistent snapshot of the moment the copy began, while the service and its writer process go on writing
(WAL mode: the writer does not wait for a reader, only the checkpoint waits until the copy is done). Copied
in several steps, the copy would start again after every commit of another process, and under steady mail
might never finish. The copy is written to ``FILE.tmp`` (owner-only: it holds addresses), switched to a
rollback journal so that it is one self-contained file, checked (``quick_check``), fsynced and renamed to
``FILE``; then the directory is fsynced.

Restore. The backup is copied next to the store's database and checked there (an SQLite database that
passes ``integrity_check``, with typoguard's ``tg_schema_version`` at most this program's version; an older
one is migrated as ``db upgrade`` does), so the user's file is never changed and the store is not touched
until the copy is good. The store must not be in use: no process may have the database open (``holders``,
from /proc), and SQLite must grant this process the database alone - switching it from WAL to a rollback
journal needs every other connection gone, and ``BEGIN EXCLUSIVE`` then keeps newcomers out while the file
is replaced. The old file stays as ``<db>.before-restore`` (hard link), the copy is renamed over the
database: at every moment the database path names either the old or the restored file.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from typoguard.errors import StoreError
from typoguard.store.migrations import LATEST

LOCK_WAIT_SECONDS = 2.0  # how long restore waits for SQLite to grant it the database alone
BEFORE_RESTORE = ".before-restore"
_SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True, slots=True)
class DatabaseFile:
    """A typoguard SQLite database as a backup or restore left it."""

    path: Path
    size: int  # bytes
    schema_version: int  # 0: no tg_schema_version table
    tables: dict[str, int]  # table -> rows


@dataclass(frozen=True, slots=True)
class Restored:
    database: DatabaseFile  # the store's database now
    upgraded_from: int | None  # the backup's schema version when it was older than this program's
    previous: Path | None  # where the replaced database is kept (None: there was none)


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite store URL; None for PostgreSQL (or an in-memory database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


# --------------------------------------------------------------------------- PostgreSQL
def _libpq_url(url: str) -> str:
    """``url`` as libpq reads it (``postgresql://user@host:port/db?...``), without the password."""
    u = make_url(url)
    bare = URL.create("postgresql", u.username, None, u.host, u.port, u.database, u.query)
    return bare.render_as_string(hide_password=False)


def pg_dump_command(url: str, target: Path) -> str:
    """The ``pg_dump`` line that backs up the PostgreSQL store at ``url`` to ``target`` (custom format)."""
    return shlex.join(["pg_dump", "--format=custom", "--file", str(target), _libpq_url(url)])


def pg_restore_command(url: str, source: Path) -> str:
    """The ``pg_restore`` line that restores ``source`` (a ``pg_dump --format=custom`` file) into ``url``."""
    return shlex.join(
        ["pg_restore", "--clean", "--if-exists", "--no-owner", "--dbname", _libpq_url(url), str(source)]
    )


# --------------------------------------------------------------------------- backup
def backup(db: Path, target: Path, *, force: bool = False) -> DatabaseFile:
    """Copy the live database ``db`` to ``target`` (see the module docstring); raises ``StoreError``."""
    if not db.is_file():
        raise StoreError(f"no database at {db}: nothing to back up")
    if target.exists() and _same_file(target, db):
        raise StoreError(f"{target} is the store's database itself; back up to another file")
    if target.exists() and not force:
        raise StoreError(f"{target} exists; give another file, or --force to replace it")
    if not target.parent.is_dir():
        raise StoreError(f"cannot write {target}: no directory {target.parent}")
    tmp = target.with_name(target.name + ".tmp")
    try:
        _remove(tmp)  # left by an interrupted backup
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        with _connect(db) as source, _connect(tmp) as copy:
            source.backup(copy)  # pages=-1: one step, one read transaction, one snapshot
            copy.execute("PRAGMA journal_mode = DELETE")  # the copy took the source's WAL flag
            _check(copy, tmp, "quick_check")
            result = _describe(copy, target)
        _fsync(tmp)
        os.replace(tmp, target)
        _fsync(target.parent)
    except sqlite3.Error as exc:
        _cleanup(tmp)
        raise StoreError(f"backup of {db} failed: {exc}") from None
    except OSError as exc:
        _cleanup(tmp)
        raise StoreError(f"backup to {target} failed: {exc.strerror or exc}") from None
    except BaseException:
        _cleanup(tmp)
        raise
    return DatabaseFile(target, target.stat().st_size, result.schema_version, result.tables)


# --------------------------------------------------------------------------- restore
def restore(source: Path, db: Path) -> Restored:
    """Replace the stopped store's database ``db`` by the backup ``source`` (see the module docstring);
    raises ``StoreError`` and then leaves the store as it was."""
    previous = _may_restore(source, db)
    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_name(db.name + ".restore.tmp")
    try:
        _cleanup(tmp)  # left by an interrupted restore
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o600)
        found = _examine(tmp, source)
        if found < LATEST:
            _upgrade(tmp)
        with _connect(tmp) as conn:
            conn.execute("PRAGMA journal_mode = DELETE")  # the service switches it back to WAL
            result = _describe(conn, db)
        _take_ownership(tmp, db)
        _fsync(tmp)
        with _alone(db):
            kept = db.exists()
            if kept:
                os.link(db, previous)
            try:
                os.replace(tmp, db)
            except OSError:
                if kept:  # the database is as it was: no copy of it to keep
                    previous.unlink()
                raise
            _fsync(db.parent)
    except sqlite3.Error as exc:
        _cleanup(tmp)
        raise StoreError(f"restore of {source} failed: {exc}") from None
    except OSError as exc:
        _cleanup(tmp)
        raise StoreError(f"restore of {source} into {db} failed: {exc.strerror or exc}") from None
    except BaseException:
        _cleanup(tmp)
        raise
    return Restored(
        DatabaseFile(db, db.stat().st_size, result.schema_version, result.tables),
        found if found < LATEST else None,
        previous if kept else None,
    )


def _may_restore(source: Path, db: Path) -> Path:
    """Where the replaced database will be kept; ``StoreError`` if ``source`` cannot replace ``db``."""
    if not source.is_file():
        raise StoreError(f"no backup at {source}")
    if db.exists() and _same_file(source, db):
        raise StoreError(f"{source} is the store's database itself")
    wal = Path(f"{source}-wal")
    if wal.exists() and wal.stat().st_size:
        raise StoreError(
            f"{source} has a write-ahead log ({wal}): it is a database in use or copied unclean;"
            " make backups with `typoguard db backup`"
        )
    previous = Path(f"{db}{BEFORE_RESTORE}")
    if previous.exists():
        raise StoreError(
            f"{previous} exists (kept by an earlier restore); move it away first, it may be the only copy"
        )
    orphans = [Path(f"{db}{s}") for s in _SIDE_FILES if Path(f"{db}{s}").exists()]
    if orphans and not db.exists():  # SQLite would apply a stray WAL or journal to the restored file
        raise StoreError(f"{orphans[0]} exists without {db}: remove it (it belonged to a deleted database)")
    return previous


def _examine(path: Path, name: Path) -> int:
    """The schema version of the typoguard database at ``path`` (a copy of ``name``); ``StoreError`` if it
    is not an intact typoguard database this program can use."""
    try:
        with _connect(path) as conn:
            try:
                tables = _tables(conn)
            except sqlite3.DatabaseError:
                raise StoreError(f"{name} is not an SQLite database") from None
            if "tg_schema_version" not in tables or "tg_decisions" not in tables:
                raise StoreError(f"{name} is not a typoguard database (no tg_schema_version, tg_decisions)")
            _check(conn, name, "integrity_check")
            version = int(conn.execute("SELECT max(version) FROM tg_schema_version").fetchone()[0] or 0)
    except sqlite3.Error as exc:
        raise StoreError(f"{name} cannot be read as a database: {exc}") from None
    if version > LATEST:
        raise StoreError(
            f"{name} has schema version {version}, newer than this typoguard knows ({LATEST}):"
            " restore it with the typoguard version that made it"
        )
    return version


def _upgrade(path: Path) -> None:
    from typoguard.store.db import make_engine
    from typoguard.store.migrations import upgrade

    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def holders(db: Path) -> list[tuple[int, str]]:
    """Processes other than this one with ``db`` (or its WAL or shared-memory file) open: (pid, command
    line). Only the processes this user may look into (all of them for root)."""
    names = {str(db.resolve()) + s for s in ("", *_SIDE_FILES)}
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target in names:
                try:
                    cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    cmd = "?"
                found.append((int(proc.name), cmd.strip()))
                break
    return found


@contextlib.contextmanager
def _alone(db: Path) -> Iterator[None]:
    """Hold ``db`` so that no other process uses it; ``StoreError`` naming who does, if any."""
    if not db.exists():
        yield
        return
    using = holders(db)
    if using:
        who = "; ".join(f"pid {pid} ({cmd[:120]})" for pid, cmd in using)
        raise StoreError(
            f"the store {db} is in use by {who}: stop the service first (systemctl stop typoguard)"
        )
    with _connect(db, timeout=LOCK_WAIT_SECONDS) as conn:
        try:
            # From WAL to a rollback journal: SQLite allows it only to the database's one connection (it
            # checkpoints and removes the WAL). Then an exclusive lock keeps every newcomer out.
            mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
            if mode != "delete":  # not changed: SQLite returns the mode it kept
                raise sqlite3.OperationalError(f"journal mode stays {mode}")
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError as exc:
            raise StoreError(
                f"the store {db} is in use ({exc}): stop the service first (systemctl stop typoguard)"
            ) from None
        yield
        conn.execute("ROLLBACK")


# --------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _connect(path: Path, timeout: float = 30.0) -> Iterator[sqlite3.Connection]:
    """A connection that is closed afterwards (sqlite3's own context manager only commits), in autocommit
    mode: every transaction here is begun explicitly."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]


def _describe(conn: sqlite3.Connection, path: Path) -> DatabaseFile:
    tables = {t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in _tables(conn)}
    version = 0
    if "tg_schema_version" in tables:
        version = int(conn.execute("SELECT max(version) FROM tg_schema_version").fetchone()[0] or 0)
    return DatabaseFile(path, 0, version, tables)


def _check(conn: sqlite3.Connection, name: Path, pragma: str) -> None:
    problems = [r[0] for r in conn.execute(f"PRAGMA {pragma}")]
    if problems != ["ok"]:
        raise StoreError(f"{name} is damaged ({pragma}): {'; '.join(problems[:3])}")


def _take_ownership(tmp: Path, db: Path) -> None:
    """The restored file gets the owner and mode of the database it replaces (else of the data directory,
    mode 0640): run as root, it must stay usable by the service's user."""
    ref = db if db.exists() else db.parent
    st = ref.stat()
    if os.geteuid() == 0:
        os.chown(tmp, st.st_uid, st.st_gid)
    os.chmod(tmp, st.st_mode & 0o777 if ref == db else 0o640)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _cleanup(tmp: Path) -> None:
    for p in (tmp, *(Path(f"{tmp}{s}") for s in _SIDE_FILES)):
        with contextlib.suppress(OSError):
            p.unlink()
