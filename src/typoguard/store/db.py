"""Engines: SQLite by default (a WAL-mode file under the data directory), PostgreSQL through a URL.

SQLite notes. Python's sqlite3 driver starts transactions lazily and in "deferred" mode, where a reader
that later writes can fail at once with SQLITE_BUSY instead of waiting. So the driver's own transaction
handling is switched off and every transaction is begun here: ``BEGIN`` for reads and ``BEGIN IMMEDIATE``
for writes (``write_connection``), which waits up to ``busy_timeout`` for the one writer slot. WAL lets
readers proceed during writes; ``synchronous=NORMAL`` keeps committed transactions across a process crash
(``kill -9``), only an OS crash or power loss may lose the last ones.
"""

from __future__ import annotations

import contextlib
import operator
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from typoguard.errors import ConfigError, StoreError

SQLITE_FILE = "typoguard.db"
BUSY_TIMEOUT_MS = 30_000


def sqlite_url(data_dir: str | Path) -> str:
    """The default database: ``typoguard.db`` in ``data_dir`` (created if missing)."""
    path = Path(data_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create data directory {path}: {exc.strerror or exc}") from None
    return f"sqlite:///{path.resolve() / SQLITE_FILE}"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; raises ``ConfigError`` for a URL or driver that cannot be used."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"[store] url is not a database URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, not the psycopg2 default
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"[store] url: unsupported database {backend!r} (use sqlite or postgresql)")
    kwargs: dict[str, Any] = {}
    if backend == "postgresql":
        kwargs.update(pool_pre_ping=True, pool_size=4, max_overflow=4, pool_recycle=3600)
        kwargs["connect_args"] = {"connect_timeout": 5}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        hint = " (install typoguard[postgres])" if backend == "postgresql" else ""
        raise ConfigError(f"[store] url: database driver missing: {exc}{hint}") from None
    if backend == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see module docstring)
        cur = dbapi_connection.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA cache_size = -65536")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("typoguard_begin", "BEGIN"))


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextlib.contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction, committed on success (``BEGIN IMMEDIATE`` on SQLite)."""
    with engine.connect() as conn:
        if is_sqlite(engine):
            conn.execution_options(typoguard_begin="BEGIN IMMEDIATE")
        with conn.begin():
            yield conn


@contextlib.contextmanager
def translated(operation: str) -> Iterator[None]:
    """Turn SQLAlchemy/driver/OS errors raised inside into ``StoreError("<operation>: ...")``."""
    try:
        yield
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise StoreError(f"{operation}: {detail[0] if detail else type(exc).__name__}") from exc
    except OSError as exc:
        raise StoreError(f"{operation}: {exc.strerror or exc}") from exc


def hostname() -> str:
    return os.uname().nodename


_COMPILED: dict[tuple[str, str], tuple[str, Callable[[Sequence[Any]], Any]]] = {}


def executemany_compiled(
    conn: Connection,
    name: str,
    build: Callable[[], Any],
    keys: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Run the Core statement ``build()`` for each row (a tuple in ``keys`` order) via ``executemany``.

    The statement is compiled once per dialect and cached under ``name``. This skips SQLAlchemy's per-row
    parameter processing, which otherwise costs more than the database itself for the decision writer's
    batches (see docs/adr/0003-store.md); the SQL is still generated by SQLAlchemy from the Core table.
    Only for plain columns (no type processing: strings, floats, integers, NULL).
    """
    cache_key = (conn.dialect.name, name)
    entry = _COMPILED.get(cache_key)
    if entry is None:
        compiled = build().compile(dialect=conn.dialect, column_keys=list(keys))
        order = list(compiled.positiontup or ()) if compiled.positional else []
        shape: Callable[[Sequence[Any]], Any]
        if compiled.positional and order == list(keys):
            shape = tuple
        elif compiled.positional:
            index = [list(keys).index(k) for k in order]
            shape = (
                operator.itemgetter(*index)
                if len(index) > 1
                else operator.itemgetter(slice(index[0], index[0] + 1))
            )
        else:
            names = tuple(keys)
            shape = lambda r: dict(zip(names, r, strict=True))  # noqa: E731
        entry = (str(compiled), shape)
        _COMPILED[cache_key] = entry
    sql, shape = entry
    params = rows if shape is tuple else [shape(r) for r in rows]
    conn.exec_driver_sql(sql, params if isinstance(params, list) else list(params))
